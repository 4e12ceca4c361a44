//! What a help-desk webhook becomes once parsed: a new or changed ticket,
//! or a resolved one, in the pipeline's own terms. Parsing never trusts a
//! field it has not checked; every error names the field.

use aia_events::{TicketId, TicketReceived, TicketResolved};

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

/// Maps a JSON parse error to a 400 that names what serde found wrong.
pub fn json_error(err: &serde_json::Error) -> InboundError {
    let message = match err.classify() {
        serde_json::error::Category::Data => format!("invalid payload: {err}"),
        serde_json::error::Category::Eof => "the body ends in the middle of the JSON".to_owned(),
        _ => format!("malformed JSON: {err}"),
    };
    InboundError::Malformed(message)
}
