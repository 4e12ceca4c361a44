-- The ids of the tenants that exist, for the ingress to tell a made-up
-- tenant id from a real one before anything is authenticated, without a
-- database read per made-up id. Ids only, never their rows.
create function tenant_ids() returns setof text
  language sql stable security definer set search_path = public, pg_temp
  as $$
    select tenant_id from tenants where deleted_at is null
  $$;
revoke all on function tenant_ids() from public;
grant execute on function tenant_ids() to aiagents_app;

-- Dead letters (aia_ops::dead_letters): a failed run, or an over-budget run
-- whose raw-context note failed to post (its status stays failed_budget).
create index enhancement_history_dead on enhancement_history (tenant_id, failed_at desc)
  where (status = 'failed'
     or (status = 'failed_budget' and failed_at is not null and written_back_at is null));
