//! A Freshservice's resolved and closed tickets, for a history import: the
//! ticket list ordered by update (`updated_since`, 100 a page, the `Link`
//! header to the next), each resolved one read whole for its resolution
//! notes.

use serde_json::Value;

use super::{Freshservice, TOOL};
use crate::common::next_link;
use crate::{ImportWindow, ItsmError, Pace, ResolvedPage, ResolvedTicket};

impl Freshservice {
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
        // Without updated_since the list holds only the last 30 days.
        let since = window
            .since
            .map(|since| since.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| "2000-01-01T00:00:00Z".into());
        let mut url = self.api.url(&["api", "v2", "tickets"]);
        url.query_pairs_mut()
            .append_pair("updated_since", &since)
            .append_pair("order_type", "asc")
            .append_pair("per_page", "100")
            .append_pair("page", &page.to_string());
        pace.wait().await;
        let response = self.send(self.api.http.get(url)).await?;
        let has_next = next_link(response.headers()).is_some();
        let body: Value = crate::common::read_json(TOOL, response).await?;
        let mut tickets = Vec::new();
        for listed in body["tickets"].as_array().into_iter().flatten() {
            if !super::is_resolved(&listed["status"]) {
                continue;
            }
            let Some(id) = listed["id"].as_u64() else {
                continue;
            };
            pace.wait().await;
            let whole = self
                .json(self.api.http.get(self.whole_ticket_url(id)))
                .await?;
            let summary = super::summary(&whole["ticket"]);
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
                tags: summary.tags,
            });
        }
        Ok(ResolvedPage {
            tickets,
            next: has_next.then(|| (page + 1).to_string()),
            total: None,
        })
    }
}
