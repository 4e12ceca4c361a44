-- Rebuilding projections into fresh tables: the security a fresh table needs
-- before it is swapped in, in one place.

create function secure_projection_table(tbl regclass, with_owner_policy boolean) returns void
  language plpgsql
  as $$
begin
  execute format('alter table %s enable row level security', tbl);
  execute format('alter table %s force row level security', tbl);
  execute format(
    'create policy tenant_isolation on %s using (tenant_id = app_current_tenant()) '
    'with check (tenant_id = app_current_tenant())', tbl);
  execute format('create policy admin_read on %s for select to aiagents_admin using (true)', tbl);
  if with_owner_policy then
    execute format('create policy owner_maintenance on %s to %I using (true) with check (true)', tbl, current_user);
  end if;
  execute format('grant select, insert, update, delete on %s to aiagents_app', tbl);
  execute format('grant select on %s to aiagents_admin', tbl);
end
$$;

-- The owner may also maintain ticket_history (rebuilds of one tenant).
create policy owner_maintenance on ticket_history to current_user using (true) with check (true);
