//! Technicians' ratings move similar-ticket ranking (at the weight the
//! evaluation measures; off by default until a set shows it helps): a ticket cited in notes
//! rated helpful rises above a slightly closer one, one cited in unhelpful
//! notes sinks below it, a lone rating cannot push out a clearly closer
//! match — and a tenant's ratings move only its own ranking.

use aia_events::TenantId;
use aia_store::embeddings::{Corpus, NewVector};
use aia_testkit::TestDatabase;
use context_gatherer::sources::fusion::{DEFAULT, Fusion, MEASURED_FEEDBACK_WEIGHT};
use context_gatherer::sources::similar::{self, Semantic};

const MODEL: &str = "test-model";

/// Unit vector at `angle` radians in the plane: cosines are easy to set.
fn at(angle: f32) -> Vec<f32> {
    vec![angle.cos(), angle.sin()]
}

async fn corpus(db: &TestDatabase, tenant: &str) {
    let owner = db.admin_client().await;
    let pool = aia_store::pool(&db.app_url, 1).unwrap();
    let mut client = pool.get().await.unwrap();
    let tenant_id = TenantId::parse(tenant).unwrap();
    // The query sits at angle 0: "near" at cosine ≈ 0.62, "close" at ≈ 0.60.
    for (id, angle) in [("near", 0.902_f32), ("close", 0.927_f32)] {
        owner
            .execute(
                "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority,
                        resolved_at, last_event_id)
                 values ($1, $2, 'Printer offline', 'The printer is offline', 'Restarted the spooler', 'low',
                         now(), gen_random_uuid())",
                &[&tenant, &id],
            )
            .await
            .unwrap();
        let vector = at(angle);
        aia_store::embeddings::upsert(
            &mut client,
            &tenant_id,
            Corpus::Tickets,
            &[NewVector {
                id,
                model: MODEL,
                vector: &vector,
                content_sha256: &[0; 32],
            }],
        )
        .await
        .unwrap();
    }
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

async fn ranking(db: &TestDatabase, tenant: &str) -> Vec<String> {
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
    let query = at(0.0);
    similar::similar_tickets_by_meaning(
        &pool,
        &TenantId::parse(tenant).unwrap(),
        "printer offline",
        Semantic {
            model: MODEL,
            vector: &query,
            fusion: Fusion {
                feedback_weight: MEASURED_FEEDBACK_WEIGHT,
                ..DEFAULT
            },
        },
        5,
    )
    .await
    .unwrap()
    .into_iter()
    .map(|hit| hit.ticket_id.to_string())
    .collect()
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
