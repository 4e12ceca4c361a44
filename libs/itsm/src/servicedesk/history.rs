//! Reading a ServiceDesk Plus instance's resolved requests, for importing a
//! tenant's history: pages of closed or resolved requests in id order, then
//! each request's description and resolution.

use aia_events::Priority;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use super::{ServiceDeskPlus, TOOL};
use crate::ItsmError;

/// One page of a list of requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub ids: Vec<String>,
    pub has_more: bool,
    pub total: Option<u64>,
}

/// A resolved request, its HTML reduced to text.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedRequest {
    pub id: String,
    pub subject: String,
    pub description: String,
    pub resolution: String,
    pub priority: Priority,
    pub resolved_at: DateTime<Utc>,
}

pub use crate::render::html_to_text;

impl ServiceDeskPlus {
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = reqwest::Url::parse(&self.base_url).expect("base URL was validated");
        url.path_segments_mut().expect("http URL").extend(segments);
        url
    }

    async fn get_json(
        &self,
        url: reqwest::Url,
        input_data: Option<Value>,
    ) -> Result<Value, ItsmError> {
        let response = self
            .send(|| {
                let request = self.http.get(url.clone());
                match &input_data {
                    Some(input_data) => request.query(&[("input_data", input_data.to_string())]),
                    None => request,
                }
            })
            .await?;
        crate::common::read_json(TOOL, response).await
    }

    /// A page of resolved requests for an import: the ids from
    /// `cursor` (a 1-based start index), then each request read whole.
    pub async fn resolved_page(
        &self,
        cursor: Option<&str>,
        window: &crate::ImportWindow,
        pace: &crate::Pace,
    ) -> Result<crate::ResolvedPage, ItsmError> {
        const PAGE: u64 = 100;
        let start: u64 = match cursor {
            Some(cursor) => cursor.parse().map_err(|_| {
                ItsmError::permanent(format!("{TOOL} import cursor {cursor:?} is not an index"))
            })?,
            None => 1,
        };
        pace.wait().await;
        let page = self
            .resolved_ids(start, PAGE, window.since, window.until)
            .await?;
        let mut tickets = Vec::with_capacity(page.ids.len());
        for id in &page.ids {
            pace.wait().await;
            let request = self.resolved_request(id).await?;
            tickets.push(crate::ResolvedTicket {
                id: request.id,
                subject: request.subject,
                description: request.description,
                resolution: request.resolution,
                priority: request.priority,
                resolved_at: request.resolved_at,
                tags: Vec::new(),
            });
        }
        let next = start + page.ids.len() as u64;
        Ok(crate::ResolvedPage {
            tickets,
            next: (page.has_more && !page.ids.is_empty()).then(|| next.to_string()),
            total: page.total,
        })
    }

    /// Closed or resolved requests, `row_count` from `start_index` (1-based),
    /// resolved within `[since, until)` when given.
    pub async fn resolved_ids(
        &self,
        start_index: u64,
        row_count: u64,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Page, ItsmError> {
        let mut criteria = vec![
            json!({"field": "status.name", "condition": "is", "values": ["Resolved", "Closed"]}),
        ];
        if let Some(since) = since {
            criteria.push(json!({"field": "resolved_time", "condition": "greater or equal",
                                 "value": since.timestamp_millis().to_string(), "logical_operator": "and"}));
        }
        if let Some(until) = until {
            criteria.push(json!({"field": "resolved_time", "condition": "less than",
                                 "value": until.timestamp_millis().to_string(), "logical_operator": "and"}));
        }
        let input_data = json!({"list_info": {
            "row_count": row_count, "start_index": start_index, "sort_field": "id", "sort_order": "asc",
            "get_total_count": true, "search_criteria": criteria
        }});
        let body = self
            .get_json(self.url(&["api", "v3", "requests"]), Some(input_data))
            .await?;
        let ids = body["requests"]
            .as_array()
            .map(|requests| {
                requests
                    .iter()
                    .filter_map(|request| match &request["id"] {
                        Value::String(id) => Some(id.clone()),
                        Value::Number(id) => Some(id.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Page {
            ids,
            has_more: body["list_info"]["has_more_rows"]
                .as_bool()
                .unwrap_or(false),
            total: body["list_info"]["total_count"].as_u64(),
        })
    }

    /// One request with its description and resolution as text.
    pub async fn resolved_request(&self, id: &str) -> Result<ResolvedRequest, ItsmError> {
        let body = self
            .get_json(self.url(&["api", "v3", "requests", id]), None)
            .await?;
        let request = &body["request"];
        let millis = request["resolved_time"]["value"]
            .as_str()
            .and_then(|value| value.parse::<i64>().ok())
            .or_else(|| {
                request["completed_time"]["value"]
                    .as_str()
                    .and_then(|value| value.parse().ok())
            });
        let resolved_at = millis
            .and_then(|millis| Utc.timestamp_millis_opt(millis).single())
            .ok_or_else(|| ItsmError::Permanent {
                reason: format!("{TOOL} request {id} has no resolved time"),
                http_status: None,
            })?;
        Ok(ResolvedRequest {
            id: id.to_owned(),
            subject: request["subject"].as_str().unwrap_or_default().to_owned(),
            description: html_to_text(request["description"].as_str().unwrap_or_default()),
            resolution: html_to_text(
                request["resolution"]["content"]
                    .as_str()
                    .unwrap_or_default(),
            ),
            priority: request["priority"]["name"]
                .as_str()
                .and_then(|name| Priority::parse(name).ok())
                .unwrap_or(Priority::Medium),
            resolved_at,
        })
    }
}

impl ServiceDeskPlus {
    /// One request's subject, description (as text) and status.
    pub async fn fetch_ticket(
        &self,
        ticket: &aia_events::TicketId,
    ) -> Result<crate::TicketSummary, ItsmError> {
        let body = self
            .get_json(self.url(&["api", "v3", "requests", ticket.as_str()]), None)
            .await?;
        let request = &body["request"];
        let status = request["status"]["name"].as_str().map(str::to_owned);
        let millis = |field: &str| {
            request[field]["value"]
                .as_str()
                .and_then(|value| value.parse::<i64>().ok())
                .and_then(|millis| Utc.timestamp_millis_opt(millis).single())
        };
        let resolved = matches!(status.as_deref(), Some("Resolved" | "Closed"));
        Ok(crate::TicketSummary {
            subject: request["subject"].as_str().unwrap_or_default().to_owned(),
            description: html_to_text(request["description"].as_str().unwrap_or_default()),
            priority: request["priority"]["name"]
                .as_str()
                .and_then(|name| Priority::parse(name).ok())
                .unwrap_or(Priority::Medium),
            created_at: millis("created_time"),
            requester: request["requester"]["name"].as_str().map(str::to_owned),
            tags: Vec::new(),
            resolution: resolved.then(|| crate::Resolution {
                text: html_to_text(
                    request["resolution"]["content"]
                        .as_str()
                        .unwrap_or_default(),
                ),
                resolved_at: millis("resolved_time")
                    .or_else(|| millis("completed_time"))
                    .unwrap_or_else(Utc::now),
            }),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_readable_text() {
        assert_eq!(
            html_to_text(
                "<div>VPN drops<br>every&nbsp;hour</div><p>Fix: raise &lt;SA&gt; lifetime &amp; restart</p>"
            ),
            "VPN drops\nevery hour\nFix: raise <SA> lifetime & restart"
        );
    }
}
