//! What the trace backend keeps is what we chose to send: a library's
//! debug output inside our spans — above all the PostgreSQL client's,
//! which prints every statement's parameters — never becomes a span event.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statements_parameters_never_reach_the_trace_backend() {
    let collector = aia_testkit::OtlpReceiver::start().await;
    let guard = aia_telemetry::init_with_otlp(
        "otlp-test-service",
        Some(aia_telemetry::OtlpConfig {
            endpoint: Some(collector.traces_url().to_owned()),
            protocol: "http/protobuf".into(),
        }),
    );
    {
        let span = tracing::info_span!("process ticket.received");
        let _entered = span.enter();
        // As tokio-postgres logs each statement, through the `log` bridge
        // and through `tracing`.
        log::debug!(
            target: "tokio_postgres::query",
            "executing statement s0 with parameters: [\"jane.doe@example.com\"]"
        );
        tracing::debug!(
            target: "tokio_postgres::query",
            "executing statement s1 with parameters: [\"jane.doe@example.com\"]"
        );
        tracing::info!(target: "tokio_postgres::connection", "jane.doe@example.com");
        tracing::info!(sources = 4, "Context gathered");
    }
    tokio::task::spawn_blocking(move || guard.flush())
        .await
        .unwrap();
    let spans = collector.spans();
    let span = spans
        .iter()
        .find(|span| span.name == "process ticket.received")
        .expect("the span is exported");
    assert!(
        span.events
            .iter()
            .any(|event| event.contains("Context gathered")),
        "our own info events stay: {:?}",
        span.events
    );
    assert!(
        !span.events.iter().any(|event| event.contains("jane.doe")),
        "{:?}",
        span.events
    );
}
