//! A ServiceNow's resolved and closed incidents, for a history import: the
//! Table API, `stateIN6,7` ordered by `resolved_at`, 100 a page by offset
//! (the offset is the cursor), every field in one request a page.

use serde_json::Value;

use super::{FIELDS, ServiceNow, TOOL};
use crate::common::text_of;
use crate::{ImportWindow, ItsmError, Pace, ResolvedPage, ResolvedTicket};

const PAGE: u64 = 100;

impl ServiceNow {
    pub async fn resolved_page(
        &self,
        cursor: Option<&str>,
        window: &ImportWindow,
        pace: &Pace,
    ) -> Result<ResolvedPage, ItsmError> {
        let offset: u64 = match cursor {
            Some(cursor) => cursor.parse().map_err(|_| {
                ItsmError::permanent(format!("{TOOL} import cursor {cursor:?} is not an offset"))
            })?,
            None => 0,
        };
        let mut query = String::from("stateIN6,7");
        let format = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d %H:%M:%S").to_string();
        if let Some(since) = window.since {
            query.push_str(&format!("^resolved_at>={}", format(since)));
        }
        if let Some(until) = window.until {
            query.push_str(&format!("^resolved_at<{}", format(until)));
        }
        query.push_str("^ORDERBYresolved_at^ORDERBYsys_id");
        let mut url = self.api.url(&["api", "now", "table", "incident"]);
        url.query_pairs_mut()
            .append_pair("sysparm_query", &query)
            .append_pair("sysparm_fields", FIELDS)
            .append_pair("sysparm_exclude_reference_link", "true")
            .append_pair("sysparm_limit", &PAGE.to_string())
            .append_pair("sysparm_offset", &offset.to_string());
        pace.wait().await;
        let response = self.send(|| self.api.http.get(url.clone())).await?;
        let total = response
            .headers()
            .get("x-total-count")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        let body: Value = crate::common::read_json(TOOL, response).await?;
        let records = body["result"].as_array().cloned().unwrap_or_default();
        let read = records.len() as u64;
        let tickets = records
            .iter()
            .filter_map(|incident| {
                let summary = super::summary(incident);
                let resolution = summary.resolution?;
                Some(ResolvedTicket {
                    id: text_of(&incident["number"])?,
                    subject: summary.subject,
                    description: summary.description,
                    resolution: resolution.text,
                    priority: summary.priority,
                    resolved_at: resolution.resolved_at,
                    tags: Vec::new(),
                })
            })
            .filter(|ticket| window.contains(ticket.resolved_at))
            .collect();
        let next = offset + read;
        let more = read == PAGE && total.is_none_or(|total| next < total);
        Ok(ResolvedPage {
            tickets,
            next: more.then(|| next.to_string()),
            total,
        })
    }
}
