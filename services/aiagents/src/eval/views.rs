//! Separate vectors for a ticket's problem (subject + description) and its
//! fix (resolution), beside the one for the whole ticket: each query takes
//! the best cosine of the three per ticket. An experiment the evaluation
//! measures; the indexer embeds the whole ticket only.

use std::collections::HashMap;

use aia_embed::Embedder;
use aia_events::TenantId;
use aia_store::embeddings::{Corpus, NewVector};
use context_gatherer::sources::fusion::Fusion;

use super::{Ask, Hit, Scores, score};
use crate::dataset::DataSet;

pub(super) async fn best_of_problem_and_fix(
    client: &mut aia_store::Client,
    data: &DataSet,
    embedder: &Embedder,
    ask: &Ask<'_>,
    fusion: Fusion,
) -> anyhow::Result<Vec<Scores>> {
    let problem = format!("{}#problem", ask.model);
    let fix = format!("{}#fix", ask.model);
    embed_view(client, data, embedder, &problem, |t| {
        format!("{}\n{}", t.subject, t.description)
    })
    .await?;
    embed_view(client, data, embedder, &fix, |t| t.resolution.clone()).await?;
    let meaning = Fusion {
        lexical_weight: 0.0,
        feedback_weight: 0.0,
        ..fusion
    };
    let mut views = Vec::new();
    for model in [ask.model, problem.as_str(), fix.as_str()] {
        views.push(ask.all(data, model, meaning).await?);
    }
    let best: Vec<Vec<Hit>> = (0..data.queries.len())
        .map(|query| best_of(views.iter().map(|view| view[query].as_slice()), ask.k))
        .collect();
    let mut scores = vec![score(
        "ours, by meaning, best of whole / problem / fix vectors".into(),
        data,
        &best,
        ask.k,
    )];
    // The fusion as the context stage runs it (words included) on the
    // whole ticket and on its problem, each ticket at its better score; the
    // problem view's own "likely" swept, since its cosines run higher.
    let whole = ask.all(data, ask.model, fusion).await?;
    for raise in [0.0, 0.05, 0.10, 0.15] {
        let problem_fusion = Fusion {
            likely: fusion.likely + raise,
            ..fusion
        };
        let problem_view = ask.all(data, &problem, problem_fusion).await?;
        let best: Vec<Vec<Hit>> = (0..data.queries.len())
            .map(|query| {
                best_of(
                    [whole[query].as_slice(), problem_view[query].as_slice()].into_iter(),
                    ask.k,
                )
            })
            .collect();
        scores.push(score(
            format!(
                "ours, fused, best of whole / problem (problem likely {:.2})",
                problem_fusion.likely
            ),
            data,
            &best,
            ask.k,
        ));
    }
    Ok(scores)
}

/// Each ticket once, with its best confidence over the views, best first.
fn best_of<'a>(views: impl Iterator<Item = &'a [Hit]>, k: usize) -> Vec<Hit> {
    let mut best: HashMap<&str, &Hit> = HashMap::new();
    for hit in views.flatten() {
        let better = best
            .get(hit.id.as_str())
            .is_none_or(|seen| hit.confidence.unwrap_or(0.0) > seen.confidence.unwrap_or(0.0));
        if better {
            best.insert(&hit.id, hit);
        }
    }
    let mut merged: Vec<Hit> = best.into_values().cloned().collect();
    merged.sort_by(|a, b| {
        b.confidence
            .unwrap_or(0.0)
            .total_cmp(&a.confidence.unwrap_or(0.0))
            .then_with(|| a.id.cmp(&b.id))
    });
    merged.truncate(k);
    merged
}

async fn embed_view(
    client: &mut aia_store::Client,
    data: &DataSet,
    embedder: &Embedder,
    model: &str,
    text: impl Fn(&crate::dataset::Resolved) -> String,
) -> anyhow::Result<()> {
    for chunk in data.resolved.chunks(32) {
        let texts: Vec<String> = chunk.iter().map(&text).collect();
        let vectors = embedder.embed(&texts).await?;
        for ((ticket, text), vector) in chunk.iter().zip(&texts).zip(&vectors) {
            aia_store::embeddings::upsert(
                client,
                &TenantId::parse(&ticket.tenant_id)?,
                Corpus::Tickets,
                &[NewVector {
                    id: &ticket.ticket_id,
                    model,
                    vector: vector.as_slice(),
                    content_sha256: &aia_embed::content_digest(text),
                }],
            )
            .await?;
        }
    }
    Ok(())
}
