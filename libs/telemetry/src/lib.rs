//! Logs and traces for every service.
//!
//! Logs are one JSON object per line, filtered by `RUST_LOG` (default
//! `info`). Spans go through `tracing-opentelemetry`, so every span has W3C
//! trace and span ids; [`inject`] and [`extract`] carry the context across
//! NATS in `traceparent`/`tracestate` headers, which is how one trace covers
//! a ticket from webhook to write-back.

pub mod metrics;

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the tracer provider alive; flushes spans when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.force_flush();
    }
}

/// Installs JSON logging and tracing for `service_name`. Spans are given ids
/// and propagated; they are exported only where an exporter is configured.
pub fn init(service_name: &'static str) -> TelemetryGuard {
    install(service_name, SdkTracerProvider::builder().build())
}

/// Like [`init`], with every finished span also handed to `exporter`
/// synchronously. Tests use this with an in-memory exporter.
pub fn init_with_exporter(
    service_name: &'static str,
    exporter: impl SpanExporter + 'static,
) -> TelemetryGuard {
    install(
        service_name,
        SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .build(),
    )
}

/// Like [`init_with_exporter`], with the log lines written to `logs` instead
/// of stderr, so tests can read what was logged.
pub fn init_with_exporter_and_logs<W>(
    service_name: &'static str,
    exporter: impl SpanExporter + 'static,
    logs: W,
) -> TelemetryGuard
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .build();
    let tracer = provider.tracer(service_name);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("debug"));
    let _ = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .with(json_logs(logs).with_filter(filter))
        .try_init();
    TelemetryGuard { provider }
}

fn json_logs<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_writer(writer)
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
}

fn install(service_name: &'static str, provider: SdkTracerProvider) -> TelemetryGuard {
    let tracer = provider.tracer(service_name);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = json_logs(std::io::stderr).with_filter(filter);
    // `try_init` so that tests which start several services in one process
    // share the first subscriber instead of panicking.
    let _ = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .with(logs)
        .try_init();
    TelemetryGuard { provider }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// Writes the current span's context into NATS message headers.
pub fn inject(headers: &mut HeaderMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

/// Makes `span` a child of the context carried in `headers`, if any.
pub fn set_parent_from(span: &tracing::Span, headers: Option<&HeaderMap>) {
    if let Some(headers) = headers {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
}

/// Records `span`'s OpenTelemetry trace and span ids in its `trace_id` and
/// `span_id` fields, so every log line inside it carries them.
pub fn record_trace_ids(span: &tracing::Span) {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", span_context.trace_id().to_string());
        span.record("span_id", span_context.span_id().to_string());
    }
}

/// The trace id of the current span, hex-encoded, for logs and answers.
pub fn current_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// The trace id in a `traceparent` header value.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let _version = parts.next()?;
    parts.next().filter(|id| id.len() == 32)
}
