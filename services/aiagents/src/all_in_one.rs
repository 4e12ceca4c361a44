//! Every service of the pipeline (and the embedder, given the model) in one process, each on its own task with
//! one shared shutdown. Production runs them as separate processes; this is
//! for the demo, development and end-to-end tests.

use std::time::Duration;

use aia_store::Keyring;
use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Where the services find their servers and secrets.
#[derive(Debug, Clone)]
pub struct Settings {
    pub nats_url: String,
    /// Connects as the application role.
    pub database_url: String,
    pub keyring_spec: String,
    pub llm: Option<aia_llm::Provider>,
    /// Where the ingress listens; port 0 picks a free one.
    pub ingress_listen: std::net::SocketAddr,
    /// The ingress's public URL for feedback links; `None` uses the URL the
    /// ingress listens on.
    pub public_url: Option<String>,
    /// The local embedding model's directory: the embedder service runs
    /// when it is set, and similar tickets are searched by meaning.
    pub model_dir: Option<std::path::PathBuf>,
    /// Where every service's metrics are served, together (one registry,
    /// one listener); `None`: not served.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// The running services.
pub struct Running {
    pub ingress_url: String,
    shutdown: CancellationToken,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
}

fn keyring(spec: &str) -> anyhow::Result<Keyring> {
    Keyring::parse(spec).context("keyring")
}

pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    // One registry for every service here, served once: each service on
    // its own would try the same address.
    let registry = aia_telemetry::metrics::registry();
    let stage = |keyring_spec: &str| -> anyhow::Result<aia_bus::StageSettings> {
        Ok(aia_bus::StageSettings {
            registry: registry.clone(),
            ..aia_bus::StageSettings::new(
                settings.nats_url.clone(),
                settings.database_url.clone(),
                keyring(keyring_spec)?,
            )
        })
    };
    if let Some(addr) = settings.metrics_addr {
        let server = aia_telemetry::metrics::spawn_server(addr, registry.clone());
        let stop = shutdown.clone();
        tasks.spawn(async move {
            stop.cancelled().await;
            server.abort();
            ("metrics", Ok(()))
        });
    }
    let listener = TcpListener::bind(settings.ingress_listen)
        .await
        .with_context(|| format!("binding {}", settings.ingress_listen))?;
    let ingress_url = format!("http://{}", listener.local_addr()?);

    let ingress_config = ingress::Config {
        listen: settings.ingress_listen,
        registry: registry.clone(),
        ..ingress::Config::new(
            settings.nats_url.clone(),
            settings.database_url.clone(),
            keyring(&settings.keyring_spec)?,
        )
    };
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let result = ingress::serve(
            ingress_config,
            listener,
            async move { stop.cancelled().await },
        )
        .await;
        ("ingress", result)
    });

    let embeddings_url = match &settings.model_dir {
        Some(dir) => {
            let model = std::sync::Arc::new(aia_embed::local::MiniLm::load_with(
                dir,
                aia_embed::local::configured_precision()?,
            )?);
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            let url = format!("http://{}/v1", listener.local_addr()?);
            let config = embedder::Config {
                stage: stage(&settings.keyring_spec)?,
                model_dir: dir.clone(),
                addr: listener.local_addr()?,
                api_key: None,
                max_inputs: 256,
                max_parallel: 2,
                indexer: true,
            };
            let stop = shutdown.clone();
            tasks.spawn(async move {
                (
                    "embedder",
                    embedder::serve(config, model, listener, stop.cancelled_owned()).await,
                )
            });
            Some(url)
        }
        None => None,
    };
    let config = context_gatherer::Config {
        stage: stage(&settings.keyring_spec)?,
        embeddings_url,
        llm_provider: settings.llm.clone(),
        ..context_gatherer::Config::new(
            settings.nats_url.clone(),
            settings.database_url.clone(),
            keyring(&settings.keyring_spec)?,
        )
    };
    let stop = shutdown.clone();
    tasks.spawn(async move {
        (
            "context-gatherer",
            context_gatherer::run(config, stop.cancelled_owned()).await,
        )
    });

    let config = llm_enhancer::Config {
        stage: stage(&settings.keyring_spec)?,
        ..llm_enhancer::Config::new(
            settings.nats_url.clone(),
            settings.database_url.clone(),
            keyring(&settings.keyring_spec)?,
            settings.llm.clone(),
        )
    };
    let stop = shutdown.clone();
    tasks.spawn(async move {
        (
            "llm-enhancer",
            llm_enhancer::run(config, stop.cancelled_owned()).await,
        )
    });

    let config = writeback::Config {
        stage: stage(&settings.keyring_spec)?,
        http_timeout: Duration::from_secs(10),
        public_url: Some(
            settings
                .public_url
                .clone()
                .unwrap_or_else(|| ingress_url.clone()),
        ),
    };
    let stop = shutdown.clone();
    tasks.spawn(async move {
        (
            "writeback",
            writeback::run(config, stop.cancelled_owned()).await,
        )
    });

    let config = history_projector::Config {
        registry: registry.clone(),
        ..history_projector::Config::new(settings.nats_url.clone(), settings.database_url.clone())
    };
    let stop = shutdown.clone();
    tasks.spawn(async move {
        (
            "history-projector",
            history_projector::run(config, stop.cancelled_owned()).await,
        )
    });

    let config = incident_correlator::Config {
        stage: stage(&settings.keyring_spec)?,
        sweep_every: incident_correlator::sweep::EVERY,
        window_tenants: aia_store::open_tickets::DEFAULT_TENANTS,
    };
    let stop = shutdown.clone();
    tasks.spawn(async move {
        (
            "incident-correlator",
            incident_correlator::run(config, stop.cancelled_owned()).await,
        )
    });

    let config = incident_notifier::Config {
        stage: stage(&settings.keyring_spec)?,
        http_timeout: Duration::from_secs(10),
    };
    let stop = shutdown.clone();
    tasks.spawn(async move {
        (
            "incident-notifier",
            incident_notifier::run(config, stop.cancelled_owned()).await,
        )
    });

    Ok(Running {
        ingress_url,
        shutdown,
        tasks,
    })
}

impl Running {
    /// Signals every service to stop and waits for them; the first error
    /// any of them ended with is returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let (name, result) = joined.context("a service task panicked")?;
            if let Err(err) = result {
                tracing::error!(service = name, error = %err, "Service ended with an error");
                first_error.get_or_insert(err.context(name));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Completes when any service ends before `stop` was asked for.
    pub async fn any_exited(&mut self) -> anyhow::Result<()> {
        match self.tasks.join_next().await {
            Some(Ok((name, Ok(())))) => anyhow::bail!("{name} stopped unexpectedly"),
            Some(Ok((name, Err(err)))) => Err(err.context(name)),
            Some(Err(err)) => Err(anyhow::anyhow!("a service task panicked: {err}")),
            None => anyhow::bail!("no service is running"),
        }
    }
}
