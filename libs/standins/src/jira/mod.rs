//! Jira's comment APIs: the platform API (Cloud's v3 with an ADF body,
//! checked against ADF's schema; v2, Data Center's only one, with a
//! wiki-markup text body; the `sd.public.comment` property) and the
//! Service Management API (`public: false`, a text body), Basic or Bearer
//! auth, real success and error shapes;
//! and the search of resolved issues an import pages through — Cloud's
//! `/rest/api/3/search/jql` (paged by `nextPageToken`; Cloud answers 410
//! to the removed `/rest/api/2/search`), or, set up as Data Center, the
//! `/rest/api/2/search` it still has (paged by `startAt`).

mod adf;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// One comment as stored: its body as sent, and whether it is internal.
#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub body: Value,
    pub internal: bool,
}

/// Resolved issues by resolution time and key.
type Resolved = BTreeMap<(DateTime<Utc>, String), Value>;

#[derive(Clone)]
pub struct JiraStandIn {
    authorization: String,
    comments: Arc<Mutex<BTreeMap<String, Vec<Comment>>>>,
    resolved: Arc<Mutex<Resolved>>,
    data_center: bool,
    /// The searching user's time zone, hours east of UTC: as in Jira, a
    /// date in JQL is read in it.
    user_offset_hours: i64,
}

impl JiraStandIn {
    /// Accepts exactly this `Authorization` header value.
    pub fn new(authorization: impl Into<String>) -> Self {
        Self {
            authorization: authorization.into(),
            comments: Arc::default(),
            resolved: Arc::default(),
            data_center: false,
            user_offset_hours: 0,
        }
    }

    /// The same, its user's profile in a zone `hours` east of UTC
    /// (negative: west).
    pub fn with_user_offset_hours(mut self, hours: i64) -> Self {
        self.user_offset_hours = hours;
        self
    }

    /// The same, searching as Jira Data Center does.
    pub fn data_center(authorization: impl Into<String>) -> Self {
        Self {
            data_center: true,
            ..Self::new(authorization)
        }
    }

    /// A resolved issue, with its fix as its last comment.
    pub fn put_resolved(&self, key: &str, summary: &str, fix: &str, resolved_at: DateTime<Utc>) {
        let adf = |text: &str| json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}]});
        let at = resolved_at.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string();
        let issue = json!({"id": "10001", "key": key, "fields": {
            "summary": summary,
            "description": adf(&format!("{summary}, since this morning")),
            "priority": {"name": "Medium"},
            "labels": ["import"],
            "created": at,
            "resolutiondate": at,
            "resolution": {"name": "Done"},
            "status": {"name": "Done", "statusCategory": {"key": "done"}},
            "reporter": {"displayName": "Jane Doe"},
            "comment": {"comments": [{"id": "1", "body": adf(fix)}], "total": 1}
        }});
        self.resolved
            .lock()
            .unwrap()
            .insert((resolved_at, key.to_owned()), issue);
    }

    /// The resolved issues the JQL's `resolutiondate` bounds admit, from
    /// `offset` on, at most `max`; whether more follow, and how many match.
    fn page(&self, jql: &str, offset: usize, max: usize) -> (Vec<Value>, bool, usize) {
        let since = self.bound(jql, "resolutiondate >= ");
        let until = self.bound(jql, "resolutiondate < ");
        let resolved = self.resolved.lock().unwrap();
        let matching: Vec<&Value> = resolved
            .iter()
            .filter(|((at, _), _)| since.is_none_or(|since| *at >= since))
            .filter(|((at, _), _)| until.is_none_or(|until| *at < until))
            .map(|(_, issue)| issue)
            .collect();
        let page: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(max)
            .map(|issue| (*issue).clone())
            .collect();
        let more = offset + page.len() < matching.len();
        (page, more, matching.len())
    }

    /// The instant a JQL condition `<prefix>"yyyy-MM-dd HH:mm"` names, its
    /// date read in the user's zone.
    fn bound(&self, jql: &str, prefix: &str) -> Option<DateTime<Utc>> {
        let rest = &jql[jql.find(prefix)? + prefix.len()..];
        let quoted = rest.strip_prefix('"')?.split('"').next()?;
        let local = chrono::NaiveDateTime::parse_from_str(quoted, "%Y-%m-%d %H:%M").ok()?;
        Some((local - chrono::Duration::hours(self.user_offset_hours)).and_utc())
    }

    /// A comment someone else wrote on the issue (a plain paragraph).
    pub fn add_comment(&self, key: &str, text: &str) {
        let body = json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": text}]}
        ]});
        self.store(key, body, false);
    }

    pub fn comments(&self, key: &str) -> Vec<Comment> {
        self.comments
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/rest/api/{version}/issue/{key}/comment",
                post(add_comment).get(list_comments),
            )
            .route(
                "/rest/servicedeskapi/request/{key}/comment",
                post(add_request_comment),
            )
            .route("/rest/api/3/search/jql", get(search_jql))
            .route("/rest/api/2/search", get(search_v2))
            .route("/rest/api/{version}/myself", get(myself))
            .route("/rest/api/{version}/issue/{key}", get(issue))
            .with_state(self.clone())
    }

    /// The 401 answer, when the request is not authorised.
    fn rejection(&self, headers: &HeaderMap) -> Option<Response> {
        let given = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok());
        if given == Some(self.authorization.as_str()) {
            None
        } else {
            Some(
                (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"errorMessages": ["You are not authenticated."], "errors": {}})),
                )
                    .into_response(),
            )
        }
    }

    fn store(&self, key: &str, body: Value, internal: bool) -> u64 {
        let mut comments = self.comments.lock().unwrap();
        let id = 10_000 + comments.values().map(Vec::len).sum::<usize>() as u64;
        comments
            .entry(key.to_owned())
            .or_default()
            .push(Comment { id, body, internal });
        id
    }
}

/// Which platform API a request names: Cloud has 3 (ADF) and 2 (text);
/// Data Center only 2. `None` is a 404.
fn platform(state: &JiraStandIn, version: &str) -> Option<u8> {
    match version {
        "3" if !state.data_center => Some(3),
        "2" => Some(2),
        _ => None,
    }
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"errorMessages": [], "errors": {"comment": message}})),
    )
        .into_response()
}

async fn add_comment(
    State(state): State<JiraStandIn>,
    Path((version, key)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let document = &body["body"];
    match platform(&state, &version) {
        None => return StatusCode::NOT_FOUND.into_response(),
        // API v2 takes the comment as wiki-markup text.
        Some(2) if !document.is_string() => {
            return bad_request("Can not deserialize the comment body: a string is expected");
        }
        Some(2) => {}
        Some(_) => {
            if document["type"] != "doc"
                || document["version"] != 1
                || !document["content"].is_array()
            {
                return bad_request("Comment body is not valid!");
            }
            if !adf::valid_adf(document, "") {
                // What Jira answers a document its ADF schema refuses.
                return bad_request("INVALID_INPUT");
            }
        }
    }
    let internal = body["properties"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|property| {
            property["key"] == "sd.public.comment" && property["value"]["internal"] == true
        });
    let id = state.store(&key, document.clone(), internal);
    (
        StatusCode::CREATED,
        Json(json!({"id": id.to_string(), "body": document, "jsdPublic": !internal})),
    )
        .into_response()
}

async fn add_request_comment(
    State(state): State<JiraStandIn>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let (Some(text), Some(public)) = (body["body"].as_str(), body["public"].as_bool()) else {
        return bad_request("body and public are required");
    };
    let id = state.store(&key, Value::String(text.to_owned()), !public);
    (
        StatusCode::CREATED,
        Json(json!({"id": id.to_string(), "body": text, "public": public})),
    )
        .into_response()
}

/// `startAt` and `maxResults` as Jira reads them.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentPage {
    #[serde(default)]
    start_at: usize,
    max_results: Option<usize>,
}

/// Oldest first, a page at a time: Jira caps a page however many are asked
/// for (100 on Cloud); this stand-in caps it at 50, so a client that trusts
/// its own page size instead of the answer's misses comments.
async fn list_comments(
    State(state): State<JiraStandIn>,
    Path((version, key)): Path<(String, String)>,
    Query(page): Query<CommentPage>,
    headers: HeaderMap,
) -> Response {
    const CAP: usize = 50;
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    if platform(&state, &version).is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let all = state.comments(&key);
    let max = page.max_results.unwrap_or(CAP).min(CAP);
    let comments: Vec<Value> = all
        .iter()
        .skip(page.start_at)
        .take(max)
        .map(|comment| json!({"id": comment.id.to_string(), "body": comment.body}))
        .collect();
    Json(json!({
        "startAt": page.start_at, "maxResults": max, "total": all.len(), "comments": comments
    }))
    .into_response()
}

async fn myself(
    State(state): State<JiraStandIn>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    if platform(&state, &version).is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    match state.rejection(&headers) {
        None => {
            Json(json!({"accountId": "5b10a2844c20165700ede21g", "active": true})).into_response()
        }
        Some(response) => response,
    }
}

/// Any issue exists, with a summary and a description (ADF in API v3,
/// wiki-markup text in v2).
async fn issue(
    State(state): State<JiraStandIn>,
    Path((version, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    let description = match platform(&state, &version) {
        None => return StatusCode::NOT_FOUND.into_response(),
        Some(2) => json!("VPN drops"),
        Some(_) => {
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "VPN drops"}]}]})
        }
    };
    Json(json!({"id": "10001", "key": key, "fields": {
        "summary": format!("Issue {key}"),
        "description": description,
        "status": {"name": "In Progress"}
    }}))
    .into_response()
}

#[derive(serde::Deserialize)]
struct Search {
    jql: Option<String>,
    #[serde(rename = "maxResults")]
    max_results: Option<usize>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
    #[serde(rename = "startAt")]
    start_at: Option<usize>,
}

/// The page size asked for, if the search is one the stand-in answers.
fn searched(search: &Search) -> Option<usize> {
    search
        .jql
        .as_deref()
        .filter(|jql| jql.contains("resolution is not EMPTY"))
        .map(|_| search.max_results.unwrap_or(50).clamp(1, 100))
}

/// Cloud's search: `{issues, nextPageToken, isLast}`, no total.
async fn search_jql(
    State(state): State<JiraStandIn>,
    Query(search): Query<Search>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    if state.data_center {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some(max) = searched(&search) else {
        return bad_request("the stand-in searches resolved issues only");
    };
    let offset = match search
        .next_page_token
        .as_deref()
        .map(|token| token.strip_prefix("page-").and_then(|n| n.parse().ok()))
    {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => return bad_request("The provided next page token is invalid or expired."),
    };
    let jql = search.jql.as_deref().unwrap_or_default();
    let (issues, more, _) = state.page(jql, offset, max);
    let mut answer = json!({"issues": issues, "isLast": !more});
    if more {
        answer["nextPageToken"] = json!(format!("page-{}", offset + max));
    }
    Json(answer).into_response()
}

/// Data Center's search (`startAt`, `total`); Cloud's answer since its
/// removal.
async fn search_v2(
    State(state): State<JiraStandIn>,
    Query(search): Query<Search>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = state.rejection(&headers) {
        return response;
    }
    if !state.data_center {
        return (
            StatusCode::GONE,
            Json(json!({"errorMessages": ["The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"], "errors": {}})),
        )
            .into_response();
    }
    let Some(max) = searched(&search) else {
        return bad_request("the stand-in searches resolved issues only");
    };
    let offset = search.start_at.unwrap_or(0);
    let jql = search.jql.as_deref().unwrap_or_default();
    let (issues, _, total) = state.page(jql, offset, max);
    Json(json!({"startAt": offset, "maxResults": max, "total": total, "issues": issues}))
        .into_response()
}
