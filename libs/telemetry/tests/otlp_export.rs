//! Spans leave the process over OTLP/HTTP in the collector's wire format,
//! to a local receiver that decodes the real protobuf.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_an_otlp_http_collector_with_parent_links() {
    let collector = aia_testkit::OtlpReceiver::start().await;
    let guard = aia_telemetry::init_with_otlp(
        "otlp-test-service",
        Some(aia_telemetry::OtlpConfig {
            endpoint: Some(collector.traces_url().to_owned()),
            protocol: "http/protobuf".into(),
        }),
    );

    let mut headers = async_nats::HeaderMap::new();
    {
        let send = tracing::info_span!("publish ticket.received");
        let _entered = send.enter();
        aia_telemetry::inject(&mut headers);
    }
    {
        let process = tracing::info_span!("process ticket.received");
        aia_telemetry::set_parent_from(&process, Some(&headers));
        let _entered = process.enter();
    }
    // The batch processor exports on flush; flushing blocks, so off the
    // async worker.
    tokio::task::spawn_blocking(move || guard.flush())
        .await
        .unwrap();

    let spans = collector.spans();
    let send = spans
        .iter()
        .find(|span| span.name == "publish ticket.received")
        .expect("the send span was exported");
    let process = spans
        .iter()
        .find(|span| span.name == "process ticket.received")
        .expect("the process span was exported");
    assert_eq!(send.service_name, "otlp-test-service");
    assert_eq!(process.trace_id, send.trace_id, "one trace across the hop");
    assert_eq!(
        process.parent_span_id, send.span_id,
        "process is the child of send"
    );
    assert_eq!(send.trace_id.len(), 32);
}
