-- Dead letters: runs that ended failed are listed from enhancement_history;
-- these columns say how many deliveries were tried and which event the
-- failing stage had as input, so an operator can re-drive it.
alter table enhancement_history
  add column failed_attempts integer,
  add column failed_input_event_id uuid;
create index enhancement_history_failed on enhancement_history (tenant_id, failed_at desc) where status = 'failed';
