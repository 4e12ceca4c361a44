-- The admin console's own records: who may sign in, their sessions, failed
-- sign-ins (for rate limiting) and the audit log of every state-changing
-- action. None of it is tenant data: the console reaches it through the
-- admin role, which reads every tenant's rows and, apart from these
-- tables, writes none.

create table console_users (
  user_id bigint generated always as identity primary key,
  username text not null unique check (username ~ '^[a-z0-9][a-z0-9._@-]{1,62}$'),
  -- An Argon2id PHC string; never the password.
  password_hash text not null,
  role text not null check (role in ('admin', 'viewer')),
  created_at timestamptz not null default now(),
  disabled_at timestamptz
);

-- A session is found by the SHA-256 of its cookie's token, so a read of
-- this table does not yield a usable cookie.
create table console_sessions (
  token_sha256 bytea primary key,
  user_id bigint not null references console_users on delete cascade,
  -- Sent in every form and checked on every state-changing request.
  csrf_token text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index console_sessions_expiry on console_sessions (expires_at);

create table console_sign_in_failures (
  at timestamptz not null default now(),
  username text not null,
  client_address text not null
);
create index console_sign_in_failures_user on console_sign_in_failures (username, at);
create index console_sign_in_failures_client on console_sign_in_failures (client_address, at);

create table console_audit (
  audit_id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  username text not null,
  action text not null,
  tenant_id text,
  detail jsonb not null default '{}'
);
create index console_audit_at on console_audit (at desc);

grant select, insert, update, delete on console_users, console_sessions, console_sign_in_failures to aiagents_admin;
grant select, insert on console_audit to aiagents_admin;

-- The dashboard's last 24 hours across every tenant, and its newest
-- failures, from indexes rather than a scan of the whole history.
create index enhancement_history_received on enhancement_history (received_at) include (status, processing_ms);
create index enhancement_history_newest_failures on enhancement_history (failed_at desc)
  where status in ('failed', 'failed_budget');
-- The history page's search by ticket id across tenants.
create index enhancement_history_ticket_any on enhancement_history (ticket_id);
