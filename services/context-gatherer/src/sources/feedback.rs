//! What technicians said of the notes that cited a ticket.
//!
//! A resolved ticket named in a note rated helpful ranks a little higher
//! for later tickets like that one; one named in a note rated unhelpful a
//! little lower. "Like that one" is judged by what the rated run showed: a
//! run counts for a new ticket when at least [`LIKE_IT`] of its hits are
//! among the new ticket's nearest. The runs are read from
//! `enhancement_history` — a read model rebuilt from the stream like every
//! projection — through `rated_runs_citing` (migration 0019), which returns
//! only the calling tenant's runs, so only the tenant's own ratings count.
//! Each rating weighs half as much every [`HALF_LIFE_DAYS`]; the signal of
//! a ticket is `(helpful − unhelpful) / (helpful + unhelpful + 2)`, in
//! (−1, 1): one rating moves it by a third at most, and the fusion scales
//! it by a small weight, so no rating can bury a close match.

use std::collections::HashMap;

use aia_events::TenantId;
use aia_store::{Client, StoreError, search_query};

/// Days after which a rating counts half.
pub const HALF_LIFE_DAYS: f64 = 90.0;

/// How much of a rated run's hits must be among the new ticket's nearest
/// for the run to count as "a ticket like it".
pub const LIKE_IT: f64 = 0.5;

/// One rated run, as `rated_runs_citing` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct RatedRun {
    /// `Some(true)` thumbs up, `Some(false)` down; stars count when given.
    pub thumbs_up: Option<bool>,
    pub stars: Option<i32>,
    pub age_days: f64,
    pub note: String,
    /// Every ticket the run showed.
    pub hits: Vec<String>,
}

impl RatedRun {
    fn helpful(&self) -> Option<bool> {
        match (self.thumbs_up, self.stars) {
            (Some(up), _) => Some(up),
            (None, Some(stars)) if stars >= 4 => Some(true),
            (None, Some(stars)) if stars <= 2 => Some(false),
            _ => None,
        }
    }
}

/// The signal in (−1, 1) of each of `ids` that rated notes named, counting
/// only runs about tickets like this one (see [`signals_of`]). Ids without
/// one are absent.
pub async fn signals(
    client: &mut Client,
    tenant: &TenantId,
    ids: &[&str],
    neighbourhood: &[&str],
) -> Result<HashMap<String, f32>, StoreError> {
    if ids.is_empty() || neighbourhood.is_empty() {
        return Ok(HashMap::new());
    }
    // Only a run whose hits include one of the neighbourhood can reach the
    // share; the function finds those through its index.
    let rows = search_query(
        client,
        tenant,
        super::SEARCH_TIMEOUT,
        "select thumbs_up, stars, age_days, note, hits from rated_runs_citing($1::text[])",
        &[&neighbourhood],
    )
    .await?;
    let run = |row: &aia_store::Row| -> Result<RatedRun, StoreError> {
        Ok(RatedRun {
            thumbs_up: row.try_get(0)?,
            stars: row.try_get(1)?,
            age_days: row.try_get(2)?,
            note: row.try_get(3)?,
            hits: row.try_get(4)?,
        })
    };
    let runs = rows.iter().map(run).collect::<Result<Vec<_>, _>>()?;
    Ok(signals_of(&runs, ids, neighbourhood))
}

/// Each run counts when at least [`LIKE_IT`] of its hits are in
/// `neighbourhood`, weighed by that share and by its age; it speaks only
/// for the hits its note names, and only for those among `ids`.
pub fn signals_of(runs: &[RatedRun], ids: &[&str], neighbourhood: &[&str]) -> HashMap<String, f32> {
    let mut votes: HashMap<&str, (f64, f64)> = HashMap::new();
    for run in runs {
        let Some(helpful) = run.helpful() else {
            continue;
        };
        let alike = run
            .hits
            .iter()
            .filter(|hit| neighbourhood.contains(&hit.as_str()))
            .count();
        let share = alike as f64 / run.hits.len().max(1) as f64;
        if share < LIKE_IT {
            continue;
        }
        let weight = share * 0.5_f64.powf(run.age_days.max(0.0) / HALF_LIFE_DAYS);
        for id in ids {
            if run.hits.iter().any(|hit| hit == id) && names(&run.note, id) {
                let (up, down) = votes.entry(id).or_default();
                *if helpful { up } else { down } += weight;
            }
        }
    }
    votes
        .into_iter()
        .map(|(id, (up, down))| (id.to_owned(), signal(up, down)))
        .collect()
}

/// Whether `note` names ticket `id` as a whole: not inside a longer id or
/// number ("12" is not named by "2012" or "SUP-120").
fn names(note: &str, id: &str) -> bool {
    let part_of_an_id = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    note.match_indices(id).any(|(at, _)| {
        let before = note[..at].chars().next_back();
        let after = note[at + id.len()..].chars().next();
        !before.is_some_and(part_of_an_id) && !after.is_some_and(part_of_an_id)
    })
}

/// `(up − down) / (up + down + 2)`.
pub fn signal(up: f64, down: f64) -> f32 {
    ((up - down) / (up + down + 2.0)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(helpful: bool, hits: &[&str], note: &str) -> RatedRun {
        RatedRun {
            thumbs_up: Some(helpful),
            stars: None,
            age_days: 0.0,
            note: note.into(),
            hits: hits.iter().map(|h| (*h).to_owned()).collect(),
        }
    }

    #[test]
    fn one_rating_moves_a_third_and_many_approach_but_never_reach_one() {
        assert!((signal(1.0, 0.0) - 1.0 / 3.0).abs() < 1e-6);
        assert!((signal(0.0, 1.0) + 1.0 / 3.0).abs() < 1e-6);
        assert!(signal(50.0, 0.0) < 1.0 && signal(50.0, 0.0) > 0.9);
        assert_eq!(signal(3.0, 3.0), 0.0);
        assert_eq!(signal(0.0, 0.0), 0.0);
    }

    #[test]
    fn a_run_counts_when_half_its_hits_are_near_and_speaks_only_for_what_its_note_names() {
        let hits = ["A", "B", "C", "D", "E"];
        let rated = [run(true, &hits, "Similar: A (restart the spooler)")];
        // Three of five hits among the new ticket's nearest: it counts,
        // for A (named), not for B (shown, not named), and it reaches A
        // even where A is not among the nearest.
        let near = ["B", "C", "D", "X", "Y"];
        let got = signals_of(&rated, &["A", "B", "X"], &near);
        assert_eq!(got.keys().collect::<Vec<_>>(), ["A"]);
        assert!((got["A"] - signal(0.6, 0.0)).abs() < 1e-6);
        // Two of five: not a ticket like it.
        assert!(signals_of(&rated, &["A"], &["B", "C", "X", "Y", "Z"]).is_empty());
    }

    #[test]
    fn old_ratings_weigh_less_and_stars_count_when_there_is_no_thumb() {
        let mut old = run(true, &["A"], "A");
        old.age_days = HALF_LIFE_DAYS;
        let got = signals_of(&[old], &["A"], &["A"]);
        assert!((got["A"] - signal(0.5, 0.0)).abs() < 1e-6);
        let mut starred = run(true, &["A"], "A");
        starred.thumbs_up = None;
        starred.stars = Some(2);
        assert!(signals_of(&[starred.clone()], &["A"], &["A"])["A"] < 0.0);
        starred.stars = Some(3);
        assert!(signals_of(&[starred], &["A"], &["A"]).is_empty());
    }

    #[test]
    fn a_note_names_an_id_only_as_a_whole() {
        assert!(names("See 12 for the fix.", "12"));
        assert!(names("12", "12"));
        assert!(names("(SUP-12).", "SUP-12"));
        assert!(!names("Since 2012 nothing changed.", "12"));
        assert!(!names("Like SUP-120.", "SUP-12"));
        assert!(!names("Like SUP-12a.", "SUP-12"));
        assert!(names("Ticket «é-1» closed", "é-1"));
    }
}
