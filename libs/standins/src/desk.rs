//! What every help-desk stand-in keeps, whatever its API's shape: the
//! tickets it knows, the notes posted to them, the one credential it accepts
//! now (replaceable, as an admin rotating a key replaces it) and how many
//! requests it refused. Each tool's module translates its own API to and
//! from these.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// A ticket in the tool-neutral form each stand-in renders in its own shape.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: u64,
    pub subject: String,
    pub description: String,
    /// `low`, `medium`, `high` or `critical`; each tool maps it to its own
    /// scale.
    pub priority: String,
    pub requester: String,
    pub created_at: DateTime<Utc>,
    /// The resolution text and when the ticket was closed with it.
    pub resolution: Option<(String, DateTime<Utc>)>,
}

impl Ticket {
    /// An open ticket created an hour ago.
    pub fn open(id: u64, subject: &str, description: &str) -> Self {
        Self {
            id,
            subject: subject.into(),
            description: description.into(),
            priority: "high".into(),
            requester: "Dana Requester".into(),
            created_at: Utc::now() - Duration::hours(1),
            resolution: None,
        }
    }

    /// The same ticket, closed now with `resolution`.
    pub fn resolved(mut self, resolution: &str) -> Self {
        self.resolution = Some((resolution.into(), Utc::now()));
        self
    }

    pub fn resolved_at(mut self, at: DateTime<Utc>) -> Self {
        if let Some((_, when)) = &mut self.resolution {
            *when = at;
        }
        self
    }
}

/// A note as the stand-in stored it.
#[derive(Debug, Clone)]
pub struct Note {
    pub id: u64,
    pub ticket: u64,
    /// The body as sent: HTML or plain text, whichever the tool takes.
    pub body: String,
    /// Hidden from the requester.
    pub internal: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Desk {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    accepted: String,
    tickets: BTreeMap<u64, Ticket>,
    notes: Vec<Note>,
    next_id: u64,
    rejected: u64,
}

impl Desk {
    /// A desk that accepts `credential` (each tool decides what that is: an
    /// `Authorization` value, a key, a client secret).
    pub fn new(credential: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                accepted: credential.into(),
                tickets: BTreeMap::new(),
                notes: Vec::new(),
                next_id: 90_000,
                rejected: 0,
            })),
        }
    }

    /// Accept `credential` from now on, and nothing else.
    pub fn accept_only(&self, credential: impl Into<String>) {
        self.inner.lock().unwrap().accepted = credential.into();
    }

    /// Whether `given` is the accepted credential; a refusal is counted.
    pub fn admits(&self, given: Option<&str>) -> bool {
        let mut inner = self.inner.lock().unwrap();
        let admitted = given == Some(inner.accepted.as_str()) && !inner.accepted.is_empty();
        if !admitted {
            inner.rejected += 1;
        }
        admitted
    }

    /// Counts a request refused for its shape.
    pub fn refuse(&self) {
        self.inner.lock().unwrap().rejected += 1;
    }

    /// Requests refused for their credentials or shape.
    pub fn rejected(&self) -> u64 {
        self.inner.lock().unwrap().rejected
    }

    /// Adds or replaces a ticket.
    pub fn put(&self, ticket: Ticket) {
        self.inner.lock().unwrap().tickets.insert(ticket.id, ticket);
    }

    pub fn ticket(&self, id: u64) -> Option<Ticket> {
        self.inner.lock().unwrap().tickets.get(&id).cloned()
    }

    /// Every ticket, by id.
    pub fn tickets(&self) -> Vec<Ticket> {
        self.inner
            .lock()
            .unwrap()
            .tickets
            .values()
            .cloned()
            .collect()
    }

    /// Stores a note on a known ticket; `None` when the ticket is unknown.
    pub fn add_note(&self, ticket: u64, body: &str, internal: bool) -> Option<Note> {
        let mut inner = self.inner.lock().unwrap();
        if !inner.tickets.contains_key(&ticket) {
            return None;
        }
        inner.next_id += 1;
        let note = Note {
            id: inner.next_id,
            ticket,
            body: body.to_owned(),
            internal,
            created_at: Utc::now(),
        };
        inner.notes.push(note.clone());
        Some(note)
    }

    /// The notes posted to one ticket, oldest first.
    pub fn notes(&self, ticket: u64) -> Vec<Note> {
        self.inner
            .lock()
            .unwrap()
            .notes
            .iter()
            .filter(|note| note.ticket == ticket)
            .cloned()
            .collect()
    }

    /// Every note posted, oldest first.
    pub fn all_notes(&self) -> Vec<Note> {
        self.inner.lock().unwrap().notes.clone()
    }
}

/// `raw` as a ticket id, with or without a `.json` suffix.
pub fn id_of(raw: &str) -> Option<u64> {
    raw.strip_suffix(".json").unwrap_or(raw).parse().ok()
}

/// The `Authorization` header of a request, if readable.
pub fn authorization(headers: &axum::http::HeaderMap) -> Option<&str> {
    header(headers, "authorization")
}

pub fn header<'h>(headers: &'h axum::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}
