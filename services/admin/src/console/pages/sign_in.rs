//! Signing in and out.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{CsrfOnly, message, render};
use crate::console::views::SignInPage;
use crate::console::{ClientAddress, Operator, SessionToken, auth, cleared_cookie, session_cookie};
use crate::routes::AppState;

pub async fn sign_in_form() -> Response {
    render(&SignInPage {
        operator: None,
        message: None,
    })
}

#[derive(Deserialize)]
pub struct SignInForm {
    username: String,
    password: String,
}

/// Whether a sign-in form was posted from the console's own page. A
/// browser says where a form came from (`Sec-Fetch-Site`, `Origin`);
/// another site's page posting its attacker's credentials (login CSRF) is
/// refused. A client that sends neither is not a browser led by a page.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = header("origin") else {
        return true;
    };
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match (authority, header("host")) {
        (Some(authority), Some(host)) => authority.eq_ignore_ascii_case(host),
        _ => false,
    }
}

pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if !same_origin(&headers) {
        tracing::warn!(client, "Console sign-in posted from another site; refused");
        return (
            StatusCode::FORBIDDEN,
            render(&SignInPage {
                operator: None,
                message: Some("Sign in from the console's own page.".into()),
            }),
        )
            .into_response();
    }
    let username = form.username.trim().to_lowercase();
    // As the logs name it: a made-up name may be kilobytes of anything.
    let logged = if aia_ops::operators::valid_username(&username) {
        username.as_str()
    } else {
        "(not a user name)"
    };
    let outcome = auth::sign_in(
        &state.tenants.admin,
        &username,
        &form.password,
        &client,
        state.console.session_lifetime,
    )
    .await;
    let refused = |status: StatusCode, text: &str| {
        (
            status,
            render(&SignInPage {
                operator: None,
                message: Some(text.into()),
            }),
        )
            .into_response()
    };
    match outcome {
        Ok(auth::SignIn::Signed { token, lifetime }) => {
            tracing::info!(username = logged, "Console sign-in");
            (
                [(header::SET_COOKIE, session_cookie(&token, lifetime))],
                Redirect::to("/console"),
            )
                .into_response()
        }
        Ok(auth::SignIn::Refused) => {
            tracing::warn!(username = logged, client, "Console sign-in refused");
            refused(StatusCode::UNAUTHORIZED, "Wrong user name or password.")
        }
        Ok(auth::SignIn::Throttled { retry_after }) => {
            tracing::warn!(username = logged, client, "Console sign-in throttled");
            let mut response = refused(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Too many failed sign-ins. Try again in {} minutes.",
                    retry_after.as_secs().div_ceil(60)
                ),
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after.as_secs()),
            );
            response
        }
        Ok(auth::SignIn::Busy) => {
            tracing::warn!(
                client,
                "Console sign-in waited too long for a password check"
            );
            let mut response = refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "The console is busy checking other sign-ins; try again in a moment.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(5));
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "Console sign-in failed");
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "The console's database is unavailable; retry in a moment.",
            )
        }
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    operator: Operator,
    SessionToken(token): SessionToken,
    Form(form): Form<CsrfOnly>,
) -> Response {
    // Any role may sign out, but only from its own pages.
    if !auth::csrf_matches(&operator, &form.csrf) {
        return message(
            StatusCode::FORBIDDEN,
            Some(operator),
            "Refused",
            "The form was not sent from this session.",
            "/console",
        );
    }
    if let Some(token) = token
        && let Err(err) = auth::sign_out(&state.tenants.admin, &token).await
    {
        tracing::error!(error = %err, "Console sign-out failed");
    }
    (
        [(header::SET_COOKIE, cleared_cookie())],
        Redirect::to("/console/sign-in"),
    )
        .into_response()
}
