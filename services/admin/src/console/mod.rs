//! The admin console: server-rendered pages under `/console` for MSP
//! operators, on the same operations as the `/admin` API.
//!
//! Safe to expose on an MSP's network: every page needs a session (an
//! HTTP-only, `Secure`, `SameSite=Strict` cookie), every form carries the
//! session's CSRF token, a viewer's state-changing request is refused with
//! 403 however it was made, failed sign-ins are rate-limited, every change
//! is audited, and every answer carries a strict Content-Security-Policy
//! (scripts and styles only from the console itself, no inline code).

pub mod audit;
pub mod auth;
mod dashboard;
pub mod history;
mod pages;
mod views;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::routes::AppState;
pub use auth::{Operator, Role};

/// The console's name for its session cookie.
pub const SESSION_COOKIE: &str = "aia_console";

/// How the console behaves.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// How long a session lasts (`AI_AGENTS_CONSOLE_SESSION_HOURS`, 8).
    pub session_lifetime: Duration,
    /// Where a trace id opens its trace, `{trace_id}` replaced
    /// (`AI_AGENTS_CONSOLE_TRACE_URL`, for example Grafana's Explore on
    /// Tempo); without it trace ids are shown as text.
    pub trace_url: Option<String>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            session_lifetime: Duration::from_secs(8 * 3600),
            trace_url: None,
        }
    }
}

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/console", get(pages::dashboard))
        .route(
            "/console/sign-in",
            get(pages::sign_in_form).post(pages::sign_in),
        )
        .route("/console/sign-out", post(pages::sign_out))
        .route(
            "/console/tenants",
            get(pages::tenants).post(pages::create_tenant),
        )
        .route("/console/tenants/new", get(pages::new_tenant))
        .route("/console/tenants/{id}", get(pages::tenant))
        .route(
            "/console/tenants/{id}/rotate-secret",
            post(pages::rotate_secret),
        )
        .route("/console/tenants/{id}/delete", post(pages::delete_tenant))
        .route("/console/tenants/{id}/settings", post(pages::save_settings))
        .route(
            "/console/tenants/{id}/test-connection",
            post(pages::test_connection),
        )
        .route("/console/dead-letters", get(pages::dead_letters))
        .route("/console/dead-letters/redrive", post(pages::redrive))
        .route("/console/audit", get(pages::audit))
        .route(
            "/console/tenants/{id}/processing/{switch}",
            post(pages::tenant_processing),
        )
        .route(
            "/console/stages/{stage}/{switch}",
            post(pages::stage_processing),
        )
        .route("/console/history", get(pages::history))
        .route("/console/history.csv", get(pages::history_csv))
        .route("/console/tickets/{tenant}/{ticket}", get(pages::ticket))
        .route(
            "/console/tickets/{tenant}/{ticket}/dry-run",
            post(pages::dry_run),
        )
        .route("/console/static/console.css", get(pages::stylesheet))
        .route("/console/static/console.js", get(pages::script))
        .layer(axum::middleware::from_fn_with_state(
            state,
            security_headers,
        ))
}

/// Headers on every console answer: nothing inline, nothing framed,
/// nothing cached, nothing sniffed, no referrer leaves.
async fn security_headers(State(_): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The session cookie's value, if the request carries one.
fn session_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// A page or action without a valid session goes to the sign-in page.
#[derive(Debug)]
pub enum NoSession {
    SignIn,
    Unavailable,
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn => Redirect::to("/console/sign-in").into_response(),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The console's database is unavailable; retry in a moment.",
            )
                .into_response(),
        }
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = NoSession;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, NoSession> {
        let token = session_token(parts).ok_or(NoSession::SignIn)?;
        match auth::session(&state.tenants.admin, &token).await {
            Ok(Some(operator)) => Ok(operator),
            Ok(None) => Err(NoSession::SignIn),
            Err(err) => {
                tracing::error!(error = %err, "Console session lookup failed");
                Err(NoSession::Unavailable)
            }
        }
    }
}

/// The address the request came from (the TCP peer; a proxy in front is
/// one client to the sign-in limit).
#[derive(Debug)]
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string())
                .unwrap_or_else(|| "unknown".into()),
        ))
    }
}

/// The raw session token, for signing out.
#[derive(Debug)]
pub struct SessionToken(pub Option<String>);

impl FromRequestParts<AppState> for SessionToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(session_token(parts)))
    }
}

/// The `Set-Cookie` value of a new session.
fn session_cookie(token: &str, lifetime: Duration) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/console; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        lifetime.as_secs()
    )
}

/// The `Set-Cookie` value that ends the session in the browser.
fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/console; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// Percent-encodes a query-string value.
pub(crate) fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
