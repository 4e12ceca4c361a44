-- Each dead letter is re-driven once. The run stays listed as failed until
-- its re-drive completes, so a double click, two operators or "re-drive
-- all" after a single re-drive could publish its input twice while the
-- first was in flight: two LLM calls, and two write-backs racing. A
-- re-drive now records the failure it answers (the run and the input that
-- failed) first; a second finds it recorded and is refused. A run that
-- fails again fails on another input (the re-driven copy), so it can be
-- re-driven again.
create table dead_letter_redrives (
  tenant_id      text not null,
  correlation_id uuid not null,
  input_event_id uuid not null,
  redriven_at    timestamptz not null default now(),
  primary key (tenant_id, correlation_id, input_event_id)
);
grant select, insert, delete on dead_letter_redrives to aiagents_admin;
