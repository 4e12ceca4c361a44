-- Read models for operators and dashboards: an admin role that reads across
-- tenants, per-stage latencies and ratings on each run, daily counters per
-- tenant, and the projection's retention.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'aiagents_admin') then
    create role aiagents_admin nologin;
  end if;
end
$$;

alter table enhancement_history
  add column context_ms    bigint,
  add column llm_ms        bigint,
  add column writeback_ms  bigint,
  add column rating_stars  smallint check (rating_stars between 1 and 5),
  add column rating_thumbs_up boolean,
  add column rating_comment text,
  add column rated_at      timestamptz;

-- Written by history-projector when a run reaches a state, once per run.
create table tenant_daily_stats (
  tenant_id      text not null,
  day            date not null,
  received       integer not null default 0,
  completed      integer not null default 0,
  failed         integer not null default 0,
  failed_budget  integer not null default 0,
  degraded       integer not null default 0,
  tokens_in      bigint not null default 0,
  tokens_out     bigint not null default 0,
  cost_usd       double precision not null default 0,
  processing_ms_total bigint not null default 0,
  primary key (tenant_id, day)
);

alter table tenant_daily_stats enable row level security;
alter table tenant_daily_stats force row level security;
create policy tenant_isolation on tenant_daily_stats
  using (tenant_id = app_current_tenant()) with check (tenant_id = app_current_tenant());
grant select, insert, update, delete on tenant_daily_stats to aiagents_app;

-- The admin role reads every tenant's rows, and writes none.
do $$
declare
  t text;
begin
  foreach t in array array['tenants', 'enhancement_history', 'ticket_history', 'knowledge_articles',
                           'system_inventory', 'writeback_ledger', 'tenant_daily_stats']
  loop
    execute format('create policy admin_read on %I for select to aiagents_admin using (true)', t);
    execute format('grant select on %I to aiagents_admin', t);
  end loop;
end
$$;
grant usage on schema public to aiagents_admin;
grant select on projection_checkpoints to aiagents_admin;
grant execute on function app_current_tenant() to aiagents_admin;

-- The schema owner may act across tenants, but only through the functions
-- below (security definer); services never connect as the owner.
do $$
declare
  t text;
begin
  foreach t in array array['enhancement_history', 'tenant_daily_stats']
  loop
    execute format('create policy owner_maintenance on %I to %I using (true) with check (true)', t, current_user);
  end loop;
end
$$;

-- Retention: removes runs received before the cut-off, for every tenant.
create function purge_enhancement_history(older_than interval) returns bigint
  language plpgsql security definer set search_path = public
  as $$
declare
  n_deleted bigint;
begin
  delete from enhancement_history where received_at < now() - older_than;
  get diagnostics n_deleted = row_count;
  return n_deleted;
end
$$;
revoke all on function purge_enhancement_history(interval) from public;
grant execute on function purge_enhancement_history(interval) to aiagents_app;
