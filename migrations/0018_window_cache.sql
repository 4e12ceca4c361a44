-- The window of open tickets, read incrementally: each process that reads
-- windows (context-gatherer, incident-correlator) holds its tenants'
-- windows and, per ticket, reads only the rows written since its last
-- read, instead of the whole window (up to 1,000 rows, each with its
-- vector, for every ticket).
--
-- Each row carries the id of the transaction that last wrote it. A reader
-- that saw a snapshot whose oldest running transaction was X later reads
-- the rows with `written_xid >= X`: every version it has not seen was
-- written by a transaction that was running or not yet begun at that
-- snapshot, so its id is at least X. The ids are 64-bit (xid8): they never
-- wrap. A trigger sets the id, so no writer can forget it.

alter table open_tickets add column written_xid xid8 not null default pg_current_xact_id();

create function open_tickets_written() returns trigger
  language plpgsql
  as $$
begin
  new.written_xid := pg_current_xact_id();
  return new;
end
$$;

create trigger open_tickets_written before insert or update on open_tickets
  for each row execute function open_tickets_written();

create index open_tickets_changes on open_tickets (tenant_id, written_xid);
