//! The event envelope: identity, tenancy, causality and a typed payload.
//!
//! On the wire an event is one JSON object with the envelope fields and a
//! `payload` object whose shape is fixed by `event_type` and
//! `schema_version`. Decoding dispatches on both, so an old version can be
//! upcast to today's type in one place ([`Event::from_json`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{TenantId, TicketId};
use crate::incident::{IncidentDetected, IncidentUpdated};
use crate::payloads::*;

/// An immutable fact about one ticket of one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: Uuid,
    pub tenant_id: TenantId,
    pub ticket_id: TicketId,
    pub occurred_at: DateTime<Utc>,
    /// One per ticket run: every event of one enhancement shares it.
    pub correlation_id: Uuid,
    /// The event that caused this one; `None` for events that start a run.
    pub causation_id: Option<Uuid>,
    pub payload: Payload,
}

/// The typed payload; its variant decides the `event_type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    TicketReceived(TicketReceived),
    TicketResolved(TicketResolved),
    ContextGathered(ContextGathered),
    EnhancementGenerated(EnhancementGenerated),
    EnhancementFailed(EnhancementFailed),
    WritebackCompleted(WritebackCompleted),
    WritebackFailed(WritebackFailed),
    EnhancementRated(EnhancementRated),
    BudgetThresholdReached(BudgetThresholdReached),
    IncidentDetected(IncidentDetected),
    IncidentUpdated(IncidentUpdated),
}

/// A payload type picked out of an event's [`Payload`]: what a consumer
/// names as its input.
pub trait FromPayload: Sized {
    /// The payload when it is of this type.
    fn from_payload(payload: &Payload) -> Option<&Self>;
}

macro_rules! from_payload {
    ($($variant:ident),* $(,)?) => {$(
        impl FromPayload for $variant {
            fn from_payload(payload: &Payload) -> Option<&Self> {
                match payload {
                    Payload::$variant(inner) => Some(inner),
                    _ => None,
                }
            }
        }
    )*};
}

from_payload!(
    TicketReceived,
    TicketResolved,
    ContextGathered,
    EnhancementGenerated,
    EnhancementFailed,
    WritebackCompleted,
    WritebackFailed,
    EnhancementRated,
    BudgetThresholdReached,
    IncidentDetected,
    IncidentUpdated,
);

/// Every payload, for a consumer that takes more than one type (the
/// incident correlator) and picks its own out of it.
impl FromPayload for Payload {
    fn from_payload(payload: &Payload) -> Option<&Self> {
        Some(payload)
    }
}

/// Schema versions that are no longer written but are still read (and
/// upcast), with a schema file each.
pub const OLDER_VERSIONS: &[(&str, u16)] = &[
    ("enhancement.generated", 1),
    ("enhancement.generated", 2),
    ("context.gathered", 1),
    ("context.gathered", 2),
    ("context.gathered", 3),
    ("context.gathered", 4),
    ("writeback.completed", 1),
    ("ticket.resolved", 1),
];

/// Every event type with its current schema version.
pub const EVENT_TYPES: &[(&str, u16)] = &[
    ("ticket.received", 1),
    ("ticket.resolved", 2),
    ("context.gathered", 5),
    ("enhancement.generated", 3),
    ("enhancement.failed", 1),
    ("writeback.completed", 2),
    ("writeback.failed", 1),
    ("enhancement.rated", 1),
    ("budget.threshold_reached", 1),
    ("incident.detected", 1),
    ("incident.updated", 1),
];

impl Payload {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::TicketReceived(_) => "ticket.received",
            Self::TicketResolved(_) => "ticket.resolved",
            Self::ContextGathered(_) => "context.gathered",
            Self::EnhancementGenerated(_) => "enhancement.generated",
            Self::EnhancementFailed(_) => "enhancement.failed",
            Self::WritebackCompleted(_) => "writeback.completed",
            Self::WritebackFailed(_) => "writeback.failed",
            Self::EnhancementRated(_) => "enhancement.rated",
            Self::BudgetThresholdReached(_) => "budget.threshold_reached",
            Self::IncidentDetected(_) => "incident.detected",
            Self::IncidentUpdated(_) => "incident.updated",
        }
    }

    /// The schema version this code writes for the payload's type.
    pub fn schema_version(&self) -> u16 {
        match self {
            Self::ContextGathered(_) => 5,
            Self::EnhancementGenerated(_) => 3,
            Self::TicketResolved(_) | Self::WritebackCompleted(_) => 2,
            _ => 1,
        }
    }

    fn to_value(&self) -> serde_json::Result<serde_json::Value> {
        match self {
            Self::TicketReceived(p) => serde_json::to_value(p),
            Self::TicketResolved(p) => serde_json::to_value(p),
            Self::ContextGathered(p) => serde_json::to_value(p),
            Self::EnhancementGenerated(p) => serde_json::to_value(p),
            Self::EnhancementFailed(p) => serde_json::to_value(p),
            Self::WritebackCompleted(p) => serde_json::to_value(p),
            Self::WritebackFailed(p) => serde_json::to_value(p),
            Self::EnhancementRated(p) => serde_json::to_value(p),
            Self::BudgetThresholdReached(p) => serde_json::to_value(p),
            Self::IncidentDetected(p) => serde_json::to_value(p),
            Self::IncidentUpdated(p) => serde_json::to_value(p),
        }
    }
}

/// Why bytes could not be read as an event. None of these is retryable:
/// the same bytes will fail the same way.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("event is not valid JSON or lacks envelope fields: {0}")]
    Envelope(serde_json::Error),
    #[error("unknown event type {event_type:?} version {schema_version}")]
    UnknownType {
        event_type: String,
        schema_version: u16,
    },
    #[error("payload of {event_type} v{schema_version} is invalid: {source}")]
    Payload {
        event_type: String,
        schema_version: u16,
        source: serde_json::Error,
    },
}

/// The newest version of each event type this build reads (see
/// `decode_payload`): a version above it is a newer build's, one below it
/// that is not read (0, say) is no build's.
const LATEST_VERSIONS: [(&str, u16); 11] = [
    ("ticket.received", 1),
    ("ticket.resolved", 2),
    ("context.gathered", 5),
    ("enhancement.generated", 3),
    ("enhancement.failed", 1),
    ("writeback.completed", 2),
    ("writeback.failed", 1),
    ("enhancement.rated", 1),
    ("budget.threshold_reached", 1),
    ("incident.detected", 1),
    ("incident.updated", 1),
];

impl DecodeError {
    /// The envelope is sound but names a type or version this build does
    /// not know: every older version is read (and upcast), so it was
    /// written by a newer build — during a rolling upgrade, before this
    /// instance is replaced. Such an event is left for an upgraded reader,
    /// never dropped; only bytes no build can read are.
    pub fn is_from_a_newer_build(&self) -> bool {
        match self {
            Self::UnknownType {
                event_type,
                schema_version,
            } => LATEST_VERSIONS
                .iter()
                .find(|(known, _)| known == event_type)
                .is_none_or(|(_, latest)| schema_version > latest),
            _ => false,
        }
    }
}

#[derive(Serialize)]
struct Wire {
    event_id: Uuid,
    event_type: String,
    schema_version: u16,
    tenant_id: TenantId,
    ticket_id: TicketId,
    occurred_at: String,
    correlation_id: Uuid,
    causation_id: Option<Uuid>,
    payload: serde_json::Value,
}

/// The envelope as read: the payload stays raw until its type is known, so
/// it is parsed once, straight into its type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIn<'a> {
    event_id: Uuid,
    event_type: String,
    schema_version: u16,
    tenant_id: TenantId,
    ticket_id: TicketId,
    occurred_at: String,
    correlation_id: Uuid,
    causation_id: Option<Uuid>,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
}

impl Event {
    /// A new event caused by `cause`, in the same run and for the same ticket.
    pub fn caused_by(cause: &Event, payload: Payload) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            tenant_id: cause.tenant_id.clone(),
            ticket_id: cause.ticket_id.clone(),
            occurred_at: Utc::now(),
            correlation_id: cause.correlation_id,
            causation_id: Some(cause.event_id),
            payload,
        }
    }

    /// A copy of `input` to be handled again (an operator's re-drive, a
    /// paused tenant's event published on resume): the same ticket, run
    /// and payload, a new id and time, caused by `input`.
    pub fn republished(input: &Event) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            occurred_at: Utc::now(),
            causation_id: Some(input.event_id),
            ..input.clone()
        }
    }

    /// Like [`Event::republished`], in a run of its own: write-back treats
    /// it as a new ticket run and posts a new note.
    pub fn republished_in_new_run(input: &Event) -> Self {
        let copy = Self::republished(input);
        Self {
            correlation_id: copy.event_id,
            ..copy
        }
    }

    /// A new event that starts a run of its own.
    pub fn new_run(tenant_id: TenantId, ticket_id: TicketId, payload: Payload) -> Self {
        let event_id = Uuid::now_v7();
        Self {
            event_id,
            tenant_id,
            ticket_id,
            occurred_at: Utc::now(),
            correlation_id: event_id,
            causation_id: None,
            payload,
        }
    }

    pub fn event_type(&self) -> &'static str {
        self.payload.event_type()
    }

    pub fn to_json(&self) -> Vec<u8> {
        let wire = Wire {
            event_id: self.event_id,
            event_type: self.event_type().to_owned(),
            schema_version: self.payload.schema_version(),
            tenant_id: self.tenant_id.clone(),
            ticket_id: self.ticket_id.clone(),
            occurred_at: self
                .occurred_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            payload: self
                .payload
                .to_value()
                .expect("payload types serialise infallibly"),
        };
        serde_json::to_vec(&wire).expect("event serialises infallibly")
    }

    /// Reads an event of any known type and version, upcasting old versions.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        let wire: WireIn<'_> = serde_json::from_slice(bytes).map_err(DecodeError::Envelope)?;
        let occurred_at = DateTime::parse_from_rfc3339(&wire.occurred_at)
            .map_err(|err| DecodeError::Envelope(serde::de::Error::custom(err)))?
            .with_timezone(&Utc);
        let payload = decode_payload(&wire.event_type, wire.schema_version, wire.payload)?;
        Ok(Self {
            event_id: wire.event_id,
            tenant_id: wire.tenant_id,
            ticket_id: wire.ticket_id,
            occurred_at,
            correlation_id: wire.correlation_id,
            causation_id: wire.causation_id,
            payload,
        })
    }
}

fn decode_payload(
    event_type: &str,
    schema_version: u16,
    value: &serde_json::value::RawValue,
) -> Result<Payload, DecodeError> {
    fn parse<T: serde::de::DeserializeOwned>(
        event_type: &str,
        schema_version: u16,
        value: &serde_json::value::RawValue,
    ) -> Result<T, DecodeError> {
        serde_json::from_str(value.get()).map_err(|source| DecodeError::Payload {
            event_type: event_type.to_owned(),
            schema_version,
            source,
        })
    }
    // One arm per (type, version). A v2 adds an arm that reads v1 and upcasts.
    let payload = match (event_type, schema_version) {
        ("ticket.received", 1) => Payload::TicketReceived(parse(event_type, 1, value)?),
        // v1 lacked `language`; it reads as None.
        ("ticket.resolved", 1 | 2) => {
            Payload::TicketResolved(parse(event_type, schema_version, value)?)
        }
        // v1 lacked each similar ticket's `matched_by`, v2 `query_rewrite`
        // (both read as None), v3 `related_open` (reads as empty), v4
        // `language` (reads as None).
        ("context.gathered", 1..=5) => {
            Payload::ContextGathered(parse(event_type, schema_version, value)?)
        }
        // v1 lacked `budget_exceeded` (reads as false), v2 `note_language`
        // (reads as None).
        ("enhancement.generated", 1..=3) => {
            Payload::EnhancementGenerated(parse(event_type, schema_version, value)?)
        }
        ("enhancement.failed", 1) => Payload::EnhancementFailed(parse(event_type, 1, value)?),
        // v1 lacked `posted_markdown`; it reads as None.
        ("writeback.completed", 1 | 2) => {
            Payload::WritebackCompleted(parse(event_type, schema_version, value)?)
        }
        ("writeback.failed", 1) => Payload::WritebackFailed(parse(event_type, 1, value)?),
        ("enhancement.rated", 1) => Payload::EnhancementRated(parse(event_type, 1, value)?),
        ("budget.threshold_reached", 1) => {
            Payload::BudgetThresholdReached(parse(event_type, 1, value)?)
        }
        ("incident.detected", 1) => Payload::IncidentDetected(parse(event_type, 1, value)?),
        ("incident.updated", 1) => Payload::IncidentUpdated(parse(event_type, 1, value)?),
        _ => {
            return Err(DecodeError::UnknownType {
                event_type: event_type.to_owned(),
                schema_version,
            });
        }
    };
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_version(event_type: &str, version: u16) -> DecodeError {
        let sample = crate::examples::all()
            .into_iter()
            .find(|event| event.event_type() == event_type)
            .expect("a sample of every type");
        let mut wire: serde_json::Value = serde_json::from_slice(&sample.to_json()).unwrap();
        wire["schema_version"] = version.into();
        Event::from_json(&serde_json::to_vec(&wire).unwrap()).expect_err("not read")
    }

    /// The table of newest versions is the one events are written in: a
    /// type bumped without it would call its own next version "newer".
    #[test]
    fn every_type_is_written_in_the_newest_version_the_table_names() {
        for event in crate::examples::all() {
            let wire: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
            let latest = LATEST_VERSIONS
                .iter()
                .find(|(known, _)| *known == event.event_type())
                .map(|(_, latest)| *latest);
            assert_eq!(
                Some(wire["schema_version"].as_u64().unwrap()),
                latest.map(u64::from),
                "{}",
                event.event_type()
            );
        }
    }

    #[test]
    fn only_a_version_above_the_newest_or_an_unknown_type_is_a_newer_builds() {
        assert!(with_version("context.gathered", 6).is_from_a_newer_build());
        assert!(!with_version("context.gathered", 0).is_from_a_newer_build());
        let unknown_type = DecodeError::UnknownType {
            event_type: "ticket.merged".into(),
            schema_version: 1,
        };
        assert!(unknown_type.is_from_a_newer_build());
        let garbage = Event::from_json(b"{not json").unwrap_err();
        assert!(!garbage.is_from_a_newer_build());
    }
}
