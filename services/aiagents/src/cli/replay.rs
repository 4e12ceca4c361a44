//! `aiagents replay`: a ticket's story from the stream, a stage re-run on
//! its recorded input, a re-drive, a range of a tenant's events.

use aia_events::{TenantId, TicketId};
use aia_ops::replay::{self, StoryLine};

use super::{env, keyring};

#[derive(clap::Subcommand)]
pub enum Command {
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
    /// Run one stage on its recorded input with today's code and configuration; publishes nothing and posts no note (an LLM call is recorded on the tenant's budget).
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

pub async fn run(command: Command) -> anyhow::Result<()> {
    let (_client, jetstream) = aia_bus::connect(&env("NATS_URL")?, "aiagents-replay").await?;
    match command {
        Command::Story {
            tenant,
            ticket,
            json,
        } => {
            let tenant = known_tenant(&tenant).await?;
            let lines = replay::story(&jetstream, &tenant, &TicketId::parse(&ticket)?).await?;
            print_lines(&lines, json)?;
        }
        Command::DryRun {
            tenant,
            ticket,
            stage,
            run,
        } => {
            let stage = replay::parse_stage(&stage)?;
            let tenant = known_tenant(&tenant).await?;
            let lines = replay::story(&jetstream, &tenant, &TicketId::parse(&ticket)?).await?;
            let (input, recorded) = replay::input_and_output(&lines, stage, run)?;
            let tenants = std::sync::Arc::new(aia_store::TenantCache::new(
                aia_store::pool(&env("DATABASE_URL")?, 4)?,
                std::sync::Arc::new(keyring()?),
                std::time::Duration::ZERO,
            ));
            let public_url = aia_config::optional("PUBLIC_URL");
            print!(
                "{}",
                replay::dry_run(
                    stage,
                    &input,
                    recorded.as_ref(),
                    tenants,
                    public_url.as_deref()
                )
                .await?
            );
        }
        Command::Redrive {
            tenant,
            ticket,
            stage,
            run,
            new_note,
        } => {
            let stage = replay::parse_stage(&stage)?;
            let tenant = known_tenant(&tenant).await?;
            let lines =
                replay::whole_story(&jetstream, &tenant, &TicketId::parse(&ticket)?).await?;
            let (input, _) = replay::input_and_output(&lines, stage, run)?;
            let event_id = replay::redrive(&jetstream, &input, new_note).await?;
            println!(
                "re-drove {} at {} as event {event_id}{}",
                input.ticket_id,
                stage.as_str(),
                if new_note { " in a new run" } else { "" }
            );
        }
        Command::Events {
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

/// The tenant, checked to exist (a mistyped id is refused, not taken for
/// a tenant with nothing to show).
pub(super) async fn known_tenant(raw: &str) -> anyhow::Result<TenantId> {
    let tenant = TenantId::parse(raw)?;
    let pool = aia_store::pool(&env("DATABASE_URL")?, 1)?;
    let exists = aia_store::tenants::settings(&mut pool.get().await?, &tenant)
        .await?
        .is_some();
    anyhow::ensure!(exists, "unknown tenant {tenant}");
    Ok(tenant)
}

fn print_lines(lines: &[StoryLine], json: bool) -> anyhow::Result<()> {
    for line in lines {
        if json {
            println!("{}", serde_json::to_string(line)?);
            continue;
        }
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
    Ok(())
}
