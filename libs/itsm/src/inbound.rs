//! What a help-desk webhook becomes once parsed: a new or changed ticket,
//! or a resolved one, in the pipeline's own terms. Parsing never trusts a
//! field it has not checked; every error names the field.

use aia_events::{ItsmKind, TicketChange, TicketId, TicketReceived, TicketResolved};
use chrono::{DateTime, Utc};

use crate::TicketSummary;

/// Upper bound on a description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Upper bound on a subject, resolution or other free text, in characters.
pub const MAX_TEXT_CHARS: usize = 20_000;

/// A webhook's meaning.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Received {
        ticket_id: TicketId,
        ticket: TicketReceived,
    },
    Resolved {
        ticket_id: TicketId,
        ticket: TicketResolved,
    },
    /// A delivery we understand but that needs no work (a Jira comment, a
    /// deletion): acknowledged, nothing published.
    Ignored { reason: String },
    /// A webhook that names a ticket and what happened to it but not its
    /// text (a PSA's callback, or a help desk whose body template sends
    /// only the id): the ingress reads the ticket from the tool and then
    /// [`complete`]s it.
    Mention {
        ticket_id: TicketId,
        change: Mentioned,
    },
}

/// What a webhook said happened to the ticket it mentions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mentioned {
    Created,
    Updated,
    Resolved,
    /// Whatever the ticket's state says: resolved if the tool counts it
    /// resolved, else new or changed.
    Unknown,
}

/// A mention made whole with the ticket as the tool has it now (`delivery_id`
/// is filled in by the ingress). A ticket said to be resolved that the tool
/// does not count resolved is an update. An update of a ticket the tool
/// counts resolved is its resolution: most tools send a resolution as an
/// update (Autotask's callout names the status only when it is subscribed
/// to), and a comment on a closed ticket is no new problem to enhance. Only
/// a ticket said to be created is taken as new whatever its state.
pub fn complete(
    kind: ItsmKind,
    ticket_id: TicketId,
    change: Mentioned,
    ticket: TicketSummary,
    now: DateTime<Utc>,
) -> Result<Inbound, InboundError> {
    check_text("subject", &ticket.subject, MAX_TEXT_CHARS)?;
    let description: String = ticket
        .description
        .chars()
        .take(MAX_DESCRIPTION_CHARS)
        .collect();
    let resolved = match (change, &ticket.resolution) {
        (Mentioned::Resolved | Mentioned::Updated | Mentioned::Unknown, Some(resolution)) => {
            Some(resolution.clone())
        }
        _ => None,
    };
    if let Some(resolution) = resolved {
        check_text("resolution", &resolution.text, MAX_TEXT_CHARS)?;
        return Ok(Inbound::Resolved {
            ticket_id,
            ticket: TicketResolved {
                source: kind,
                subject: ticket.subject,
                description,
                resolution: resolution.text,
                priority: ticket.priority,
                tags: ticket.tags,
                resolved_at: resolution.resolved_at,
                // Decided by the ingress with the tenant's settings.
                language: None,
            },
        });
    }
    if description.trim().is_empty() && ticket.subject.trim().is_empty() {
        return Err(InboundError::value(
            "ticket",
            "the help desk holds neither a subject nor a description for it",
        ));
    }
    let change = match change {
        Mentioned::Created => TicketChange::Created,
        Mentioned::Updated | Mentioned::Resolved => TicketChange::Updated,
        // Told nothing, a ticket created in the last day is taken as new.
        Mentioned::Unknown => match ticket.created_at {
            Some(created) if now - created <= chrono::Duration::hours(24) => TicketChange::Created,
            _ => TicketChange::Updated,
        },
    };
    Ok(Inbound::Received {
        ticket_id,
        ticket: TicketReceived {
            source: kind,
            change,
            subject: Some(ticket.subject).filter(|subject| !subject.trim().is_empty()),
            description,
            priority: ticket.priority,
            requester: ticket.requester,
            created_at: ticket.created_at.unwrap_or(now),
            delivery_id: String::new(),
        },
    })
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    /// Not JSON, or a field is missing or of the wrong type: HTTP 400.
    #[error("{0}")]
    Malformed(String),
    /// A field is well-formed but its value is not acceptable: HTTP 422.
    #[error("{0}")]
    Invalid(String),
    /// A signed timestamp is outside the accepted window: HTTP 401.
    #[error("{0}")]
    Stale(String),
}

impl InboundError {
    pub fn field(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::Malformed(format!("{field}: {problem}"))
    }

    pub fn value(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::Invalid(format!("{field}: {problem}"))
    }
}

/// Text a ticket may carry: bounded, and without NUL characters, which
/// PostgreSQL cannot store.
pub fn check_text(field: &str, text: &str, max_chars: usize) -> Result<(), InboundError> {
    if text.contains('\0') {
        return Err(InboundError::value(
            field,
            "must not contain NUL characters",
        ));
    }
    if text.chars().count() > max_chars {
        return Err(InboundError::value(
            field,
            format!("is longer than {max_chars} characters"),
        ));
    }
    Ok(())
}

/// A description as a tool's own webhook sends it, cut to
/// [`MAX_DESCRIPTION_CHARS`] rather than refused: the tools do not retry a
/// refused delivery, so a pasted log would leave the ticket without a note,
/// while its first 10,000 characters say what the problem is. A NUL is
/// still refused. (The original's own ServiceDesk Plus body keeps its
/// contract: longer is refused.)
pub fn cut_description(field: &str, text: String) -> Result<String, InboundError> {
    check_text(field, &text, usize::MAX)?;
    Ok(match text.char_indices().nth(MAX_DESCRIPTION_CHARS) {
        Some((end, _)) => text[..end].to_owned(),
        None => text,
    })
}

/// Maps a JSON parse error to a 400 that names what serde found wrong.
pub fn json_error(err: &serde_json::Error) -> InboundError {
    let message = match err.classify() {
        serde_json::error::Category::Data => format!("invalid payload: {err}"),
        serde_json::error::Category::Eof => "the body ends in the middle of the JSON".to_owned(),
        _ => format!("malformed JSON: {err}"),
    };
    InboundError::Malformed(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resolution;

    fn closed() -> TicketSummary {
        TicketSummary {
            resolution: Some(Resolution {
                text: "Replaced the toner".into(),
                resolved_at: Utc::now(),
            }),
            ..TicketSummary::new("Printer", "It streaks")
        }
    }

    fn is_resolved(change: Mentioned, ticket: TicketSummary) -> bool {
        let id = TicketId::parse("7").unwrap();
        match complete(ItsmKind::Autotask, id, change, ticket, Utc::now()).unwrap() {
            Inbound::Resolved { .. } => true,
            Inbound::Received { .. } => false,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_update_of_a_ticket_the_tool_counts_resolved_is_its_resolution() {
        // Autotask's callout names the status only when subscribed to it;
        // a comment on a closed ticket is no new problem either.
        assert!(is_resolved(Mentioned::Updated, closed()));
        assert!(is_resolved(Mentioned::Unknown, closed()));
        assert!(is_resolved(Mentioned::Resolved, closed()));
        // Said to be created, it is new whatever its state; said to be
        // resolved while the tool says open, an update.
        assert!(!is_resolved(Mentioned::Created, closed()));
        let open = TicketSummary::new("Printer", "It streaks");
        assert!(!is_resolved(Mentioned::Resolved, open.clone()));
        assert!(!is_resolved(Mentioned::Updated, open));
    }
}
