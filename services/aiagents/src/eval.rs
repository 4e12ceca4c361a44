//! `aiagents eval-retrieval DATASET`: loads a data set of resolved tickets
//! and queries (the shape of `demo/tickets.json`) into a fresh database,
//! embeds the tickets, and scores every method side by side — the original
//! system's, ours by words, by meaning, and fused: recall@k, MRR, hits from
//! another tenant, and how often a query with no relevant ticket gets
//! nothing back.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use aia_embed::Embedder;
use aia_events::TenantId;
use aia_store::embeddings::{Corpus, NewVector};
use anyhow::Context as _;
use context_gatherer::sources::fusion::Fusion;
use context_gatherer::sources::similar::{self, Semantic};

use crate::dataset::{self, DataSet};

/// One method's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub method: String,
    pub recall_at_k: f64,
    pub mrr: f64,
    pub cross_tenant_hits: usize,
    /// Queries without a relevant ticket that got an empty answer.
    pub silent_on_no_match: usize,
    /// Queries without a relevant ticket whose answer held no likely match
    /// (score 0.5 or more; every hit of the original's method counts).
    pub nothing_likely_on_no_match: usize,
    pub no_match_queries: usize,
    pub queries_with_relevant: usize,
    /// Queries with a relevant ticket that found one in the top k and
    /// called it likely.
    pub relevant_and_likely: usize,
    /// The highest confidence any query without a relevant ticket got for
    /// its best hit (methods that score hits): how close "nothing
    /// relevant" came to being called likely.
    pub highest_no_match_confidence: Option<f32>,
}

/// The original system's search: `plainto_tsquery('english')` on the
/// description, `ts_rank > 0.01`, top 5; `pg_trgm` similarity above 0.3
/// when that finds nothing.
async fn original(
    client: &tokio_postgres::Client,
    tenant: &str,
    text: &str,
    k: i64,
) -> anyhow::Result<Vec<Hit>> {
    let text: String = text.chars().take(1000).collect();
    let rows = client
        .query(
            "select tenant_id, ticket_id from ticket_history
              where tenant_id = $1
                and to_tsvector('english', description) @@ plainto_tsquery('english', $2)
                and ts_rank(to_tsvector('english', description), plainto_tsquery('english', $2)) > 0.01
              order by ts_rank(to_tsvector('english', description), plainto_tsquery('english', $2)) desc
              limit $3",
            &[&tenant, &text, &k],
        )
        .await?;
    let rows = if rows.is_empty() {
        client
            .query(
                "select tenant_id, ticket_id from ticket_history
                  where tenant_id = $1 and similarity(description, $2) > 0.3
                  order by similarity(description, $2) desc limit $3",
                &[&tenant, &text, &k],
            )
            .await?
    } else {
        rows
    };
    Ok(rows
        .iter()
        .map(|row| Hit {
            tenant: row.get(0),
            id: row.get(1),
            likely: true,
            confidence: None,
        })
        .collect())
}

/// One hit of a method.
#[derive(Debug, Clone)]
struct Hit {
    tenant: String,
    id: String,
    /// Whether the method calls it a likely match.
    likely: bool,
    /// Its calibrated confidence, where the method has one.
    confidence: Option<f32>,
}

fn score(method: String, data: &DataSet, answers: &[Vec<Hit>], k: usize) -> Scores {
    let mut recall_sum = 0.0;
    let mut rr_sum = 0.0;
    let mut cross_tenant_hits = 0;
    let mut silent = 0;
    let mut nothing_likely = 0;
    let mut with_relevant = 0;
    let mut no_match = 0;
    let mut highest_no_match: Option<f32> = None;
    let mut relevant_likely = 0;
    for (query, answer) in data.queries.iter().zip(answers) {
        cross_tenant_hits += answer
            .iter()
            .filter(|hit| hit.tenant != query.tenant_id)
            .count();
        let ids: Vec<&str> = answer.iter().take(k).map(|hit| hit.id.as_str()).collect();
        if query.relevant.is_empty() {
            no_match += 1;
            if ids.is_empty() {
                silent += 1;
            }
            if !answer.iter().take(k).any(|hit| hit.likely) {
                nothing_likely += 1;
            }
            if let Some(best) = answer
                .iter()
                .filter_map(|hit| hit.confidence)
                .reduce(f32::max)
            {
                highest_no_match = Some(highest_no_match.map_or(best, |seen| seen.max(best)));
            }
            continue;
        }
        with_relevant += 1;
        let relevant: HashSet<&str> = query.relevant.iter().map(String::as_str).collect();
        let found = ids.iter().filter(|id| relevant.contains(*id)).count();
        recall_sum += found as f64 / relevant.len() as f64;
        if let Some(rank) = ids.iter().position(|id| relevant.contains(id)) {
            rr_sum += 1.0 / (rank as f64 + 1.0);
        }
        if answer
            .iter()
            .take(k)
            .any(|hit| hit.likely && relevant.contains(hit.id.as_str()))
        {
            relevant_likely += 1;
        }
    }
    Scores {
        method,
        recall_at_k: recall_sum / with_relevant.max(1) as f64,
        mrr: rr_sum / with_relevant.max(1) as f64,
        cross_tenant_hits,
        silent_on_no_match: silent,
        nothing_likely_on_no_match: nothing_likely,
        no_match_queries: no_match,
        queries_with_relevant: with_relevant,
        relevant_and_likely: relevant_likely,
        highest_no_match_confidence: highest_no_match,
    }
}

/// Runs the evaluation in a database created for it and dropped after.
/// What an evaluation measures: recall@`k` of every fusion, and the first
/// one again after a simulated technician's ratings at `feedback_weight`
/// (0: not measured).
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    pub k: usize,
    pub fusions: &'a [Fusion],
    pub feedback_weight: f32,
}

pub async fn run(
    owner_url: &str,
    app_url: &str,
    path: &Path,
    embedder: &Embedder,
    plan: Plan<'_>,
) -> anyhow::Result<Vec<Scores>> {
    let data = dataset::load(path)?;
    let name = format!("eval_{}", uuid::Uuid::now_v7().simple());
    let (owner, connection) = tokio_postgres::connect(owner_url, tokio_postgres::NoTls)
        .await
        .context("connecting with AI_AGENTS_OWNER_DATABASE_URL")?;
    tokio::spawn(connection);
    owner
        .batch_execute(&format!("create database {name}"))
        .await?;
    let result = evaluate(owner_url, app_url, &name, &data, embedder, plan).await;
    owner
        .batch_execute(&format!("drop database if exists {name} with (force)"))
        .await?;
    result
}

async fn evaluate(
    owner_url: &str,
    app_url: &str,
    name: &str,
    data: &DataSet,
    embedder: &Embedder,
    plan: Plan<'_>,
) -> anyhow::Result<Vec<Scores>> {
    let Plan {
        k,
        fusions,
        feedback_weight,
    } = plan;
    let (mut owner, connection) = aia_store::with_database(owner_url, name)?
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    aia_store::migrate::run(&mut owner).await?;
    let mut by_tenant: HashMap<&str, Vec<&dataset::Resolved>> = HashMap::new();
    for ticket in &data.resolved {
        by_tenant
            .entry(ticket.tenant_id.as_str())
            .or_default()
            .push(ticket);
    }
    for ticket in &data.resolved {
        TenantId::parse(&ticket.tenant_id)
            .with_context(|| format!("tenant {:?}", ticket.tenant_id))?;
        owner
            .execute(
                "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, tags,
                        resolved_at, last_event_id)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, gen_random_uuid())
                 on conflict (tenant_id, ticket_id) do nothing",
                &[&ticket.tenant_id, &ticket.ticket_id, &ticket.subject, &ticket.description, &ticket.resolution,
                  &ticket.priority.to_ascii_lowercase(), &ticket.tags, &ticket.resolved_at],
            )
            .await?;
    }
    let pool = aia_store::pool_from_config(aia_store::with_database(app_url, name)?, 2)?;
    let mut client = pool.get().await?;
    embed_corpus(&mut client, data, embedder).await?;
    let limit = i64::try_from(k)?;
    let sweep = fusions.len() > 1;
    let mut methods: Vec<(String, Option<Fusion>)> =
        vec![("ours, by words (full-text)".into(), None)];
    let mut likely_seen = Vec::new();
    for fusion in fusions {
        if !likely_seen.contains(&fusion.likely.to_bits()) {
            likely_seen.push(fusion.likely.to_bits());
            let label = if sweep {
                format!("ours, by meaning (cosine; likely {:.2})", fusion.likely)
            } else {
                "ours, by meaning (cosine)".into()
            };
            methods.push((
                label,
                Some(Fusion {
                    lexical_weight: 0.0,
                    ..*fusion
                }),
            ));
        }
    }
    for fusion in fusions {
        let label = if sweep {
            format!(
                "ours, fused (words ≤ {:.2}{}; likely {:.2})",
                fusion.lexical_weight,
                if fusion.rare_words_only {
                    ", rare ones only"
                } else {
                    ""
                },
                fusion.likely
            )
        } else {
            "ours, fused (meaning + words)".into()
        };
        methods.push((label, Some(*fusion)));
    }
    let mut answers: Vec<Vec<Vec<Hit>>> = vec![Vec::new(); methods.len()];
    let mut baseline = Vec::new();
    let mut embedded = Vec::new();
    for query in &data.queries {
        let tenant = TenantId::parse(&query.tenant_id)?;
        let text = match &query.subject {
            Some(subject) => format!("{subject}\n{}", query.description),
            None => query.description.clone(),
        };
        let vector = embedder.embed_one(&text).await?;
        for ((_, method), answer) in methods.iter().zip(&mut answers) {
            let hits = match method {
                None => similar::similar_tickets(&mut client, &tenant, &text, limit).await?,
                Some(fusion) => {
                    by_meaning(
                        &pool,
                        &tenant,
                        &text,
                        vector.as_slice(),
                        embedder,
                        *fusion,
                        k,
                    )
                    .await?
                }
            };
            answer.push(owned(&by_tenant, &query.tenant_id, &hits));
        }
        baseline.push(original(&owner, &query.tenant_id, &query.description, limit).await?);
        embedded.push((tenant, text, vector));
    }
    let mut scores = vec![score(
        "original (plainto_tsquery on description)".into(),
        data,
        &baseline,
        k,
    )];
    for ((method, _), answer) in methods.iter().zip(&answers) {
        scores.push(score(method.clone(), data, answer, k));
    }

    // A simulated technician rates every run of the first fusion from the
    // labels; then every query is asked again, as the same problems come
    // back, with the ratings in the ranking.
    if let Some(fusion) = fusions.first().filter(|_| feedback_weight > 0.0) {
        let first = methods
            .iter()
            .position(|(_, method)| *method == Some(*fusion))
            .expect("every fusion is a method");
        let mut rated = 0;
        for (query, answer) in data.queries.iter().zip(&answers[first]) {
            rated += usize::from(rate(&owner, query, answer, k).await?);
        }
        let mut after = Vec::new();
        for (query, (tenant, text, vector)) in data.queries.iter().zip(&embedded) {
            let learning = Fusion {
                feedback_weight,
                ..*fusion
            };
            let hits = by_meaning(
                &pool,
                tenant,
                text,
                vector.as_slice(),
                embedder,
                learning,
                k,
            )
            .await?;
            after.push(owned(&by_tenant, &query.tenant_id, &hits));
        }
        scores.push(score(
            format!(
                "ours, fused, after {rated} runs rated by a simulated technician (ratings ≤ {feedback_weight:.2})"
            ),
            data,
            &after,
            k,
        ));
    }
    Ok(scores)
}

async fn by_meaning(
    pool: &aia_store::Pool,
    tenant: &TenantId,
    text: &str,
    vector: &[f32],
    embedder: &Embedder,
    fusion: Fusion,
    k: usize,
) -> anyhow::Result<Vec<aia_events::SimilarTicket>> {
    similar::similar_tickets_by_meaning(
        pool,
        tenant,
        text,
        Semantic {
            model: embedder.model(),
            vector,
            fusion,
        },
        k,
    )
    .await
    .map_err(|err| anyhow::anyhow!("{err}"))
}

/// The hits as the scorer sees them. The search runs under the tenant's
/// row-level security, so any hit belongs to the tenant; the ids are
/// checked against its corpus anyway.
fn owned(
    by_tenant: &HashMap<&str, Vec<&dataset::Resolved>>,
    tenant: &str,
    hits: &[aia_events::SimilarTicket],
) -> Vec<Hit> {
    let corpus: HashSet<&str> = by_tenant
        .get(tenant)
        .map(|tickets| tickets.iter().map(|t| t.ticket_id.as_str()).collect())
        .unwrap_or_default();
    hits.iter()
        .map(|hit| {
            let id = hit.ticket_id.to_string();
            Hit {
                tenant: if corpus.contains(id.as_str()) {
                    tenant.to_owned()
                } else {
                    "other".into()
                },
                likely: hit.score >= 0.5,
                confidence: Some(hit.score as f32),
                id,
            }
        })
        .collect()
}

/// The technician's rating of one run, as the projection would store it:
/// the note cites the likely hits among the top three (the top one when
/// none is likely); it is helpful when one of them is a
/// relevant ticket (the fix was in the note), unhelpful when none is — and,
/// for a query with no relevant ticket, unhelpful when it called anything
/// likely (otherwise there is nothing to rate). Returns whether it rated.
async fn rate(
    owner: &tokio_postgres::Client,
    query: &dataset::Query,
    answer: &[Hit],
    k: usize,
) -> anyhow::Result<bool> {
    // The model cites what it judged to fit: the likely hits among the top
    // three, or the top one when none is likely.
    let mut cited: Vec<&str> = answer
        .iter()
        .take(3)
        .filter(|hit| hit.likely)
        .map(|hit| hit.id.as_str())
        .collect();
    if cited.is_empty() {
        cited.extend(answer.first().map(|hit| hit.id.as_str()));
    }
    let helpful = if cited.is_empty() {
        return Ok(false);
    } else if !query.relevant.is_empty() {
        cited
            .iter()
            .any(|id| query.relevant.iter().any(|r| r == id))
    } else if answer.iter().take(k).any(|hit| hit.likely) {
        false
    } else {
        return Ok(false);
    };
    let context = serde_json::json!({
        "similar_tickets": cited.iter().map(|id| serde_json::json!({"ticket_id": id})).collect::<Vec<_>>()
    });
    let note = format!("## Similar Tickets\n{}", cited.join(", "));
    owner
        .execute(
            "insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, context,
                    note_markdown, rating_thumbs_up, rated_at, last_event_id)
             values ($1, gen_random_uuid(), $2, 'completed', $3, $4, $5, now(), gen_random_uuid())",
            &[&query.tenant_id, &query.ticket_id, &context, &note, &helpful],
        )
        .await?;
    Ok(true)
}

/// Embeds every resolved ticket of the data set, as the indexer would.
async fn embed_corpus(
    client: &mut aia_store::Client,
    data: &DataSet,
    embedder: &Embedder,
) -> anyhow::Result<()> {
    for chunk in data.resolved.chunks(32) {
        let texts: Vec<String> = chunk
            .iter()
            .map(|t| aia_embed::ticket_text(&t.subject, &t.description, &t.resolution))
            .collect();
        let vectors = embedder.embed(&texts).await?;
        for ((ticket, text), vector) in chunk.iter().zip(&texts).zip(&vectors) {
            let tenant = TenantId::parse(&ticket.tenant_id)?;
            aia_store::embeddings::upsert(
                client,
                &tenant,
                Corpus::Tickets,
                &[NewVector {
                    id: &ticket.ticket_id,
                    model: embedder.model(),
                    vector: vector.as_slice(),
                    content_sha256: &aia_embed::content_digest(text),
                }],
            )
            .await?;
        }
    }
    Ok(())
}

/// The scores as a Markdown table.
pub fn table(scores: &[Scores], k: usize) -> String {
    let mut out = format!(
        "| method | recall@{k} | MRR | relevant found and called likely | cross-tenant hits | no-match queries answered with nothing | … with no likely match |\n|---|---|---|---|---|---|---|\n"
    );
    for s in scores {
        out.push_str(&format!(
            "| {} | {:.2} | {:.2} | {} of {} | {} | {} of {} | {} of {} |\n",
            s.method,
            s.recall_at_k,
            s.mrr,
            s.relevant_and_likely,
            s.queries_with_relevant,
            s.cross_tenant_hits,
            s.silent_on_no_match,
            s.no_match_queries,
            s.nothing_likely_on_no_match,
            s.no_match_queries
        ));
    }
    for s in scores {
        if let Some(highest) = s.highest_no_match_confidence {
            out.push_str(&format!(
                "\n{}: the best hit of a no-match query scored {highest:.2}; likely starts at 0.50 (margin {:+.2})",
                s.method,
                0.5 - highest
            ));
        }
    }
    out.push('\n');
    out
}
