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
pub mod charts;
mod dashboard;
pub mod history;
pub mod lag;
mod pages;
pub mod run_view;
pub mod trends;
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

/// The console's name for its session cookie. `__Host-`: browsers keep
/// it only when set by this host itself, secure, for the whole site, so a
/// sibling subdomain cannot plant a cookie of this name (its own session)
/// that the browser would send ahead of ours.
pub const SESSION_COOKIE: &str = "__Host-aia_console";

/// How the console behaves.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// How long a session lasts (`AI_AGENTS_CONSOLE_SESSION_HOURS`, 8).
    pub session_lifetime: Duration,
    /// Where a trace id opens its trace, `{trace_id}` replaced
    /// (`AI_AGENTS_CONSOLE_TRACE_URL`, for example Grafana's Explore on
    /// Tempo); without it trace ids are shown as text.
    pub trace_url: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed
    /// (`AI_AGENTS_TRUSTED_PROXIES`, addresses or networks; none by
    /// default). Without them every client behind a proxy is the proxy.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Send `Strict-Transport-Security` (`AI_AGENTS_CONSOLE_HSTS`): on
    /// where the console is served over HTTPS, as in the compose and
    /// Kubernetes examples.
    pub hsts: bool,
    /// How long a CSV export waits for its client to read on before it
    /// closes its connection (60 s).
    pub export_stalled_after: Duration,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            session_lifetime: Duration::from_secs(8 * 3600),
            trace_url: None,
            trusted_proxies: Vec::new(),
            hsts: false,
            export_stalled_after: Duration::from_secs(60),
        }
    }
}

/// `AI_AGENTS_TRUSTED_PROXIES`: comma-separated addresses or networks.
pub fn parse_trusted_proxies(raw: &str) -> Result<Vec<ipnet::IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{entry:?} is not an address or network"))
        })
        .collect()
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
        .route(
            "/console/tenants/{id}/end-rotation",
            post(pages::end_rotation),
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
        .route("/console/incidents", get(pages::incidents))
        .route(
            "/console/incidents/{tenant}/{incident}",
            get(pages::incident),
        )
        .route(
            "/console/incidents/{tenant}/{incident}/acknowledge",
            post(pages::acknowledge_incident),
        )
        .route(
            "/console/incidents/{tenant}/{incident}/close",
            post(pages::close_incident),
        )
        .route("/console/static/console.css", get(pages::stylesheet))
        .route("/console/static/console.js", get(pages::script))
        .layer(axum::middleware::from_fn(refuse_nul))
        .layer(axum::middleware::from_fn_with_state(
            state,
            security_headers,
        ))
}

/// A console path that does not exist: the console's own page, with its
/// headers, not the API's JSON.
pub fn not_found(state: &AppState) -> Response {
    let mut response = pages::message(
        StatusCode::NOT_FOUND,
        None,
        "Not found",
        "There is no such page in the console.",
        "/console",
    );
    apply_security_headers(response.headers_mut(), state.console.hsts);
    response
}

/// Refuses a query or form that carries a NUL character (`%00`), which no
/// field of the console can hold (PostgreSQL's text refuses it), with 422
/// instead of a database error.
async fn refuse_nul(request: Request, next: Next) -> Response {
    let has_nul = |raw: &[u8]| {
        raw.contains(&0)
            || raw
                .windows(3)
                .any(|window| window[0] == b'%' && window[1] == b'0' && window[2] == b'0')
    };
    if request
        .uri()
        .query()
        .is_some_and(|query| has_nul(query.as_bytes()))
    {
        return nul_refused();
    }
    let (parts, body) = request.into_parts();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.").into_response();
    };
    if has_nul(&bytes) {
        return nul_refused();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

fn nul_refused() -> Response {
    pages::message(
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        "Not done",
        "A field holds a NUL character, which no field may hold.",
        "/console",
    )
}

/// Headers on every console answer: nothing inline, nothing framed,
/// nothing cached, nothing sniffed, no referrer leaves; HTTPS only, when
/// the deployment says it is served over HTTPS.
async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    apply_security_headers(response.headers_mut(), state.console.hsts);
    response
}

fn apply_security_headers(headers: &mut axum::http::HeaderMap, hsts: bool) {
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
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

/// The address the request came from: the TCP peer, or, when the peer is
/// a trusted proxy, the nearest address in `X-Forwarded-For` that is not
/// one. Without trusted proxies a proxy in front is one client to the
/// sign-in limit, and a client cannot choose its address by sending the
/// header.
#[derive(Debug)]
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let Some(peer) = peer else {
            return Ok(Self("unknown".into()));
        };
        Ok(Self(
            client_address(peer, &parts.headers, &state.console.trusted_proxies).to_string(),
        ))
    }
}

/// The client behind `peer`, believing `X-Forwarded-For` only as far back
/// as the proxies in `trusted` reach.
pub fn client_address(
    peer: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Read from the right, where the trusted proxies appended what they
    // saw: the first hop that is not one of them is the client. What lies
    // further left the client wrote itself, so a hop there that is not an
    // address (`X-Forwarded-For: junk`) changes nothing; one on the way is
    // where the trusted chain ends.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        let Ok(hop) = hop.trim().parse::<std::net::IpAddr>() else {
            break;
        };
        client = hop;
        if !is_trusted(&hop) {
            break;
        }
    }
    client
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
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        lifetime.as_secs()
    )
}

/// The `Set-Cookie` value that ends the session in the browser.
fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// Percent-encodes a query-string value.
/// The query a form's redirect carries its outcome in (`message=…&tag=…`):
/// the text, and a tag only the operator's own session can make (an HMAC
/// under its CSRF token), so a link made elsewhere cannot put words of its
/// own on a console page.
pub(crate) fn message_query(text: &str, csrf: &str) -> String {
    format!(
        "message={}&tag={}",
        url_escape(text),
        message_tag(text, csrf)
    )
}

/// The message a page was sent to show, if its tag is this session's.
pub(crate) fn verified_message(
    text: Option<String>,
    tag: Option<&str>,
    csrf: &str,
) -> Option<String> {
    use subtle::ConstantTimeEq as _;
    let text = text?;
    let given = tag?;
    bool::from(message_tag(&text, csrf).as_bytes().ct_eq(given.as_bytes())).then_some(text)
}

fn message_tag(text: &str, csrf: &str) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(csrf.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_first_hop_from_the_right_that_is_no_trusted_proxy() {
        let proxy: std::net::IpAddr = "10.0.0.5".parse().unwrap();
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let client = |forwarded: &[&str]| {
            let mut headers = axum::http::HeaderMap::new();
            for value in forwarded {
                headers.append("x-forwarded-for", value.parse().unwrap());
            }
            client_address(proxy, &headers, &trusted).to_string()
        };
        assert_eq!(client(&["203.0.113.7"]), "203.0.113.7");
        assert_eq!(
            client(&["198.51.100.1, 203.0.113.7, 10.0.0.9"]),
            "203.0.113.7"
        );
        // What the client wrote left of its own address is its own: junk
        // there neither hides it nor stands in for it.
        assert_eq!(client(&["junk, 203.0.113.7"]), "203.0.113.7");
        assert_eq!(client(&["junk", "203.0.113.7"]), "203.0.113.7");
        // Without a header, the peer.
        assert_eq!(client(&[]), "10.0.0.5");
        // An untrusted peer's header is not believed.
        let headers = axum::http::HeaderMap::new();
        assert_eq!(
            client_address("198.51.100.9".parse().unwrap(), &headers, &trusted).to_string(),
            "198.51.100.9"
        );
    }
}
