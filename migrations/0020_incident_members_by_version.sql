-- A correlator decision reads, of each live incident, only the members that
-- joined after the version its held centroid is complete to
-- (incident-correlator/src/centroids.rs). Through the index on
-- (tenant_id, incident_id) that read fetched every member's row to keep
-- the few above the version; this index finds them directly, and answers
-- the members' count from the index alone. It covers what the older index
-- did, which is dropped.
create index incident_tickets_by_version
  on incident_tickets (tenant_id, incident_id, joined_version) include (ticket_id);
drop index incident_tickets_by_incident;
