//! Similar resolved tickets of one tenant, by full-text search.
//!
//! Subject, description, resolution and tags are weighted A/B/C/B in the
//! `search` column; the query's lexemes are OR'd (a user's ticket rarely
//! shares every word with the fix) and ranked by cover density.

use aia_events::{SimilarTicket, TenantId, TicketId};
use aia_store::{Client, StoreError, tenant_transaction};

/// Longest query text considered; longer descriptions add noise, not recall.
const MAX_QUERY_CHARS: usize = 1000;

pub async fn similar_tickets(
    client: &mut Client,
    tenant: &TenantId,
    text: &str,
    limit: i64,
) -> Result<Vec<SimilarTicket>, StoreError> {
    let query: String = text.chars().take(MAX_QUERY_CHARS).collect();
    let tx = tenant_transaction(client, tenant).await?;
    tx.execute("set local statement_timeout = '2s'", &[])
        .await?;
    let rows = tx
        .query(
            "select ticket_id, subject, left(description, 300), left(resolution, 500),
                    resolved_at, tags, ts_rank_cd(search, q, 32)::float8 as score
               from ticket_history,
                    (select nullif(replace(plainto_tsquery('english', $2)::text, ' & ', ' | '), '')::tsquery as q) query
              where tenant_id = $1 and q is not null and search @@ q
              order by score desc, resolved_at desc
              limit $3",
            &[&tenant.as_str(), &query, &limit],
        )
        .await?;
    tx.commit().await?;
    rows.into_iter()
        .map(|row| {
            let ticket_id: String = row.get(0);
            Ok(SimilarTicket {
                ticket_id: TicketId::parse(&ticket_id)
                    .map_err(|err| StoreError::Corrupt(format!("ticket_history id: {err}")))?,
                subject: row.get(1),
                description: row.get(2),
                resolution: row.get(3),
                resolved_at: row.get(4),
                tags: row.get(5),
                score: row.get(6),
            })
        })
        .collect()
}
