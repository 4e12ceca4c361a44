-- Initial schema: tenants, the read-model projections, reference data for
-- context gathering, and the write-back ledger. Every table that holds a
-- tenant's data carries tenant_id and is guarded by row-level security.

create extension if not exists pg_trgm;

-- The application role every service connects as. It owns nothing, so
-- row-level security always applies to it. Operators grant it LOGIN and a
-- password (the dev stack grants LOGIN with trust auth on loopback).
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'aiagents_app') then
    create role aiagents_app nologin;
  end if;
end
$$;

-- The tenant a transaction works for. Unset means no tenant: every policy
-- compares against NULL and so sees nothing.
create function app_current_tenant() returns text
  language sql stable
  as $$ select nullif(current_setting('app.tenant_id', true), '') $$;

create table tenants (
  tenant_id             text primary key check (tenant_id ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
  name                  text not null,
  itsm_kind             text not null check (itsm_kind in ('servicedesk_plus', 'jira', 'zendesk')),
  itsm_base_url         text not null,
  -- Encrypted with the application key (see libs/store/src/secrets.rs).
  itsm_credentials_enc  bytea not null,
  webhook_secret_enc    bytea not null,
  -- The previous webhook secret stays valid during a rotation.
  webhook_secret_prev_enc bytea,
  settings              jsonb not null default '{}'::jsonb,
  active                boolean not null default true,
  created_at            timestamptz not null default now(),
  updated_at            timestamptz not null default now(),
  deleted_at            timestamptz
);

-- How far a ticket run has come; a projection never moves a run backwards.
create function enhancement_status_rank(status text) returns int
  language sql immutable
  as $$ select case status
    when 'received' then 1 when 'context_gathered' then 2 when 'enhanced' then 3
    when 'completed' then 4 when 'failed' then 4 when 'failed_budget' then 4 else 0 end $$;

-- One row per ticket run, written only by history-projector.
create table enhancement_history (
  tenant_id           text not null,
  correlation_id      uuid not null,
  ticket_id           text not null,
  status              text not null check (status in
                        ('received', 'context_gathered', 'enhanced', 'completed', 'failed', 'failed_budget')),
  source              text,
  subject             text,
  priority            text,
  received_at         timestamptz,
  context_gathered_at timestamptz,
  enhanced_at         timestamptz,
  written_back_at     timestamptz,
  failed_at           timestamptz,
  processing_ms       bigint,
  context_summary     text,
  context             jsonb,
  note_markdown       text,
  provider            text,
  model               text,
  prompt_version      text,
  tokens_in           integer,
  tokens_out          integer,
  cost_usd            double precision,
  degraded            boolean,
  failed_stage        text,
  error               text,
  last_event_id       uuid not null,
  updated_at          timestamptz not null default now(),
  primary key (tenant_id, correlation_id)
);
create index enhancement_history_ticket on enhancement_history (tenant_id, ticket_id);
create index enhancement_history_recent on enhancement_history (tenant_id, received_at desc);

-- array_to_string is only STABLE; for text arrays it is immutable in fact,
-- which a generated column needs.
create function tags_text(tags text[]) returns text
  language sql immutable parallel safe
  as $$ select array_to_string(tags, ' ') $$;

-- Resolved tickets: the corpus similar-ticket search reads. Written by
-- history-projector from ticket.resolved events.
create table ticket_history (
  tenant_id    text not null,
  ticket_id    text not null,
  subject      text not null,
  description  text not null,
  resolution   text not null,
  priority     text not null,
  tags         text[] not null default '{}',
  resolved_at  timestamptz not null,
  search       tsvector generated always as (
                 setweight(to_tsvector('english', coalesce(subject, '')), 'A') ||
                 setweight(to_tsvector('english', coalesce(description, '')), 'B') ||
                 setweight(to_tsvector('english', coalesce(resolution, '')), 'C') ||
                 setweight(to_tsvector('english', tags_text(tags)), 'B')
               ) stored,
  last_event_id uuid not null,
  updated_at   timestamptz not null default now(),
  primary key (tenant_id, ticket_id)
);
create index ticket_history_search on ticket_history using gin (search);
create index ticket_history_description_trgm on ticket_history using gin (description gin_trgm_ops);

create table knowledge_articles (
  tenant_id   text not null,
  article_id  text not null,
  title       text not null,
  body        text not null,
  url         text,
  tags        text[] not null default '{}',
  search      tsvector generated always as (
                setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
                setweight(to_tsvector('english', coalesce(body, '')), 'B')
              ) stored,
  updated_at  timestamptz not null default now(),
  primary key (tenant_id, article_id)
);
create index knowledge_articles_search on knowledge_articles using gin (search);

create table system_inventory (
  tenant_id  text not null,
  system_id  bigint generated always as identity,
  address    inet,
  hostname   text,
  role       text,
  client     text,
  location   text,
  metadata   jsonb not null default '{}'::jsonb,
  primary key (tenant_id, system_id),
  check (address is not null or hostname is not null)
);
create index system_inventory_address on system_inventory using gist (address inet_ops);
create index system_inventory_hostname on system_inventory (tenant_id, lower(hostname));

-- What writeback has posted: one row per ticket run, so a redelivered
-- enhancement never posts a second note.
create table writeback_ledger (
  tenant_id      text not null,
  correlation_id uuid not null,
  ticket_id      text not null,
  state          text not null check (state in ('posting', 'posted')),
  note_id        text,
  attempts       integer not null default 0,
  updated_at     timestamptz not null default now(),
  primary key (tenant_id, correlation_id)
);

-- How far each projection has applied the stream. Not tenant data.
create table projection_checkpoints (
  projection      text primary key,
  stream_sequence bigint not null,
  updated_at      timestamptz not null default now()
);

-- Row-level security: the application role sees only the current tenant.
do $$
declare
  t text;
begin
  foreach t in array array['tenants', 'enhancement_history', 'ticket_history',
                           'knowledge_articles', 'system_inventory', 'writeback_ledger']
  loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format(
      'create policy tenant_isolation on %I using (tenant_id = app_current_tenant()) '
      'with check (tenant_id = app_current_tenant())', t);
    execute format('grant select, insert, update, delete on %I to aiagents_app', t);
  end loop;
end
$$;
grant select, insert, update on projection_checkpoints to aiagents_app;
grant usage on schema public to aiagents_app;
grant execute on function app_current_tenant() to aiagents_app;
