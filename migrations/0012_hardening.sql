-- Hardening from an outside probe.

-- Failed sign-ins are throttled per (user name, client address) pair, with
-- an exponential back-off, and each attempt is counted (reserved) before
-- its password is checked, under a lock per user name, so that attempts
-- sent at once cannot all pass the limit. A correct password clears its
-- pair. Replaces the per-name and per-address failure log.
drop table console_sign_in_failures;
create table console_sign_in_throttle (
  username        text not null,
  client_address  text not null,
  -- Attempts counted since the pair last signed in (each is counted when
  -- it starts; a success removes the row).
  failures        integer not null default 0,
  -- The pair's next attempt is checked only once the back-off after its
  -- failures (longer while its user name or address is under attack) has
  -- passed since this time.
  last_failure_at timestamptz not null default now(),
  primary key (username, client_address)
);
create index console_sign_in_throttle_client on console_sign_in_throttle (client_address, last_failure_at);
create index console_sign_in_throttle_recent on console_sign_in_throttle (last_failure_at);
grant select, insert, update, delete on console_sign_in_throttle to aiagents_admin;

-- A rotated-out webhook secret stays valid only until this time (a
-- rotation that revokes at once sets no previous secret at all).
alter table tenants add column webhook_secret_prev_expires_at timestamptz;
update tenants set webhook_secret_prev_expires_at = now() + interval '24 hours'
 where webhook_secret_prev_enc is not null;

-- New tenants no longer accept the raw secret in X-Webhook-Secret by
-- default; tenants that exist keep what they had (the old default was on).
update tenants set settings = jsonb_set(settings, '{allow_static_secret}', 'true')
 where not settings ? 'allow_static_secret';

-- One enhancement per ticket: the ingress claims (tenant, ticket) before
-- it publishes the ticket's run, so a webhook replayed after the stream's
-- duplicate window starts no second run. An update starts a run only for
-- a ticket without one, or, where the tenant re-enhances updates, once the
-- last run is old enough. `published_at` is set once the stream has the
-- event; a claim without it (the ingress failed or stopped between claim
-- and publish) is published again, under the same message id, by the next
-- delivery.
create table ticket_intake (
  tenant_id    text not null,
  ticket_id    text not null,
  kind         text not null check (kind in ('created', 'updated')),
  event_id     uuid not null,
  msg_id       text not null,
  event        bytea not null,
  claimed_at   timestamptz not null default now(),
  published_at timestamptz,
  primary key (tenant_id, ticket_id)
);
select secure_projection_table('ticket_intake', false);
