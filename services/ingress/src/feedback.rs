//! `/feedback/{tenant}/{ticket}/{run}/{token}`: technicians rate a note from
//! the links at its end (GET with `?rating=up|down|1..5`) or with a comment
//! (POST JSON). The token is the run's signed link token; a rating becomes
//! an `enhancement.rated` event.

use aia_events::{EnhancementRated, Event, Payload, TenantId, TicketId};
use aia_http::ApiError;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::routes::AppState;

#[derive(Deserialize)]
pub struct LinkQuery {
    rating: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rating {
    stars: Option<u8>,
    thumbs_up: Option<bool>,
    comment: Option<String>,
}

type LinkPath = Path<(String, String, String, String)>;

/// `GET`: one click from the note.
pub async fn click(
    state: State<AppState>,
    path: LinkPath,
    Query(query): Query<LinkQuery>,
) -> Response {
    let rating = match query.rating.as_str() {
        "up" => Rating {
            stars: None,
            thumbs_up: Some(true),
            comment: None,
        },
        "down" => Rating {
            stars: None,
            thumbs_up: Some(false),
            comment: None,
        },
        stars => match stars.parse::<u8>() {
            Ok(stars) => Rating {
                stars: Some(stars),
                thumbs_up: None,
                comment: None,
            },
            Err(_) => {
                return ApiError::unprocessable("rating: must be up, down or 1 to 5")
                    .into_response();
            }
        },
    };
    match record(&state, path, rating).await {
        Ok(()) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'"),
            ],
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Thank you</title></head>\
             <body style=\"font-family:sans-serif;margin:3em\"><h1>Thank you</h1>\
             <p>Your rating of this note was recorded. You can close this tab.</p></body></html>",
        )
            .into_response(),
        Err(err) => err.into_response(),
    }
}

/// `POST`: stars, a thumb and a comment.
pub async fn submit(
    state: State<AppState>,
    path: LinkPath,
    body: Result<Json<Rating>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Json(rating) = body.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    record(&state, path, rating).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))))
}

async fn record(
    State(state): &State<AppState>,
    Path((tenant, ticket, run, token)): LinkPath,
    rating: Rating,
) -> Result<(), ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_link",
            "this feedback link is not valid",
        )
    };
    let tenant_id = TenantId::parse(&tenant).map_err(|_| not_found())?;
    let ticket_id = TicketId::parse(&ticket).map_err(|_| not_found())?;
    let correlation_id = Uuid::parse_str(&run).map_err(|_| not_found())?;
    if !aia_store::feedback::verify(
        state.tenants.keyring(),
        &tenant,
        &ticket,
        correlation_id,
        &token,
    ) {
        return Err(not_found());
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
    let payload = EnhancementRated {
        stars: rating.stars,
        thumbs_up: rating.thumbs_up,
        comment: rating.comment.filter(|comment| !comment.trim().is_empty()),
    };
    let digest = Sha256::digest(serde_json::to_vec(&payload).expect("JSON"));
    let msg_id = format!(
        "feedback:{tenant_id}:{correlation_id}:{}",
        hex::encode(&digest[..8])
    );
    let event = Event {
        event_id: Uuid::now_v7(),
        tenant_id,
        ticket_id,
        occurred_at: Utc::now(),
        correlation_id,
        causation_id: None,
        payload: Payload::EnhancementRated(payload),
    };
    let published = tokio::time::timeout(
        state.publish_timeout,
        aia_bus::publish_event(&state.jetstream, &event, &msg_id),
    )
    .await;
    match published {
        Ok(Ok(_)) => Ok(()),
        _ => Err(ApiError::unavailable(
            "the rating could not be stored; retry later",
        )),
    }
}
