//! A ConnectWise PSA's closed tickets, for a history import: the service
//! tickets with `closedFlag=true`, 100 a page in id order (the page number
//! is the cursor), then each one's notes for its description and
//! resolution.

use super::{ConnectWise, TOOL};
use crate::{ImportWindow, ItsmError, Pace, ResolvedPage, ResolvedTicket};

const PAGE: usize = 100;

impl ConnectWise {
    pub async fn resolved_page(
        &self,
        cursor: Option<&str>,
        window: &ImportWindow,
        pace: &Pace,
    ) -> Result<ResolvedPage, ItsmError> {
        let page: u64 = match cursor {
            Some(cursor) => cursor.parse().map_err(|_| {
                ItsmError::permanent(format!("{TOOL} import cursor {cursor:?} is not a page"))
            })?,
            None => 1,
        };
        let format =
            |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut conditions = String::from("closedFlag=true");
        if let Some(since) = window.since {
            conditions.push_str(&format!(" and closedDate>=[{}]", format(since)));
        }
        if let Some(until) = window.until {
            conditions.push_str(&format!(" and closedDate<[{}]", format(until)));
        }
        let mut url = self.api.url(&["service", "tickets"]);
        url.query_pairs_mut()
            .append_pair("conditions", &conditions)
            .append_pair("orderBy", "id asc")
            .append_pair("pageSize", &PAGE.to_string())
            .append_pair("page", &page.to_string());
        pace.wait().await;
        let listed = self.json(self.api.http.get(url)).await?;
        let listed = listed.as_array().cloned().unwrap_or_default();
        let mut tickets = Vec::new();
        for ticket in &listed {
            let Some(id) = ticket["id"].as_u64() else {
                continue;
            };
            pace.wait().await;
            let notes = self.notes(id).await?;
            let summary = super::summary(ticket, &notes);
            let Some(resolution) = summary.resolution else {
                continue;
            };
            if !window.contains(resolution.resolved_at) {
                continue;
            }
            tickets.push(ResolvedTicket {
                id: id.to_string(),
                subject: summary.subject,
                description: summary.description,
                resolution: resolution.text,
                priority: summary.priority,
                resolved_at: resolution.resolved_at,
                tags: Vec::new(),
            });
        }
        Ok(ResolvedPage {
            tickets,
            next: (listed.len() == PAGE).then(|| (page + 1).to_string()),
            total: None,
        })
    }
}
