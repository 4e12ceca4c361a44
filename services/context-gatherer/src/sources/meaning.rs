//! Search by meaning, shared by similar tickets and knowledge articles:
//! the tenant's nearest items of the query's model, with the full-text rank
//! of those candidates only fused in (see [`super::fusion`]).

use aia_events::{Language, TenantId};
use aia_store::embeddings::{self, Corpus};
use aia_store::{Client, StoreError, tenant_query};

use std::collections::HashMap;

use super::SourceError;
use super::centring::{self, LanguageMeans};
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

/// One candidate as words see it.
#[derive(Debug, Clone, PartialEq)]
struct Worded {
    id: String,
    /// The language it is written in (and stemmed by).
    language: String,
    /// Its full-text rank for the query; 0 when it shares no word.
    rank: f64,
}

/// The full-text rank of the given items only, and the language each is
/// written in: a few primary-key lookups instead of ranking every item of
/// the tenant that shares a word with the query.
async fn words_among(
    client: &mut Client,
    tenant: &TenantId,
    corpus: Corpus,
    text: &str,
    language: Language,
    ids: &[&str],
    rare_only: bool,
) -> Result<Vec<Worded>, StoreError> {
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
                 select {id}, language,
                        coalesce(case when search @@ q then ts_rank_cd(search, q, 32) end, 0)::float8
                   from {table}, query
                  where tenant_id = $1 and {id} = any($3)"
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
                "select {id}, language,
                        coalesce(case when search @@ q then ts_rank_cd(search, q, 32) end, 0)::float8
                   from {table}, {or_query}
                  where tenant_id = $1 and {id} = any($3)"
            ),
            &[&tenant.as_str(), &query, &ids],
        )
        .await?
    };
    Ok(rows
        .iter()
        .map(|row| Worded {
            id: row.get(0),
            language: row.get(1),
            rank: row.get(2),
        })
        .collect())
}

/// Whether shared words may reorder the candidates. Words match only
/// within a language (each item is stemmed by its own), so where the
/// contest mixes languages the bonus could only ever lift the tickets
/// written in the query's language above those in another — the same fault
/// described in English would lose to a German near miss. The contest is
/// the candidates words can move within or into the best `limit`: eligible
/// (at or above the floor) and within `lexical_weight` of the `limit`-th
/// best cosine; one below that cannot reach the answer whatever it shares.
/// Words break ties only when every candidate in the contest is written in
/// the query's language; otherwise meaning alone orders them. Where the
/// search took the languages' means out, the contest is measured on the
/// `centred` cosines the candidates are ordered by (eligibility stays the
/// plain cosine's).
fn words_may_reorder(
    language: Language,
    nearest: &[(String, f32)],
    centred: &HashMap<String, f32>,
    words: &[Worded],
    fusion: &Fusion,
    limit: usize,
) -> bool {
    let eligible: Vec<(&str, f32)> = nearest
        .iter()
        .filter(|(_, cosine)| *cosine >= fusion.threshold)
        .map(|(id, cosine)| (id.as_str(), centred.get(id).copied().unwrap_or(*cosine)))
        .collect();
    let mut orders: Vec<f32> = eligible.iter().map(|(_, order)| *order).collect();
    orders.sort_by(|a, b| b.total_cmp(a));
    let Some(last_in) = orders
        .get(limit.saturating_sub(1))
        .or(orders.last())
        .copied()
    else {
        return true;
    };
    let reach = last_in - fusion.lexical_weight;
    let contest: std::collections::HashSet<&str> = eligible
        .iter()
        .filter(|(_, order)| *order >= reach)
        .map(|(id, _)| *id)
        .collect();
    words
        .iter()
        .filter(|item| contest.contains(item.id.as_str()))
        .all(|item| item.language == language.code())
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
    if stored.is_empty() {
        // Nothing embedded by this model yet (a model just switched to,
        // items imported while the embedder was away): nothing to find by
        // meaning, everything still to find by words.
        return Err(SourceError::Failed(format!(
            "no vectors of {} yet (`aiagents reembed` makes them)",
            semantic.model
        )));
    }
    fusion::check_dimensions(semantic.vector, &stored).map_err(SourceError::Failed)?;
    if let Some(rewrite) = semantic.rewrite {
        fusion::check_dimensions(rewrite, &stored).map_err(SourceError::Failed)?;
    }
    // In a corpus of several languages, candidates are chosen and ordered
    // with each language's mean taken out (the plain cosine is kept for the
    // floor and the confidence).
    let (nearest, centred) = match LanguageMeans::of(&stored, centring::SHARE) {
        Some(means) => centring::candidates(
            semantic.vector,
            semantic.rewrite,
            language,
            &stored,
            &means,
            CANDIDATES,
        ),
        None => {
            let mut nearest = fusion::nearest(semantic.vector, &stored, CANDIDATES);
            if let Some(rewrite) = semantic.rewrite {
                nearest = fusion::nearer_of(
                    nearest,
                    fusion::nearest(rewrite, &stored, CANDIDATES),
                    CANDIDATES,
                );
            }
            (nearest, HashMap::new())
        }
    };
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
    let mut fusion = semantic.fusion;
    if !words_may_reorder(language, &nearest, &centred, &words, &fusion, limit) {
        fusion.lexical_weight = 0.0;
    }
    let words: Vec<(String, f64)> = words
        .into_iter()
        .filter(|item| item.rank > 0.0)
        .map(|item| (item.id, item.rank))
        .collect();
    // Technicians rate notes, and notes cite tickets: only tickets learn.
    // Ratings only nudge, so when they cannot be read the ranking goes on
    // without them.
    let feedback = if semantic.fusion.feedback_weight > 0.0 && corpus == Corpus::Tickets {
        let neighbourhood = &ids[..ids.len().min(NEIGHBOURHOOD)];
        super::feedback::signals(client, tenant, &ids, neighbourhood)
            .await
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, "technicians' ratings not read; ranking without them");
                HashMap::new()
            })
    } else {
        HashMap::new()
    };
    Ok(fusion
        .rank(&nearest, &words, &feedback, &centred, limit)
        .into_iter()
        .map(|scored| Ranked {
            id: scored.id,
            confidence: f64::from(scored.confidence),
            shares_words: scored.shares_words,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worded(id: &str, language: &str, rank: f64) -> Worded {
        Worded {
            id: id.into(),
            language: language.into(),
            rank,
        }
    }

    #[test]
    fn words_break_ties_only_among_candidates_of_the_querys_language() {
        let fusion = Fusion {
            threshold: 0.75,
            lexical_weight: 0.05,
            ..fusion::DEFAULT
        };
        let nearest = vec![("EN-1".to_owned(), 0.91), ("DE-1".to_owned(), 0.88)];
        let mixed = [worded("EN-1", "en", 0.0), worded("DE-1", "de", 0.4)];
        assert!(!words_may_reorder(
            Language::German,
            &nearest,
            &HashMap::new(),
            &mixed,
            &fusion,
            5
        ));

        let german = [worded("EN-1", "de", 0.1), worded("DE-1", "de", 0.4)];
        assert!(words_may_reorder(
            Language::German,
            &nearest,
            &HashMap::new(),
            &german,
            &fusion,
            5
        ));

        // A candidate in another language below the floor is no candidate.
        let nearest = vec![("DE-2".to_owned(), 0.90), ("EN-2".to_owned(), 0.60)];
        let words = [worded("DE-2", "de", 0.2), worded("EN-2", "en", 0.0)];
        assert!(words_may_reorder(
            Language::German,
            &nearest,
            &HashMap::new(),
            &words,
            &fusion,
            5
        ));
        let low_floor = Fusion {
            threshold: 0.50,
            lexical_weight: 0.05,
            ..fusion::DEFAULT
        };
        assert!(!words_may_reorder(
            Language::German,
            &nearest,
            &HashMap::new(),
            &words,
            &low_floor,
            5
        ));
    }

    #[test]
    fn a_candidate_words_cannot_lift_into_the_answer_does_not_stop_them() {
        // Limit 2: the answer is the best two; words add at most 0.05, so
        // the English ticket at 0.70 (0.15 below the second) is no contest.
        let fusion = Fusion {
            threshold: 0.20,
            lexical_weight: 0.05,
            ..fusion::DEFAULT
        };
        let nearest = vec![
            ("DE-1".to_owned(), 0.90),
            ("DE-2".to_owned(), 0.85),
            ("DE-3".to_owned(), 0.83),
            ("EN-1".to_owned(), 0.70),
        ];
        let words = [
            worded("DE-1", "de", 0.1),
            worded("DE-2", "de", 0.0),
            worded("DE-3", "de", 0.3),
            worded("EN-1", "en", 0.0),
        ];
        assert!(words_may_reorder(
            Language::German,
            &nearest,
            &HashMap::new(),
            &words,
            &fusion,
            2
        ));
        // With room for four, the English ticket is in the answer, and
        // words could push it down: meaning alone orders them.
        assert!(!words_may_reorder(
            Language::German,
            &nearest,
            &HashMap::new(),
            &words,
            &fusion,
            4
        ));
    }
}
