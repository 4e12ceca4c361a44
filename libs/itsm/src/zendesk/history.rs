//! A Zendesk's solved and closed tickets, for a history import: the search
//! export (`GET /api/v2/search/export`, cursor-paged, 100 a page, no cap),
//! then each ticket's comments for its resolution.

use serde_json::Value;

use super::{TOOL, Zendesk};
use crate::{ImportWindow, ItsmError, Pace, ResolvedPage, ResolvedTicket};

impl Zendesk {
    pub async fn resolved_page(
        &self,
        cursor: Option<&str>,
        window: &ImportWindow,
        pace: &Pace,
    ) -> Result<ResolvedPage, ItsmError> {
        let mut query = String::from("status>=solved");
        if let Some(since) = window.since {
            query.push_str(&format!(" updated>={}", since.format("%Y-%m-%d")));
        }
        let mut url = self.api.url(&["api", "v2", "search", "export"]);
        url.query_pairs_mut()
            .append_pair("query", &query)
            .append_pair("filter[type]", "ticket")
            .append_pair("page[size]", "100");
        if let Some(cursor) = cursor {
            url.query_pairs_mut().append_pair("page[after]", cursor);
        }
        pace.wait().await;
        let body = self.json(self.api.http.get(url)).await?;
        let mut tickets = Vec::new();
        for result in body["results"].as_array().into_iter().flatten() {
            let Some(ticket) = self.resolved(result, window, pace).await? else {
                continue;
            };
            tickets.push(ticket);
        }
        let next = body["meta"]["has_more"]
            .as_bool()
            .unwrap_or(false)
            .then(|| body["meta"]["after_cursor"].as_str().map(str::to_owned))
            .flatten();
        Ok(ResolvedPage {
            tickets,
            next,
            total: None,
        })
    }

    async fn resolved(
        &self,
        ticket: &Value,
        window: &ImportWindow,
        pace: &Pace,
    ) -> Result<Option<ResolvedTicket>, ItsmError> {
        let summary = super::summary(ticket);
        let (Some(id), Some(resolution)) = (ticket["id"].as_u64(), summary.resolution) else {
            return Ok(None);
        };
        if !window.contains(resolution.resolved_at) {
            return Ok(None);
        }
        pace.wait().await;
        let comments = self.comments(id).await.map_err(|err| match err {
            ItsmError::Permanent { reason, .. } => {
                ItsmError::permanent(format!("{TOOL} ticket {id}: {reason}"))
            }
            transient => transient,
        })?;
        Ok(Some(ResolvedTicket {
            id: id.to_string(),
            subject: summary.subject,
            description: summary.description,
            resolution: super::resolution_text(&comments),
            priority: summary.priority,
            resolved_at: resolution.resolved_at,
            tags: summary.tags,
        }))
    }
}
