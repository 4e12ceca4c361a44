-- A tenant's LLM budget, held by the calls themselves. The budget was read
-- from the daily counters the history projector keeps, after the fact:
-- a burst of a hundred tickets all read the same spend, all passed, and
-- the tenant overspent by a hundred calls. Now every call claims its
-- estimated cost before it is made — on one row per tenant and period,
-- locked, so concurrent claims are counted one after another and only
-- those that fit pass — and settles its real cost after.

-- What the tenant has spent in a period: settled costs, plus what open
-- claims reserved. Seeded, when first claimed on, from the projected
-- spend of the period so far (what was spent before this ledger existed).
create table llm_budget_periods (
  tenant_id    text not null,
  period_start date not null,
  spent_usd    float8 not null,
  primary key (tenant_id, period_start)
);
-- The purges run as the schema's owner, for every tenant, over tables that
-- force row-level security: the owner may maintain these (a superuser, as in
-- tests, would pass anyway; the owner in production is none).
select secure_projection_table('llm_budget_periods', true);

-- One claim per call and purpose (`<correlation id>:note`,
-- `<correlation id>:rewrite`): a redelivered ticket finds its open claim
-- and does not reserve twice. `cost_usd` is null until settled.
create table llm_budget_claims (
  tenant_id    text not null,
  claim_id     text not null,
  period_start date not null,
  reserved_usd float8 not null,
  cost_usd     float8,
  claimed_at   timestamptz not null default now(),
  primary key (tenant_id, claim_id)
);
select secure_projection_table('llm_budget_claims', true);

-- Retention: claims go with the runs they were made for. The purges are
-- for every tenant, so they run as their owner; a caller's temporary
-- table never stands in for ours (pg_temp last), and no caller can empty
-- the history by asking for a retention of nothing (at least a day).
create or replace function purge_enhancement_history(older_than interval) returns bigint
  language plpgsql security definer set search_path = public, pg_temp
  as $$
declare
  n_deleted bigint;
begin
  if older_than < interval '1 day' then
    raise exception 'a retention shorter than a day (%) is refused', older_than;
  end if;
  delete from enhancement_history where received_at < now() - older_than;
  get diagnostics n_deleted = row_count;
  -- A claim past retention goes whether settled or not: one left open (its
  -- ticket never came back) holds a reservation in a period long over,
  -- which no budget reads.
  delete from llm_budget_claims where claimed_at < now() - older_than;
  delete from llm_budget_periods where period_start < (now() - older_than - interval '366 days')::date;
  return n_deleted;
end
$$;

create or replace function purge_incident_caches(open_older_than interval, published_older_than interval)
  returns bigint
  language plpgsql security definer set search_path = public, pg_temp
  as $$
declare
  n_open bigint;
  n_outbox bigint;
begin
  if open_older_than < interval '1 hour' or published_older_than < interval '1 hour' then
    raise exception 'a retention shorter than an hour is refused';
  end if;
  delete from open_tickets where received_at < now() - open_older_than;
  get diagnostics n_open = row_count;
  delete from incident_outbox
   where published_at is not null and published_at < now() - published_older_than;
  get diagnostics n_outbox = row_count;
  return n_open + n_outbox;
end
$$;

alter function incident_tenants_due() set search_path = public, pg_temp;

-- No role but the owner creates objects in the schema (the default of
-- PostgreSQL 15 and later, stated for clusters upgraded from before).
revoke create on schema public from public;
