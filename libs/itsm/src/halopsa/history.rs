//! A HaloPSA's closed tickets, for a history import: the ticket list with
//! `closed_only`, 100 a page (the page number is the cursor), each one read
//! with its details for the description and closure note.

use super::{HaloPsa, TOOL};
use crate::{ImportWindow, ItsmError, Pace, ResolvedPage, ResolvedTicket};

const PAGE: u64 = 100;

impl HaloPsa {
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
        let mut url = self.api.url(&["api", "Tickets"]);
        url.query_pairs_mut()
            .append_pair("closed_only", "true")
            .append_pair("pageinate", "true")
            .append_pair("page_size", &PAGE.to_string())
            .append_pair("page_no", &page.to_string())
            .append_pair("order", "id");
        pace.wait().await;
        let body = self.json(|| self.api.http.get(url.clone())).await?;
        let listed = body["tickets"].as_array().cloned().unwrap_or_default();
        let mut tickets = Vec::new();
        for listed_ticket in &listed {
            let Some(id) = listed_ticket["id"].as_u64() else {
                continue;
            };
            pace.wait().await;
            let summary = super::summary(&self.ticket(id).await?);
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
        let total = body["record_count"].as_u64();
        let read = (page - 1) * PAGE + listed.len() as u64;
        let more = listed.len() as u64 == PAGE && total.is_none_or(|total| read < total);
        Ok(ResolvedPage {
            tickets,
            next: more.then(|| (page + 1).to_string()),
            total,
        })
    }
}
