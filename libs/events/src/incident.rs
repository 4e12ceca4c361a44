//! Payloads of incidents: many open tickets of one tenant that look like one
//! outage, and the open tickets a new ticket looks like.
//!
//! An incident's events are published on the tenant's subjects with the
//! incident's id in the ticket's place
//! (`tickets.<tenant>.<incident>.incident.detected`), so tenant filters,
//! replay and retention cover them like every ticket's events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::TicketId;

/// The prefix of an incident's id where a ticket id stands (subjects,
/// the envelope's `ticket_id`), so the two never collide.
pub const INCIDENT_ID_PREFIX: &str = "incident-";

/// The `ticket_id` an incident's events carry: `incident-<uuid>`.
pub fn incident_subject_id(incident: Uuid) -> TicketId {
    TicketId::parse(&format!("{INCIDENT_ID_PREFIX}{incident}"))
        .expect("a prefixed uuid is a valid ticket id")
}

/// Another open ticket of the tenant, received recently, that looks like
/// the same problem (`context.gathered` v4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelatedTicket {
    pub ticket_id: TicketId,
    pub subject: Option<String>,
    pub received_at: DateTime<Utc>,
    /// Cosine similarity of the two tickets' texts; `None` when either has
    /// no vector of the tenant's model.
    pub similarity: Option<f64>,
    /// Hosts, addresses and sites both tickets name (`site:<location>`).
    pub shared_entities: Vec<String>,
}

impl RelatedTicket {
    /// Why it is listed, as a note says it.
    pub fn why(&self) -> String {
        let meaning = self
            .similarity
            .map(|cosine| format!("similar wording ({cosine:.2})"));
        let shared = (!self.shared_entities.is_empty())
            .then(|| format!("both mention {}", self.shared_entities.join(", ")));
        match (meaning, shared) {
            (Some(meaning), Some(shared)) => format!("{meaning}; {shared}"),
            (Some(one), None) | (None, Some(one)) => one,
            (None, None) => "related".into(),
        }
    }
}

/// A ticket in an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentTicket {
    pub ticket_id: TicketId,
    pub subject: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// `incident.detected`: the tenant's open tickets crossed its threshold of
/// related tickets in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentDetected {
    pub incident_id: Uuid,
    /// 1; each later change of the incident is the next version.
    pub version: u32,
    /// The tickets so far, oldest first.
    pub tickets: Vec<IncidentTicket>,
    /// Hosts, addresses and sites the detecting ticket names with one or
    /// more of the others.
    pub shared_entities: Vec<String>,
    /// One line built from the tickets (no model is asked).
    pub summary: String,
    /// The ticket whose arrival crossed the threshold.
    pub detected_by: TicketId,
    /// The threshold it crossed, as configured then.
    pub threshold: u32,
    pub window_minutes: u32,
}

/// What changed in an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentChange {
    /// Another related ticket joined it.
    TicketAdded,
    /// Someone took it (from the console).
    Acknowledged,
    /// Someone closed it (from the console).
    Closed,
    /// Every ticket in it was resolved.
    Resolved,
    /// No related ticket arrived for the tenant's quiet period.
    Quiet,
}

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    Acknowledged,
    /// Ended (resolved, closed or quiet): no ticket joins it any more.
    Ended,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Ended => "ended",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Open, Self::Acknowledged, Self::Ended]
            .into_iter()
            .find(|status| status.as_str() == raw)
    }

    /// Whether tickets still join it.
    pub fn is_live(self) -> bool {
        self != Self::Ended
    }
}

/// `incident.updated`: a change to a detected incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentUpdated {
    pub incident_id: Uuid,
    /// The incident's version after this change (2 and up).
    pub version: u32,
    pub change: IncidentChange,
    pub status: IncidentStatus,
    /// The ticket added (`ticket_added`); `None` for other changes.
    pub ticket: Option<IncidentTicket>,
    /// Who acknowledged or closed it.
    pub by: Option<String>,
    /// Tickets in the incident after the change.
    pub ticket_count: u32,
}
