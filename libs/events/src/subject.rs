//! Subject names of the ticket-event stream.
//!
//! `<prefix>.<tenant>.<ticket>.<event_type>`, for example
//! `tickets.acme.SUP-42.ticket.received`. The event type keeps its dot, so a
//! stage filters on `tickets.*.*.ticket.received` and an operator replays one
//! tenant with `tickets.acme.>`.

use crate::envelope::Event;
use crate::ids::{TenantId, TicketId};

/// The subject prefix every deployment uses unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "tickets";

/// Subject of one event.
pub fn for_event(prefix: &str, event: &Event) -> String {
    format!(
        "{prefix}.{}.{}.{}",
        event.tenant_id,
        event.ticket_id.subject_token(),
        event.event_type()
    )
}

/// Filter matching one event type across all tenants and tickets.
pub fn filter_for_type(prefix: &str, event_type: &str) -> String {
    format!("{prefix}.*.*.{event_type}")
}

/// Filter matching every event of one tenant.
pub fn filter_for_tenant(prefix: &str, tenant: &TenantId) -> String {
    format!("{prefix}.{tenant}.>")
}

/// Filter matching every event of one ticket.
pub fn filter_for_ticket(prefix: &str, tenant: &TenantId, ticket: &TicketId) -> String {
    format!("{prefix}.{tenant}.{}.>", ticket.subject_token())
}
