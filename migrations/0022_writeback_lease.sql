-- The write-back ledger's claim becomes a lease. Two deliveries of one run
-- can overlap (a redelivery while the first still works, a re-drive while
-- the original is in flight); each found the run `posting`, searched the
-- ticket for the note's marker before the other's note had landed, and
-- posted — two notes. Now the claim names its holder and how long it
-- holds: while a lease is held, another delivery of the run waits it out
-- instead of searching and posting.
alter table writeback_ledger
  add column lease uuid,
  add column claimed_until timestamptz;
