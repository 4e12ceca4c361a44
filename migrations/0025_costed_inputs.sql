-- The paid LLM calls a run's cost already counts, by kind (query
-- rewrites, notes), each by its input event and by its own event: the
-- projector counts a call's spend once, not once per status move, so a
-- re-driven or replayed run's new calls reach the run's cost and the
-- day's counters, while a redelivered output or an operator's copy of a
-- counted event adds nothing. Rows projected before these columns match a
-- rebuild again after `aiagents rebuild`.
alter table enhancement_history
  add column costed_rewrites uuid[] not null default '{}',
  add column costed_notes uuid[] not null default '{}';
