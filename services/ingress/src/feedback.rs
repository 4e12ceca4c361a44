//! `/feedback/{tenant}/{ticket}/{run}/{token}`: technicians rate a note from
//! the links at its end. A link opens a page with the choice it names
//! already selected (`GET ?rating=up|down|1..5`, which records nothing: a
//! link checker or a mail scanner following it changes no rating); the
//! page's form records the rating (`POST`, form fields), as does a client
//! posting JSON. The token is the run's signed link token, and a link
//! expires (`AI_AGENTS_FEEDBACK_LINK_DAYS`, 30) after its run began. A
//! rating becomes an `enhancement.rated` event; the latest one of a run
//! stands, and the page says exactly what was stored.

use aia_events::{EnhancementRated, Event, Payload, TenantId, TicketId};
use aia_http::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::routes::AppState;

#[derive(Deserialize)]
pub struct LinkQuery {
    rating: String,
}

/// A rating as JSON clients send it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rating {
    stars: Option<u8>,
    thumbs_up: Option<bool>,
    comment: Option<String>,
}

/// The rating page's form.
#[derive(Deserialize)]
pub struct RatingForm {
    rating: String,
    #[serde(default)]
    comment: String,
    /// Names this form: sending it twice records one rating.
    #[serde(default)]
    submission: String,
}

type LinkPath = Path<(String, String, String, String)>;

/// A run the link is valid for.
struct Link {
    tenant_id: TenantId,
    ticket_id: TicketId,
    correlation_id: Uuid,
}

/// `up`, `down` or `1`–`5` as a rating.
fn parse_rating(raw: &str, comment: Option<String>) -> Result<Rating, ApiError> {
    match raw {
        "up" => Ok(Rating {
            stars: None,
            thumbs_up: Some(true),
            comment,
        }),
        "down" => Ok(Rating {
            stars: None,
            thumbs_up: Some(false),
            comment,
        }),
        stars => match stars.parse::<u8>() {
            Ok(stars) if (1..=5).contains(&stars) => Ok(Rating {
                stars: Some(stars),
                thumbs_up: None,
                comment,
            }),
            _ => Err(ApiError::unprocessable(
                "rating: must be up, down or 1 to 5",
            )),
        },
    }
}

/// `GET`: the link from the note opens the rating page with its choice
/// selected; nothing is recorded until the form is sent.
pub async fn click(
    State(state): State<AppState>,
    Path(path): LinkPath,
    Query(query): Query<LinkQuery>,
) -> Response {
    if let Err(err) = parse_rating(&query.rating, None) {
        return err.into_response();
    }
    if let Err(err) = check_link(&state, &path).await {
        return err.into_response();
    }
    let choice = |value: &str, label: &str| {
        let checked = if value == query.rating {
            " checked"
        } else {
            ""
        };
        format!(
            "<label><input type=\"radio\" name=\"rating\" value=\"{value}\"{checked}> {label}</label><br>"
        )
    };
    let choices = [
        choice("up", "Helpful"),
        choice("down", "Not helpful"),
        choice("5", "5 stars"),
        choice("4", "4 stars"),
        choice("3", "3 stars"),
        choice("2", "2 stars"),
        choice("1", "1 star"),
    ]
    .concat();
    let submission = Uuid::now_v7().simple().to_string();
    page(
        StatusCode::OK,
        "Rate this note",
        &format!(
            "<form method=\"post\"><fieldset><legend>Was the note on ticket {ticket} helpful?</legend>{choices}</fieldset>\
             <p><label for=\"comment\">Anything to add (optional)</label><br>\
             <textarea id=\"comment\" name=\"comment\" rows=\"4\" cols=\"60\" maxlength=\"2000\"></textarea></p>\
             <input type=\"hidden\" name=\"submission\" value=\"{submission}\">\
             <p><button type=\"submit\">Send the rating</button></p></form>",
            ticket = escape(&path.1),
        ),
    )
}

/// `POST`: the rating page's form, or a client's JSON.
pub async fn submit(
    State(state): State<AppState>,
    Path(path): LinkPath,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let form: RatingForm = match serde_urlencoded::from_bytes(&body) {
            Ok(form) => form,
            Err(err) => return ApiError::bad_request(err.to_string()).into_response(),
        };
        let comment = Some(form.comment).filter(|comment| !comment.trim().is_empty());
        let rating = match parse_rating(&form.rating, comment) {
            Ok(rating) => rating,
            Err(err) => return err.into_response(),
        };
        let said = describe(&rating);
        let submission = Some(form.submission).filter(|id| is_submission_id(id));
        return match record(&state, &path, rating, submission).await {
            Ok(Recorded::New) => page(
                StatusCode::OK,
                "Thank you",
                &format!("<p>Recorded: {said}. You can close this tab.</p>"),
            ),
            Ok(Recorded::AlreadyRecorded) => page(
                StatusCode::OK,
                "Already recorded",
                &format!(
                    "<p>This form was already sent; the rating stands: {said}. You can close this tab.</p>"
                ),
            ),
            Err(err) => err.into_response(),
        };
    }
    let rating: Rating = match serde_json::from_slice(&body) {
        Ok(rating) => rating,
        Err(err) => return ApiError::bad_request(err.to_string()).into_response(),
    };
    match record(&state, &path, rating, None).await {
        Ok(_) => (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response(),
        Err(err) => err.into_response(),
    }
}

/// What a rating says, in the words the page shows.
fn describe(rating: &Rating) -> String {
    let mut parts = Vec::new();
    match rating.thumbs_up {
        Some(true) => parts.push("helpful".to_owned()),
        Some(false) => parts.push("not helpful".to_owned()),
        None => {}
    }
    if let Some(stars) = rating.stars {
        parts.push(format!("{stars} of 5 stars"));
    }
    if rating.comment.is_some() {
        parts.push("with your comment".to_owned());
    }
    parts.join(", ")
}

fn is_submission_id(id: &str) -> bool {
    (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The run a link is for, if its token is the run's and it has not expired.
async fn check_link(
    state: &AppState,
    (tenant, ticket, run, token): &(String, String, String, String),
) -> Result<Link, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_link",
            "this feedback link is not valid",
        )
    };
    let tenant_id = TenantId::parse(tenant).map_err(|_| not_found())?;
    let ticket_id = TicketId::parse(ticket).map_err(|_| not_found())?;
    let correlation_id = Uuid::parse_str(run).map_err(|_| not_found())?;
    if !aia_store::feedback::verify(
        state.tenants.keyring(),
        tenant,
        ticket,
        correlation_id,
        token,
    ) {
        return Err(not_found());
    }
    // A run's id is a UUIDv7: it says when the run, and its note, began.
    let started = correlation_id
        .get_timestamp()
        .map(|timestamp| timestamp.to_unix().0)
        .and_then(|secs| i64::try_from(secs).ok())
        .unwrap_or(0);
    let age_days = (Utc::now().timestamp() - started) / 86_400;
    if age_days >= i64::from(state.feedback_link_days) {
        return Err(ApiError::new(
            StatusCode::GONE,
            "expired_link",
            "this feedback link has expired",
        ));
    }
    let active = state
        .tenants
        .get(&tenant_id)
        .await
        .map_err(|_| ApiError::unavailable("the tenant store is unavailable; retry later"))?
        .is_some_and(|tenant| tenant.active);
    if !active {
        return Err(not_found());
    }
    Ok(Link {
        tenant_id,
        ticket_id,
        correlation_id,
    })
}

/// Ratings one note takes a minute.
pub const RATINGS_PER_MINUTE: u32 = 5;

enum Recorded {
    New,
    /// The same form was sent before: the stream kept the first.
    AlreadyRecorded,
}

async fn record(
    state: &AppState,
    path: &(String, String, String, String),
    rating: Rating,
    submission: Option<String>,
) -> Result<Recorded, ApiError> {
    let link = check_link(state, path).await?;
    if rating.stars.is_none() && rating.thumbs_up.is_none() {
        return Err(ApiError::unprocessable(
            "give stars (1 to 5), thumbs_up, or both",
        ));
    }
    if rating.stars.is_some_and(|stars| !(1..=5).contains(&stars)) {
        return Err(ApiError::unprocessable("stars: must be 1 to 5"));
    }
    if let Some(comment) = &rating.comment {
        aia_itsm::inbound::check_text("comment", comment, 2000)
            .map_err(|err| ApiError::unprocessable(err.to_string()))?;
    }
    // Anyone holding a note's links may rate it — the requester too, when
    // the note is public — so each note takes a few ratings a minute, not
    // a stream of events.
    let key = format!("rating:{}:{}", link.tenant_id, link.correlation_id);
    if let Err(wait) =
        state
            .limits
            .requests
            .acquire(&key, RATINGS_PER_MINUTE, std::time::Instant::now())
    {
        return Err(ApiError::rate_limited(
            wait,
            "this note was rated often just now; wait before rating it again",
        ));
    }
    let payload = EnhancementRated {
        stars: rating.stars,
        thumbs_up: rating.thumbs_up,
        comment: rating.comment.filter(|comment| !comment.trim().is_empty()),
    };
    // Every rating sent is its own event (the latest stands), except a form
    // sent twice, which its submission id makes one.
    let submission = submission.unwrap_or_else(|| Uuid::now_v7().simple().to_string());
    let msg_id = aia_bus::msg_id::rating(link.tenant_id.as_str(), link.correlation_id, &submission);
    let event = Event {
        event_id: Uuid::now_v7(),
        tenant_id: link.tenant_id,
        ticket_id: link.ticket_id,
        occurred_at: Utc::now(),
        correlation_id: link.correlation_id,
        causation_id: None,
        payload: Payload::EnhancementRated(payload),
    };
    let published = tokio::time::timeout(
        state.publish_timeout,
        aia_bus::publish_event(&state.jetstream, &event, &msg_id),
    )
    .await;
    match published {
        Ok(Ok(ack)) if ack.duplicate => Ok(Recorded::AlreadyRecorded),
        Ok(Ok(_)) => Ok(Recorded::New),
        _ => Err(ApiError::unavailable(
            "the rating could not be stored; retry later",
        )),
    }
}

/// A small page of our own: no script, nothing from elsewhere.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1>{body}</body></html>"
        ),
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
