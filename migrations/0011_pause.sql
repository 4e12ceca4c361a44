-- Pausing a tenant: while `paused_at` is set, the stages set its events
-- aside here instead of working on them (the events themselves stay in the
-- stream); resuming publishes each again, in stream order, and removes it.
alter table tenants add column paused_at timestamptz;

create table parked_events (
  tenant_id       text not null,
  -- The stage that set the event aside (the one that consumes it).
  stage           text not null,
  event_id        uuid not null,
  stream_sequence bigint not null,
  parked_at       timestamptz not null default now(),
  primary key (tenant_id, stage, event_id)
);
create index parked_events_order on parked_events (tenant_id, stream_sequence);
select secure_projection_table('parked_events', false);
