//! `aiagents incidents`: a tenant's incidents listed, acknowledged and
//! closed, as the console does.

use super::env;
use incident_correlator::operator::{self, Action};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Live incidents (--ended: every one), newest first: tenant, id, status, tickets, summary.
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        ended: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Take an incident: publishes incident.updated (acknowledged, by you).
    Acknowledge {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        incident: uuid::Uuid,
        /// Who acknowledges (recorded in the event).
        #[arg(long)]
        by: String,
    },
    /// End an incident: publishes incident.updated (closed, by you).
    Close {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        incident: uuid::Uuid,
        #[arg(long)]
        by: String,
    },
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::List {
            tenant,
            ended,
            limit,
        } => {
            let admin = aia_store::pool(&env("ADMIN_DATABASE_URL")?, 1)?;
            let client = admin.get().await?;
            let incidents = operator::list(&client, tenant.as_deref(), ended, limit).await?;
            println!(
                "{:<16} {:<36} {:<12} {:>7}  summary",
                "tenant", "incident", "status", "tickets"
            );
            for i in &incidents {
                println!(
                    "{:<16} {:<36} {:<12} {:>7}  {}",
                    i.tenant_id, i.incident_id, i.status, i.tickets, i.summary
                );
            }
            Ok(())
        }
        Command::Acknowledge {
            tenant,
            incident,
            by,
        } => act(&tenant, incident, Action::Acknowledge, &by).await,
        Command::Close {
            tenant,
            incident,
            by,
        } => act(&tenant, incident, Action::Close, &by).await,
    }
}

async fn act(tenant: &str, incident: uuid::Uuid, action: Action, by: &str) -> anyhow::Result<()> {
    let tenant = aia_events::TenantId::parse(tenant)?;
    let app = aia_store::pool(&env("DATABASE_URL")?, 2)?;
    let (_client, jetstream) = aia_bus::connect(&env("NATS_URL")?, "aiagents-incidents").await?;
    match operator::act(&app, &jetstream, &tenant, incident, action, by).await? {
        Some(event) => println!(
            "{} (event {})",
            match action {
                Action::Acknowledge => "acknowledged",
                Action::Close => "closed",
            },
            event.event_id
        ),
        None => println!("already acknowledged"),
    }
    Ok(())
}
