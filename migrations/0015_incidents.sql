-- Incidents: many open tickets of one tenant that look like one outage.

-- The recent open tickets of each tenant, as context-gatherer understood
-- them: a cache of the stream (rows older than the longest window are
-- purged), not a source of truth. The vector is the tenant's active
-- model's embedding of subject and description, quantized to one signed
-- byte per dimension (component × 127: reading a whole window is the cost,
-- and a quarter of the f32 bytes is a quarter of it); null when the
-- ticket could not be embedded.
create table open_tickets (
  tenant_id   text not null,
  ticket_id   text not null,
  received_at timestamptz not null,
  subject     text,
  -- Hosts, addresses and sites (`site:<location>`) the ticket names.
  entities    text[] not null default '{}',
  model       text,
  vector      bytea,
  -- Set when the ticket's resolution arrives (the row is made then, without
  -- a vector, if the resolution comes first).
  resolved_at timestamptz,
  updated_at  timestamptz not null default now(),
  primary key (tenant_id, ticket_id)
);
create index open_tickets_window on open_tickets (tenant_id, received_at) where resolved_at is null;
create index open_tickets_age on open_tickets (received_at);

-- Incidents as their events left them (incident.detected / .updated),
-- written by incident-correlator in the transaction that decides them and
-- rebuilt from the stream by `aiagents rebuild`.
create table incidents (
  tenant_id       text not null,
  incident_id     uuid not null,
  version         integer not null,
  status          text not null check (status in ('open', 'acknowledged', 'ended')),
  summary         text not null,
  shared_entities text[] not null default '{}',
  first_ticket_at timestamptz not null,
  last_ticket_at  timestamptz not null,
  detected_at     timestamptz not null,
  detected_by     text not null,
  ended_at        timestamptz,
  -- resolved, closed or quiet.
  end_change      text,
  acknowledged_by text,
  updated_at      timestamptz not null,
  primary key (tenant_id, incident_id)
);
create index incidents_live on incidents (tenant_id, last_ticket_at) where status <> 'ended';
create index incidents_recent on incidents (tenant_id, detected_at desc);

-- A ticket belongs to at most one incident, and never moves.
create table incident_tickets (
  tenant_id      text not null,
  ticket_id      text not null,
  incident_id    uuid not null,
  subject        text,
  received_at    timestamptz not null,
  joined_version integer not null,
  resolved_at    timestamptz,
  primary key (tenant_id, ticket_id),
  foreign key (tenant_id, incident_id) references incidents (tenant_id, incident_id) on delete cascade
);
create index incident_tickets_by_incident on incident_tickets (tenant_id, incident_id);

-- Incident events decided but perhaps not yet published: written in the
-- deciding transaction, published after its commit under a deterministic
-- Nats-Msg-Id (the stream drops a second copy), marked when JetStream
-- acknowledged them. The exact bytes are kept, so a republish is the same
-- event.
create table incident_outbox (
  tenant_id    text not null,
  msg_id       text not null,
  -- Taken under the tenant's lock, so it is the order of the decisions
  -- (created_at is the transaction's start, not the decision's).
  seq          bigserial not null,
  event        bytea not null,
  created_at   timestamptz not null default now(),
  published_at timestamptz,
  primary key (tenant_id, msg_id)
);
create index incident_outbox_pending on incident_outbox (created_at) where published_at is null;

-- Incident events posted to tenants' webhooks (incident-notifier): one row
-- per webhook id (an incident's version), so a delivered one is never
-- posted again and a failed one says why.
create table incident_notifications (
  tenant_id    text not null,
  webhook_id   text not null,
  event_type   text not null,
  state        text not null check (state in ('pending', 'delivered', 'failed')),
  attempts     integer not null,
  http_status  integer,
  last_error   text,
  delivered_at timestamptz,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  primary key (tenant_id, webhook_id)
);
create index incident_notifications_failed on incident_notifications (tenant_id, updated_at)
  where state = 'failed';

do $$
declare
  t text;
begin
  foreach t in array array['open_tickets', 'incidents', 'incident_tickets', 'incident_outbox',
                           'incident_notifications']
  loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format('create policy tenant_isolation on %I using (tenant_id = app_current_tenant()) with check (tenant_id = app_current_tenant())', t);
    execute format('grant select, insert, update, delete on %I to aiagents_app', t);
    execute format('create policy admin_read on %I for select to aiagents_admin using (true)', t);
    execute format('grant select on %I to aiagents_admin', t);
    execute format('create policy owner_maintenance on %I to %I using (true) with check (true)', t, current_user);
  end loop;
end
$$;

grant usage on sequence incident_outbox_seq_seq to aiagents_app;

-- The tenants the correlator's sweep visits: those with a live incident
-- (which may have gone quiet) or an event not yet published. Tenants only,
-- never their rows: each is then worked on under its own tenant.
create function incident_tenants_due() returns setof text
  language sql stable security definer set search_path = public
  as $$
    select tenant_id from incidents where status <> 'ended'
    union
    select tenant_id from incident_outbox where published_at is null
  $$;
revoke all on function incident_tenants_due() from public;
grant execute on function incident_tenants_due() to aiagents_app;

-- Retention of the window and of published incident events, for every
-- tenant.
create function purge_incident_caches(open_older_than interval, published_older_than interval)
  returns bigint
  language plpgsql security definer set search_path = public
  as $$
declare
  n_open bigint;
  n_outbox bigint;
begin
  delete from open_tickets where received_at < now() - open_older_than;
  get diagnostics n_open = row_count;
  delete from incident_outbox
   where published_at is not null and published_at < now() - published_older_than;
  get diagnostics n_outbox = row_count;
  return n_open + n_outbox;
end
$$;
revoke all on function purge_incident_caches(interval, interval) from public;
grant execute on function purge_incident_caches(interval, interval) to aiagents_app;
