//! `aiagents run`, `serve` and `demo`: the services in this process.

use std::path::PathBuf;

use anyhow::Context as _;

use super::env;
use crate::{all_in_one, demo};

#[derive(clap::Args)]
pub struct RunArgs {
    #[arg(value_enum)]
    pub service: Service,
}

#[derive(clap::Args)]
pub struct DemoArgs {
    /// A data set with resolved[] tickets and queries[] to send.
    #[arg(long, default_value = "demo/tickets.json")]
    data: PathBuf,
    /// Then serve the admin console on the demo's data at this address
    /// until Ctrl-C (an operator is made and its password printed).
    #[arg(long)]
    console: Option<std::net::SocketAddr>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Service {
    Ingress,
    ContextGatherer,
    LlmEnhancer,
    Writeback,
    HistoryProjector,
    IncidentCorrelator,
    IncidentNotifier,
    Admin,
    Embedder,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::ContextGatherer => "context-gatherer",
            Self::LlmEnhancer => "llm-enhancer",
            Self::Writeback => "writeback",
            Self::HistoryProjector => "history-projector",
            Self::IncidentCorrelator => "incident-correlator",
            Self::IncidentNotifier => "incident-notifier",
            Self::Admin => "admin",
            Self::Embedder => "embedder",
        }
    }
}

/// One service, configured from the environment exactly as its own binary.
pub async fn run_one(args: RunArgs) -> anyhow::Result<()> {
    let shutdown = aia_bus::shutdown_signal();
    match args.service {
        Service::Ingress => ingress::run(ingress::Config::from_env()?, shutdown).await,
        Service::ContextGatherer => {
            context_gatherer::run(context_gatherer::Config::from_env()?, shutdown).await
        }
        Service::LlmEnhancer => {
            llm_enhancer::run(llm_enhancer::Config::from_env()?, shutdown).await
        }
        Service::Writeback => writeback::run(writeback::Config::from_env()?, shutdown).await,
        Service::HistoryProjector => {
            history_projector::run(history_projector::Config::from_env()?, shutdown).await
        }
        Service::IncidentCorrelator => {
            incident_correlator::run(incident_correlator::Config::from_env()?, shutdown).await
        }
        Service::IncidentNotifier => {
            incident_notifier::run(incident_notifier::Config::from_env()?, shutdown).await
        }
        Service::Admin => admin::run(admin::Config::from_env()?, shutdown).await,
        Service::Embedder => embedder::run(embedder::Config::from_env()?, shutdown).await,
    }
}

/// Every service in this process until Ctrl-C, with one `/metrics` for all.
pub async fn serve() -> anyhow::Result<()> {
    let shared = aia_config::shared()?;
    let running = all_in_one::start(all_in_one::Settings {
        nats_url: env("NATS_URL")?,
        database_url: env("DATABASE_URL")?,
        keyring_spec: env("SECRET_KEYS")?,
        llm: aia_llm::tenant::provider_from_env()?,
        ingress_listen: aia_config::parsed("INGRESS_ADDR", "0.0.0.0:8080".parse()?)?,
        public_url: aia_config::optional("PUBLIC_URL"),
        model_dir: aia_config::optional("MODEL_DIR").map(PathBuf::from),
        metrics_addr: shared.metrics_addr,
    })
    .await?;
    println!("ingress on {}", running.ingress_url);
    if let Some(addr) = shared.metrics_addr {
        println!("metrics on http://{addr}/metrics");
    }
    aia_bus::shutdown_signal().await;
    running.stop().await
}

/// The end-to-end demo.
pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let console = match args.console {
        Some(listen) => Some(demo::DemoConsole {
            listen,
            admin_database_url: env("ADMIN_DATABASE_URL")?,
        }),
        None => None,
    };
    demo::run(demo::DemoSettings {
        nats_url: env("NATS_URL")?,
        database_url: env("DATABASE_URL")?,
        owner_database_url: env("OWNER_DATABASE_URL")?,
        keyring_spec: aia_config::optional("SECRET_KEYS"),
        llm: aia_llm::tenant::provider_from_env()?,
        model_dir: aia_config::optional("MODEL_DIR").map(PathBuf::from),
        data: args.data,
        console,
    })
    .await
    .context("demo failed")?;
    println!("Demo finished.");
    Ok(())
}
