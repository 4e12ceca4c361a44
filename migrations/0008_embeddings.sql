-- Sentence embeddings of resolved tickets and knowledge articles, one row
-- per (tenant, item, model). A vector is stored with the id of the model
-- that made it and its dimension, so a search compares only vectors of one
-- model, and with a digest of the text it embeds, so an unchanged text is
-- not embedded again. Vectors are little-endian f32, L2-normalised.
create table ticket_embeddings (
  tenant_id   text not null,
  ticket_id   text not null,
  model       text not null,
  dim         integer not null check (dim between 1 and 8192),
  content_sha256 bytea not null,
  vector      bytea not null,
  embedded_at timestamptz not null default now(),
  primary key (tenant_id, model, ticket_id),
  constraint ticket_embeddings_vector_size check (octet_length(vector) = dim * 4)
);

create table article_embeddings (
  tenant_id   text not null,
  article_id  text not null,
  model       text not null,
  dim         integer not null check (dim between 1 and 8192),
  content_sha256 bytea not null,
  vector      bytea not null,
  embedded_at timestamptz not null default now(),
  primary key (tenant_id, model, article_id),
  constraint article_embeddings_vector_size check (octet_length(vector) = dim * 4)
);

-- One model has one dimension within a tenant: a vector of another size
-- under the same model id is refused, not stored beside the others.
create function embeddings_one_dimension() returns trigger
  language plpgsql as $$
begin
  if exists (select 1 from ticket_embeddings
              where tenant_id = new.tenant_id and model = new.model and dim <> new.dim)
     or exists (select 1 from article_embeddings
              where tenant_id = new.tenant_id and model = new.model and dim <> new.dim) then
    raise exception 'embedding model mismatch: % already has vectors of another dimension than %', new.model, new.dim
      using errcode = 'check_violation';
  end if;
  return new;
end
$$;
create trigger ticket_embeddings_one_dimension before insert or update on ticket_embeddings
  for each row execute function embeddings_one_dimension();
create trigger article_embeddings_one_dimension before insert or update on article_embeddings
  for each row execute function embeddings_one_dimension();

do $$
declare
  t text;
begin
  foreach t in array array['ticket_embeddings', 'article_embeddings']
  loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format('create policy tenant_isolation on %I using (tenant_id = app_current_tenant()) with check (tenant_id = app_current_tenant())', t);
    execute format('grant select, insert, update, delete on %I to aiagents_app', t);
    execute format('create policy admin_read on %I for select to aiagents_admin using (true)', t);
    execute format('grant select on %I to aiagents_admin', t);
  end loop;
end
$$;
