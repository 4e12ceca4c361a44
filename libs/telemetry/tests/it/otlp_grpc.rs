//! Spans leave the process over OTLP/gRPC, the exporter's default protocol,
//! to a local gRPC TraceService that decodes the real protobuf.

use crate::hop;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_an_otlp_grpc_collector_with_parent_links() {
    let collector = aia_testkit::OtlpReceiver::start_grpc().await;
    let (send, process) = hop::export_one_hop(&collector, "grpc").await;
    hop::assert_linked(&send, &process);
}
