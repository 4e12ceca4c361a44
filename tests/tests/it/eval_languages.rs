//! What `aiagents eval-retrieval` reports for a multilingual set: recall
//! and MRR per query language, across and within languages and per pair of
//! languages; and the distractors it can add to every tenant.

use aiagents::dataset::{DataSet, Query, Resolved};
use aiagents::eval::scores::{Hit, group_table, score};
use aiagents::eval::with_distractors;

fn resolved(id: &str, language: &str) -> Resolved {
    Resolved {
        tenant_id: "alpen".into(),
        ticket_id: id.into(),
        subject: "s".into(),
        description: "d".into(),
        resolution: "r".into(),
        resolved_at: chrono::Utc::now(),
        priority: "low".into(),
        tags: vec![],
        language: Some(language.into()),
    }
}

fn query(id: &str, language: &str, relevant: &[&str]) -> Query {
    Query {
        tenant_id: "alpen".into(),
        ticket_id: id.into(),
        subject: None,
        description: "d".into(),
        priority: "low".into(),
        relevant: relevant.iter().map(|id| (*id).to_owned()).collect(),
        language: Some(language.into()),
    }
}

fn hits(ids: &[&str]) -> Vec<Hit> {
    ids.iter()
        .map(|id| Hit {
            tenant: "alpen".into(),
            id: (*id).into(),
            likely: false,
            confidence: None,
        })
        .collect()
}

#[test]
fn queries_are_scored_per_language_and_across_languages() {
    let data = DataSet {
        resolved: vec![resolved("EN-1", "en"), resolved("DE-1", "de")],
        queries: vec![
            // German, its answer in English, found second.
            query("Q1", "de", &["EN-1"]),
            // German, its answer in German, not found.
            query("Q2", "de", &["DE-1"]),
            // English, its answer in English, found first.
            query("Q3", "en", &["EN-1"]),
            // No answer: counted in no group.
            query("Q4", "en", &[]),
        ],
    };
    let answers = vec![
        hits(&["DE-1", "EN-1"]),
        hits(&["EN-1"]),
        hits(&["EN-1"]),
        hits(&["DE-1"]),
    ];
    let scores = score("m".into(), &data, &answers, 5);
    // What a technician read for nothing: DE-1 beside Q1's answer, EN-1
    // for Q2, and DE-1 for the no-match Q4.
    assert_eq!((scores.others_shown, scores.queries), (3, 4));
    assert!(
        aiagents::eval::table(std::slice::from_ref(&scores), 5)
            .contains("| m | 0.67 | 0.50 | 0.75 |"),
        "{}",
        aiagents::eval::table(std::slice::from_ref(&scores), 5)
    );
    let groups: Vec<(&str, usize, f64, f64)> = scores
        .groups
        .iter()
        .map(|g| (g.label.as_str(), g.queries, g.recall_at_k, g.mrr))
        .collect();
    assert_eq!(
        groups,
        vec![
            ("across languages", 1, 1.0, 0.5),
            ("de", 2, 0.5, 0.25),
            ("de → en", 1, 1.0, 0.5),
            ("en", 1, 1.0, 1.0),
            ("same language", 2, 0.5, 0.5),
        ]
    );
    let table = group_table(&[scores], 5);
    assert!(
        table.contains("| across languages (1) | de (2) | en (1) | same language (2) |"),
        "{table}"
    );
    assert!(table.contains("| m | 1.00 / 0.50 | 0.50 / 0.25 | 1.00 / 1.00 | 0.50 / 0.50 |"));
    assert!(table.contains("| de → en (1) | 1.00 / 0.50 |"), "{table}");
}

#[test]
fn a_set_without_languages_has_no_groups() {
    let mut data = DataSet {
        resolved: vec![resolved("EN-1", "en")],
        queries: vec![query("Q1", "en", &["EN-1"])],
    };
    data.queries[0].language = None;
    let scores = score("m".into(), &data, &[hits(&["EN-1"])], 5);
    assert!(scores.groups.is_empty());
    assert_eq!(group_table(&[scores], 5), "");
}

#[test]
fn distractors_join_every_tenant_under_ids_no_label_names() {
    let mut data: DataSet = serde_json::from_value(serde_json::json!({
        "resolved": [
            {"tenant_id": "alpen", "ticket_id": "A-1", "subject": "s", "description": "d",
             "resolution": "r", "resolved_at": "2026-01-01T00:00:00Z", "priority": "low"},
            {"tenant_id": "lowlands", "ticket_id": "L-1", "subject": "s", "description": "d",
             "resolution": "r", "resolved_at": "2026-01-01T00:00:00Z", "priority": "low"}
        ],
        "queries": [{"tenant_id": "alpen", "ticket_id": "Q-1", "description": "d",
                     "priority": "low", "relevant": ["A-1"]}]
    }))
    .unwrap();
    let distractors: DataSet = serde_json::from_value(serde_json::json!({
        "resolved": [{"tenant_id": "acme", "ticket_id": "A-1", "subject": "printer",
                      "description": "d", "resolution": "r",
                      "resolved_at": "2026-01-01T00:00:00Z", "priority": "high"}],
        "queries": []
    }))
    .unwrap();
    with_distractors(&mut data, &distractors.resolved);
    let ids: Vec<(&str, &str)> = data
        .resolved
        .iter()
        .map(|t| (t.tenant_id.as_str(), t.ticket_id.as_str()))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("alpen", "A-1"),
            ("lowlands", "L-1"),
            ("alpen", "X-A-1"),
            ("lowlands", "X-A-1"),
        ]
    );
    assert_eq!(data.queries[0].relevant, vec!["A-1".to_owned()]);
}
