//! Embedding providers: an OpenAI-compatible endpoint (played by a local
//! stand-in) with its batching, retries and refusals; the embedder service
//! serving the real local model over the same API; and the stored vectors'
//! isolation between tenants and between models.

use std::sync::Arc;
use std::time::Duration;

use aia_embed::local::MiniLm;
use aia_embed::{EmbedError, Embedder, Endpoint, EndpointConfig, LOCAL_MODEL};
use aia_events::TenantId;
use aia_llm::chain::RetryPolicy;
use aia_standins::embeddings::{Behaviour, EmbeddingsStandIn};
use aia_store::embeddings::{self, Corpus};
use aia_testkit::TestDatabase;
use context_gatherer::sources::fusion;
use context_gatherer::sources::similar::{self, Semantic};

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("text number {i} about printers"))
        .collect()
}

fn quick_retries(config: &mut EndpointConfig) {
    config.retry = RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(2),
    };
}

async fn stand_in() -> (EmbeddingsStandIn, aia_standins::Running) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let stand_in = EmbeddingsStandIn::new("nomic-embed-text", 64);
    stand_in.require_key("sk-test");
    let server = aia_standins::serve(stand_in.router()).await.unwrap();
    (stand_in, server)
}

fn endpoint(url: &str, tune: impl FnOnce(&mut EndpointConfig)) -> Embedder {
    let mut config = EndpointConfig::new(format!("{url}/v1"), "nomic-embed-text");
    config.api_key = Some("sk-test".into());
    quick_retries(&mut config);
    tune(&mut config);
    Embedder::Endpoint(Endpoint::new(reqwest::Client::new(), config))
}

#[tokio::test]
async fn an_endpoint_embeds_in_batches_in_order_with_unit_vectors() {
    let (stand_in, server) = stand_in().await;
    let embedder = endpoint(&server.url(), |c| c.batch_size = 2);
    let input = texts(5);
    let vectors = embedder.embed(&input).await.unwrap();
    assert_eq!(stand_in.batches(), [2, 2, 1]);
    assert_eq!(vectors.len(), 5);
    for (vector, text) in vectors.iter().zip(&input) {
        let norm: f32 = vector.as_slice().iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        let expected = aia_embed::Vector::normalised(EmbeddingsStandIn::vector(text, 64)).unwrap();
        assert!(
            vector.cosine(expected.as_slice()) > 0.9999,
            "vector of {text:?} out of order"
        );
    }
    assert_eq!(embedder.model(), "nomic-embed-text");
}

#[tokio::test]
async fn a_429_is_retried_after_the_time_it_asks_for_and_a_5xx_too() {
    let (stand_in, server) = stand_in().await;
    stand_in.script([
        Behaviour::Status {
            code: 429,
            retry_after: Some(1),
        },
        Behaviour::Status {
            code: 503,
            retry_after: None,
        },
    ]);
    let embedder = endpoint(&server.url(), |_| {});
    let started = std::time::Instant::now();
    let vectors = embedder.embed(&texts(3)).await.unwrap();
    assert_eq!(vectors.len(), 3);
    assert_eq!(stand_in.batches().len(), 3, "two failures, then the answer");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
}

#[tokio::test]
async fn a_provider_that_keeps_failing_or_hangs_is_unavailable_after_the_attempts() {
    let (stand_in, server) = stand_in().await;
    stand_in.script(std::iter::repeat_n(
        Behaviour::Status {
            code: 500,
            retry_after: None,
        },
        3,
    ));
    let err = endpoint(&server.url(), |_| {})
        .embed(&texts(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EmbedError::Unavailable(_)) && err.is_transient(),
        "{err}"
    );
    assert_eq!(stand_in.batches().len(), 3);

    stand_in.script(std::iter::repeat_n(
        Behaviour::Slow(Duration::from_secs(3)),
        3,
    ));
    let err = endpoint(&server.url(), |c| c.timeout = Duration::from_millis(200))
        .embed(&texts(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no answer within 200 ms"), "{err}");
}

#[tokio::test]
async fn refusals_and_malformed_answers_are_not_retried() {
    let (stand_in, server) = stand_in().await;
    stand_in.script([Behaviour::Status {
        code: 400,
        retry_after: None,
    }]);
    let err = endpoint(&server.url(), |_| {})
        .embed(&texts(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EmbedError::Refused(_)) && !err.is_transient(),
        "{err}"
    );
    assert_eq!(stand_in.batches().len(), 1);

    stand_in.script([Behaviour::MissingVector]);
    let err = endpoint(&server.url(), |_| {})
        .embed(&texts(2))
        .await
        .unwrap_err();
    assert!(matches!(err, EmbedError::Malformed(_)), "{err}");

    // A wrong key is a refusal too, and the key is never in the error.
    let err = endpoint(&server.url(), |c| c.api_key = Some("sk-wrong".into()))
        .embed(&texts(1))
        .await
        .unwrap_err();
    assert!(matches!(err, EmbedError::Refused(_)), "{err}");
    assert!(!err.to_string().contains("sk-wrong"));
}

fn model() -> Arc<MiniLm> {
    let dir = std::env::var("AI_AGENTS_MODEL_DIR")
        .expect("AI_AGENTS_MODEL_DIR is not set: run the tests through `./dev test`");
    Arc::new(MiniLm::load(std::path::Path::new(&dir)).unwrap())
}

#[tokio::test]
async fn the_embedder_service_serves_the_local_model_over_the_openai_api() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let model = model();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = embedder::Config {
        stage: aia_bus::StageSettings::new(
            String::new(),
            String::new(),
            aia_store::Keyring::parse(&aia_testkit::keyring_spec()).unwrap(),
        ),
        model_dir: std::path::PathBuf::new(),
        addr,
        api_key: Some("internal-token".into()),
        max_inputs: 8,
        max_parallel: 1,
        indexer: false,
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(embedder::serve(
        config,
        model.clone(),
        listener,
        stop.clone().cancelled_owned(),
    ));
    let base = format!("http://{addr}/v1");

    let mut config = EndpointConfig::new(&base, LOCAL_MODEL);
    config.api_key = Some("internal-token".into());
    let remote = Embedder::Endpoint(Endpoint::new(reqwest::Client::new(), config));
    let input = vec![
        "VPN drops every few minutes".to_owned(),
        "Printer jammed".to_owned(),
    ];
    let over_http = remote.embed(&input).await.unwrap();
    let in_process = Embedder::Local(model).embed(&input).await.unwrap();
    for (a, b) in over_http.iter().zip(&in_process) {
        assert!(a.cosine(b.as_slice()) > 0.99999);
    }

    let http = reqwest::Client::new();
    let post = |body: serde_json::Value, token: Option<&str>| {
        let mut request = http.post(format!("{base}/embeddings")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    // A single string is an input too, as in OpenAI's API.
    let one = post(
        serde_json::json!({"model": "all-MiniLM-L6-v2", "input": "hello"}),
        Some("internal-token"),
    )
    .await
    .unwrap();
    assert_eq!(one.status(), 200);
    let body: serde_json::Value = one.json().await.unwrap();
    assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 384);
    assert_eq!(body["model"], LOCAL_MODEL);
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(
            post(
                serde_json::json!({"model": LOCAL_MODEL, "input": "x"}),
                None
            )
            .await
            .unwrap()
        ),
        401
    );
    assert_eq!(
        status(
            post(
                serde_json::json!({"model": "text-embedding-3-small", "input": "x"}),
                Some("internal-token")
            )
            .await
            .unwrap()
        ),
        404
    );
    assert_eq!(
        status(
            post(
                serde_json::json!({"model": LOCAL_MODEL, "input": texts(9)}),
                Some("internal-token")
            )
            .await
            .unwrap()
        ),
        400,
        "more inputs than allowed"
    );
    assert_eq!(
        status(
            post(
                serde_json::json!({"model": LOCAL_MODEL, "input": [[1, 2, 3]]}),
                Some("internal-token")
            )
            .await
            .unwrap()
        ),
        400,
        "token arrays are not supported"
    );
    stop.cancel();
    server.await.unwrap().unwrap();
}

fn unit(values: &[f32]) -> Vec<f32> {
    aia_embed::Vector::normalised(values.to_vec())
        .unwrap()
        .as_slice()
        .to_vec()
}

async fn store(
    client: &mut aia_store::Client,
    tenant: &str,
    id: &str,
    model: &str,
    vector: &[f32],
) -> Result<(), aia_store::StoreError> {
    crate::ranking_signals::store_vector(
        client,
        &TenantId::parse(tenant).unwrap(),
        id,
        model,
        vector,
    )
    .await
}

#[tokio::test]
async fn vectors_never_cross_tenants_nor_models_and_a_dimension_mismatch_is_refused() {
    let db = TestDatabase::create().await;
    db.admin_client()
        .await
        .batch_execute(
            "insert into ticket_history (tenant_id, ticket_id, subject, description, resolution, priority, resolved_at, last_event_id) values
               ('acme', 'A-1', 'VPN drops', 'Tunnel drops', 'MTU 1400', 'high', now(), gen_random_uuid()),
               ('globex', 'G-1', 'VPN drops', 'Tunnel drops', 'Globex-only fix', 'high', now(), gen_random_uuid()),
               ('acme', 'A-2', 'Printer', 'Jam', 'Cleared it', 'low', now(), gen_random_uuid());",
        )
        .await
        .unwrap();
    let pool = aia_store::pool(&db.app_url, 2).unwrap();
    let mut client = pool.get().await.unwrap();
    let query = unit(&[1.0, 0.0, 0.0]);
    // Globex's ticket is the query itself; Acme's is close; model m2 holds
    // an exact match for Acme's other ticket.
    store(&mut client, "globex", "G-1", "m1", &query)
        .await
        .unwrap();
    store(&mut client, "acme", "A-1", "m1", &unit(&[0.9, 0.1, 0.0]))
        .await
        .unwrap();
    store(&mut client, "acme", "A-2", "m2", &query)
        .await
        .unwrap();

    let acme = TenantId::parse("acme").unwrap();
    let semantic = Semantic {
        model: "m1",
        vector: &query,
        rewrite: None,
        fusion: fusion::DEFAULT,
    };
    let hits = similar::similar_tickets_by_meaning(
        &pool,
        &acme,
        "vpn",
        aia_events::Language::English,
        semantic,
        5,
    )
    .await
    .unwrap();
    let ids: Vec<String> = hits.iter().map(|h| h.ticket_id.to_string()).collect();
    assert_eq!(ids, ["A-1"], "only Acme's vectors of model m1");
    assert!(
        hits[0].score > 0.5,
        "a cosine of 0.99 is a likely match: {}",
        hits[0].score
    );

    // Under Acme's row-level security Globex's vectors do not exist.
    let loaded = embeddings::load(&mut client, &acme, Corpus::Tickets, "m1")
        .await
        .unwrap();
    assert_eq!(
        loaded.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["A-1"]
    );
    // Nor can Acme write one for Globex.
    let crossing = {
        let tx = aia_store::tenant_transaction(&mut client, &acme)
            .await
            .unwrap();
        let result = tx
            .execute(
                "insert into ticket_embeddings (tenant_id, ticket_id, model, dim, content_sha256, vector) values ('globex', 'X', 'm1', 1, '\\x00', '\\x00000000')",
                &[],
            )
            .await;
        format!("{:?}", result.unwrap_err())
    };
    assert!(crossing.contains("row-level security"), "{crossing}");

    // Another dimension under the same model is refused when stored …
    let err = store(&mut client, "acme", "A-2", "m1", &unit(&[1.0, 0.0]))
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("model mismatch"), "{err:?}");
    // … and a query of another dimension is refused, not compared.
    let short = unit(&[1.0, 0.0]);
    let err = similar::similar_tickets_by_meaning(
        &pool,
        &acme,
        "vpn",
        aia_events::Language::English,
        Semantic {
            model: "m1",
            vector: &short,
            rewrite: None,
            fusion: fusion::DEFAULT,
        },
        5,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("model mismatch"), "{err}");
}
