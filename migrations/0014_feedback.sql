-- Technicians' ratings feed back into similar-ticket ranking: the rated
-- runs of a tenant are read by (tenant, rating time).
create index enhancement_history_rated on enhancement_history (tenant_id, rated_at)
  where rated_at is not null;
