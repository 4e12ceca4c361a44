-- The purges run as the schema's owner, for every tenant, and the ledger's
-- tables force row-level security: without a policy for the owner the
-- purge of migration 0021 would see none of their rows and delete nothing
-- (a superuser, as in tests, passes anyway). The owner may maintain them,
-- as it maintains every other table it purges or rebuilds.
create policy owner_maintenance on llm_budget_periods to current_user using (true) with check (true);
create policy owner_maintenance on llm_budget_claims to current_user using (true) with check (true);

-- A claim past retention goes whether it was settled or not: one left
-- open (its ticket never came back) holds a reservation in a period long
-- over, which no budget reads.
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
  delete from llm_budget_claims where claimed_at < now() - older_than;
  delete from llm_budget_periods where period_start < (now() - older_than - interval '366 days')::date;
  return n_deleted;
end
$$;
