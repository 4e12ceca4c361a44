//! The event contract of the ticket pipeline: validated ids, the envelope,
//! every event type's payload, and the subjects events are published on.
//!
//! This crate does no I/O. `schemas/` at the repository root is the same
//! contract as JSON Schema; `tests/schemas.rs` keeps the two in agreement.

pub mod envelope;
pub mod examples;
pub mod ids;
pub mod incident;
pub mod language;
pub mod payloads;
pub mod subject;

pub use envelope::{DecodeError, EVENT_TYPES, Event, FromPayload, Payload};
pub use ids::{IdError, Priority, TenantId, TicketId};
pub use incident::{
    IncidentChange, IncidentDetected, IncidentStatus, IncidentTicket, IncidentUpdated,
    RelatedTicket,
};
pub use language::{DecidedBy, Language, TicketLanguage};
pub use payloads::*;
