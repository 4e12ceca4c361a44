//! Search by meaning with each language's mean taken out: an experiment
//! the evaluation measures; the context stage does not do it yet.
//!
//! A multilingual model places every text of one language a little to one
//! side (Libovický et al., "On the Language Neutrality of Pre-trained
//! Multilingual Representations", 2020): an English query sits nearer to
//! an unrelated English ticket than to the French ticket with its cause.
//! Taking part of each language's mean vector (over the tenant's own
//! corpus) out of the query and of every ticket before comparing them
//! leaves more of what they are about. Only a tenant whose corpus holds at
//! least two languages, each with [`MIN_ITEMS`] tickets, is centred; a
//! language with fewer (or a query in a language the corpus lacks) takes
//! the tenant's mean. Hits are ordered by the centred cosine; the floor
//! and the calibrated confidence stay those of the plain cosine, so
//! "likely" keeps its meaning.

use std::collections::HashMap;

use aia_events::{Language, TenantId};
use aia_store::embeddings::{self, Corpus, Stored};
use context_gatherer::sources::fusion::Fusion;

use super::{Ask, Hit, Scores, score};
use crate::dataset::DataSet;

/// Fewest tickets of a language for its own mean.
pub const MIN_ITEMS: usize = 3;

/// The share of a language's mean taken out, swept.
const SHARES: [f32; 2] = [0.5, 1.0];

pub(super) async fn centred(
    client: &mut aia_store::Client,
    data: &DataSet,
    ask: &Ask<'_>,
    fusion: Fusion,
) -> anyhow::Result<Vec<Scores>> {
    // Each resolved ticket in the language the projector stores it in.
    let languages: HashMap<(&str, &str), Language> = data
        .resolved
        .iter()
        .map(|t| {
            let text = aia_embed::ticket_text(&t.subject, &t.description, &t.resolution);
            (
                (t.tenant_id.as_str(), t.ticket_id.as_str()),
                aia_events::language::decide(&text, None, None).language,
            )
        })
        .collect();
    let mut corpora: HashMap<String, Vec<Stored>> = HashMap::new();
    for tenant in ask.by_tenant.keys() {
        let id = TenantId::parse(tenant)?;
        corpora.insert(
            (*tenant).to_owned(),
            embeddings::load(client, &id, Corpus::Tickets, ask.model).await?,
        );
    }
    let mut scores = Vec::new();
    for share in SHARES {
        let mut answers = Vec::new();
        for (query, (_, text, vector)) in data.queries.iter().zip(ask.embedded) {
            let stored = corpora
                .get(&query.tenant_id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let language_of = |id: &str| {
                languages
                    .get(&(query.tenant_id.as_str(), id))
                    .copied()
                    .unwrap_or(Language::English)
            };
            let query_language = aia_events::language::decide(text, None, None).language;
            let hits = rank(stored, &language_of, vector, query_language, share, fusion);
            answers.push(
                hits.into_iter()
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
        scores.push(score(
            format!("ours, by meaning, {share} of each language's mean taken out"),
            data,
            &answers,
            ask.k,
        ));
    }
    Ok(scores)
}

/// The tenant's tickets above the floor, ordered by the centred cosine,
/// each with its plain cosine.
fn rank(
    stored: &[Stored],
    language_of: &dyn Fn(&str) -> Language,
    query: &[f32],
    query_language: Language,
    share: f32,
    fusion: Fusion,
) -> Vec<(String, f32)> {
    let means = Means::of(stored, language_of);
    let centred_query = means.centre(query, query_language, share);
    let mut ranked: Vec<(f32, &Stored, f32)> = stored
        .iter()
        .filter(|item| item.vector.len() == query.len())
        .map(|item| (dot(&item.vector, query), item))
        .filter(|(cosine, _)| *cosine >= fusion.threshold)
        .map(|(cosine, item)| {
            let centred = means.centre(&item.vector, language_of(&item.id), share);
            (dot(&centred, &centred_query), item, cosine)
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    ranked
        .into_iter()
        .map(|(_, item, cosine)| (item.id.clone(), cosine))
        .collect()
}

/// The tenant's mean vector and each of its languages' (those with enough
/// tickets), when it holds two such languages or more.
struct Means {
    tenant: Option<Vec<f32>>,
    languages: HashMap<Language, Vec<f32>>,
}

impl Means {
    fn of(stored: &[Stored], language_of: &dyn Fn(&str) -> Language) -> Self {
        let mut sums: HashMap<Language, (Vec<f32>, usize)> = HashMap::new();
        let mut all: Option<(Vec<f32>, usize)> = None;
        for item in stored {
            let (sum, n) = sums
                .entry(language_of(&item.id))
                .or_insert_with(|| (vec![0.0; item.vector.len()], 0));
            let (total, count) = all.get_or_insert_with(|| (vec![0.0; item.vector.len()], 0));
            if sum.len() != item.vector.len() || total.len() != item.vector.len() {
                continue;
            }
            sum.iter_mut().zip(&item.vector).for_each(|(s, v)| *s += v);
            total
                .iter_mut()
                .zip(&item.vector)
                .for_each(|(s, v)| *s += v);
            *n += 1;
            *count += 1;
        }
        let mean = |(sum, n): (Vec<f32>, usize)| sum.into_iter().map(|s| s / n as f32).collect();
        let languages: HashMap<Language, Vec<f32>> = sums
            .into_iter()
            .filter(|(_, (_, n))| *n >= MIN_ITEMS)
            .map(|(language, sum)| (language, mean(sum)))
            .collect();
        if languages.len() < 2 {
            return Self {
                tenant: None,
                languages: HashMap::new(),
            };
        }
        Self {
            tenant: all.filter(|(_, n)| *n > 0).map(mean),
            languages,
        }
    }

    /// `vector` less `share` of its language's mean (the tenant's when the
    /// language has none), at unit length; unchanged in a one-language
    /// tenant.
    fn centre(&self, vector: &[f32], language: Language, share: f32) -> Vec<f32> {
        let Some(mean) = self.languages.get(&language).or(self.tenant.as_ref()) else {
            return vector.to_vec();
        };
        let centred: Vec<f32> = vector
            .iter()
            .zip(mean)
            .map(|(v, m)| v - share * m)
            .collect();
        let norm = dot(&centred, &centred).sqrt();
        if norm <= f32::EPSILON {
            return vector.to_vec();
        }
        centred.into_iter().map(|v| v / norm).collect()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
