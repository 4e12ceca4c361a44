//! `aiagents`: the operator CLI. Every command reads its servers from the
//! `AI_AGENTS_*` environment (see `.env.example`).

use std::path::PathBuf;

use aia_events::ItsmKind;
use aia_store::Keyring;
use aiagents::{demo, ops};
use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "aiagents",
    version,
    about = "Operate the AI Agents ticket-enhancement pipeline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the SQL migrations of migrations/ (uses AI_AGENTS_OWNER_DATABASE_URL).
    Migrate,
    /// Manage the JetStream stream and consumers defined in nats/.
    Nats {
        #[command(subcommand)]
        command: NatsCommand,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage the admin console's operators (the first admin is made here).
    ConsoleUser {
        #[command(subcommand)]
        command: aiagents::console_user::ConsoleUserCommand,
    },
    /// Manage secrets at rest.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Debug a ticket from its events: its story, a stage re-run on recorded input, a re-drive, a range of the stream.
    Replay {
        #[command(subcommand)]
        command: ReplayCommand,
    },
    /// List and re-drive dead letters (runs that ended failed).
    DeadLetters {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
    /// Import a tenant's resolved tickets, knowledge articles or inventory from JSON or CSV.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Embed a tenant's resolved tickets and knowledge articles with the model it is moving to (settings.embeddings_next), then switch to it; or fill in what its current model has not embedded. Resumable.
    Reembed {
        #[arg(long)]
        tenant: String,
    },
    /// Run one service in this process, configured from the environment
    /// exactly as its own binary is (one image can carry them all).
    Run {
        #[arg(value_enum)]
        service: Service,
    },
    /// Score similar-ticket retrieval on a data set (resolved tickets and queries with their relevant tickets), ours beside the original's.
    EvalRetrieval {
        /// A JSON file with resolved[] and queries[] (the shape of demo/tickets.json).
        dataset: PathBuf,
        /// Hits that count (recall@K).
        #[arg(long, default_value_t = 5)]
        k: usize,
        #[command(flatten)]
        embeddings: EmbeddingsArgs,
        /// Least cosine similarity of a hit (to calibrate on your own data).
        #[arg(long, default_value_t = context_gatherer::sources::fusion::DEFAULT.threshold)]
        threshold: f32,
        /// Cosine similarity from which a hit is a likely match.
        #[arg(long, default_value_t = context_gatherer::sources::fusion::DEFAULT.likely)]
        likely: f32,
        /// Most the full-text rank adds to a cosine.
        #[arg(long, default_value_t = context_gatherer::sources::fusion::DEFAULT.lexical_weight)]
        lexical_weight: f32,
    },
    /// Rebuild the read models from the event stream while the projector keeps serving.
    Rebuild {
        /// Rebuild only this tenant's rows.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Print a new application key for AI_AGENTS_SECRET_KEYS.
    Keygen {
        /// The key id stored with every secret it encrypts.
        #[arg(long, default_value = "k1")]
        key_id: String,
    },
    /// Run every service in this process until Ctrl-C (development).
    Serve,
    /// Run the end-to-end demo: seed a tenant, fire webhooks, print the notes, stop.
    Demo {
        /// A data set with resolved[] tickets and queries[] to send.
        #[arg(long, default_value = "demo/tickets.json")]
        data: PathBuf,
        /// Then serve the admin console on the demo's data at this address
        /// until Ctrl-C (an operator is made and its password printed).
        #[arg(long)]
        console: Option<std::net::SocketAddr>,
    },
}

#[derive(Subcommand)]
enum NatsCommand {
    /// Create or update the stream and consumers; report what changed.
    Apply {
        /// Replicate the stream (3 on a clustered server; default: as in nats/stream.json).
        #[arg(long, env = "AI_AGENTS_NATS_REPLICAS")]
        replicas: Option<usize>,
    },
}

#[derive(Subcommand)]
enum ReplayCommand {
    /// Every event of a ticket in order: time, type, stage, causation, attempts, trace id.
    Story {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        ticket: String,
        /// One JSON object per event.
        #[arg(long)]
        json: bool,
    },
    /// Run one stage on its recorded input with today's code and configuration; publishes and writes nothing.
    DryRun {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        ticket: String,
        /// context-gatherer, llm-enhancer or writeback.
        #[arg(long)]
        stage: String,
        /// The run (correlation id); default the latest.
        #[arg(long)]
        run: Option<uuid::Uuid>,
    },
    /// Send a ticket back into the pipeline at a stage; a second note only with --new-note.
    Redrive {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        ticket: String,
        #[arg(long)]
        stage: String,
        #[arg(long)]
        run: Option<uuid::Uuid>,
        /// Start a new run, so write-back posts a new note.
        #[arg(long)]
        new_note: bool,
    },
    /// A tenant's events in a range of sequence numbers or time.
    Events {
        #[arg(long)]
        tenant: String,
        /// First stream sequence.
        #[arg(long)]
        from_seq: Option<u64>,
        /// Events that occurred at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Events that occurred before this time.
        #[arg(long)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DeadLetterCommand {
    /// The newest dead letters: tenant, ticket, run, stage, attempts, time and reason.
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-drive one run (--run) or every dead letter of a tenant (--all --yes) from the failed stage.
    Redrive {
        #[arg(long)]
        tenant: String,
        /// The run (correlation id) to re-drive.
        #[arg(long)]
        run: Option<uuid::Uuid>,
        /// Re-drive every dead letter of the tenant.
        #[arg(long)]
        all: bool,
        /// Required with --all.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Resolved tickets (JSON list or data set, or CSV ticket_id,subject,description,resolution,resolved_at,priority,tags), published as ticket.resolved events; importing again stores nothing new.
    Tickets {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Closed and resolved requests from the tenant's ServiceDesk Plus (100 per page, rate-limited, resumable).
    Servicedesk {
        #[arg(long)]
        tenant: String,
        /// Only requests resolved at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only requests resolved before this time (RFC 3339).
        #[arg(long)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Requests per second to the help desk.
        #[arg(long, default_value_t = 5)]
        rate: u32,
    },
    /// Knowledge articles (article_id,title,body,url,tags), upserted by article_id.
    Articles {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Inventory (address,hostname,role,client,location; address may be a network), replacing the tenant's inventory.
    Inventory {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Re-encrypt every stored secret with the first key of AI_AGENTS_SECRET_KEYS.
    Reencrypt,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// List tenants (id, name, tool, active), optionally matching a search.
    List {
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one tenant, secrets masked.
    Show { id: String },
    /// Change a tenant's name, help-desk URL or credentials, active flag or settings.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        itsm_url: Option<String>,
        /// New credentials as JSON.
        #[arg(long, env = "AI_AGENTS_ITSM_CREDENTIALS", hide_env_values = true)]
        itsm_credentials: Option<String>,
        #[arg(long)]
        active: Option<bool>,
        /// All settings as JSON (see TenantSettings).
        #[arg(long)]
        settings: Option<String>,
    },
    /// Soft-delete a tenant: its webhooks are refused, its history is kept.
    Delete {
        id: String,
        /// Required: the deletion is not undone by this CLI.
        #[arg(long)]
        yes: bool,
    },
    /// Issue a new webhook secret (shown once); the old one stays valid until the next rotation.
    RotateSecret { id: String },
    /// Check that the tenant's help desk answers and accepts its credentials.
    TestConnection { id: String },
    /// Replace the tenant's integration tokens and keys, read as JSON from
    /// standard input (so they stay out of shell history):
    /// {"knowledge_base_token", "monitoring_token", "llm_keys": {name: key}, "embedding_keys": {name: key}}
    SetIntegrations { id: String },
    /// Create a tenant and print its webhook URL and secret (shown only this once).
    Add {
        /// Tenant id: a-z, 0-9 and '-'.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t = Tool::ServicedeskPlus)]
        itsm: Tool,
        /// The help desk's base URL, for example https://sdp.example.com.
        #[arg(long)]
        itsm_url: String,
        /// Credentials as JSON, for ServiceDesk Plus {"authtoken": "…"}.
        #[arg(long, env = "AI_AGENTS_ITSM_CREDENTIALS", hide_env_values = true)]
        itsm_credentials: String,
        /// The public base URL of the ingress, to print the webhook URL.
        #[arg(
            long,
            env = "AI_AGENTS_PUBLIC_URL",
            default_value = "http://localhost:8080"
        )]
        public_url: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Service {
    Ingress,
    ContextGatherer,
    LlmEnhancer,
    Writeback,
    HistoryProjector,
    Admin,
    Embedder,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::ContextGatherer => "context-gatherer",
            Self::LlmEnhancer => "llm-enhancer",
            Self::Writeback => "writeback",
            Self::HistoryProjector => "history-projector",
            Self::Admin => "admin",
            Self::Embedder => "embedder",
        }
    }

    async fn run(self) -> anyhow::Result<()> {
        let shutdown = aia_bus::shutdown_signal();
        match self {
            Self::Ingress => ingress::run(ingress::Config::from_env()?, shutdown).await,
            Self::ContextGatherer => {
                context_gatherer::run(context_gatherer::Config::from_env()?, shutdown).await
            }
            Self::LlmEnhancer => {
                llm_enhancer::run(llm_enhancer::Config::from_env()?, shutdown).await
            }
            Self::Writeback => writeback::run(writeback::Config::from_env()?, shutdown).await,
            Self::HistoryProjector => {
                history_projector::run(history_projector::Config::from_env()?, shutdown).await
            }
            Self::Admin => admin::run(admin::Config::from_env()?, shutdown).await,
            Self::Embedder => embedder::run(embedder::Config::from_env()?, shutdown).await,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Tool {
    ServicedeskPlus,
}

/// Which model embeds: the local one (from `AI_AGENTS_MODEL_DIR`) unless
/// an OpenAI-compatible endpoint is named.
#[derive(clap::Args, Debug)]
struct EmbeddingsArgs {
    /// An OpenAI-compatible embeddings API root, for example
    /// `http://localhost:11434/v1`; the local model when absent.
    #[arg(long)]
    embeddings_url: Option<String>,
    /// The endpoint's model.
    #[arg(long, requires = "embeddings_url")]
    embeddings_model: Option<String>,
    /// The endpoint's key (`AI_AGENTS_EMBEDDINGS_API_KEY`).
    #[arg(long, env = "AI_AGENTS_EMBEDDINGS_API_KEY", hide_env_values = true)]
    embeddings_key: Option<String>,
}

impl EmbeddingsArgs {
    fn embedder(&self) -> anyhow::Result<aia_embed::Embedder> {
        match &self.embeddings_url {
            Some(url) => {
                let model = self
                    .embeddings_model
                    .clone()
                    .context("--embeddings-model is required with --embeddings-url")?;
                let mut config = aia_embed::EndpointConfig::new(url, model);
                config.api_key = self.embeddings_key.clone();
                Ok(aia_embed::Embedder::Endpoint(aia_embed::Endpoint::new(
                    reqwest::Client::new(),
                    config,
                )))
            }
            None => {
                let dir = env("MODEL_DIR")?;
                let model = aia_embed::local::MiniLm::load(std::path::Path::new(&dir))?;
                Ok(aia_embed::Embedder::Local(std::sync::Arc::new(model)))
            }
        }
    }
}

/// Embeds the tenant's articles that have no vector yet.
async fn embed_new_articles(tenant: &aia_events::TenantId) -> anyhow::Result<()> {
    let pool = aia_store::pool(&env("DATABASE_URL")?, 1)?;
    let mut client = pool.get().await?;
    let keyring = aia_store::Keyring::from_env()?;
    let http = reqwest::Client::new();
    let local = local_embedder(&http)?;
    let record = aia_store::tenants::get(&mut client, &keyring, tenant)
        .await?
        .context("the tenant does not exist")?;
    let models = aia_embed::tenant::embedders(
        &record.settings,
        &record.integrations,
        local.as_ref(),
        &http,
    )
    .map_err(anyhow::Error::msg)?;
    for model in std::iter::once(&models.active).chain(models.next.as_ref()) {
        let n = aiagents::reembed::fill(
            &mut client,
            tenant,
            aia_store::embeddings::Corpus::Articles,
            model,
            true,
        )
        .await?;
        println!("{n} articles embedded with {}", model.model());
    }
    Ok(())
}

/// How the CLI reaches the local model: in-process from
/// `AI_AGENTS_MODEL_DIR`, else through the embedder service at
/// `AI_AGENTS_EMBEDDINGS_URL`; `None` when neither is set.
fn local_embedder(http: &reqwest::Client) -> anyhow::Result<Option<aia_embed::Embedder>> {
    if let Some(dir) = aia_config::optional("MODEL_DIR") {
        let model = aia_embed::local::MiniLm::load(std::path::Path::new(&dir))?;
        return Ok(Some(aia_embed::Embedder::Local(std::sync::Arc::new(model))));
    }
    Ok(aia_config::optional("EMBEDDINGS_URL").map(|url| {
        let mut config = aia_embed::EndpointConfig::new(url, aia_embed::LOCAL_MODEL);
        config.api_key = aia_config::optional("EMBEDDER_API_KEY");
        aia_embed::Embedder::Endpoint(aia_embed::Endpoint::new(http.clone(), config))
    }))
}

fn env(name: &str) -> anyhow::Result<String> {
    Ok(aia_config::required(name)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // reqwest is built without a default TLS backend: the workspace uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Command::Run { service } = &cli.command {
        // Telemetry under the service's own name, as its binary would.
        let _telemetry = aia_telemetry::init(service.name());
        return service.run().await;
    }
    let _telemetry = aia_telemetry::init("aiagents");
    match cli.command {
        Command::Run { .. } => unreachable!("handled above"),
        Command::Migrate => {
            let report = ops::migrate(&env("OWNER_DATABASE_URL")?).await?;
            for version in &report.applied {
                println!("applied {version}");
            }
            println!(
                "{} applied, {} already applied",
                report.applied.len(),
                report.already_applied.len()
            );
        }
        Command::Nats {
            command: NatsCommand::Apply { replicas },
        } => {
            for applied in ops::apply_nats_replicated(&env("NATS_URL")?, replicas).await? {
                println!("{applied}");
            }
        }
        Command::Tenant { command } => tenant_command(command).await?,
        Command::ConsoleUser { command } => {
            aiagents::console_user::run(command, &env("ADMIN_DATABASE_URL")?).await?
        }
        Command::Secrets {
            command: SecretsCommand::Reencrypt,
        } => {
            let keyring = Keyring::from_env()?;
            let (n_tenants, n_values) = ops::reencrypt_secrets(
                &env("DATABASE_URL")?,
                &env("ADMIN_DATABASE_URL")?,
                &keyring,
            )
            .await?;
            println!(
                "{n_tenants} tenants checked, {n_values} secrets re-encrypted with key {}",
                keyring.primary_key_id()
            );
        }
        Command::Replay { command } => replay_command(command).await?,
        Command::DeadLetters { command } => {
            let admin_pool = aia_store::pool(&env("ADMIN_DATABASE_URL")?, 2)?;
            match command {
                DeadLetterCommand::List {
                    tenant,
                    limit,
                    json,
                } => {
                    let letters =
                        admin::dead_letters::list(&admin_pool, tenant.as_deref(), limit).await?;
                    if json {
                        for letter in &letters {
                            println!("{}", serde_json::to_string(letter)?);
                        }
                    } else {
                        println!(
                            "{:<16} {:<12} {:<36} {:<18} {:>8}  {:<20}  reason",
                            "tenant", "ticket", "run", "stage", "attempts", "failed at"
                        );
                        for l in &letters {
                            println!(
                                "{:<16} {:<12} {:<36} {:<18} {:>8}  {:<20}  {}",
                                l.tenant_id,
                                l.ticket_id,
                                l.correlation_id,
                                l.stage.as_deref().unwrap_or("-"),
                                l.attempts.map_or_else(|| "-".into(), |n| n.to_string()),
                                l.failed_at.map_or_else(
                                    || "-".into(),
                                    |t| t.format("%Y-%m-%d %H:%M:%S").to_string()
                                ),
                                l.reason.as_deref().unwrap_or("-")
                            );
                        }
                    }
                }
                DeadLetterCommand::Redrive {
                    tenant,
                    run,
                    all,
                    yes,
                } => {
                    let (_client, jetstream) =
                        aia_bus::connect(&env("NATS_URL")?, "aiagents-redrive").await?;
                    let runs: Vec<uuid::Uuid> = match (run, all) {
                        (Some(run), false) => vec![run],
                        (None, true) => {
                            anyhow::ensure!(
                                yes,
                                "re-driving every dead letter of {tenant} needs --yes"
                            );
                            admin::dead_letters::list(&admin_pool, Some(&tenant), 1000)
                                .await?
                                .into_iter()
                                .map(|letter| letter.correlation_id)
                                .collect()
                        }
                        _ => anyhow::bail!("give either --run RUN or --all"),
                    };
                    for run in runs {
                        let event_id =
                            admin::dead_letters::redrive(&admin_pool, &jetstream, &tenant, run)
                                .await?;
                        println!("re-drove run {run} as event {event_id}");
                    }
                }
            }
        }
        Command::Import { command } => match command {
            ImportCommand::Tickets { tenant, file } => {
                let tenant = aia_events::TenantId::parse(&tenant)?;
                let tickets = aiagents::import::read_tickets(&file, &tenant)?;
                let (_client, jetstream) =
                    aia_bus::connect(&env("NATS_URL")?, "aiagents-import").await?;
                let n = aiagents::import::publish_tickets(&jetstream, &tickets).await?;
                println!("{n} resolved tickets published for {tenant}");
            }
            ImportCommand::Servicedesk {
                tenant,
                since,
                until,
                rate,
            } => {
                let tenant_id = aia_events::TenantId::parse(&tenant)?;
                let keyring = Keyring::from_env()?;
                let pool = aia_store::pool(&env("DATABASE_URL")?, 1)?;
                let mut client = pool.get().await?;
                let record = aia_store::tenants::get(&mut client, &keyring, &tenant_id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("tenant {tenant_id} does not exist"))?;
                let http = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(30))
                    .build()?;
                let aia_itsm::Itsm::ServiceDeskPlus(sdp) = aia_itsm::Itsm::for_tenant(
                    http,
                    record.itsm,
                    &record.itsm_base_url,
                    record.itsm_credentials.expose(),
                )
                .map_err(|err| anyhow::anyhow!("{err}"))?
                else {
                    anyhow::bail!("tenant {tenant_id} does not use ServiceDesk Plus");
                };
                let (_client, jetstream) =
                    aia_bus::connect(&env("NATS_URL")?, "aiagents-import").await?;
                let result = aiagents::import::import_from_servicedesk(
                    &sdp,
                    &jetstream,
                    &env("DATABASE_URL")?,
                    &tenant_id,
                    since,
                    until,
                    rate,
                    None,
                )
                .await?;
                println!(
                    "{} resolved requests imported for {tenant_id}{}",
                    result.imported,
                    if result.resumed {
                        " (resumed an earlier import)"
                    } else {
                        ""
                    }
                );
            }
            ImportCommand::Articles { tenant, file } => {
                let tenant = aia_events::TenantId::parse(&tenant)?;
                let n = aiagents::import::import_articles(&env("DATABASE_URL")?, &tenant, &file)
                    .await?;
                println!("{n} knowledge articles imported for {tenant}");
                // Articles are embedded when they enter, with the tenant's
                // model and the one it is moving to; search falls back to
                // words for articles without a vector.
                if let Err(err) = embed_new_articles(&tenant).await {
                    eprintln!(
                        "articles not embedded ({err:#}); they are searched by words until `aiagents reembed --tenant {tenant}` runs"
                    );
                }
            }
            ImportCommand::Inventory { tenant, file } => {
                let tenant = aia_events::TenantId::parse(&tenant)?;
                let n = aiagents::import::import_inventory(&env("DATABASE_URL")?, &tenant, &file)
                    .await?;
                println!("inventory of {tenant} replaced: {n} entries");
            }
        },
        Command::Reembed { tenant } => {
            let tenant = aia_events::TenantId::parse(&tenant)?;
            let pool = aia_store::pool(&env("DATABASE_URL")?, 1)?;
            let mut client = pool.get().await?;
            let http = reqwest::Client::new();
            let local = local_embedder(&http)?;
            let report = aiagents::reembed::run(
                &mut client,
                &aia_store::Keyring::from_env()?,
                &tenant,
                local.as_ref(),
                &http,
                true,
            )
            .await?;
            println!(
                "{tenant}: {} tickets and {} articles embedded with {}{}; {} vectors of other models removed",
                report.tickets,
                report.articles,
                report.model,
                if report.promoted {
                    ", now the tenant's model"
                } else {
                    ""
                },
                report.retired
            );
        }
        Command::EvalRetrieval {
            dataset,
            k,
            embeddings,
            threshold,
            likely,
            lexical_weight,
        } => {
            let embedder = embeddings.embedder()?;
            eprintln!("embedding with {}", embedder.model());
            let scores = aiagents::eval::run(
                &env("OWNER_DATABASE_URL")?,
                &env("DATABASE_URL")?,
                &dataset,
                k,
                &embedder,
                context_gatherer::sources::fusion::Fusion {
                    threshold,
                    likely,
                    lexical_weight,
                },
            )
            .await?;
            println!(
                "{} queries from {}",
                scores[0].queries_with_relevant + scores[0].no_match_queries,
                dataset.display()
            );
            print!("{}", aiagents::eval::table(&scores, k));
        }
        Command::Rebuild { tenant } => {
            let (_client, jetstream) =
                aia_bus::connect(&env("NATS_URL")?, "aiagents-rebuild").await?;
            let owner_url = env("OWNER_DATABASE_URL")?;
            let report = match tenant {
                Some(tenant) => {
                    let tenant = aia_events::TenantId::parse(&tenant)?;
                    history_projector::rebuild::rebuild_tenant(&jetstream, &owner_url, &tenant)
                        .await?
                }
                None => history_projector::rebuild::rebuild_all(&jetstream, &owner_url).await?,
            };
            println!(
                "rebuilt from {} events ({} applied during the swap): {} runs, {} resolved tickets, {} tenant-days",
                report.events, report.caught_up, report.runs, report.tickets, report.days
            );
            println!(
                "read+fold {:.2} s, write {:.2} s, swap {:.2} s: {:.0} events/s",
                report.read_and_fold.as_secs_f64(),
                report.write.as_secs_f64(),
                report.swap.as_secs_f64(),
                report.events_per_second()
            );
        }
        Command::Keygen { key_id } => println!("{}", Keyring::generate_spec(&key_id)),
        Command::Serve => {
            let running = aiagents::all_in_one::start(aiagents::all_in_one::Settings {
                nats_url: env("NATS_URL")?,
                database_url: env("DATABASE_URL")?,
                keyring_spec: env("SECRET_KEYS")?,
                llm: llm_enhancer::provider_from_env()?,
                ingress_listen: aia_config::parsed("INGRESS_ADDR", "0.0.0.0:8080".parse()?)?,
                public_url: aia_config::optional("PUBLIC_URL"),
                model_dir: aia_config::optional("MODEL_DIR").map(PathBuf::from),
            })
            .await?;
            println!("ingress on {}", running.ingress_url);
            aia_bus::shutdown_signal().await;
            running.stop().await?;
        }
        Command::Demo { data, console } => {
            let console = match console {
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
                llm: llm_enhancer::provider_from_env()?,
                model_dir: aia_config::optional("MODEL_DIR").map(PathBuf::from),
                data,
                console,
            })
            .await
            .context("demo failed")?;
            println!("Demo finished.");
        }
    }
    Ok(())
}

fn tenant_admin() -> anyhow::Result<admin::TenantAdmin> {
    admin::tenant_admin(
        &env("DATABASE_URL")?,
        &env("ADMIN_DATABASE_URL")?,
        Keyring::from_env()?,
        aia_config::optional("PUBLIC_URL").unwrap_or_else(|| "http://localhost:8080".into()),
    )
}

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON"));
}

async fn tenant_command(command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Add {
            id,
            name,
            itsm,
            itsm_url,
            itsm_credentials,
            public_url,
        } => {
            let kind = match itsm {
                Tool::ServicedeskPlus => ItsmKind::ServicedeskPlus,
            };
            let credentials = serde_json::from_str(&itsm_credentials)
                .context("--itsm-credentials must be JSON")?;
            let mut tenants = tenant_admin()?;
            tenants.public_url = public_url;
            let created = tenants
                .create(admin::tenants::CreateTenant {
                    tenant_id: id,
                    name,
                    itsm_kind: kind,
                    itsm_base_url: itsm_url,
                    itsm_credentials: credentials,
                    settings: None,
                })
                .await?;
            println!("tenant:            {}", created.tenant.tenant_id);
            for (what, url) in created
                .tenant
                .webhook_urls
                .as_object()
                .into_iter()
                .flatten()
            {
                println!(
                    "{:<18} POST {}",
                    format!("{what}:"),
                    url.as_str().unwrap_or_default()
                );
            }
            println!("webhook secret:    {}", created.webhook_secret);
            println!(
                "Sign each body with X-ServiceDesk-Signature (hex HMAC-SHA256), Standard Webhooks headers or \
                 X-Hub-Signature; tools that cannot sign send the secret in X-Webhook-Secret."
            );
            println!("The secret is shown only now; it is stored encrypted.");
        }
        TenantCommand::List { search, limit } => {
            let page = tenant_admin()?.list(search.as_deref(), None, limit).await?;
            println!("{:<24} {:<32} {:<18} active", "tenant", "name", "tool");
            for tenant in &page.items {
                println!(
                    "{:<24} {:<32} {:<18} {}",
                    tenant.tenant_id, tenant.name, tenant.itsm, tenant.active
                );
            }
            if page.next_cursor.is_some() {
                println!("… more; narrow with --search or raise --limit");
            }
        }
        TenantCommand::Show { id } => print_json(&tenant_admin()?.get(&id).await?),
        TenantCommand::Update {
            id,
            name,
            itsm_url,
            itsm_credentials,
            active,
            settings,
        } => {
            let update = admin::tenants::UpdateTenant {
                name,
                itsm_base_url: itsm_url,
                itsm_credentials: itsm_credentials
                    .map(|raw| serde_json::from_str(&raw))
                    .transpose()
                    .context("--itsm-credentials must be JSON")?,
                active,
                settings: settings
                    .map(|raw| serde_json::from_str(&raw))
                    .transpose()
                    .context("--settings must be JSON")?,
            };
            print_json(&tenant_admin()?.update(&id, update).await?);
        }
        TenantCommand::Delete { id, yes } => {
            anyhow::ensure!(yes, "deleting {id} needs --yes");
            tenant_admin()?.delete(&id).await?;
            println!("tenant {id} deleted");
        }
        TenantCommand::RotateSecret { id } => {
            let secret = tenant_admin()?.rotate_secret(&id).await?;
            println!("new webhook secret: {secret}");
            println!("Shown only now. The previous secret stays valid until the next rotation.");
        }
        TenantCommand::SetIntegrations { id } => {
            let mut raw = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut raw)?;
            let integrations: aia_store::Integrations =
                serde_json::from_str(&raw).context("standard input is not integrations JSON")?;
            let set = tenant_admin()?.set_integrations(&id, integrations).await?;
            println!("integrations of {id} replaced (encrypted): {set}");
        }
        TenantCommand::TestConnection { id } => {
            let result = tenant_admin()?.test_connection(&id).await?;
            println!("{}", result.message);
            anyhow::ensure!(result.ok, "the connection test failed");
        }
    }
    Ok(())
}

/// The tenant, checked to exist.
async fn known_tenant(raw: &str) -> anyhow::Result<aia_events::TenantId> {
    let tenant = aia_events::TenantId::parse(raw)?;
    let pool = aia_store::pool(&env("DATABASE_URL")?, 1)?;
    let exists = aia_store::tenants::settings(&mut pool.get().await?, &tenant)
        .await?
        .is_some();
    anyhow::ensure!(exists, "unknown tenant {tenant}");
    Ok(tenant)
}

fn print_lines(lines: &[aiagents::replay::StoryLine], json: bool) -> anyhow::Result<()> {
    for line in lines {
        if json {
            println!("{}", serde_json::to_string(line)?);
        } else {
            println!(
                "#{:<6} {}  {:<22} {:<18} {}  caused by {}  attempts {}  trace {}\n         {}",
                line.stream_sequence,
                line.occurred_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                line.event_type,
                line.stage,
                line.event_id,
                line.causation_id
                    .map_or_else(|| "-".into(), |id| id.to_string()),
                line.attempts.map_or_else(|| "-".into(), |n| n.to_string()),
                line.trace_id.as_deref().unwrap_or("-"),
                line.summary
            );
        }
    }
    Ok(())
}

async fn replay_command(command: ReplayCommand) -> anyhow::Result<()> {
    use aiagents::replay;
    let (_client, jetstream) = aia_bus::connect(&env("NATS_URL")?, "aiagents-replay").await?;
    match command {
        ReplayCommand::Story {
            tenant,
            ticket,
            json,
        } => {
            let tenant = known_tenant(&tenant).await?;
            let lines =
                replay::story(&jetstream, &tenant, &aia_events::TicketId::parse(&ticket)?).await?;
            print_lines(&lines, json)?;
        }
        ReplayCommand::DryRun {
            tenant,
            ticket,
            stage,
            run,
        } => {
            let stage = replay::parse_stage(&stage)?;
            let tenant = known_tenant(&tenant).await?;
            let lines =
                replay::story(&jetstream, &tenant, &aia_events::TicketId::parse(&ticket)?).await?;
            let (input, recorded) = replay::input_and_output(&lines, stage, run)?;
            print!(
                "{}",
                replay::dry_run(
                    stage,
                    &input,
                    recorded.as_ref(),
                    std::sync::Arc::new(aia_store::TenantCache::new(
                        aia_store::pool(&env("DATABASE_URL")?, 4)?,
                        std::sync::Arc::new(Keyring::from_env()?),
                        std::time::Duration::ZERO,
                    )),
                )
                .await?
            );
        }
        ReplayCommand::Redrive {
            tenant,
            ticket,
            stage,
            run,
            new_note,
        } => {
            let stage = replay::parse_stage(&stage)?;
            let tenant = known_tenant(&tenant).await?;
            let lines =
                replay::story(&jetstream, &tenant, &aia_events::TicketId::parse(&ticket)?).await?;
            let (input, _) = replay::input_and_output(&lines, stage, run)?;
            let event_id = replay::redrive(&jetstream, &input, new_note).await?;
            println!(
                "re-drove {} at {} as event {event_id}{}",
                input.ticket_id,
                stage.as_str(),
                if new_note { " in a new run" } else { "" }
            );
        }
        ReplayCommand::Events {
            tenant,
            from_seq,
            since,
            until,
            json,
        } => {
            let tenant = known_tenant(&tenant).await?;
            if let (Some(since), Some(until)) = (since, until) {
                anyhow::ensure!(
                    since < until,
                    "the range is empty: --since is not before --until"
                );
            }
            let filter = aia_events::subject::filter_for_tenant(
                aia_events::subject::DEFAULT_PREFIX,
                &tenant,
            );
            let lines = replay::read(&jetstream, &filter, from_seq, since, until).await?;
            anyhow::ensure!(!lines.is_empty(), "no events of {tenant} in that range");
            print_lines(&lines, json)?;
        }
    }
    Ok(())
}
