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
