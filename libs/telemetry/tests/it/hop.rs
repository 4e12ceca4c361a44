//! One NATS hop's worth of spans, exported to a receiver and read back.
//!
//! Each test installs the process-wide subscriber once: the suite runs under
//! nextest, which gives every test a process of its own.

use aia_testkit::{OtlpReceiver, ReceivedSpan};

/// Exports a `publish` span and a `process` span linked through message
/// headers to `collector` over `protocol`; returns (publish, process).
pub async fn export_one_hop(
    collector: &OtlpReceiver,
    protocol: &str,
) -> (ReceivedSpan, ReceivedSpan) {
    let guard = aia_telemetry::init_with_otlp(
        "otlp-test-service",
        Some(aia_telemetry::OtlpConfig {
            endpoint: Some(collector.traces_url().to_owned()),
            protocol: protocol.into(),
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
    let find = |name: &str| {
        spans
            .iter()
            .find(|span| span.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} was not exported over {protocol}"))
    };
    (
        find("publish ticket.received"),
        find("process ticket.received"),
    )
}

pub fn assert_linked(send: &ReceivedSpan, process: &ReceivedSpan) {
    assert_eq!(send.service_name, "otlp-test-service");
    assert_eq!(process.trace_id, send.trace_id, "one trace across the hop");
    assert_eq!(
        process.parent_span_id, send.span_id,
        "process is the child of send"
    );
    assert_eq!(send.trace_id.len(), 32);
}
