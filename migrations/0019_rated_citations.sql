-- Technicians' ratings count for a new ticket only through rated runs
-- that cited tickets among its nearest. Reading every rated run of a
-- tenant for every ticket grows with the tenant's ratings (60 ms for
-- 20,000 rated runs, measured); this index finds the runs whose context
-- names one of the new ticket's nearest tickets directly (3 ms).
create index enhancement_history_rated_citations on enhancement_history
  using gin ((context->'similar_tickets') jsonb_path_ops)
  where rated_at is not null;
