//! Logs and traces for every service.
//!
//! Logs are one JSON object per line, filtered by `RUST_LOG` (default
//! `info`). Spans go through `tracing-opentelemetry`, so every span has W3C
//! trace and span ids; [`inject`] and [`extract`] carry the context across
//! NATS in `traceparent`/`tracestate` headers, which is how one trace covers
//! a ticket from webhook to write-back.

pub mod http;
pub mod metrics;

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the tracer provider alive; flushes spans when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Exports every finished span now.
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
    }
}

/// Installs JSON logging and tracing for `service_name`. Spans are given ids
/// and propagated always; they are exported over OTLP when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
/// is set, with `OTEL_EXPORTER_OTLP_PROTOCOL` `grpc` (the default) or
/// `http/protobuf`. `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and
/// `OTEL_TRACES_SAMPLER`/`_ARG` are honoured. Must run inside a Tokio
/// runtime when exporting.
pub fn init(service_name: &'static str) -> TelemetryGuard {
    init_with_otlp(service_name, OtlpConfig::from_env())
}

/// Where spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The collector; for `http/protobuf` the full URL of the traces path.
    pub endpoint: Option<String>,
    /// `grpc` or `http/protobuf`.
    pub protocol: String,
}

impl OtlpConfig {
    /// From the standard `OTEL_EXPORTER_OTLP_*` variables; no endpoint means
    /// no export.
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let traces_endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT");
        if traces_endpoint.is_none() && endpoint.is_none() {
            return None;
        }
        let protocol = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_else(|| "grpc".into());
        // The exporter reads the variables itself and appends /v1/traces to
        // the general endpoint over HTTP; only a traces endpoint is final.
        Some(Self {
            endpoint: traces_endpoint,
            protocol,
        })
    }
}

/// [`init`] with the export given rather than read from the environment.
pub fn init_with_otlp(service_name: &'static str, otlp: Option<OtlpConfig>) -> TelemetryGuard {
    install(service_name, otlp_provider(service_name, otlp))
}

/// [`init_with_otlp`] with the log lines written to `logs` instead of
/// stderr, so tests can read what was logged beside what was exported.
pub fn init_with_otlp_and_logs<W>(
    service_name: &'static str,
    otlp: OtlpConfig,
    logs: W,
) -> TelemetryGuard
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    install_with_logs(
        service_name,
        otlp_provider(service_name, Some(otlp)),
        logs,
        "debug",
    )
}

/// A tracer provider exporting to `otlp` in batches, or exporting nothing.
fn otlp_provider(service_name: &'static str, otlp: Option<OtlpConfig>) -> SdkTracerProvider {
    // The OTLP HTTP client is a reqwest client, built without a default TLS
    // backend in this workspace (it uses ring); telemetry starts before
    // anything else, so it installs the provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = SdkTracerProvider::builder().with_resource(resource(service_name));
    match otlp.map(|config| otlp_exporter(&config)).transpose() {
        Ok(Some(exporter)) => {
            let processor = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
                exporter,
                opentelemetry_sdk::runtime::Tokio,
            )
            .build();
            builder = builder.with_span_processor(processor);
        }
        Ok(None) => {}
        Err(err) => eprintln!("OpenTelemetry export is off: {err}"),
    }
    builder.build()
}

/// The service's resource: `OTEL_SERVICE_NAME` when set, else the
/// service's own name, plus `OTEL_RESOURCE_ATTRIBUTES`.
fn resource(service_name: &'static str) -> opentelemetry_sdk::Resource {
    let builder = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_ok_and(|name| !name.is_empty()) {
        builder.build()
    } else {
        builder.with_service_name(service_name).build()
    }
}

/// The OTLP exporter for `config`.
fn otlp_exporter(config: &OtlpConfig) -> Result<opentelemetry_otlp::SpanExporter, String> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = match config.protocol.as_str() {
        "grpc" => {
            let builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            match &config.endpoint {
                Some(endpoint) => builder.with_endpoint(endpoint).build(),
                None => builder.build(),
            }
        }
        "http/protobuf" => {
            let builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
            match &config.endpoint {
                Some(endpoint) => builder.with_endpoint(endpoint).build(),
                None => builder.build(),
            }
        }
        other => {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL {other:?} is not grpc or http/protobuf"
            ));
        }
    };
    exporter.map_err(|err| err.to_string())
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
    install_with_logs(service_name, provider, std::io::stderr, "info")
}

fn install_with_logs<W>(
    service_name: &'static str,
    provider: SdkTracerProvider,
    logs: W,
    default_filter: &str,
) -> TelemetryGuard
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let tracer = provider.tracer(service_name);
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // `try_init` so that tests which start several services in one process
    // share the first subscriber instead of panicking.
    let _ = tracing_subscriber::registry()
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(exported()),
        )
        .with(json_logs(logs).with_filter(filter))
        .try_init();
    TelemetryGuard { provider }
}

/// What becomes spans and span events in the trace backend: our spans and
/// what is logged at info and above inside them. Never a library's debug
/// output, which the trace backend would keep and the logs do not: the
/// PostgreSQL client's (through the `log` bridge) prints every statement's
/// parameters — ticket text, e-mail addresses, notes — and formatting them
/// for every statement would cost CPU on the hot path besides.
fn exported() -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("tokio_postgres", LevelFilter::OFF)
        .with_target("postgres_protocol", LevelFilter::OFF)
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

/// A database client span (OpenTelemetry database conventions): PostgreSQL,
/// the operation and the table. The statement text is not recorded; its
/// parameters would carry ticket text.
pub fn db_span(operation: &'static str, collection: &'static str) -> tracing::Span {
    tracing::info_span!(
        "db client",
        otel.name = %format!("{operation} {collection}"),
        otel.kind = "client",
        db.system.name = "postgresql",
        db.operation.name = operation,
        db.collection.name = collection,
    )
}
