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

mod centring;
pub mod incidents;
pub mod rewrite;
pub mod scores;
mod technician;
mod views;

use scores::{Hit, score};
pub use scores::{Scores, group_table, table};

/// How a swept row names its gap to the best hit.
fn gap_label(fusion: &Fusion) -> String {
    if fusion.gap.is_finite() {
        format!("; within {:.3} of the best", fusion.gap)
    } else {
        String::new()
    }
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

/// What an evaluation measures: recall@`k` of every fusion, and the first
/// one again after a simulated technician's ratings at `feedback_weight`
/// (0: not measured) and with an LLM's rewrite of each query (when `llm`
/// names an endpoint).
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    pub k: usize,
    pub fusions: &'a [Fusion],
    pub feedback_weight: f32,
    pub llm: Option<&'a rewrite::Llm>,
    /// Resolved tickets added to every tenant of the set as distractors
    /// (relevant to no query): how the scores hold as the history grows.
    pub distractors: &'a [dataset::Resolved],
}

/// The scores of one data set, and what its LLM rewrites cost.
#[derive(Debug)]
pub struct Report {
    pub scores: Vec<Scores>,
    pub rewrite: Option<rewrite::Spend>,
}

/// Runs the evaluation in a database created for it and dropped after.
pub async fn run(
    owner_url: &str,
    app_url: &str,
    path: &Path,
    embedder: &Embedder,
    plan: Plan<'_>,
) -> anyhow::Result<Report> {
    let mut data = dataset::load(path)?;
    with_distractors(&mut data, plan.distractors);
    let name = format!("eval_{}", uuid::Uuid::now_v7().simple());
    let owner = aia_store::connect(owner_url)
        .await
        .context("connecting with AI_AGENTS_OWNER_DATABASE_URL")?;
    owner
        .batch_execute(&format!("create database {name}"))
        .await?;
    let result = evaluate(owner_url, app_url, &name, &data, embedder, plan).await;
    owner
        .batch_execute(&format!("drop database if exists {name} with (force)"))
        .await?;
    result
}

/// Adds `distractors` to every tenant of `data`, each under an id of its
/// own (`X-` and its original id) so no query's label can name it.
pub fn with_distractors(data: &mut DataSet, distractors: &[dataset::Resolved]) {
    let tenants: std::collections::BTreeSet<String> = data
        .resolved
        .iter()
        .map(|ticket| ticket.tenant_id.clone())
        .collect();
    for tenant in tenants {
        for ticket in distractors {
            data.resolved.push(dataset::Resolved {
                tenant_id: tenant.clone(),
                ticket_id: format!("X-{}", ticket.ticket_id),
                ..ticket.clone()
            });
        }
    }
}

async fn evaluate(
    owner_url: &str,
    app_url: &str,
    name: &str,
    data: &DataSet,
    embedder: &Embedder,
    plan: Plan<'_>,
) -> anyhow::Result<Report> {
    let Plan {
        k,
        fusions,
        feedback_weight,
        llm,
        distractors: _,
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
        // As the projector writes it for a tenant without language
        // settings (the eval's): in the language its words are in.
        let language = aia_events::language::decide(
            &format!(
                "{}\n{}",
                aia_events::language::ticket_text(Some(&ticket.subject), &ticket.description),
                ticket.resolution
            ),
            None,
            None,
        )
        .language;
        owner
            .execute(
                "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, tags,
                        resolved_at, last_event_id, language)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, gen_random_uuid(), $9)
                 on conflict (tenant_id, ticket_id) do nothing",
                &[&ticket.tenant_id, &ticket.ticket_id, &ticket.subject, &ticket.description, &ticket.resolution,
                  &ticket.priority.to_ascii_lowercase(), &ticket.tags, &ticket.resolved_at, &language.code()],
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
        let key = (fusion.likely.to_bits(), fusion.gap.to_bits());
        if !likely_seen.contains(&key) {
            likely_seen.push(key);
            let label = if sweep {
                format!(
                    "ours, by meaning (cosine; likely {:.2}{})",
                    fusion.likely,
                    gap_label(fusion)
                )
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
                "ours, fused (words ≤ {:.2}{}; likely {:.2}{})",
                fusion.lexical_weight,
                if fusion.rare_words_only {
                    ", rare ones only"
                } else {
                    ""
                },
                fusion.likely,
                gap_label(fusion)
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
        let text = query.text();
        let vector = embedder.embed_one(&text).await?;
        for ((_, method), answer) in methods.iter().zip(&mut answers) {
            let hits = match method {
                None => {
                    similar::similar_tickets(&mut client, &tenant, &text, language_of(query), limit)
                        .await?
                }
                Some(fusion) => {
                    by_meaning(
                        &pool,
                        &tenant,
                        query,
                        vector.as_slice(),
                        embedder.model(),
                        *fusion,
                        k,
                    )
                    .await?
                }
            };
            answer.push(owned(&by_tenant, &query.tenant_id, &hits));
        }
        baseline.push(original(&owner, &query.tenant_id, &query.description, limit).await?);
        embedded.push((tenant, text, vector.as_slice().to_vec()));
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

    let ask = Ask {
        pool: &pool,
        model: embedder.model(),
        by_tenant: &by_tenant,
        embedded: &embedded,
        k,
    };
    if let Some(fusion) = fusions.first().filter(|_| feedback_weight > 0.0) {
        let first = methods
            .iter()
            .position(|(_, method)| *method == Some(*fusion))
            .expect("every fusion is a method");
        scores.extend(
            technician::after_ratings(
                &owner,
                data,
                &ask,
                &answers[first],
                *fusion,
                feedback_weight,
            )
            .await?,
        );
    }
    if let Some(fusion) = fusions.first() {
        scores.extend(centring::compared(&mut client, data, &ask, *fusion).await?);
        scores.extend(
            views::best_of_problem_and_fix(&mut client, data, embedder, &ask, *fusion).await?,
        );
    }
    let mut spend = None;
    if let (Some(fusion), Some(llm)) = (fusions.first(), llm) {
        let (rewritten, cost) = rewrite::scored(data, &ask, embedder, *fusion, llm).await?;
        scores.push(rewritten);
        spend = Some(cost);
    }
    Ok(Report {
        scores,
        rewrite: spend,
    })
}

/// A query's language, as the context stage decides it for a tenant with
/// no language settings.
fn language_of(query: &dataset::Query) -> aia_events::Language {
    let text = aia_events::language::ticket_text(query.subject.as_deref(), &query.description);
    aia_events::language::decide(&text, None, None).language
}

async fn by_meaning(
    pool: &aia_store::Pool,
    tenant: &TenantId,
    query: &dataset::Query,
    vector: &[f32],
    model: &str,
    fusion: Fusion,
    k: usize,
) -> anyhow::Result<Vec<aia_events::SimilarTicket>> {
    similar::similar_tickets_by_meaning(
        pool,
        tenant,
        &query.text(),
        language_of(query),
        Semantic {
            model,
            vector,
            rewrite: None,
            fusion,
        },
        k,
    )
    .await
    .map_err(|err| anyhow::anyhow!("{err}"))
}

/// Asking every query again, with its embedding from the first pass.
struct Ask<'a> {
    pool: &'a aia_store::Pool,
    /// The model whose stored vectors are searched.
    model: &'a str,
    by_tenant: &'a HashMap<&'a str, Vec<&'a dataset::Resolved>>,
    embedded: &'a [(TenantId, String, Vec<f32>)],
    k: usize,
}

impl Ask<'_> {
    /// Every query's hits under `model` and `fusion`, as the scorer sees them.
    async fn all(
        &self,
        data: &DataSet,
        model: &str,
        fusion: Fusion,
    ) -> anyhow::Result<Vec<Vec<Hit>>> {
        let mut answers = Vec::new();
        for (query, (tenant, _, vector)) in data.queries.iter().zip(self.embedded) {
            let hits = by_meaning(self.pool, tenant, query, vector, model, fusion, self.k).await?;
            answers.push(owned(self.by_tenant, &query.tenant_id, &hits));
        }
        Ok(answers)
    }
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
