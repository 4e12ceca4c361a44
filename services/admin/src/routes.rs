//! `/admin/tenants`: the HTTP face of [`aia_ops::tenants::TenantAdmin`].
//! Every request needs `Authorization: Bearer <AI_AGENTS_ADMIN_TOKEN>`.

use std::sync::Arc;

use aia_http::ApiError;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use aia_ops::tenants::{AdminError, CreateTenant, TenantAdmin, UpdateTenant};

#[derive(Clone)]
pub struct AppState {
    pub tenants: Arc<TenantAdmin>,
    pub token: Arc<str>,
    /// For re-driving dead letters.
    pub jetstream: Option<aia_bus::JetStream>,
    pub console: Arc<crate::console::ConsoleSettings>,
}

/// An API answer that went wrong: the operations' errors become the JSON
/// error answer with the status their variant names.
pub struct RouteError(ApiError);

impl From<ApiError> for RouteError {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl axum::response::IntoResponse for RouteError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl From<AdminError> for RouteError {
    fn from(err: AdminError) -> Self {
        Self(match err {
            AdminError::NotFound(id) => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_tenant",
                format!("tenant {id} does not exist"),
            ),
            AdminError::Duplicate(id) => ApiError::new(
                StatusCode::CONFLICT,
                "duplicate_tenant",
                format!("tenant {id} already exists"),
            ),
            AdminError::Invalid(message) => ApiError::unprocessable(message),
            AdminError::Busy(message) => ApiError::new(StatusCode::CONFLICT, "busy", message),
            AdminError::Missing(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} does not exist"),
            ),
            AdminError::Store(err) => {
                tracing::error!(error = %err, "Tenant store failed");
                ApiError::unavailable("the tenant store is unavailable; retry later")
            }
            err @ AdminError::Nats { .. } => {
                tracing::error!(error = %err, cause = ?std::error::Error::source(&err), "NATS failed");
                ApiError::unavailable(format!("{err}; retry later"))
            }
        })
    }
}

fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    json.map(|Json(value)| value)
        .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
}

/// Refuses requests without the admin bearer token.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if aia_http::bearer_matches(request.headers(), &state.token) {
        next.run(request).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid admin bearer token is required",
        )
        .into_response()
    }
}

pub async fn create(
    State(state): State<AppState>,
    json: Result<Json<CreateTenant>, JsonRejection>,
) -> Result<Response, RouteError> {
    let created = state.tenants.create(body(json)?).await?;
    audited(
        &state,
        "tenant.create",
        Some(&created.tenant.tenant_id),
        json!({}),
    )
    .await;
    Ok(no_store(
        (StatusCode::CREATED, Json(json!(created))).into_response(),
    ))
}

#[derive(Deserialize)]
pub struct ListQuery {
    search: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, RouteError> {
    let page = state
        .tenants
        .list(
            query.search.as_deref(),
            query.cursor.as_deref(),
            query.limit.unwrap_or(50),
        )
        .await?;
    Ok(Json(json!(page)))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, RouteError> {
    Ok(Json(json!(state.tenants.get(&id).await?)))
}

/// `PATCH /admin/tenants/{id}`: the fields given change; `settings` is a
/// JSON merge patch (RFC 7396) applied to the settings as stored when the
/// change lands, so only what it names changes and a change made meanwhile
/// is kept. (`PUT` replaces the settings with those it is given.)
pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    json: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, RouteError> {
    let mut body = body(json)?;
    let Some(fields) = body.as_object_mut() else {
        return Err(ApiError::bad_request("expected a JSON object").into());
    };
    let settings = fields.remove("settings");
    let update: UpdateTenant =
        serde_json::from_value(body).map_err(|err| ApiError::bad_request(format!("{err}")))?;
    let changed: Vec<&str> = [
        ("name", update.name.is_some()),
        ("itsm_base_url", update.itsm_base_url.is_some()),
        ("itsm_credentials", update.itsm_credentials.is_some()),
        ("active", update.active.is_some()),
        ("settings", settings.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, given)| given.then_some(field))
    .collect();
    let detail = json!({ "fields": changed });
    let updated = match &settings {
        Some(patch) => state.tenants.update_patching(&id, update, patch).await?,
        None => state.tenants.update(&id, update).await?,
    };
    audited(&state, "tenant.update", Some(&id), detail).await;
    Ok(Json(json!(updated)))
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    json: Result<Json<UpdateTenant>, JsonRejection>,
) -> Result<Json<Value>, RouteError> {
    let update = body(json)?;
    // Which fields changed, never their values (credentials among them).
    let fields: Vec<&str> = [
        ("name", update.name.is_some()),
        ("itsm_base_url", update.itsm_base_url.is_some()),
        ("itsm_credentials", update.itsm_credentials.is_some()),
        ("active", update.active.is_some()),
        ("settings", update.settings.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, given)| given.then_some(field))
    .collect();
    let detail = json!({ "fields": fields });
    let updated = state.tenants.update(&id, update).await?;
    audited(&state, "tenant.update", Some(&id), detail).await;
    Ok(Json(json!(updated)))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, RouteError> {
    state.tenants.delete(&id).await?;
    audited(&state, "tenant.delete", Some(&id), json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// How a rotation treats the secret it replaces.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateQuery {
    /// Revoke the old secret now (it leaked).
    #[serde(default)]
    revoke_previous: bool,
    /// How long the old secret stays valid otherwise (default 24).
    keep_previous_hours: Option<u64>,
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<RotateQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, RouteError> {
    let Query(query) = query.map_err(|err| ApiError::bad_request(err.body_text()))?;
    let keep = match (query.revoke_previous, query.keep_previous_hours) {
        (true, Some(_)) => {
            return Err(ApiError::unprocessable(
                "give revoke_previous or keep_previous_hours, not both",
            )
            .into());
        }
        (true, None) => std::time::Duration::ZERO,
        (false, Some(hours)) => std::time::Duration::from_secs(hours.saturating_mul(3600)),
        (false, None) => aia_ops::tenants::KEEP_PREVIOUS,
    };
    let secret = state.tenants.rotate_secret(&id, keep).await?;
    audited(
        &state,
        "tenant.rotate_secret",
        Some(&id),
        json!({"keep_previous_hours": keep.as_secs() / 3600}),
    )
    .await;
    let note = if keep.is_zero() {
        "Shown only now. The previous secret is revoked.".to_owned()
    } else {
        format!(
            "Shown only now. The previous secret stays valid for {} hours.",
            keep.as_secs() / 3600
        )
    };
    Ok(no_store(
        Json(json!({"webhook_secret": secret, "note": note})).into_response(),
    ))
}

/// Ends a rotation early: the previous webhook secret stops, the current
/// one stays.
pub async fn end_rotation(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, RouteError> {
    state.tenants.end_rotation(&id).await?;
    audited(&state, "tenant.end_rotation", Some(&id), json!({})).await;
    Ok(Json(json!({
        "note": "The previous secret no longer works (within the ingress's 30 s cache); the current one does."
    })))
}

/// Records what the API changed in the audit log the console keeps, under
/// the actor `api` (the token's holder). The change is made: a record that
/// cannot be written is logged loudly, not answered as a failure.
async fn audited(state: &AppState, action: &str, tenant: Option<&str>, detail: Value) {
    if let Err(err) =
        crate::console::audit::record(&state.tenants.admin, "api", action, tenant, detail).await
    {
        tracing::error!(error = %err, action, "Could not write the audit log");
    }
}

/// An answer that carries a secret: no cache, proxy or browser keeps it.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

pub async fn set_integrations(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, RouteError> {
    let Json(body) = body.map_err(|err| ApiError::bad_request(err.body_text()))?;
    // A body without the incident webhook's address keeps it: clients
    // written before it was kept here know nothing of it.
    let names_webhook = body.get("incident_webhook_url").is_some();
    let integrations: aia_store::Integrations = serde_json::from_value(body)
        .map_err(|err| ApiError::bad_request(format!("integrations: {err}")))?;
    let set = state
        .tenants
        .set_integrations(&id, integrations, names_webhook)
        .await?;
    // Which integrations are set, never their secrets.
    audited(&state, "tenant.set_integrations", Some(&id), set.clone()).await;
    Ok(Json(set))
}

pub async fn test_connection(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, RouteError> {
    Ok(Json(json!(state.tenants.test_connection(&id).await?)))
}

pub async fn feedback(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, RouteError> {
    Ok(Json(json!(state.tenants.feedback_stats(&id).await?)))
}

#[derive(Deserialize)]
pub struct DeadLetterQuery {
    tenant: Option<String>,
    limit: Option<i64>,
}

pub async fn dead_letters(
    State(state): State<AppState>,
    Query(query): Query<DeadLetterQuery>,
) -> Result<Json<Value>, RouteError> {
    let items = aia_ops::dead_letters::list(
        &state.tenants.admin,
        query.tenant.as_deref(),
        query.limit.unwrap_or(100),
    )
    .await?;
    Ok(Json(json!({"items": items})))
}

pub async fn redrive(
    State(state): State<AppState>,
    Path((tenant, run)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), RouteError> {
    let correlation = uuid::Uuid::parse_str(&run)
        .map_err(|_| ApiError::bad_request("the run id is not a UUID"))?;
    let Some(jetstream) = &state.jetstream else {
        return Err(ApiError::unavailable("the event stream is not configured").into());
    };
    let event_id =
        aia_ops::dead_letters::redrive(&state.tenants.admin, jetstream, &tenant, correlation)
            .await?;
    audited(
        &state,
        "dead_letter.redrive",
        Some(&tenant),
        json!({"run": correlation, "event_id": event_id}),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "redriven", "event_id": event_id})),
    ))
}

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// An unknown path: the console's own page under `/console`, else the
/// API's JSON answer.
pub async fn not_found(State(state): State<AppState>, uri: axum::http::Uri) -> Response {
    if uri.path() == "/console" || uri.path().starts_with("/console/") {
        return crate::console::not_found(&state);
    }
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint").into_response()
}
