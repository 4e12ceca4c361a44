-- Incidents kept as long as their events: an incident's events carry the
-- stream's event TTL (90 days unless AI_AGENTS_EVENT_TTL_SECS says
-- otherwise), so a rebuild from the stream knows no incident detected
-- before that. The correlator's sweep removes ended incidents (their
-- tickets by cascade) past the same age, so the tables and the stream agree.
create function purge_old_incidents(older_than interval)
  returns bigint
  language plpgsql security definer set search_path = public, pg_temp
  as $$
declare
  n_incidents bigint;
begin
  if older_than < interval '1 day' then
    raise exception 'a retention shorter than a day is refused';
  end if;
  delete from incidents where status = 'ended' and detected_at < now() - older_than;
  get diagnostics n_incidents = row_count;
  return n_incidents;
end
$$;
revoke all on function purge_old_incidents(interval) from public;
grant execute on function purge_old_incidents(interval) to aiagents_app;

-- An open ticket of a live incident keeps its row (and vector) past the
-- window's retention: the incident's centroid is the mean of its members'
-- vectors, and a process that reads it again must find every member.
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
  delete from open_tickets o
   where o.received_at < now() - open_older_than
     and not exists (
       select 1
         from incident_tickets t
         join incidents i on i.tenant_id = t.tenant_id and i.incident_id = t.incident_id
        where t.tenant_id = o.tenant_id and t.ticket_id = o.ticket_id and i.status <> 'ended');
  get diagnostics n_open = row_count;
  delete from incident_outbox
   where published_at is not null and published_at < now() - published_older_than;
  get diagnostics n_outbox = row_count;
  return n_open + n_outbox;
end
$$;
