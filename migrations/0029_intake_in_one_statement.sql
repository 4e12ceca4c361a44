-- The ingress's claim of a ticket's run and its confirmation, each one
-- statement (libs/store/src/intake.rs): the tenant is set inside, so
-- neither needs BEGIN, the tenant's own statement and COMMIT around it.
-- Every webhook makes both; measured, PostgreSQL's work per webhook was
-- mostly those eight statements' protocol and commits (docs/benchmarks.md).
-- Both run as the caller, under the tenant's row-level security.

create function intake_claim(p_tenant text, p_ticket text, p_kind text, p_event_id uuid,
                             p_msg_id text, p_event bytea, p_reclaim_secs float8)
  returns table (claimed boolean, claim_event_id uuid, claim_msg_id text, claim_event bytea,
                 published boolean)
  language plpgsql volatile
  set search_path = public, pg_temp
  as $$
begin
  perform set_config('app.tenant_id', p_tenant, true);
  insert into ticket_intake as t (tenant_id, ticket_id, kind, event_id, msg_id, event)
  values (p_tenant, p_ticket, p_kind, p_event_id, p_msg_id, p_event)
  on conflict (tenant_id, ticket_id) do update
     set kind = excluded.kind, event_id = excluded.event_id, msg_id = excluded.msg_id,
         event = excluded.event, claimed_at = now(), published_at = null
   where p_reclaim_secs is not null and t.published_at is not null
     and t.claimed_at <= now() - make_interval(secs => p_reclaim_secs);
  if found then
    return query select true, p_event_id, p_msg_id, null::bytea, false;
    return;
  end if;
  -- The ticket's claim as another delivery left it: a volatile function's
  -- statement sees what the insert waited for.
  return query
    select false, i.event_id, i.msg_id, i.event, i.published_at is not null
      from ticket_intake i
     where i.tenant_id = p_tenant and i.ticket_id = p_ticket;
end
$$;

-- The mark commits without waiting for the WAL flush: lost in a database
-- crash it reads as a claim not confirmed, whose next delivery publishes
-- the same event under the same message id.
create function intake_confirmed(p_tenant text, p_ticket text, p_event_id uuid) returns void
  language plpgsql volatile
  set search_path = public, pg_temp
  as $$
begin
  perform set_config('app.tenant_id', p_tenant, true);
  perform set_config('synchronous_commit', 'off', true);
  update ticket_intake set published_at = now()
   where tenant_id = p_tenant and ticket_id = p_ticket and event_id = p_event_id
     and published_at is null;
end
$$;

revoke all on function intake_claim(text, text, text, uuid, text, bytea, float8) from public;
grant execute on function intake_claim(text, text, text, uuid, text, bytea, float8) to aiagents_app;
revoke all on function intake_confirmed(text, text, uuid) from public;
grant execute on function intake_confirmed(text, text, uuid) to aiagents_app;
