//! What taking each language's mean out of the vectors does
//! (`context_gatherer::sources::centring`): the context stage's search by
//! meaning does it with half of each mean in a tenant of several
//! languages, so the "by meaning" rows already include it; these rows
//! rank the same way with none of the mean taken out (as before) and with
//! all of it, to show the choice.

use std::collections::HashMap;

use aia_events::TenantId;
use aia_store::embeddings::{self, Corpus, Stored};
use context_gatherer::sources::centring::{self, LanguageMeans};
use context_gatherer::sources::fusion::{self, Fusion};

use super::{Ask, Hit, Scores, language_of, score};
use crate::dataset::DataSet;

pub(super) async fn compared(
    client: &mut aia_store::Client,
    data: &DataSet,
    ask: &Ask<'_>,
    fusion: Fusion,
) -> anyhow::Result<Vec<Scores>> {
    let mut corpora: HashMap<&str, Vec<Stored>> = HashMap::new();
    for tenant in ask.by_tenant.keys() {
        let id = TenantId::parse(tenant)?;
        corpora.insert(
            tenant,
            embeddings::load(client, &id, Corpus::Tickets, ask.model).await?,
        );
    }
    let mut scores = Vec::new();
    for (share, label) in [
        (0.0, "ours, by meaning, no language's mean taken out"),
        (
            1.0,
            "ours, by meaning, all of each language's mean taken out",
        ),
    ] {
        let mut answers = Vec::new();
        for (query, (_, _, vector)) in data.queries.iter().zip(ask.embedded) {
            let stored = corpora
                .get(query.tenant_id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let means = (share > 0.0)
                .then(|| LanguageMeans::of(stored, share))
                .flatten();
            let ranked: Vec<(String, f32)> = match &means {
                Some(means) => {
                    centring::candidates(
                        vector,
                        None,
                        language_of(query),
                        stored,
                        means,
                        stored.len(),
                    )
                    .0
                }
                None => fusion::nearest(vector, stored, stored.len()),
            };
            // The same gap to the best as the search applies.
            let best = ranked.first().map_or(f32::NEG_INFINITY, |(_, c)| *c);
            answers.push(
                ranked
                    .into_iter()
                    .filter(|(_, cosine)| *cosine >= fusion.threshold)
                    .filter(|(_, cosine)| fusion.shown(best, *cosine, *cosine))
                    .take(ask.k)
                    .map(|(id, cosine)| Hit {
                        tenant: query.tenant_id.clone(),
                        likely: fusion.confidence(cosine) >= 0.5,
                        confidence: Some(fusion.confidence(cosine)),
                        id,
                    })
                    .collect(),
            );
        }
        scores.push(score(label.to_owned(), data, &answers, ask.k));
    }
    Ok(scores)
}
