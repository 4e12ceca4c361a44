//! Client spans for the HTTP calls every stage makes (help desks, LLM
//! providers, knowledge bases, monitoring), after the OpenTelemetry HTTP
//! semantic conventions. The URL is not recorded: query strings carry
//! tokens and ticket text; the host, method and status are enough to see
//! which dependency was slow or failing.

use std::future::Future;

use tracing::Instrument;

/// `send_traced` on a request builder: `send`, inside an HTTP client span.
pub trait TracedSend {
    /// Sends the request inside a span naming `peer` (`jira`,
    /// `knowledge-base`, ...), with the response status or the error type.
    fn send_traced(
        self,
        peer: &'static str,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + Send;
}

impl TracedSend for reqwest::RequestBuilder {
    async fn send_traced(self, peer: &'static str) -> reqwest::Result<reqwest::Response> {
        let (client, request) = self.build_split();
        let request = request?;
        let url = request.url();
        let span = tracing::info_span!(
            "http client",
            otel.name = %request.method(),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            http.request.method = %request.method(),
            server.address = url.host_str().unwrap_or_default(),
            server.port = url.port_or_known_default(),
            peer.service = peer,
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        let result = client.execute(request).instrument(span.clone()).await;
        match &result {
            Ok(response) => {
                let status = response.status();
                span.record("http.response.status_code", status.as_u16());
                if status.is_client_error() || status.is_server_error() {
                    span.record("error.type", status.as_str());
                    span.record("otel.status_code", "ERROR");
                }
            }
            Err(err) => {
                let kind = if err.is_timeout() {
                    "timeout"
                } else if err.is_connect() {
                    "connect"
                } else {
                    "transport"
                };
                span.record("error.type", kind);
                span.record("otel.status_code", "ERROR");
            }
        }
        result
    }
}
