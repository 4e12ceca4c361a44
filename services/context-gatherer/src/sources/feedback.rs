//! What technicians said of the notes that cited a ticket.
//!
//! A resolved ticket cited in a note rated helpful ranks a little higher
//! for later tickets like that one (whose nearest tickets are largely the
//! ones that note cited); one cited in a note rated unhelpful a little
//! lower. The signal is read from `enhancement_history` — a read
//! model rebuilt from the stream like every projection — under the
//! tenant's row-level security, so only the tenant's own ratings count.
//! Each rating weighs half as much every [`HALF_LIFE_DAYS`]; the signal of
//! a ticket is `(helpful − unhelpful) / (helpful + unhelpful + 2)`, in
//! (−1, 1): one rating moves it by a third at most, and the fusion scales
//! it by a small weight, so no rating can bury a close match.

use std::collections::HashMap;

use aia_events::TenantId;
use aia_store::{Client, StoreError, search_query};

/// Days after which a rating counts half.
pub const HALF_LIFE_DAYS: f64 = 90.0;

/// How much of a rated run's cited tickets must be among the new ticket's
/// nearest for the run to count as "a ticket like it".
pub const LIKE_IT: f64 = 0.5;

/// The signal in (−1, 1) of each of `ids` that rated notes cited, counting
/// only runs about tickets like this one: runs whose cited tickets are at
/// least [`LIKE_IT`] among `neighbourhood` (this ticket's nearest by
/// meaning), each weighed by that share. Ids without one are absent.
pub async fn signals(
    client: &mut Client,
    tenant: &TenantId,
    ids: &[&str],
    neighbourhood: &[&str],
) -> Result<HashMap<String, f32>, StoreError> {
    if ids.is_empty() || neighbourhood.is_empty() {
        return Ok(HashMap::new());
    }
    // Only a run that cited one of the neighbourhood can reach the share;
    // the GIN index on the runs' cited tickets finds those without reading
    // the tenant's other rated runs (migration 0019).
    let cites_one = cites_any(neighbourhood);
    let rows = search_query(
        client,
        tenant,
        super::SEARCH_TIMEOUT,
        "with runs as (
           select h.rating_thumbs_up as thumbs_up, h.rating_stars as stars,
                  power(0.5, extract(epoch from now() - h.rated_at) / 86400.0 / $3::float8) as decay,
                  coalesce(h.note_markdown, '') as note,
                  array(select distinct e->>'ticket_id'
                          from jsonb_array_elements(h.context->'similar_tickets') e) as cited
             from enhancement_history h
            where h.tenant_id = $1 and h.rated_at is not null
              and (h.context->'similar_tickets') @? $6::text::jsonpath
         ), alike as (
           select runs.*,
                  (select count(*) from unnest(cited) c where c = any($4))::float8
                    / greatest(cardinality(cited), 1) as share
             from runs
         )
         select id,
                coalesce(sum(decay * share) filter (where thumbs_up or stars >= 4), 0)::float8,
                coalesce(sum(decay * share) filter (where not thumbs_up or stars <= 2), 0)::float8
           from alike cross join lateral unnest(cited) id
          where share >= $5 and id = any($2) and strpos(note, id) > 0
          group by id",
        &[
            &tenant.as_str(),
            &ids,
            &HALF_LIFE_DAYS,
            &neighbourhood,
            &LIKE_IT,
            &cites_one,
        ],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let (id, up, down): (String, f64, f64) = (row.get(0), row.get(1), row.get(2));
            (id, signal(up, down))
        })
        .collect())
}

/// A JSON path that matches a context's `similar_tickets` naming any of
/// `ids` — the form PostgreSQL's `jsonb_path_ops` index answers (equalities
/// with constants joined by `||`). Each id is written as a JSON string, so
/// no id can change the path.
fn cites_any(ids: &[&str]) -> String {
    let alternatives: Vec<String> = ids
        .iter()
        .map(|id| format!("@.ticket_id == {}", serde_json::Value::from(*id)))
        .collect();
    format!("$[*] ? ({})", alternatives.join(" || "))
}

/// `(up − down) / (up + down + 2)`.
pub fn signal(up: f64, down: f64) -> f32 {
    ((up - down) / (up + down + 2.0)) as f32
}

#[cfg(test)]
mod tests {
    use super::{cites_any, signal};

    #[test]
    fn the_path_names_each_id_as_a_json_string() {
        assert_eq!(
            cites_any(&["SUP-1", "a\"b"]),
            r#"$[*] ? (@.ticket_id == "SUP-1" || @.ticket_id == "a\"b")"#
        );
    }

    #[test]
    fn one_rating_moves_a_third_and_many_approach_but_never_reach_one() {
        assert!((signal(1.0, 0.0) - 1.0 / 3.0).abs() < 1e-6);
        assert!((signal(0.0, 1.0) + 1.0 / 3.0).abs() < 1e-6);
        assert!(signal(50.0, 0.0) < 1.0 && signal(50.0, 0.0) > 0.9);
        assert_eq!(signal(3.0, 3.0), 0.0);
        assert_eq!(signal(0.0, 0.0), 0.0);
    }
}
