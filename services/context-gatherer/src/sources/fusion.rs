//! Meaning first, words second.
//!
//! A candidate is eligible only if its cosine similarity to the query
//! reaches [`Fusion::threshold`]: below it the answer is "nothing
//! relevant", however many words a ticket shares with the query. Each hit
//! carries a calibrated confidence: its cosine mapped so that the threshold
//! is 0, [`Fusion::likely`] is 0.5 and 1 is 1 — so "score ≥ 0.5 is a likely
//! match" reads the same whatever model made the vectors. Among
//! eligible candidates the order is cosine plus a lexical bonus of at most
//! [`Fusion::lexical_weight`] (the full-text rank relative to the best
//! candidate's), so exact error codes, host names and KB ids break ties
//! between tickets that mean much the same thing — but a ticket can pass a
//! closer semantic match only if it is itself within that margin of it: a
//! close match whose words differ is never pushed out by word overlap.

use std::collections::HashMap;

/// Parameters of the fusion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fusion {
    /// Least cosine similarity of a result.
    pub threshold: f32,
    /// Cosine similarity from which a result is a likely match (its
    /// confidence reaches 0.5).
    pub likely: f32,
    /// Most a lexical match can add to a cosine.
    pub lexical_weight: f32,
}

/// The defaults for all-MiniLM-L6-v2: unrelated IT tickets sit around
/// 0.1–0.3, a lay description of the same fault as a technician's ticket
/// can be as low as 0.2–0.3, and tickets about the same fault mostly above
/// 0.45. `aiagents eval-retrieval --threshold --likely` measures other
/// values on any data set; tenants on another model set their own.
pub const DEFAULT: Fusion = Fusion {
    threshold: 0.20,
    likely: 0.45,
    lexical_weight: 0.10,
};

/// One scored result.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub id: String,
    pub cosine: f32,
    /// What the results are ordered by: cosine plus the lexical bonus.
    pub score: f32,
    /// The calibrated confidence in [0, 1]; 0.5 and above is likely.
    pub confidence: f32,
}

impl Fusion {
    /// Ranks `semantic` (id, cosine) with `lexical` (id, full-text rank) as
    /// a bonus; returns the best `limit`, best first.
    pub fn rank(
        &self,
        semantic: &[(String, f32)],
        lexical: &[(String, f64)],
        limit: usize,
    ) -> Vec<Scored> {
        let best_lexical = lexical
            .iter()
            .map(|(_, rank)| *rank)
            .fold(0.0_f64, f64::max);
        let lexical: HashMap<&str, f64> = lexical
            .iter()
            .map(|(id, rank)| (id.as_str(), *rank))
            .collect();
        let mut scored: Vec<Scored> = semantic
            .iter()
            .filter(|(_, cosine)| *cosine >= self.threshold)
            .map(|(id, cosine)| {
                let bonus = match lexical.get(id.as_str()) {
                    Some(rank) if best_lexical > 0.0 => (rank / best_lexical) as f32,
                    _ => 0.0,
                };
                Scored {
                    id: id.clone(),
                    cosine: *cosine,
                    score: cosine + self.lexical_weight * bonus,
                    confidence: self.confidence(*cosine),
                }
            })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        scored.truncate(limit);
        scored
    }

    /// The cosine mapped piecewise linearly: threshold → 0, likely → 0.5,
    /// 1 → 1.
    pub fn confidence(&self, cosine: f32) -> f32 {
        let likely = self
            .likely
            .clamp(self.threshold + f32::EPSILON, 1.0 - f32::EPSILON);
        let value = if cosine < likely {
            0.5 * (cosine - self.threshold) / (likely - self.threshold)
        } else {
            0.5 + 0.5 * (cosine - likely) / (1.0 - likely)
        };
        value.clamp(0.0, 1.0)
    }
}

/// The `n` stored vectors nearest to `query`, by cosine (vectors are unit
/// length, so a dot product). Callers check the dimensions first
/// ([`check_dimensions`]); a vector of another size is never compared.
pub fn nearest(
    query: &[f32],
    stored: &[aia_store::embeddings::Stored],
    n: usize,
) -> Vec<(String, f32)> {
    let mut scored: Vec<(usize, f32)> = stored
        .iter()
        .enumerate()
        .map(|(idx, item)| (idx, item.vector.iter().zip(query).map(|(a, b)| a * b).sum()))
        .collect();
    let n = n.min(scored.len());
    if n == 0 {
        return vec![];
    }
    scored.select_nth_unstable_by(n - 1, |a, b| b.1.total_cmp(&a.1));
    scored.truncate(n);
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored
        .into_iter()
        .map(|(idx, cosine)| (stored[idx].id.clone(), cosine))
        .collect()
}

/// Refuses to compare a query with stored vectors of another dimension:
/// they were made by another model.
pub fn check_dimensions(
    query: &[f32],
    stored: &[aia_store::embeddings::Stored],
) -> Result<(), String> {
    match stored.iter().find(|item| item.vector.len() != query.len()) {
        Some(item) => Err(format!(
            "embedding model mismatch: the query has {} dimensions, stored vectors {}",
            query.len(),
            item.vector.len()
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(scored: &[Scored]) -> Vec<&str> {
        scored.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn nothing_below_the_threshold_however_many_words_match() {
        let semantic = vec![("a".to_owned(), 0.19), ("b".to_owned(), 0.1)];
        let lexical = vec![("a".to_owned(), 0.9), ("b".to_owned(), 0.8)];
        assert!(DEFAULT.rank(&semantic, &lexical, 5).is_empty());
    }

    #[test]
    fn a_close_match_with_other_words_is_not_pushed_out_by_word_overlap() {
        // "close" shares no words; five others share many but mean less.
        let mut semantic = vec![("close".to_owned(), 0.80)];
        let mut lexical = vec![];
        for i in 0..5 {
            semantic.push((format!("wordy{i}"), 0.55));
            lexical.push((format!("wordy{i}"), 1.0));
        }
        let ranked = DEFAULT.rank(&semantic, &lexical, 5);
        assert_eq!(ranked[0].id, "close");
    }

    #[test]
    fn confidence_is_half_at_the_likely_cosine() {
        assert_eq!(DEFAULT.confidence(DEFAULT.threshold), 0.0);
        assert!((DEFAULT.confidence(DEFAULT.likely) - 0.5).abs() < 1e-6);
        assert!((DEFAULT.confidence(1.0) - 1.0).abs() < 1e-6);
        assert!(DEFAULT.confidence(0.3) < 0.5 && DEFAULT.confidence(0.6) > 0.5);
    }

    #[test]
    fn exact_words_break_ties_between_similar_meanings() {
        let semantic = vec![("generic".to_owned(), 0.62), ("exact".to_owned(), 0.60)];
        let lexical = vec![("exact".to_owned(), 0.5)];
        assert_eq!(
            ids(&DEFAULT.rank(&semantic, &lexical, 5)),
            ["exact", "generic"]
        );
    }

    #[test]
    fn nearest_orders_by_cosine() {
        let stored = vec![
            aia_store::embeddings::Stored {
                id: "x".into(),
                vector: vec![1.0, 0.0],
            },
            aia_store::embeddings::Stored {
                id: "y".into(),
                vector: vec![0.6, 0.8],
            },
        ];
        let found = nearest(&[0.0, 1.0], &stored, 5);
        assert_eq!(
            found.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["y", "x"]
        );
    }

    #[test]
    fn vectors_of_another_dimension_are_a_model_mismatch() {
        let stored = vec![aia_store::embeddings::Stored {
            id: "z".into(),
            vector: vec![1.0, 0.0, 0.0],
        }];
        let err = check_dimensions(&[0.0, 1.0], &stored).unwrap_err();
        assert!(err.contains("model mismatch"), "{err}");
    }
}
