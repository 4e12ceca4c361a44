-- Incident messages named by the decision, not by the version alone.
--
-- An incident event's message id (the stream's Nats-Msg-Id and the
-- webhook's webhook-id) was `incident:<tenant>:<incident>:v<version>`. A
-- restore that brings PostgreSQL back ahead of the stream's snapshot, then
-- a rebuild, can decide a version again with other content: its id was
-- the old one's, so the outbox kept the old row, the stream and the
-- notification ledger took it for a repeat, and receivers dropped it. The
-- id now also carries a digest of the decision (the event's payload), and
-- the ledger says which incident and version each notification is, for
-- the order in which they are posted.
alter table incident_notifications
  add column incident_id uuid,
  add column version integer;
-- Rows written before, under `incident:<tenant>:<incident>:v<version>`:
-- the version after them must find them settled.
update incident_notifications
   set incident_id = split_part(webhook_id, ':', 3)::uuid,
       version = substr(split_part(webhook_id, ':', 4), 2)::integer
 where incident_id is null
   and webhook_id ~ '^incident:[^:]+:[0-9a-f-]{36}:v[0-9]+$';
create index incident_notifications_version
  on incident_notifications (tenant_id, incident_id, version);

-- When a ticket last joined an incident, by the clock of the decision: a
-- correlator catching up on a backlog adds tickets whose own times are
-- long past, and the incident is not quiet while it does.
alter table incidents add column last_joined_at timestamptz;

-- A version a tenant without a webhook did not post: settled, so the next
-- version does not wait for it once a webhook is set.
alter table incident_notifications drop constraint incident_notifications_state_check;
alter table incident_notifications add constraint incident_notifications_state_check
  check (state in ('pending', 'delivered', 'failed', 'skipped'));

-- Who closed an incident, beside who acknowledged it (a close no longer
-- writes over the acknowledgement).
alter table incidents add column closed_by text;

-- Notifications are kept as long as the incidents they tell of.
create or replace function purge_old_incidents(older_than interval)
  returns bigint
  language plpgsql security definer set search_path = public, pg_temp
  as $$
declare
  n_incidents bigint;
  n_notifications bigint;
begin
  if older_than < interval '1 day' then
    raise exception 'a retention shorter than a day is refused';
  end if;
  delete from incidents where status = 'ended' and detected_at < now() - older_than;
  get diagnostics n_incidents = row_count;
  delete from incident_notifications
   where state <> 'pending' and updated_at < now() - older_than;
  get diagnostics n_notifications = row_count;
  return n_incidents + n_notifications;
end
$$;

-- Live incidents by tenant, for the correlator's gauge: counts only.
create function incident_live_counts() returns table (tenant_id text, live bigint)
  language sql stable security definer set search_path = public, pg_temp
  as $$
    select tenant_id, count(*) from incidents where status <> 'ended' group by tenant_id
  $$;
revoke all on function incident_live_counts() from public;
grant execute on function incident_live_counts() to aiagents_app;
