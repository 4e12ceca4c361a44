//! `aiagents dead-letters`: runs that ended failed, listed and re-driven.

use super::env;

#[derive(clap::Subcommand)]
pub enum Command {
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

pub async fn run(command: Command) -> anyhow::Result<()> {
    let admin_pool = aia_store::pool(&env("ADMIN_DATABASE_URL")?, 2)?;
    match command {
        Command::List {
            tenant,
            limit,
            json,
        } => {
            let letters =
                aia_ops::dead_letters::list(&admin_pool, tenant.as_deref(), limit).await?;
            if json {
                for letter in &letters {
                    println!("{}", serde_json::to_string(letter)?);
                }
                return Ok(());
            }
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
                    l.failed_at
                        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
                    l.reason.as_deref().unwrap_or("-")
                );
            }
        }
        Command::Redrive {
            tenant,
            run,
            all,
            yes,
        } => {
            let (_client, jetstream) =
                aia_bus::connect(&env("NATS_URL")?, "aiagents-redrive").await?;
            const AT_ONCE: i64 = 1000;
            match (run, all) {
                (Some(run), false) => {
                    let event_id =
                        aia_ops::dead_letters::redrive(&admin_pool, &jetstream, &tenant, run)
                            .await?;
                    println!("re-drove run {run} as event {event_id}");
                }
                (None, true) => {
                    anyhow::ensure!(yes, "re-driving every dead letter of {tenant} needs --yes");
                    let done = aia_ops::dead_letters::redrive_all(
                        &admin_pool,
                        &jetstream,
                        &tenant,
                        AT_ONCE,
                    )
                    .await?;
                    for (run, event_id) in &done.redriven {
                        println!("re-drove run {run} as event {event_id}");
                    }
                    for (run, why) in &done.refused {
                        eprintln!("run {run} not re-driven: {why}");
                    }
                    println!(
                        "{} dead letters of {tenant} re-driven, {} not",
                        done.redriven.len(),
                        done.refused.len()
                    );
                    if done.more {
                        println!("the first {AT_ONCE} only: run it again for the rest");
                    }
                    anyhow::ensure!(
                        done.refused.is_empty(),
                        "{} dead letters were not re-driven (above)",
                        done.refused.len()
                    );
                }
                _ => anyhow::bail!("give either --run RUN or --all"),
            }
        }
    }
    Ok(())
}
