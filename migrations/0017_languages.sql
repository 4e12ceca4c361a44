-- Tickets and articles in their own language (issue 27).

-- The text-search configuration of a language code (ISO 639-1, as events
-- carry it): its stemmer and stop words, `simple` (no stemming, no stop
-- words) for a code without one. Immutable, so that a generated column may
-- use it: the configurations named are built into PostgreSQL.
create function text_search_config(language text) returns regconfig
  language sql immutable parallel safe
  as $$
    select case language
             when 'en' then 'english'::regconfig
             when 'de' then 'german'::regconfig
             when 'fr' then 'french'::regconfig
             when 'es' then 'spanish'::regconfig
             when 'nl' then 'dutch'::regconfig
             else 'simple'::regconfig
           end
  $$;

-- A resolved ticket's language, detected by the projector from its text;
-- rows projected before read as English, as they were searched until now.
-- The full-text vector is rebuilt with each row's own configuration.
alter table ticket_history add column language text not null default 'en';
alter table ticket_history drop column search;
alter table ticket_history add column search tsvector generated always as (
  setweight(to_tsvector(text_search_config(language), coalesce(subject, '')), 'A') ||
  setweight(to_tsvector(text_search_config(language), coalesce(description, '')), 'B') ||
  setweight(to_tsvector(text_search_config(language), coalesce(resolution, '')), 'C') ||
  setweight(to_tsvector(text_search_config(language), tags_text(tags)), 'B')
) stored;
create index ticket_history_tenant_search on ticket_history using gin (tenant_id, search);

alter table knowledge_articles add column language text not null default 'en';
alter table knowledge_articles drop column search;
alter table knowledge_articles add column search tsvector generated always as (
  setweight(to_tsvector(text_search_config(language), coalesce(title, '')), 'A') ||
  setweight(to_tsvector(text_search_config(language), coalesce(body, '')), 'B')
) stored;
create index knowledge_articles_tenant_search on knowledge_articles using gin (tenant_id, search);

-- The language each run's ticket was read in (how it was decided is in
-- the context), from context.gathered v5; null before.
alter table enhancement_history add column language text;
