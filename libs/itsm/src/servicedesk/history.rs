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

/// Text of an HTML fragment: tags dropped, block ends as line breaks, the
/// common entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    let mut tag = String::new();
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let name = tag
                    .trim_start_matches('/')
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if matches!(
                    name.as_str(),
                    "br" | "br/" | "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3"
                ) {
                    text.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => text.push(c),
        }
    }
    let decoded = text
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

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
        response.json().await.map_err(|_| ItsmError::Transient {
            reason: format!("{TOOL} sent an unreadable answer"),
            http_status: None,
            retry_after: None,
        })
    }

    /// Closed or resolved requests, `row_count` from `start_index` (1-based),
    /// resolved within `[since, until)` when given.
    pub async fn resolved_page(
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
        Ok(crate::TicketSummary {
            subject: request["subject"].as_str().unwrap_or_default().to_owned(),
            description: html_to_text(request["description"].as_str().unwrap_or_default()),
            status: request["status"]["name"].as_str().map(str::to_owned),
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
