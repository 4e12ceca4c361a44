//! Spans leave the process over OTLP/HTTP (protobuf) in the collector's wire
//! format, to a local receiver that decodes the real protobuf.

use crate::hop;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_an_otlp_http_collector_with_parent_links() {
    let collector = aia_testkit::OtlpReceiver::start().await;
    let (send, process) = hop::export_one_hop(&collector, "http/protobuf").await;
    hop::assert_linked(&send, &process);
}
