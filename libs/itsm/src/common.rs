//! What every tool's client shares: its errors, sorted by what to do about
//! them; one request sent and its answer classified; the ticket and the
//! resolved tickets it reads; the pace of an import.

use std::time::Duration;

use aia_events::Priority;
use aia_telemetry::http::TracedSend as _;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Why a call to a help-desk tool failed, sorted by what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ItsmError {
    /// May succeed later: timeouts, connection errors, 429, 5xx.
    #[error("{reason}")]
    Transient {
        reason: String,
        http_status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// Will fail again until someone fixes the cause (credentials, ticket).
    #[error("{reason}")]
    Permanent {
        reason: String,
        http_status: Option<u16>,
    },
}

impl ItsmError {
    /// A permanent failure that no HTTP answer caused.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent {
            reason: reason.into(),
            http_status: None,
        }
    }

    /// An answer the tool sent that cannot be read (retried: a proxy's
    /// error page, a half-written body).
    pub fn unreadable(tool: &str) -> Self {
        Self::Transient {
            reason: format!("{tool} sent an unreadable answer"),
            http_status: None,
            retry_after: None,
        }
    }
}

/// A ticket's notes could not all be read (more than we page through, or
/// a next page that is not the tool's): a search for our marker among them
/// cannot say "not there", and a note posted on that word might be a second.
pub(crate) fn notes_incomplete(tool: &str, read: usize) -> ItsmError {
    ItsmError::permanent(format!(
        "{tool} lists more notes on the ticket than could be read ({read} read); \
         whether our note is already there is unknown, so none is posted"
    ))
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A note as posted, with the id the tool gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedNote {
    pub note_id: Option<String>,
}

/// How a tool takes a note's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteFormat {
    Html,
    /// Atlassian Document Format (JSON).
    Adf,
    /// Plain text, Markdown or Jira wiki markup: the text as the tool is
    /// given it.
    Text,
}

impl NoteFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Html => "html",
            Self::Adf => "adf",
            Self::Text => "text",
        }
    }
}

/// A note rendered for a tool: the body exactly as sent (ADF as pretty
/// JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedNote {
    pub format: NoteFormat,
    pub body: String,
}

impl RenderedNote {
    pub fn html(markdown: &str) -> Self {
        Self {
            format: NoteFormat::Html,
            body: crate::render::html(markdown),
        }
    }

    pub fn text(markdown: &str) -> Self {
        Self {
            format: NoteFormat::Text,
            body: crate::render::plain_text(markdown),
        }
    }
}

/// A ticket as the tool has it now.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketSummary {
    pub subject: String,
    /// As text.
    pub description: String,
    /// The tool's own name for the ticket's state.
    pub status: Option<String>,
    pub priority: Priority,
    pub created_at: Option<DateTime<Utc>>,
    pub requester: Option<String>,
    pub tags: Vec<String>,
    /// Set when the tool counts the ticket resolved (or closed).
    pub resolution: Option<Resolution>,
}

impl TicketSummary {
    /// A ticket with only a subject and a description known.
    pub fn new(subject: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            description: description.into(),
            status: None,
            priority: Priority::Medium,
            created_at: None,
            requester: None,
            tags: Vec::new(),
            resolution: None,
        }
    }
}

/// How a ticket was resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// As text; empty when the tool recorded none.
    pub text: String,
    pub resolved_at: DateTime<Utc>,
}

/// A resolved ticket read for a history import.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedTicket {
    pub id: String,
    pub subject: String,
    pub description: String,
    pub resolution: String,
    pub priority: Priority,
    pub resolved_at: DateTime<Utc>,
    pub tags: Vec<String>,
}

/// One page of a tool's resolved tickets.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPage {
    pub tickets: Vec<ResolvedTicket>,
    /// Where the next page begins (the tool's own cursor); `None` after
    /// the last.
    pub next: Option<String>,
    /// How many there are in all, when the tool says.
    pub total: Option<u64>,
}

/// Which resolved tickets an import reads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ImportWindow {
    /// Resolved at or after.
    pub since: Option<DateTime<Utc>>,
    /// Resolved before.
    pub until: Option<DateTime<Utc>>,
}

impl ImportWindow {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.since.is_none_or(|since| at >= since) && self.until.is_none_or(|until| at < until)
    }

    /// The bounds to put in a query that a tool reads in its user's time
    /// zone (Jira's JQL, ServiceNow's encoded queries take a date without
    /// an offset): wide enough for any zone, UTC−12 to UTC+14, so that no
    /// ticket of the window is left out whatever the account's zone. The
    /// page is then cut to the window exactly by [`Self::contains`].
    pub fn in_any_zone(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        // "Since T" read in zone +o is the instant T − o: at most `since`
        // for every o ≥ −12 h when T = since − 12 h. "Until T" is at least
        // `until` for every o ≤ +14 h when T = until + 14 h.
        (
            self.since.map(|since| since - chrono::Duration::hours(12)),
            self.until.map(|until| until + chrono::Duration::hours(14)),
        )
    }
}

/// The pace of an import's requests to a tool: at most one per interval,
/// however many a page takes.
#[derive(Debug)]
pub struct Pace {
    interval: tokio::sync::Mutex<tokio::time::Interval>,
}

impl Pace {
    pub fn per_second(requests: u32) -> Self {
        let mut interval =
            tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(requests.max(1))));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            interval: tokio::sync::Mutex::new(interval),
        }
    }

    /// Waits for the next request's turn.
    pub async fn wait(&self) {
        self.interval.lock().await.tick().await;
    }
}

/// Sorts an HTTP answer into success, transient or permanent failure.
pub(crate) fn classify(
    tool: &str,
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
) -> Result<(), ItsmError> {
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    let reason = match code {
        401 => format!("{tool} rejected the API key"),
        403 => format!("{tool} refused access to the ticket"),
        404 => format!("{tool} does not know the ticket"),
        // Zendesk answers 409 to an update racing another (its triggers
        // run on a new ticket just as our note arrives): tried again.
        409 => format!("{tool} reported a conflicting update of the ticket"),
        429 => format!("{tool} is rate-limiting us"),
        301..=303 => format!(
            "{tool} redirects (HTTP {code}); set its base URL to the address it redirects to"
        ),
        _ => format!("{tool} answered HTTP {code}"),
    };
    if matches!(code, 408 | 409 | 429) || status.is_server_error() {
        Err(ItsmError::Transient {
            reason,
            http_status: Some(code),
            retry_after,
        })
    } else {
        Err(ItsmError::Permanent {
            reason,
            http_status: Some(code),
        })
    }
}

pub(crate) fn transport_error(tool: &str, err: &reqwest::Error) -> ItsmError {
    ItsmError::Transient {
        reason: if err.is_timeout() {
            format!("{tool} did not answer in time")
        } else {
            format!("{tool} could not be reached")
        },
        http_status: None,
        retry_after: None,
    }
}

pub(crate) use aia_http::retry_after;

/// A tool's REST API at a base URL: requests built from path segments
/// (each percent-encoded whole, so an id cannot step out of its place),
/// sent, and their answers sorted into success, transient and permanent.
#[derive(Clone)]
pub(crate) struct Api {
    pub http: reqwest::Client,
    pub base: reqwest::Url,
    /// The tool's name in reasons (`"Freshservice rejected the API key"`).
    pub tool: &'static str,
    /// The peer's name in client spans.
    pub peer: &'static str,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("tool", &self.tool)
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The API of `tool` at `base_url`, which must be an http(s) URL.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        tool: &'static str,
        peer: &'static str,
    ) -> Result<Self, ConfigError> {
        let base_url = base_url.trim_end_matches('/');
        let base = reqwest::Url::parse(base_url)
            .map_err(|_| ConfigError(format!("{tool} base URL {base_url:?} is not a URL")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ConfigError(format!(
                "{tool} base URL {base_url:?} must be http or https"
            )));
        }
        Ok(Self {
            http,
            base,
            tool,
            peer,
        })
    }

    /// The base URL with `segments` appended.
    pub fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("validated as a base URL")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// Sends `request`; a failure to get an answer is an error, and any
    /// answer is the caller's to sort (see [`classify`]).
    pub async fn answer(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ItsmError> {
        request
            .send_traced(self.peer)
            .await
            .map_err(|err| transport_error(self.tool, &err))
    }

    /// Sends `request`; a failure or a non-2xx answer is an error.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ItsmError> {
        let response = self.answer(request).await?;
        classify(
            self.tool,
            response.status(),
            retry_after(response.headers()),
        )?;
        Ok(response)
    }

    /// Sends `request` and reads its JSON answer (`null` for an empty one).
    pub async fn json(&self, request: reqwest::RequestBuilder) -> Result<Value, ItsmError> {
        let response = self.send(request).await?;
        read_json(self.tool, response).await
    }
}

/// A tool's JSON answer (`null` for an empty one), read within
/// [`aia_http::answer::MAX_ANSWER_BYTES`]. One larger is refused for good —
/// asking again brings the same — and one cut off or not JSON is retried.
pub(crate) async fn read_json(tool: &str, response: reqwest::Response) -> Result<Value, ItsmError> {
    use aia_http::answer::{AnswerError, MAX_ANSWER_BYTES, bytes_within};
    let bytes = bytes_within(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|err| match err {
            AnswerError::TooLarge(max) => {
                ItsmError::permanent(format!("{tool} sent an answer larger than {max} bytes"))
            }
            _ => ItsmError::unreadable(tool),
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|_| ItsmError::unreadable(tool))
}

/// A list in a tool's answer, or an unreadable answer: a list missing is
/// never an empty one (a search for our note's marker would find nothing
/// and post it a second time).
pub(crate) fn listed<'a>(tool: &str, value: &'a Value) -> Result<&'a [Value], ItsmError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| ItsmError::unreadable(tool))
}

/// A JSON value as a string, whether the tool sent a string or a number.
pub(crate) fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The `rel="next"` URL of a `Link` header, when there is one.
///
/// Each link is `<URL>` and its parameters (RFC 8288); a URL holds no `<`
/// or `>` but may hold commas and semicolons, so links are told apart by
/// their brackets, not by the commas between them. `rel` may name several
/// relations (`rel="next last"`).
pub(crate) fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split('<').skip(1))
        .find_map(|link| {
            let (url, params) = link.split_once('>')?;
            let next = params.split(';').skip(1).any(|param| {
                let Some((name, value)) = param.split_once('=') else {
                    return false;
                };
                name.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_end_matches(',')
                        .trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            });
            next.then(|| url.trim().to_owned())
        })
}

/// A numeric id, or a permanent error naming the tool.
pub(crate) fn numeric_id(tool: &str, ticket: &aia_events::TicketId) -> Result<u64, ItsmError> {
    ticket.as_str().parse().map_err(|_| {
        ItsmError::permanent(format!(
            "{tool} ticket ids are numbers, not {:?}",
            ticket.as_str()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_are_sorted_into_retry_and_give_up() {
        let classify = |code: u16| {
            classify(
                "ServiceDesk Plus",
                reqwest::StatusCode::from_u16(code).unwrap(),
                Some(Duration::from_secs(7)),
            )
        };
        assert!(classify(201).is_ok());
        for code in [429, 500, 502, 503, 504, 408, 409] {
            assert!(
                matches!(classify(code), Err(ItsmError::Transient { .. })),
                "{code}"
            );
        }
        assert!(
            matches!(classify(429), Err(ItsmError::Transient { retry_after: Some(wait), .. }) if wait == Duration::from_secs(7))
        );
        for (code, reason) in [
            (400, "ServiceDesk Plus answered HTTP 400"),
            (401, "ServiceDesk Plus rejected the API key"),
            (403, "ServiceDesk Plus refused access to the ticket"),
            (404, "ServiceDesk Plus does not know the ticket"),
            (
                302,
                "ServiceDesk Plus redirects (HTTP 302); set its base URL to the address it redirects to",
            ),
        ] {
            match classify(code) {
                Err(ItsmError::Permanent {
                    reason: given,
                    http_status,
                }) => {
                    assert_eq!((given.as_str(), http_status), (reason, Some(code)));
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_next_link_is_found_among_others() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            r#"<https://x.example/a?p=1>;rel="first",<https://x.example/a?offset=-1>;rel="prev",<https://x.example/a?p=3>; rel="next""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://x.example/a?p=3")
        );
        headers.insert(
            reqwest::header::LINK,
            r#"<https://x.example/a?p=1>;rel="first""#.parse().unwrap(),
        );
        assert_eq!(next_link(&headers), None);
    }

    #[test]
    fn a_next_link_with_commas_or_odd_brackets_is_read_whole_or_not_at_all() {
        let link = |value: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::LINK, value.parse().unwrap());
            next_link(&headers)
        };
        assert_eq!(
            link(r#"<https://x.example/a?ids=1,2&p=2>; rel="next""#).as_deref(),
            Some("https://x.example/a?ids=1,2&p=2")
        );
        assert_eq!(
            link(r#"<https://x.example/a?p=9>; rel="last next""#).as_deref(),
            Some("https://x.example/a?p=9")
        );
        // A `>` before any `<` once took a slice backwards, and panicked.
        assert_eq!(link(r#"> <https://x.example; rel="next""#), None);
        assert_eq!(link(r#"https://x.example/a>; rel="next""#), None);
    }

    #[test]
    fn an_import_window_is_half_open() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let window = ImportWindow {
            since: Some(at("2026-01-01T00:00:00Z")),
            until: Some(at("2026-02-01T00:00:00Z")),
        };
        assert!(window.contains(at("2026-01-01T00:00:00Z")));
        assert!(!window.contains(at("2026-02-01T00:00:00Z")));
        assert!(ImportWindow::default().contains(at("1999-01-01T00:00:00Z")));
    }
}
