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
    },
}

#[derive(Subcommand)]
enum NatsCommand {
    /// Create or update the stream and consumers; report what changed.
    Apply,
}

#[derive(Subcommand)]
enum TenantCommand {
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

#[derive(Clone, Copy, ValueEnum)]
enum Tool {
    ServicedeskPlus,
}

fn env(name: &str) -> anyhow::Result<String> {
    Ok(aia_config::required(name)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // reqwest is built without a default TLS backend: the workspace uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _telemetry = aia_telemetry::init("aiagents");
    match cli.command {
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
            command: NatsCommand::Apply,
        } => {
            for applied in ops::apply_nats(&env("NATS_URL")?).await? {
                println!("{applied}");
            }
        }
        Command::Tenant {
            command:
                TenantCommand::Add {
                    id,
                    name,
                    itsm,
                    itsm_url,
                    itsm_credentials,
                    public_url,
                },
        } => {
            let keyring = Keyring::from_env()?;
            let kind = match itsm {
                Tool::ServicedeskPlus => ItsmKind::ServicedeskPlus,
            };
            let created = ops::add_tenant(
                &env("DATABASE_URL")?,
                &keyring,
                &id,
                &name,
                kind,
                &itsm_url,
                &itsm_credentials,
            )
            .await?;
            println!("tenant:          {}", created.tenant_id);
            println!(
                "webhook URL:     {}/webhook/servicedesk",
                public_url.trim_end_matches('/')
            );
            println!("webhook secret:  {}", created.webhook_secret.expose());
            println!("The secret is shown only now; it is stored encrypted.");
        }
        Command::Keygen { key_id } => println!("{}", Keyring::generate_spec(&key_id)),
        Command::Serve => {
            let running = aiagents::all_in_one::start(aiagents::all_in_one::Settings {
                nats_url: env("NATS_URL")?,
                database_url: env("DATABASE_URL")?,
                keyring_spec: env("SECRET_KEYS")?,
                llm: llm_enhancer::provider_from_env()?,
                ingress_listen: aia_config::parsed("INGRESS_ADDR", "0.0.0.0:8080".parse()?)?,
            })
            .await?;
            println!("ingress on {}", running.ingress_url);
            aia_bus::shutdown_signal().await;
            running.stop().await?;
        }
        Command::Demo { data } => {
            demo::run(demo::DemoSettings {
                nats_url: env("NATS_URL")?,
                database_url: env("DATABASE_URL")?,
                owner_database_url: env("OWNER_DATABASE_URL")?,
                keyring_spec: aia_config::optional("SECRET_KEYS"),
                llm: llm_enhancer::provider_from_env()?,
                data,
            })
            .await
            .context("demo failed")?;
            println!("Demo finished.");
        }
    }
    Ok(())
}
