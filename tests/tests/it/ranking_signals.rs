//! What reorders similar tickets besides meaning: technicians' ratings, on
//! by default — a ticket cited in notes rated helpful rises above a
//! slightly closer one, and a tenant's ratings move only its own ranking —
//! and a lexical bonus for rare words only (off by default; the evaluation
//! measures it), where an error code counts and everyday words do not.

use aia_events::TenantId;
use aia_store::embeddings::{Corpus, NewVector};
use aia_testkit::TestDatabase;
use context_gatherer::sources::fusion::{DEFAULT, Fusion};
use context_gatherer::sources::similar::{self, Semantic};

const MODEL: &str = "test-model";

/// Unit vector at `angle` radians in the plane: cosines are easy to set.
fn at(angle: f32) -> Vec<f32> {
    vec![angle.cos(), angle.sin()]
}

/// Resolved tickets of `tenant`: id, angle to the query, text.
async fn tickets(db: &TestDatabase, tenant: &str, tickets: &[(&str, f32, &str)]) {
    let owner = db.admin_client().await;
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    let mut client = pool.get().await.unwrap();
    let tenant_id = TenantId::parse(tenant).unwrap();
    for (id, angle, text) in tickets {
        owner
            .execute(
                "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority,
                        resolved_at, last_event_id)
                 values ($1, $2, $3, $3, 'Fixed', 'low', now(), gen_random_uuid())",
                &[&tenant, id, text],
            )
            .await
            .unwrap();
        store_vector(&mut client, &tenant_id, id, MODEL, &at(*angle))
            .await
            .unwrap();
    }
}

/// Stores `vector` as resolved ticket `id`'s embedding by `model`.
pub(crate) async fn store_vector(
    client: &mut aia_store::Client,
    tenant: &TenantId,
    id: &str,
    model: &str,
    vector: &[f32],
) -> Result<(), aia_store::StoreError> {
    aia_store::embeddings::upsert(
        client,
        tenant,
        Corpus::Tickets,
        &[NewVector {
            id,
            model,
            vector,
            content_sha256: &[0; 32],
        }],
    )
    .await
}

/// The query sits at angle 0: "near" at cosine ≈ 0.62, "close" at ≈ 0.60.
async fn corpus(db: &TestDatabase, tenant: &str) {
    tickets(
        db,
        tenant,
        &[
            ("near", 0.902, "Printer offline"),
            ("close", 0.927, "Printer offline"),
        ],
    )
    .await;
}

async fn rate(db: &TestDatabase, tenant: &str, cited: &str, helpful: bool, times: usize) {
    let owner = db.admin_client().await;
    for _ in 0..times {
        owner
            .execute(
                "insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, context,
                        note_markdown, rating_thumbs_up, rated_at, last_event_id)
                 values ($1, gen_random_uuid(), 'Q-1', 'completed', $2, $3, $4, now(), gen_random_uuid())",
                &[
                    &tenant,
                    &serde_json::json!({"similar_tickets": [{"ticket_id": cited}]}),
                    &format!("Similar ticket {cited} was resolved by restarting the spooler."),
                    &helpful,
                ],
            )
            .await
            .unwrap();
    }
}

async fn ranked(db: &TestDatabase, tenant: &str, text: &str, fusion: Fusion) -> Vec<String> {
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
    let query = at(0.0);
    similar::similar_tickets_by_meaning(
        &pool,
        &TenantId::parse(tenant).unwrap(),
        text,
        aia_events::Language::English,
        Semantic {
            model: MODEL,
            vector: &query,
            rewrite: None,
            fusion,
        },
        5,
    )
    .await
    .unwrap()
    .into_iter()
    .map(|hit| hit.ticket_id.to_string())
    .collect()
}

async fn ranking(db: &TestDatabase, tenant: &str) -> Vec<String> {
    ranked(db, tenant, "printer offline", DEFAULT).await
}

#[tokio::test]
async fn ratings_move_a_tenants_own_ranking_within_bounds_and_nobody_elses() {
    let db = TestDatabase::create().await;
    corpus(&db, "acme").await;
    corpus(&db, "evil").await;
    assert_eq!(ranking(&db, "acme").await, ["near", "close"]);

    // Praise for the slightly farther ticket lifts it.
    rate(&db, "acme", "close", true, 3).await;
    assert_eq!(ranking(&db, "acme").await, ["close", "near"]);

    // Another tenant pans acme's favourite and praises the other, many
    // times: acme's ranking does not move; its own does.
    rate(&db, "evil", "close", false, 50).await;
    rate(&db, "evil", "near", true, 50).await;
    assert_eq!(ranking(&db, "acme").await, ["close", "near"]);
    assert_eq!(ranking(&db, "evil").await, ["near", "close"]);

    // A note that did not cite the ticket says nothing about it.
    let owner = db.admin_client().await;
    owner
        .execute(
            "update enhancement_history set note_markdown = 'No information available'
              where tenant_id = 'acme'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(ranking(&db, "acme").await, ["near", "close"]);
}

/// A rated run as the context stage and the projector store it: every
/// hit the run showed in its context, the note naming `named`.
async fn rate_run(db: &TestDatabase, tenant: &str, hits: &[&str], named: &str, helpful: bool) {
    let owner = db.admin_client().await;
    let context = serde_json::json!({
        "similar_tickets": hits.iter().map(|id| serde_json::json!({"ticket_id": id})).collect::<Vec<_>>()
    });
    owner
        .execute(
            "insert into enhancement_history (tenant_id, correlation_id, ticket_id, status, context,
                    note_markdown, rating_thumbs_up, rated_at, last_event_id)
             values ($1, gen_random_uuid(), 'Q-2', 'completed', $2, $3, $4, now(), gen_random_uuid())",
            &[
                &tenant,
                &context,
                &format!("Similar ticket {named} had the fix."),
                &helpful,
            ],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_run_counts_for_a_ticket_whose_nearest_hold_half_its_hits_whatever_its_ids() {
    let db = TestDatabase::create().await;
    // The query's five nearest, then the ticket with the fix just below
    // them: ids with quotes, backslashes, path syntax and non-ASCII, which
    // the search writes into a JSON path.
    let odd = [
        r#"n"1"#,
        r"n\2",
        "n3 || true",
        "né-4",
        "$[*]",
        r#"fix" || @ == "x"#,
    ];
    tickets(
        &db,
        "acme",
        &[
            (odd[0], 0.80, "Printer offline"),
            (odd[1], 0.81, "Printer offline"),
            (odd[2], 0.82, "Printer offline"),
            (odd[3], 0.83, "Printer offline"),
            (odd[4], 0.84, "Printer offline"),
            (odd[5], 0.86, "Printer offline"),
        ],
    )
    .await;
    let fix = odd[5];
    assert!(!ranking(&db, "acme").await.contains(&fix.to_owned()));

    // Two of the run's five hits among the ticket's nearest: not a ticket
    // like it, nothing moves.
    rate_run(&db, "acme", &[odd[0], odd[1], "o1", "o2", fix], fix, true).await;
    assert!(!ranking(&db, "acme").await.contains(&fix.to_owned()));

    // Three of five: the fix the note named rises into the five, though
    // it was not among them.
    rate_run(&db, "acme", &[odd[0], odd[1], odd[2], "o3", fix], fix, true).await;
    rate_run(&db, "acme", &[odd[0], odd[1], odd[2], "o3", fix], fix, true).await;
    let ranked = ranking(&db, "acme").await;
    assert!(ranked.contains(&fix.to_owned()), "{ranked:?}");
}

#[tokio::test]
async fn with_rare_words_only_an_error_code_counts_and_everyday_words_do_not() {
    let db = TestDatabase::create().await;
    // "chatty" shares many everyday words with the query, "coded" only the
    // error code; six more (too far to be found) make those everyday words
    // common.
    tickets(
        &db,
        "acme",
        &[
            (
                "chatty",
                0.902,
                "printer offline again queue stuck spooler printing",
            ),
            ("coded", 0.927, "device shows code 0x8007045d"),
            ("a", 1.4, "printer offline queue stuck"),
            ("b", 1.4, "printer offline spooler printing"),
            ("c", 1.4, "printer queue stuck again"),
            ("d", 1.4, "offline spooler printing again"),
            (
                "e",
                1.4,
                "printer offline again queue stuck spooler printing",
            ),
            (
                "f",
                1.4,
                "printer offline again queue stuck spooler printing",
            ),
        ],
    )
    .await;
    let text = "printer offline again, queue stuck, spooler printing, code 0x8007045d";
    let all = ranked(&db, "acme", text, DEFAULT).await;
    assert_eq!(&all[..2], ["chatty", "coded"], "every shared word counts");
    let rare = Fusion {
        rare_words_only: true,
        ..DEFAULT
    };
    let rare_only = ranked(&db, "acme", text, rare).await;
    assert_eq!(&rare_only[..2], ["coded", "chatty"], "only the code counts");
}
