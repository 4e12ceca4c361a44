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
    /// Most technicians' ratings can add to (or take from) a cosine (see
    /// [`super::feedback`]).
    pub feedback_weight: f32,
    /// Count only the query's words that are rare in the tenant (in at most
    /// [`RARE_WORD_TICKETS`] of its items): error codes, host names, KB ids,
    /// product names — not the everyday words a user and a technician both
    /// happen to use.
    pub rare_words_only: bool,
    /// Below the best hit by more than this, in meaning (the cosine, or
    /// the centred cosine where the search centred), a hit that is not
    /// likely is left out: a technician reads a possibly related ticket
    /// only where the best is not far ahead of it. Words and ratings never
    /// drop a hit this way. Infinite shows every hit above the floor.
    pub gap: f32,
}

/// Most items a word may appear in to be rare.
pub const RARE_WORD_TICKETS: i64 = 3;

/// The defaults for all-MiniLM-L6-v2: unrelated IT tickets sit around
/// 0.1–0.3, and a lay description of the same fault as a technician's
/// ticket can be as low as 0.2–0.3, so the floor is low. "Likely" is
/// calibrated from the queries that have no relevant ticket, on every
/// evaluation set: a near miss on the same device reaches a cosine of
/// 0.60–0.63 with this model, so 0.64 is the least value swept at which
/// none of them is called likely (docs/benchmarks.md); below it a hit is
/// offered
/// as possibly related. `aiagents eval-retrieval --threshold --likely`
/// measures other values on any data set; tenants on another model set
/// their own.
pub const DEFAULT: Fusion = Fusion {
    threshold: 0.20,
    likely: 0.64,
    lexical_weight: 0.10,
    // A simulated technician's ratings of earlier tickets raised the MRR of
    // later ones where problems recur (0.64 → 0.67 on the multilingual
    // set's later half) and lowered nothing on any set; 0.20 and 0.30 gained
    // less there and 0.30 cost the blind set 0.01 (docs/benchmarks.md). One
    // rating moves a match by at most a third of this.
    feedback_weight: 0.10,
    rare_words_only: false,
    // Hits more than this below the best that are not likely were a
    // technician's reading for nothing: at 0.25 the other tickets shown per
    // query fell on every evaluation set with recall@5 and MRR within 0.01;
    // 0.15 cost the dev set 0.09 recall (docs/benchmarks.md).
    gap: 0.25,
};

/// How much of a model's band between `threshold` and `likely` its
/// cosines span against the local model's: what a cosine step set for the
/// local model (a rating's nudge, the gap to the best hit) is scaled by for
/// another model.
pub fn band_scale(threshold: f32, likely: f32) -> f32 {
    (likely - threshold).max(0.0) / (DEFAULT.likely - DEFAULT.threshold)
}

/// Ratings' weight for a model whose floor and likely cosines are
/// `threshold` and `likely`: `weight` (set for the local model) scaled by
/// the width of that band against the local model's. Cosines are not
/// comparable between models — multilingual-e5 puts an unrelated ticket at
/// 0.75 and a likely match at 0.90, a band a third of the local model's —
/// and the local model's 0.10 on e5 lowered the MRR of later tickets
/// (docs/benchmarks.md).
pub fn feedback_weight_for(weight: f32, threshold: f32, likely: f32) -> f32 {
    weight * band_scale(threshold, likely)
}

/// One scored result.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub id: String,
    pub cosine: f32,
    /// What the results are ordered by: cosine (or centred cosine) plus
    /// the lexical bonus and the technicians' nudge.
    pub score: f32,
    /// The calibrated confidence in [0, 1]; 0.5 and above is likely.
    pub confidence: f32,
    /// Its meaning alone, as the results are ordered before words and
    /// ratings: the centred cosine where the search centred, else the
    /// cosine. What the gap to the best hit is judged by.
    pub meaning: f32,
    /// It shares words with the query (its full-text rank is above 0).
    pub shares_words: bool,
}

impl Fusion {
    /// Ranks `semantic` (id, cosine) with `lexical` (id, full-text rank) as
    /// a bonus and `feedback` (id, technicians' signal in (−1, 1)) as a
    /// bounded nudge either way; returns the best `limit`, best first.
    /// Each is ordered by its `centred` cosine where the search took the
    /// languages' means out ([`super::centring`]), else by its cosine.
    /// None of these decides eligibility or confidence: only the cosine
    /// does.
    pub fn rank(
        &self,
        semantic: &[(String, f32)],
        lexical: &[(String, f64)],
        feedback: &HashMap<String, f32>,
        centred: &HashMap<String, f32>,
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
                let rank = lexical.get(id.as_str()).copied().unwrap_or(0.0);
                let bonus = if best_lexical > 0.0 {
                    (rank / best_lexical) as f32
                } else {
                    0.0
                };
                let order = centred.get(id.as_str()).copied().unwrap_or(*cosine);
                Scored {
                    id: id.clone(),
                    cosine: *cosine,
                    score: order
                        + self.lexical_weight * bonus
                        + self.feedback_weight
                            * feedback
                                .get(id.as_str())
                                .copied()
                                .unwrap_or(0.0)
                                .clamp(-1.0, 1.0),
                    confidence: self.confidence(*cosine),
                    meaning: order,
                    shares_words: rank > 0.0,
                }
            })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        let best = scored
            .iter()
            .map(|hit| hit.meaning)
            .fold(f32::NEG_INFINITY, f32::max);
        scored.retain(|hit| self.shown(best, hit.meaning, hit.cosine));
        scored.truncate(limit);
        scored
    }

    /// Whether a hit of `meaning` (its cosine, or centred cosine) and
    /// `cosine` is shown beside the best hit's `best` meaning: when it is
    /// likely, or within the gap. A gap that is not a number, or below 0,
    /// leaves nothing out.
    pub fn shown(&self, best: f32, meaning: f32, cosine: f32) -> bool {
        let gap = if self.gap >= 0.0 {
            self.gap
        } else {
            f32::INFINITY
        };
        meaning >= best - gap || self.confidence(cosine) >= 0.5
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

/// Two searches' candidates as one: each item with the higher of its two
/// cosines, the best `n`, best first.
pub fn nearer_of(a: Vec<(String, f32)>, b: Vec<(String, f32)>, n: usize) -> Vec<(String, f32)> {
    let mut best: HashMap<String, f32> = HashMap::with_capacity(a.len() + b.len());
    for (id, cosine) in a.into_iter().chain(b) {
        let seen = best.entry(id).or_insert(cosine);
        *seen = seen.max(cosine);
    }
    let mut merged: Vec<(String, f32)> = best.into_iter().collect();
    merged.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    merged.truncate(n);
    merged
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
    fn two_searches_merge_each_item_at_its_nearer_cosine() {
        let ticket = vec![("a".to_owned(), 0.50), ("b".to_owned(), 0.30)];
        let rewrite = vec![("b".to_owned(), 0.70), ("c".to_owned(), 0.40)];
        assert_eq!(
            nearer_of(ticket, rewrite, 2),
            vec![("b".to_owned(), 0.70), ("a".to_owned(), 0.50)]
        );
    }

    #[test]
    fn nothing_below_the_threshold_however_many_words_match() {
        let semantic = vec![("a".to_owned(), 0.19), ("b".to_owned(), 0.1)];
        let lexical = vec![("a".to_owned(), 0.9), ("b".to_owned(), 0.8)];
        assert!(
            DEFAULT
                .rank(&semantic, &lexical, &HashMap::new(), &HashMap::new(), 5)
                .is_empty()
        );
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
        let ranked = DEFAULT.rank(&semantic, &lexical, &HashMap::new(), &HashMap::new(), 5);
        assert_eq!(ranked[0].id, "close");
    }

    #[test]
    fn a_possible_match_far_below_the_best_is_left_out_and_a_likely_one_never() {
        let semantic = vec![
            ("best".to_owned(), 0.62),
            ("near".to_owned(), 0.40),
            ("far".to_owned(), 0.30),
        ];
        let gap_of = |fusion: Fusion| {
            ids(&fusion.rank(&semantic, &[], &HashMap::new(), &HashMap::new(), 5))
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        // 0.62 − 0.25 = 0.37: "near" stays, "far" goes.
        assert_eq!(gap_of(DEFAULT), ["best", "near"]);
        assert_eq!(
            gap_of(Fusion {
                gap: f32::INFINITY,
                ..DEFAULT
            }),
            ["best", "near", "far"]
        );
        // Words never drop a hit: the best by meaning shares none, the
        // far one every word, and the far one still goes, not the best.
        let wordy = vec![("far".to_owned(), 1.0)];
        assert_eq!(
            ids(&DEFAULT.rank(&semantic, &wordy, &HashMap::new(), &HashMap::new(), 5)),
            ["best", "near"]
        );
        // An endpoint's narrow gap with the full word bonus: the closest
        // by meaning stays although a wordier hit outscores it by more
        // than the gap.
        let endpoint = Fusion {
            threshold: 0.75,
            likely: 0.90,
            gap: 0.085,
            ..DEFAULT
        };
        let close = vec![("meaning".to_owned(), 0.86), ("words".to_owned(), 0.85)];
        let words = vec![("words".to_owned(), 1.0)];
        assert_eq!(
            ids(&endpoint.rank(&close, &words, &HashMap::new(), &HashMap::new(), 5)),
            ["words", "meaning"]
        );
        // A gap that is not a number leaves nothing out.
        let nan = Fusion {
            gap: f32::NAN,
            ..DEFAULT
        };
        assert_eq!(
            ids(&nan.rank(&semantic, &[], &HashMap::new(), &HashMap::new(), 5)),
            ["best", "near", "far"]
        );
        // A likely match stays however far below the best it is.
        let likely = vec![("best".to_owned(), 0.99), ("likely".to_owned(), 0.65)];
        assert_eq!(
            ids(&DEFAULT.rank(&likely, &[], &HashMap::new(), &HashMap::new(), 5)),
            ["best", "likely"]
        );
    }

    #[test]
    fn confidence_is_half_at_the_likely_cosine() {
        assert_eq!(DEFAULT.confidence(DEFAULT.threshold), 0.0);
        assert!((DEFAULT.confidence(DEFAULT.likely) - 0.5).abs() < 1e-6);
        assert!((DEFAULT.confidence(1.0) - 1.0).abs() < 1e-6);
        assert!(DEFAULT.confidence(0.3) < 0.5 && DEFAULT.confidence(0.7) > 0.5);
    }

    #[test]
    fn exact_words_break_ties_between_similar_meanings() {
        let semantic = vec![("generic".to_owned(), 0.62), ("exact".to_owned(), 0.60)];
        let lexical = vec![("exact".to_owned(), 0.5)];
        assert_eq!(
            ids(&DEFAULT.rank(&semantic, &lexical, &HashMap::new(), &HashMap::new(), 5)),
            ["exact", "generic"]
        );
    }

    #[test]
    fn ratings_nudge_close_matches_but_cannot_bury_a_clearly_closer_one() {
        let semantic = vec![("first".to_owned(), 0.60), ("second".to_owned(), 0.58)];
        let praised = HashMap::from([("second".to_owned(), 0.9_f32)]);
        assert_eq!(
            ids(&DEFAULT.rank(&semantic, &[], &praised, &HashMap::new(), 5)),
            ["second", "first"]
        );
        let panned = HashMap::from([("first".to_owned(), -0.99_f32)]);
        let far = vec![("first".to_owned(), 0.70), ("second".to_owned(), 0.58)];
        assert_eq!(
            ids(&DEFAULT.rank(&far, &[], &panned, &HashMap::new(), 5)),
            ["first", "second"],
            "a rating moves a match by at most the feedback weight"
        );
        let below = vec![("only".to_owned(), 0.19)];
        let loved = HashMap::from([("only".to_owned(), 1.0_f32)]);
        assert!(
            DEFAULT
                .rank(&below, &[], &loved, &HashMap::new(), 5)
                .is_empty()
        );
    }

    #[test]
    fn a_hit_says_whether_it_also_shares_words() {
        let semantic = vec![("generic".to_owned(), 0.62), ("exact".to_owned(), 0.60)];
        let lexical = vec![("exact".to_owned(), 0.5)];
        let ranked = DEFAULT.rank(&semantic, &lexical, &HashMap::new(), &HashMap::new(), 5);
        let shares: Vec<(&str, bool)> = ranked
            .iter()
            .map(|hit| (hit.id.as_str(), hit.shares_words))
            .collect();
        assert_eq!(shares, [("exact", true), ("generic", false)]);
    }

    #[test]
    fn nearest_orders_by_cosine() {
        let stored = vec![
            aia_store::embeddings::Stored {
                language: None,
                id: "x".into(),
                vector: vec![1.0, 0.0],
            },
            aia_store::embeddings::Stored {
                language: None,
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
            language: None,
            id: "z".into(),
            vector: vec![1.0, 0.0, 0.0],
        }];
        let err = check_dimensions(&[0.0, 1.0], &stored).unwrap_err();
        assert!(err.contains("model mismatch"), "{err}");
    }
}
