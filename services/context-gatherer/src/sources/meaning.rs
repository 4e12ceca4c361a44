//! Search by meaning, shared by similar tickets and knowledge articles:
//! the tenant's nearest items of the query's model, with the full-text rank
//! of those candidates only fused in (see [`super::fusion`]).

use aia_events::{Language, TenantId};
use aia_store::embeddings::{self, Corpus};
use aia_store::{Client, StoreError, tenant_query};

use super::SourceError;
use super::fusion::{self, Fusion};
use super::words;

/// Candidates meaning brings to the fusion.
const CANDIDATES: usize = 30;

/// The nearest candidates that say which earlier tickets were "like" this
/// one (see [`super::feedback`]).
const NEIGHBOURHOOD: usize = 5;

/// The query's embedding, and the model whose stored vectors it may be
/// compared with.
#[derive(Debug, Clone, Copy)]
pub struct Semantic<'a> {
    pub model: &'a str,
    pub vector: &'a [f32],
    /// The embedding of the LLM's rewrite of the ticket (see
    /// [`crate::rewrite`]), searched beside it: an item is as near as the
    /// nearer of the two.
    pub rewrite: Option<&'a [f32]>,
    pub fusion: Fusion,
}

/// The full-text rank of the given items only: a few primary-key lookups
/// instead of ranking every item of the tenant that shares a word with the
/// query.
async fn words_among(
    client: &mut Client,
    tenant: &TenantId,
    corpus: Corpus,
    text: &str,
    language: Language,
    ids: &[&str],
    rare_only: bool,
) -> Result<Vec<(String, f64)>, StoreError> {
    let config = language.text_search_config();
    let (table, id) = match corpus {
        Corpus::Tickets => ("ticket_history", "ticket_id"),
        Corpus::Articles => ("knowledge_articles", "article_id"),
    };
    let query = words::query_text(text);
    let rows = if rare_only {
        // The query's lexemes in at most RARE_WORD_TICKETS of the tenant's
        // items (each counted by an index probe that stops at one more).
        tenant_query(
            client,
            tenant,
            &format!(
                "with lexemes as (
                   select lexeme from unnest(tsvector_to_array(to_tsvector('{config}', $2))) lexeme),
                 rare as (
                   select lexeme from lexemes l
                    where (select count(*) from (
                             select 1 from {table} x
                              where x.tenant_id = $1 and x.search @@ quote_literal(l.lexeme)::tsquery
                              limit $4::int8 + 1) seen) <= $4::int8),
                 query as (
                   select string_agg(quote_literal(lexeme), ' | ')::tsquery as q from rare)
                 select {id}, ts_rank_cd(search, q, 32)::float8
                   from {table}, query
                  where tenant_id = $1 and {id} = any($3) and q is not null and search @@ q"
            ),
            &[&tenant.as_str(), &query, &ids, &fusion::RARE_WORD_TICKETS],
        )
        .await?
    } else {
        let or_query = words::or_query(language);
        tenant_query(
            client,
            tenant,
            &format!(
                "select {id}, ts_rank_cd(search, q, 32)::float8
                   from {table}, {or_query}
                  where tenant_id = $1 and {id} = any($3) and q is not null and search @@ q"
            ),
            &[&tenant.as_str(), &query, &ids],
        )
        .await?
    };
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// One item found by meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub id: String,
    /// The calibrated confidence; 0.5 and above is likely.
    pub confidence: f64,
    /// It also shares words with the query.
    pub shares_words: bool,
}

/// The best `limit` items of `corpus` for the query, best first, each with
/// its calibrated confidence.
pub async fn ranked(
    client: &mut Client,
    tenant: &TenantId,
    corpus: Corpus,
    text: &str,
    language: Language,
    semantic: Semantic<'_>,
    limit: usize,
) -> Result<Vec<Ranked>, SourceError> {
    let stored = embeddings::load(client, tenant, corpus, semantic.model).await?;
    fusion::check_dimensions(semantic.vector, &stored).map_err(SourceError::Failed)?;
    let mut nearest = fusion::nearest(semantic.vector, &stored, CANDIDATES);
    if let Some(rewrite) = semantic.rewrite {
        fusion::check_dimensions(rewrite, &stored).map_err(SourceError::Failed)?;
        nearest = fusion::nearer_of(
            nearest,
            fusion::nearest(rewrite, &stored, CANDIDATES),
            CANDIDATES,
        );
    }
    // Words only reorder the candidates meaning found, so only theirs are
    // ranked.
    let ids: Vec<&str> = nearest.iter().map(|(id, _)| id.as_str()).collect();
    let words = if semantic.fusion.lexical_weight > 0.0 && !nearest.is_empty() {
        words_among(
            client,
            tenant,
            corpus,
            text,
            language,
            &ids,
            semantic.fusion.rare_words_only,
        )
        .await?
    } else {
        vec![]
    };
    // Technicians rate notes, and notes cite tickets: only tickets learn.
    let feedback = if semantic.fusion.feedback_weight > 0.0 && corpus == Corpus::Tickets {
        let neighbourhood = &ids[..ids.len().min(NEIGHBOURHOOD)];
        super::feedback::signals(client, tenant, &ids, neighbourhood).await?
    } else {
        std::collections::HashMap::new()
    };
    Ok(semantic
        .fusion
        .rank(&nearest, &words, &feedback, limit)
        .into_iter()
        .map(|scored| Ranked {
            id: scored.id,
            confidence: f64::from(scored.confidence),
            shares_words: scored.shares_words,
        })
        .collect())
}
