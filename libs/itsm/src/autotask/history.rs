//! An Autotask's completed tickets, for a history import: `Tickets/query`
//! with `status = 5` (and the completion window), 100 a page; the cursor is
//! the `nextPageUrl` Autotask gives, followed only when it is Autotask's.

use serde_json::{Value, json};

use super::{Autotask, TOOL};
use crate::common::text_of;
use crate::{ImportWindow, ItsmError, Pace, ResolvedPage, ResolvedTicket};

impl Autotask {
    pub async fn resolved_page(
        &self,
        cursor: Option<&str>,
        window: &ImportWindow,
        pace: &Pace,
    ) -> Result<ResolvedPage, ItsmError> {
        pace.wait().await;
        let body = match cursor {
            Some(next) => {
                let url = reqwest::Url::parse(next)
                    .ok()
                    .filter(|url| self.trusted_zone(url))
                    .ok_or_else(|| {
                        ItsmError::permanent(format!(
                            "{TOOL} import cursor is not an Autotask page"
                        ))
                    })?;
                self.json(self.api.http.get(url)).await?
            }
            None => {
                let mut filter = vec![json!({"op": "eq", "field": "status", "value": 5})];
                let format =
                    |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
                if let Some(since) = window.since {
                    filter.push(
                        json!({"op": "gte", "field": "completedDate", "value": format(since)}),
                    );
                }
                if let Some(until) = window.until {
                    filter.push(
                        json!({"op": "lt", "field": "completedDate", "value": format(until)}),
                    );
                }
                let url = self.url(&["Tickets", "query"]).await?;
                self.json(
                    self.api
                        .http
                        .post(url)
                        .json(&json!({"filter": filter, "MaxRecords": 100})),
                )
                .await?
            }
        };
        let tickets = body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item: &Value| {
                let summary = super::summary(item);
                let resolution = summary.resolution?;
                Some(ResolvedTicket {
                    id: text_of(&item["id"])?,
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
        Ok(ResolvedPage {
            tickets,
            next: self.next_page(&body).map(String::from),
            total: None,
        })
    }
}
