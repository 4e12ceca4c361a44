-- The inputs whose paid LLM calls a run's cost already counts: the
-- projector counts a call's spend once per input event (its causation),
-- not once per status move, so a re-driven or replayed run's new calls
-- reach the run's cost and the day's counters, and a redelivered event
-- adds nothing.
alter table enhancement_history add column costed_inputs uuid[] not null default '{}';
