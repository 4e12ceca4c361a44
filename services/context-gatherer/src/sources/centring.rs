//! Search by meaning across languages: part of each language's mean vector
//! taken out before comparing.
//!
//! A multilingual model places every text of one language a little to one
//! side (Libovický et al., "On the Language Neutrality of Pre-trained
//! Multilingual Representations", 2020): an English ticket sits nearer to
//! an unrelated English ticket than to the French one with its cause. In a
//! tenant whose corpus holds two languages or more, each with
//! [`MIN_ITEMS`] items, half of each language's mean (over the tenant's own
//! items of the model) is taken out of the query and of every item; a
//! language with fewer items, or a query in a language the corpus lacks,
//! takes the tenant's mean. Candidates are chosen and ordered by that
//! centred cosine; the plain cosine still decides the floor and the
//! calibrated confidence, so "likely" keeps its meaning. A one-language
//! tenant is not centred at all (measured: it gains nothing there).

use std::collections::HashMap;

use aia_events::Language;

use aia_store::embeddings::Stored;

/// Fewest items of a language for its own mean, and for it to count as
/// one of the corpus's languages.
pub const MIN_ITEMS: usize = 3;

/// The share of a language's mean taken out (`aiagents eval-retrieval`
/// measures ½ and all of it; all is too much where one language dominates
/// the corpus).
pub const SHARE: f32 = 0.5;

/// The tenant's mean vector and each of its languages' means.
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageMeans {
    tenant: Vec<f32>,
    languages: HashMap<String, Vec<f32>>,
    share: f32,
}

impl LanguageMeans {
    /// The means of `stored`, taking out `share` of them; `None` unless two
    /// languages have [`MIN_ITEMS`] items each.
    pub fn of(stored: &[Stored], share: f32) -> Option<Self> {
        // Counted first: most tenants write one language, and their search
        // pays no more than this count.
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for item in stored {
            *counts
                .entry(item.language.as_deref().unwrap_or_default())
                .or_default() += 1;
        }
        let languages = counts
            .iter()
            .filter(|(language, n)| !language.is_empty() && **n >= MIN_ITEMS)
            .count();
        if languages < 2 {
            return None;
        }
        let dimensions = stored.first()?.vector.len();
        let mut sums: HashMap<&str, (Vec<f32>, usize)> = HashMap::new();
        let mut total = (vec![0.0; dimensions], 0usize);
        for item in stored
            .iter()
            .filter(|item| item.vector.len() == dimensions && finite(&item.vector))
        {
            let language = item.language.as_deref().unwrap_or_default();
            let (sum, n) = sums
                .entry(language)
                .or_insert_with(|| (vec![0.0; dimensions], 0));
            add(sum, &item.vector);
            *n += 1;
            add(&mut total.0, &item.vector);
            total.1 += 1;
        }
        let languages: HashMap<String, Vec<f32>> = sums
            .into_iter()
            .filter(|(language, (_, n))| !language.is_empty() && *n >= MIN_ITEMS)
            .map(|(language, sum)| (language.to_owned(), mean(sum)))
            .collect();
        (languages.len() >= 2).then(|| Self {
            tenant: mean(total),
            languages,
            share,
        })
    }

    /// The mean taken out of an item in `language`: its language's, or
    /// the tenant's when the language has none of its own (or is unknown).
    fn mean_of(&self, language: Option<&str>) -> &[f32] {
        self.own(language)
            .map_or(&self.tenant, |language| &self.languages[language])
    }

    /// `language` when it has a mean of its own; `None` for the tenant's.
    fn own<'a>(&self, language: Option<&'a str>) -> Option<&'a str> {
        language.filter(|language| self.languages.contains_key(*language))
    }

    /// `vector` less the share of its language's mean (the tenant's when
    /// the language has none of its own), at unit length.
    pub fn centre(&self, vector: &[f32], language: Option<&str>) -> Vec<f32> {
        let mean = self.mean_of(language);
        let centred: Vec<f32> = vector
            .iter()
            .zip(mean)
            .map(|(v, m)| v - self.share * m)
            .collect();
        let norm = dot(&centred, &centred).sqrt();
        if !norm.is_finite() || norm <= f32::EPSILON {
            return vector.to_vec();
        }
        centred.into_iter().map(|v| v / norm).collect()
    }
}

/// The `n` stored vectors nearest to `query` (in `language`; `None` takes
/// the tenant's mean) by the centred cosine: each with its plain cosine,
/// and the centred one it is ordered by. Computed from dot products with
/// the means, without a centred copy of any item:
/// `(t − s·m)·q′ = t·q′ − s·(m·q′)` over `|t − s·m|`, where
/// `|t − s·m|² = t·t − 2s·(t·m) + s²·(m·m)`.
pub fn nearest(
    query: &[f32],
    language: Option<&str>,
    stored: &[Stored],
    means: &LanguageMeans,
    n: usize,
) -> Vec<(String, f32, f32)> {
    let centred_query = means.centre(query, language);
    let share = means.share;
    // Per mean: its dot with the centred query, and its own square.
    let mut per_mean: HashMap<Option<&str>, (f32, f32)> = HashMap::new();
    let mut scored: Vec<(usize, f32, f32)> = stored
        .iter()
        .enumerate()
        .filter(|(_, item)| item.vector.len() == query.len() && finite(&item.vector))
        .filter_map(|(idx, item)| {
            let own = means.own(item.language.as_deref());
            let mean = means.mean_of(own);
            let (mean_q, mean_mean) = *per_mean
                .entry(own)
                .or_insert_with(|| (dot(mean, &centred_query), dot(mean, mean)));
            let t = &item.vector;
            let norm2 = dot(t, t) - 2.0 * share * dot(t, mean) + share * share * mean_mean;
            if !norm2.is_finite() || norm2 <= f32::EPSILON {
                return None;
            }
            let centred = (dot(t, &centred_query) - share * mean_q) / norm2.sqrt();
            Some((idx, dot(t, query), centred))
        })
        .collect();
    let n = n.min(scored.len());
    if n == 0 {
        return vec![];
    }
    let order = |a: &(usize, f32, f32), b: &(usize, f32, f32)| {
        b.2.total_cmp(&a.2)
            .then_with(|| stored[a.0].id.cmp(&stored[b.0].id))
    };
    scored.select_nth_unstable_by(n - 1, order);
    scored.truncate(n);
    scored.sort_by(order);
    scored
        .into_iter()
        .map(|(idx, cosine, centred)| (stored[idx].id.clone(), cosine, centred))
        .collect()
}

/// The `n` candidates of a query in `language` (and of the LLM's rewrite
/// of it, which mixes English terms with the ticket's own words and so
/// takes the tenant's mean), as near as the nearer of the two: each with
/// its plain cosine, best centred first, and the centred cosines they are
/// ordered by.
pub fn candidates(
    query: &[f32],
    rewrite: Option<&[f32]>,
    language: Language,
    stored: &[Stored],
    means: &LanguageMeans,
    n: usize,
) -> (Vec<(String, f32)>, HashMap<String, f32>) {
    let mut found = nearest(query, Some(language.code()), stored, means, n);
    if let Some(rewrite) = rewrite {
        found.extend(nearest(rewrite, None, stored, means, n));
    }
    let mut best: HashMap<String, (f32, f32)> = HashMap::new();
    for (id, cosine, centred) in found {
        let seen = best.entry(id).or_insert((cosine, centred));
        *seen = (seen.0.max(cosine), seen.1.max(centred));
    }
    let mut ranked: Vec<(String, f32, f32)> = best
        .into_iter()
        .map(|(id, (cosine, centred))| (id, cosine, centred))
        .collect();
    ranked.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(n);
    let centred = ranked
        .iter()
        .map(|(id, _, centred)| (id.clone(), *centred))
        .collect();
    let plain = ranked
        .into_iter()
        .map(|(id, cosine, _)| (id, cosine))
        .collect();
    (plain, centred)
}

fn finite(vector: &[f32]) -> bool {
    vector.iter().all(|v| v.is_finite())
}

fn add(sum: &mut [f32], vector: &[f32]) {
    sum.iter_mut().zip(vector).for_each(|(s, v)| *s += v);
}

fn mean((sum, n): (Vec<f32>, usize)) -> Vec<f32> {
    sum.into_iter().map(|s| s / n.max(1) as f32).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = dot(v, v).sqrt();
        v.iter().map(|x| x / n).collect()
    }

    fn item(id: &str, language: &str, v: &[f32]) -> Stored {
        Stored {
            id: id.to_owned(),
            vector: unit(v),
            language: Some(language.to_owned()),
        }
    }

    /// Axes 0 and 1 say the language (English, French); 2, 3 and 4 are
    /// mail, printing and the VPN.
    #[test]
    fn an_english_query_is_not_drawn_to_english_tickets_about_something_else() {
        let stored = vec![
            item("EN-MAIL", "en", &[1.0, 0.0, 0.3, 0.0, 0.0]),
            item("EN-PRINT", "en", &[1.0, 0.0, 0.0, 0.3, 0.0]),
            item("EN-SCAN", "en", &[1.0, 0.0, 0.2, 0.2, 0.0]),
            item("FR-VPN", "fr", &[0.0, 1.0, 0.0, 0.0, 0.9]),
            item("FR-MAIL", "fr", &[0.0, 1.0, 0.3, 0.0, 0.0]),
            item("FR-PRINT", "fr", &[0.0, 1.0, 0.0, 0.3, 0.0]),
        ];
        // An English question about the VPN.
        let query = unit(&[1.0, 0.0, 0.0, 0.0, 0.6]);
        let plain_best = stored
            .iter()
            .max_by(|a, b| dot(&a.vector, &query).total_cmp(&dot(&b.vector, &query)))
            .unwrap();
        assert!(
            plain_best.id.starts_with("EN-"),
            "the plain cosine prefers the query's language"
        );
        let means = LanguageMeans::of(&stored, SHARE).unwrap();
        let found = nearest(&query, Some("en"), &stored, &means, 3);
        assert_eq!(found[0].0, "FR-VPN", "{found:?}");
        // Each keeps its plain cosine, for the floor and "likely".
        for (id, cosine, _) in &found {
            let item = stored.iter().find(|item| &item.id == id).unwrap();
            assert!((cosine - dot(&item.vector, &query)).abs() < 1e-6);
        }
    }

    #[test]
    fn the_rewrite_brings_its_own_candidates_each_as_near_as_the_nearer_of_the_two() {
        let stored = vec![
            item("EN-MAIL", "en", &[1.0, 0.0, 0.3, 0.0, 0.0]),
            item("EN-PRINT", "en", &[1.0, 0.0, 0.0, 0.3, 0.0]),
            item("EN-SCAN", "en", &[1.0, 0.0, 0.2, 0.2, 0.0]),
            item("FR-VPN", "fr", &[0.0, 1.0, 0.0, 0.0, 0.9]),
            item("FR-MAIL", "fr", &[0.0, 1.0, 0.3, 0.0, 0.0]),
            item("FR-PRINT", "fr", &[0.0, 1.0, 0.0, 0.3, 0.0]),
        ];
        let means = LanguageMeans::of(&stored, SHARE).unwrap();
        // A French ticket about printing; its rewrite names the VPN.
        let query = unit(&[0.0, 1.0, 0.0, 0.6, 0.0]);
        let rewrite = unit(&[0.5, 0.5, 0.0, 0.0, 0.8]);
        let (alone, _) = candidates(&query, None, Language::French, &stored, &means, 1);
        assert_eq!(alone[0].0, "FR-PRINT");
        let (both, centred) =
            candidates(&query, Some(&rewrite), Language::French, &stored, &means, 6);
        let by_query = nearest(&query, Some("fr"), &stored, &means, 6);
        let by_rewrite = nearest(&rewrite, None, &stored, &means, 6);
        for (id, cosine) in &both {
            let of = |list: &[(String, f32, f32)]| {
                list.iter()
                    .find(|(other, ..)| other == id)
                    .map(|(_, c, o)| (*c, *o))
                    .unwrap()
            };
            let (q, r) = (of(&by_query), of(&by_rewrite));
            assert_eq!(*cosine, q.0.max(r.0), "{id}: the nearer plain cosine");
            assert_eq!(centred[id], q.1.max(r.1), "{id}: the nearer centred cosine");
        }
        let ids: Vec<&str> = both.iter().map(|(id, _)| id.as_str()).take(2).collect();
        assert!(
            ids.contains(&"FR-PRINT") && ids.contains(&"FR-VPN"),
            "{both:?}"
        );
    }

    #[test]
    fn a_one_language_tenant_or_a_thin_second_language_is_not_centred() {
        let english = vec![
            item("EN-1", "en", &[1.0, 0.0, 0.3, 0.0]),
            item("EN-2", "en", &[1.0, 0.0, 0.0, 0.3]),
            item("EN-3", "en", &[1.0, 0.0, 0.2, 0.2]),
        ];
        assert_eq!(LanguageMeans::of(&english, SHARE), None);
        let mut thin = english.clone();
        thin.push(item("FR-1", "fr", &[0.0, 1.0, 0.1, 0.0]));
        thin.push(item("FR-2", "fr", &[0.0, 1.0, 0.0, 0.1]));
        assert_eq!(LanguageMeans::of(&thin, SHARE), None, "2 < MIN_ITEMS");
        assert_eq!(LanguageMeans::of(&[], SHARE), None);
    }
}
