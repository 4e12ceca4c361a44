//! Spans leave the process over OTLP/HTTP in the collector's wire format.
//!
//! A local receiver plays the OpenTelemetry Collector: it decodes
//! `ExportTraceServiceRequest` protobufs posted to `/v1/traces`, exactly what
//! a real collector (or Tempo, or Jaeger) accepts on port 4318.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;

type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

async fn collector(State(received): State<Received>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("a valid OTLP protobuf body");
    received.lock().unwrap().push(request);
    ""
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_an_otlp_http_collector_with_parent_links() {
    let received = Received::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(collector))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let guard = aia_telemetry::init_with_otlp(
        "otlp-test-service",
        Some(aia_telemetry::OtlpConfig {
            endpoint: Some(format!("http://{addr}/v1/traces")),
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

    let requests = received.lock().unwrap().clone();
    let resource_spans: Vec<_> = requests
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .collect();
    assert!(
        !resource_spans.is_empty(),
        "the collector received no spans"
    );
    let service_names: Vec<String> = resource_spans
        .iter()
        .flat_map(|rs| rs.resource.iter().flat_map(|r| r.attributes.iter()))
        .filter(|kv| kv.key == "service.name")
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert!(
        service_names.iter().all(|name| name == "otlp-test-service") && !service_names.is_empty(),
        "resource service.name was {service_names:?}"
    );

    let spans: Vec<_> = resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter()))
        .collect();
    let send = spans
        .iter()
        .find(|span| span.name == "publish ticket.received")
        .expect("the send span was exported");
    let process = spans
        .iter()
        .find(|span| span.name == "process ticket.received")
        .expect("the process span was exported");
    assert_eq!(process.trace_id, send.trace_id, "one trace across the hop");
    assert_eq!(
        process.parent_span_id, send.span_id,
        "process is the child of send"
    );
    assert_eq!(send.trace_id.len(), 16);
}
