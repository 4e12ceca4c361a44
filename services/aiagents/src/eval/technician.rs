//! A simulated technician: rates the notes of a run from the labels, and
//! the queries are asked again with the ratings in the ranking — first the
//! later half of the set after only the first half's notes were rated
//! (what a rating teaches tickets that come after it), then every query
//! after every note was rated (as the same problems come back).

use context_gatherer::sources::fusion::{Fusion, feedback_weight_for};

use super::{Ask, Hit, Scores, score};
use crate::dataset::{self, DataSet};

pub(super) async fn after_ratings(
    owner: &tokio_postgres::Client,
    data: &DataSet,
    ask: &Ask<'_>,
    answers: &[Vec<Hit>],
    fusion: Fusion,
    feedback_weight: f32,
) -> anyhow::Result<Vec<Scores>> {
    // In the model's own cosines, as the stage scales it.
    let feedback_weight = feedback_weight_for(feedback_weight, fusion.threshold, fusion.likely);
    let learning = Fusion {
        feedback_weight,
        ..fusion
    };
    let half = data.queries.len() / 2;
    let mut rated = 0;
    for (query, answer) in data.queries.iter().zip(answers).take(half) {
        rated += usize::from(rate(owner, query, answer, ask.k).await?);
    }
    let later = DataSet {
        resolved: data.resolved.clone(),
        queries: data.queries[half..].to_vec(),
    };
    let after_first_half = ask.all(data, ask.model, learning).await?;
    let mut scores = vec![
        score(
            format!(
                "ours, fused, the later {} queries, before ratings",
                later.queries.len()
            ),
            &later,
            &answers[half..],
            ask.k,
        ),
        score(
            format!(
                "ours, fused, the later {} queries, after the first {half} queries' {rated} runs were rated (ratings ≤ {feedback_weight:.2})",
                later.queries.len()
            ),
            &later,
            &after_first_half[half..],
            ask.k,
        ),
    ];
    for (query, answer) in data.queries.iter().zip(answers).skip(half) {
        rated += usize::from(rate(owner, query, answer, ask.k).await?);
    }
    let after = ask.all(data, ask.model, learning).await?;
    scores.push(score(
        format!(
            "ours, fused, after {rated} runs rated by a simulated technician (ratings ≤ {feedback_weight:.2})"
        ),
        data,
        &after,
        ask.k,
    ));
    Ok(scores)
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
    // The context holds every hit of the run, as the context stage stores
    // it; the note names the ones it cites.
    let context = serde_json::json!({
        "similar_tickets": answer
            .iter()
            .take(k)
            .map(|hit| serde_json::json!({"ticket_id": hit.id}))
            .collect::<Vec<_>>()
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
