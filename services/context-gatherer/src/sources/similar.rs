//! Similar resolved tickets of one tenant.
//!
//! With a query vector, by meaning: the tenant's nearest tickets by cosine
//! under the stored vectors of the same model, with full-text rank fused in
//! as a bounded bonus (see [`super::fusion`]). Without one (no embedder
//! configured, or it failed), by words alone: subject, description,
//! resolution and tags weighted A/B/C/B, the query's lexemes OR'd and
//! ranked by weighted frequency (`ts_rank`: as good as cover density on
//! the evaluation sets, at a quarter of the cost over many matches).

use aia_events::{Language, MatchedBy, SimilarTicket, TenantId, TicketId};
use aia_store::embeddings::Corpus;
use aia_store::{Client, Pool, StoreError, search_query, tenant_query};

use super::meaning;
pub use super::meaning::Semantic;
use super::words;
use super::{SEARCH_TIMEOUT, SourceError};

/// What a hit shows, read by [`ticket`].
const DETAILS: &str = "t.ticket_id, t.subject, left(t.description, 300), left(t.resolution, 500), t.resolved_at, t.tags";

fn ticket(
    row: &aia_store::Row,
    score: f64,
    matched_by: MatchedBy,
) -> Result<SimilarTicket, StoreError> {
    let ticket_id: String = row.get(0);
    Ok(SimilarTicket {
        ticket_id: TicketId::parse(&ticket_id)
            .map_err(|err| StoreError::Corrupt(format!("ticket_history id: {err}")))?,
        subject: row.get(1),
        description: row.get(2),
        resolution: row.get(3),
        resolved_at: row.get(4),
        tags: row.get(5),
        score,
        matched_by: Some(matched_by),
    })
}

/// The tickets `ranked` names, in that order, each with its score and why
/// it matched.
async fn details(
    client: &mut Client,
    tenant: &TenantId,
    ranked: &[meaning::Ranked],
) -> Result<Vec<SimilarTicket>, StoreError> {
    let ids: Vec<&str> = ranked.iter().map(|hit| hit.id.as_str()).collect();
    let rows = tenant_query(
        client,
        tenant,
        &format!(
            "select {DETAILS} from ticket_history t where tenant_id = $1 and ticket_id = any($2)"
        ),
        &[&tenant.as_str(), &ids],
    )
    .await?;
    let mut by_id: std::collections::HashMap<String, aia_store::Row> =
        rows.into_iter().map(|row| (row.get(0), row)).collect();
    ranked
        .iter()
        .filter_map(|hit| by_id.remove(&hit.id).map(|row| (row, hit)))
        .map(|(row, hit)| {
            let matched_by = if hit.shares_words {
                MatchedBy::Both
            } else {
                MatchedBy::Meaning
            };
            ticket(&row, hit.confidence, matched_by)
        })
        .collect()
}

/// By words alone. Shared words say little about whether a ticket holds
/// the fix, so a hit found this way is never called likely: its score is
/// the full-text rank scaled into [0, 0.5).
pub async fn similar_tickets(
    client: &mut Client,
    tenant: &TenantId,
    text: &str,
    language: Language,
    limit: i64,
) -> Result<Vec<SimilarTicket>, StoreError> {
    let query = words::query_text(text);
    let or_query = words::or_query(language);
    // The ranking and the hits' details in one statement, so one round trip.
    let rows = search_query(
        client,
        tenant,
        SEARCH_TIMEOUT,
        &format!(
            "with ranked as (
               select ticket_id, ts_rank(search, q, 32)::float8 as score, resolved_at
                 from ticket_history, {or_query}
                where tenant_id = $1 and q is not null and search @@ q
                order by score desc, resolved_at desc, ticket_id
                limit $3)
             select {DETAILS}, ranked.score
               from ranked join ticket_history t on t.tenant_id = $1 and t.ticket_id = ranked.ticket_id
              order by ranked.score desc, ranked.resolved_at desc, ranked.ticket_id"
        ),
        &[&tenant.as_str(), &query, &limit],
    )
    .await?;
    rows.iter()
        .map(|row| ticket(row, words::score(row.get(6)), MatchedBy::Words))
        .collect()
}

/// By meaning, with words as a bounded bonus. Hits come in fused order;
/// each one's score is its calibrated confidence (0.5 and above: a likely
/// match).
pub async fn similar_tickets_by_meaning(
    db: &Pool,
    tenant: &TenantId,
    text: &str,
    language: Language,
    semantic: Semantic<'_>,
    limit: usize,
) -> Result<Vec<SimilarTicket>, SourceError> {
    let mut client = db.get().await.map_err(StoreError::from)?;
    let ranked = meaning::ranked(
        &mut client,
        tenant,
        Corpus::Tickets,
        text,
        language,
        semantic,
        limit,
    )
    .await?;
    Ok(details(&mut client, tenant, &ranked).await?)
}
