//! The operator CLI, one module per command: each has its arguments (a
//! clap `Args` or `Subcommand`) and a `run`. Every command reads its
//! servers from the `AI_AGENTS_*` environment (see `.env.example`).

pub mod console_user;
pub mod dead_letters;
pub mod eval;
pub mod eval_incidents;
pub mod import;
pub mod incidents;
pub mod migrate;
pub mod nats;
pub mod rebuild;
pub mod reembed;
pub mod replay;
pub mod secrets;
pub mod services;
pub mod tenant;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "aiagents",
    version,
    about = "Operate the AI Agents ticket-enhancement pipeline"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Apply the SQL migrations of migrations/ (uses AI_AGENTS_OWNER_DATABASE_URL).
    Migrate,
    /// Manage the JetStream stream and consumers defined in nats/.
    Nats {
        #[command(subcommand)]
        command: nats::Command,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: tenant::Command,
    },
    /// Manage the admin console's operators (the first admin is made here).
    ConsoleUser {
        #[command(subcommand)]
        command: console_user::Command,
    },
    /// Manage secrets at rest.
    Secrets {
        #[command(subcommand)]
        command: secrets::Command,
    },
    /// Debug a ticket from its events: its story, a stage re-run on recorded input, a re-drive, a range of the stream.
    Replay {
        #[command(subcommand)]
        command: replay::Command,
    },
    /// List and re-drive dead letters (runs that ended failed).
    DeadLetters {
        #[command(subcommand)]
        command: dead_letters::Command,
    },
    /// Import a tenant's resolved tickets, knowledge articles or inventory from JSON or CSV.
    Import {
        #[command(subcommand)]
        command: import::Command,
    },
    /// Embed a tenant's resolved tickets and knowledge articles with the model it is moving to (settings.embeddings_next), then switch to it; or fill in what its current model has not embedded. Resumable.
    Reembed(reembed::Args),
    /// Run one service in this process, configured from the environment
    /// exactly as its own binary is (one image can carry them all).
    Run(services::RunArgs),
    /// Score similar-ticket retrieval on a data set (resolved tickets and queries with their relevant tickets), ours beside the original's.
    EvalRetrieval(eval::Args),
    /// A tenant's incidents: list, acknowledge, close (as the console).
    Incidents {
        #[command(subcommand)]
        command: incidents::Command,
    },
    /// Score incident correlation on labelled ticket streams: precision and recall of ticket-to-incident assignment, and the ticket at which each outage was detected.
    EvalIncidents(eval_incidents::Args),
    /// Rebuild the read models from the event stream while the projector keeps serving.
    Rebuild(rebuild::Args),
    /// Print a new application key for AI_AGENTS_SECRET_KEYS.
    Keygen(secrets::KeygenArgs),
    /// Run every service in this process until Ctrl-C (development).
    Serve,
    /// Run the end-to-end demo: seed a tenant, fire webhooks, print the notes, stop.
    Demo(services::DemoArgs),
}

impl Command {
    /// The service this command runs in the foreground, if it is one: its
    /// logs and traces then carry the service's name.
    pub fn service_name(&self) -> Option<&'static str> {
        match self {
            Self::Run(args) => Some(args.service.name()),
            _ => None,
        }
    }
}

/// Runs the command.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Migrate => migrate::run().await,
        Command::Nats { command } => nats::run(command).await,
        Command::Tenant { command } => tenant::run(command).await,
        Command::ConsoleUser { command } => console_user::run(command).await,
        Command::Secrets { command } => secrets::run(command).await,
        Command::Replay { command } => replay::run(command).await,
        Command::DeadLetters { command } => dead_letters::run(command).await,
        Command::Import { command } => import::run(command).await,
        Command::Reembed(args) => reembed::run(args).await,
        Command::Run(args) => services::run_one(args).await,
        Command::EvalRetrieval(args) => eval::run(args).await,
        Command::EvalIncidents(args) => eval_incidents::run(args).await,
        Command::Incidents { command } => incidents::run(command).await,
        Command::Rebuild(args) => rebuild::run(args).await,
        Command::Keygen(args) => {
            secrets::keygen(args);
            Ok(())
        }
        Command::Serve => services::serve().await,
        Command::Demo(args) => services::demo(args).await,
    }
}

/// `AI_AGENTS_<name>`, or an error naming it.
pub(crate) fn env(name: &str) -> anyhow::Result<String> {
    Ok(aia_config::required(name)?)
}

pub(crate) fn keyring() -> anyhow::Result<aia_store::Keyring> {
    Ok(aia_store::Keyring::from_env()?)
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The tenant operations the admin service runs too.
pub(crate) fn tenant_admin() -> anyhow::Result<aia_ops::TenantAdmin> {
    aia_ops::tenant_admin(
        &env("DATABASE_URL")?,
        &env("ADMIN_DATABASE_URL")?,
        keyring()?,
        aia_config::optional("PUBLIC_URL").unwrap_or_else(|| "http://localhost:8080".into()),
    )
}

/// How the CLI reaches the local model: in-process from
/// `AI_AGENTS_MODEL_DIR`, else through the embedder service at
/// `AI_AGENTS_EMBEDDINGS_URL`; `None` when neither is set.
pub(crate) fn local_embedder(
    http: &reqwest::Client,
) -> anyhow::Result<Option<aia_embed::Embedder>> {
    if let Some(dir) = aia_config::optional("MODEL_DIR") {
        let model = aia_embed::local::MiniLm::load_with(
            std::path::Path::new(&dir),
            aia_embed::local::configured_precision()?,
        )?;
        return Ok(Some(aia_embed::Embedder::Local(std::sync::Arc::new(model))));
    }
    Ok(aia_config::optional("EMBEDDINGS_URL").map(|url| {
        context_gatherer::embedder_service(http, &url, aia_config::optional("EMBEDDER_API_KEY"))
    }))
}
