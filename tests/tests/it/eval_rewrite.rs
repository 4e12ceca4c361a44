//! `aiagents eval-retrieval --llm-url`: the LLM rewrite scored as a method
//! of its own, on a real database with the local model and the
//! OpenAI-compatible stand-in — one call per query, what the calls cost,
//! and a failing call that leaves its query searched alone.

use std::time::Duration;

use aia_llm::cost::PriceTable;
use aia_standins::llm::{Behaviour, LlmStandIn};
use aiagents::eval::{self, rewrite::Llm};
use context_gatherer::sources::fusion;

const TERMS: &str = "IPsec tunnel, SA lifetime mismatch, rekey";

fn data_set() -> serde_json::Value {
    let resolved = |id: &str, subject: &str, description: &str, resolution: &str| {
        serde_json::json!({
            "tenant_id": "acme", "ticket_id": id, "subject": subject,
            "description": description, "resolution": resolution,
            "resolved_at": "2026-11-02T09:00:00Z", "priority": "Medium"
        })
    };
    serde_json::json!({
        "resolved": [
            resolved("A-1", "IPsec tunnel to branch drops hourly",
                "Site-to-site IPsec SA renegotiation fails at rekey",
                "Phase 2 lifetime mismatch; set both ends to 3600 s"),
            resolved("A-2", "Printer offline on second floor",
                "The second floor printer shows offline for everyone",
                "Renewed its DHCP reservation"),
            resolved("A-3", "Outlook asks for password repeatedly",
                "Credential prompt loops after password change",
                "Cleared cached credentials in Credential Manager"),
            resolved("A-4", "Laptop battery drains fast",
                "Battery lasts one hour", "Replaced the battery under warranty"),
        ],
        "queries": [
            {"tenant_id": "acme", "ticket_id": "Q-1", "priority": "Medium",
             "description": "Cannot reach the shared drive from home, it keeps cutting out",
             "relevant": ["A-1"]},
            {"tenant_id": "acme", "ticket_id": "Q-2", "priority": "Medium",
             "description": "The printer on the second floor is offline again",
             "relevant": ["A-2"]},
        ]
    })
}

#[tokio::test]
async fn the_rewrite_is_scored_beside_the_other_methods_with_what_it_cost() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cluster = std::env::var("AI_AGENTS_TEST_ADMIN_URL")
        .expect("AI_AGENTS_TEST_ADMIN_URL is not set: run the tests through `./dev test`");
    let app = cluster.replacen("://aiagents@", "://aiagents_app@", 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("set.json");
    std::fs::write(&path, data_set().to_string()).unwrap();
    let model_dir = std::env::var("AI_AGENTS_MODEL_DIR")
        .expect("AI_AGENTS_MODEL_DIR is not set: run the tests through `./dev test`");
    let embedder = aia_embed::Embedder::Local(std::sync::Arc::new(
        aia_embed::local::MiniLm::load(std::path::Path::new(&model_dir)).unwrap(),
    ));
    let stand_in = LlmStandIn::new();
    stand_in.script([
        Behaviour::Reply(TERMS.into()),
        Behaviour::Status {
            code: 500,
            retry_after: None,
        },
    ]);
    let server = aia_standins::serve(stand_in.router()).await.unwrap();
    let llm = Llm {
        provider: aia_llm::Provider {
            name: "eval".into(),
            kind: aia_llm::ProviderKind::OpenAi,
            base_url: format!("{}/v1", server.url()),
            api_key: Some("sk-eval-key-123456".into()),
            model: "gpt-4o-mini".into(),
            timeout: Duration::from_secs(5),
        },
        prices: PriceTable::default(),
        timeout: Duration::from_secs(5),
    };

    let report = eval::run(
        &cluster,
        &app,
        &path,
        &embedder,
        eval::Plan {
            k: 5,
            fusions: &[fusion::DEFAULT],
            feedback_weight: 0.0,
            llm: Some(&llm),
            distractors: &[],
        },
    )
    .await
    .unwrap();

    assert_eq!(stand_in.requests().len(), 2, "one call per query, no retry");
    let spend = report.rewrite.expect("the rewrite's spend is reported");
    assert_eq!((spend.asked, spend.answered), (2, 1));
    assert!(spend.tokens_in > 0 && spend.tokens_out > 0);
    let expected = PriceTable::default().cost(
        "gpt-4o-mini",
        u32::try_from(spend.tokens_in).unwrap(),
        u32::try_from(spend.tokens_out).unwrap(),
    );
    assert!(spend.cost_usd > 0.0);
    assert!((spend.cost_usd - expected).abs() < 1e-12);
    assert_eq!(spend.latencies_ms.len(), 2);
    assert!(
        spend
            .first_failure
            .as_deref()
            .is_some_and(|why| why.contains("500")),
        "{:?}",
        spend.first_failure
    );
    assert!(spend.summary().contains("1/2 answered"));

    let rewritten = report
        .scores
        .iter()
        .find(|s| s.method == "ours, fused + LLM rewrite (gpt-4o-mini)")
        .expect("the rewrite is a method of its own");
    let fused = report
        .scores
        .iter()
        .find(|s| s.method == "ours, fused (meaning + words)")
        .unwrap();
    // The terms find the IPsec fix; the failed call leaves the printer
    // query searched by its own words, which find its ticket.
    assert_eq!(rewritten.recall_at_k, 1.0);
    assert_eq!(rewritten.mrr, 1.0);
    // Alone, the lay words of the first query miss the IPsec ticket.
    assert_eq!((fused.recall_at_k, fused.mrr), (0.5, 0.5));
    assert_eq!(rewritten.cross_tenant_hits, 0);
}
