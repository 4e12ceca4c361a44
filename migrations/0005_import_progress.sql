-- Where an import from a tenant's help desk got to, so an interrupted import
-- resumes instead of starting over.
create table import_progress (
  tenant_id   text not null,
  source      text not null,
  next_index  bigint not null,
  imported    bigint not null default 0,
  updated_at  timestamptz not null default now(),
  primary key (tenant_id, source)
);
select secure_projection_table('import_progress', false);
