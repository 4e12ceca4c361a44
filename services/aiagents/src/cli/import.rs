//! `aiagents import`: a tenant's resolved tickets, knowledge articles and
//! inventory, from files or its help desk.

use std::path::PathBuf;

use aia_events::{ItsmKind, TenantId};
use anyhow::Context as _;

use super::{env, keyring, local_embedder};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Resolved tickets (JSON list or data set, or CSV ticket_id,subject,description,resolution,resolved_at,priority,tags), published as ticket.resolved events in the language the tenant's settings give each; a ticket already in the tenant's history as it is in the file is left out, so importing again publishes only what changed.
    Tickets {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Closed and resolved requests from the tenant's ServiceDesk Plus (100 per page, rate-limited, resumable).
    Servicedesk(HelpDeskArgs),
    /// Resolved issues from the tenant's Jira (JQL `resolution is not EMPTY`, resumable).
    Jira(HelpDeskArgs),
    /// Solved and closed tickets from the tenant's Zendesk (search export, resumable).
    Zendesk(HelpDeskArgs),
    /// Resolved and closed tickets from the tenant's Freshservice, with their resolution notes (resumable).
    Freshservice(HelpDeskArgs),
    /// Resolved and closed incidents from the tenant's ServiceNow, with their close notes (resumable).
    Servicenow(HelpDeskArgs),
    /// Closed service tickets from the tenant's ConnectWise PSA, with their resolution notes (resumable).
    Connectwise(HelpDeskArgs),
    /// Completed tickets from the tenant's Autotask PSA, with their resolution (resumable).
    Autotask(HelpDeskArgs),
    /// Closed tickets from the tenant's HaloPSA, with their closure notes (resumable).
    Halopsa(HelpDeskArgs),
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
        /// Replace the inventory with none: a file of no entries is
        /// otherwise refused (a header-only export would empty it).
        #[arg(long)]
        allow_empty: bool,
    },
}

/// Which of the tenant's resolved tickets to read from its help desk.
#[derive(clap::Args)]
pub struct HelpDeskArgs {
    #[arg(long)]
    tenant: String,
    /// Only tickets resolved at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only tickets resolved before this time (RFC 3339).
    #[arg(long)]
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// Requests per second to the help desk (its rate limits and
    /// `Retry-After` are honoured too).
    #[arg(long, default_value_t = 5)]
    rate: u32,
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Tickets { tenant, file } => {
            let tenant = TenantId::parse(&tenant)?;
            let tickets = crate::import::read_tickets(&file, &tenant)?;
            let pool = aia_store::pool(&env("DATABASE_URL")?, 1)?;
            let mut client = pool.get().await?;
            let languages = crate::import::language_settings(&mut client, &tenant).await?;
            let (_client, jetstream) =
                aia_bus::connect(&env("NATS_URL")?, "aiagents-import").await?;
            let done = crate::import::publish_tickets(
                &jetstream,
                &mut client,
                &tenant,
                &tickets,
                &languages,
            )
            .await?;
            println!(
                "{} resolved tickets published for {tenant}, {} already in its history as they are",
                done.published, done.unchanged
            );
        }
        Command::Servicedesk(args) => help_desk(ItsmKind::ServicedeskPlus, args).await?,
        Command::Jira(args) => help_desk(ItsmKind::Jira, args).await?,
        Command::Zendesk(args) => help_desk(ItsmKind::Zendesk, args).await?,
        Command::Freshservice(args) => help_desk(ItsmKind::Freshservice, args).await?,
        Command::Servicenow(args) => help_desk(ItsmKind::Servicenow, args).await?,
        Command::Connectwise(args) => help_desk(ItsmKind::Connectwise, args).await?,
        Command::Autotask(args) => help_desk(ItsmKind::Autotask, args).await?,
        Command::Halopsa(args) => help_desk(ItsmKind::Halopsa, args).await?,
        Command::Articles { tenant, file } => {
            let tenant = TenantId::parse(&tenant)?;
            let n = crate::import::import_articles(&env("DATABASE_URL")?, &tenant, &file).await?;
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
        Command::Inventory {
            tenant,
            file,
            allow_empty,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let n =
                crate::import::import_inventory(&env("DATABASE_URL")?, &tenant, &file, allow_empty)
                    .await?;
            println!("inventory of {tenant} replaced: {n} entries");
        }
    }
    Ok(())
}

/// Imports the tenant's resolved tickets from its `kind` help desk.
async fn help_desk(kind: ItsmKind, args: HelpDeskArgs) -> anyhow::Result<()> {
    let tenant_id = TenantId::parse(&args.tenant)?;
    let pool = aia_store::pool(&env("DATABASE_URL")?, 1)?;
    let mut client = pool.get().await?;
    let record = aia_store::tenants::get(&mut client, &keyring()?, &tenant_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("tenant {tenant_id} does not exist"))?;
    anyhow::ensure!(
        record.itsm == kind,
        "tenant {tenant_id} uses {}, not {}",
        record.itsm.display_name(),
        kind.display_name()
    );
    let http = aia_http::outbound::client_builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let itsm = aia_itsm::Itsm::for_tenant(
        http,
        record.itsm,
        &record.itsm_base_url,
        record.itsm_credentials.expose(),
    )
    .map_err(|err| anyhow::anyhow!("{err}"))?;
    let (_client, jetstream) = aia_bus::connect(&env("NATS_URL")?, "aiagents-import").await?;
    let result = crate::import::import_from_help_desk(
        &itsm,
        &jetstream,
        &env("DATABASE_URL")?,
        &tenant_id,
        args.since,
        args.until,
        args.rate,
        None,
    )
    .await?;
    if result.already_complete {
        println!(
            "the import of this window from {} for {tenant_id} was already complete ({} resolved tickets): nothing fetched; \
             to read tickets resolved since, run it with --since",
            kind.display_name(),
            result.imported
        );
        return Ok(());
    }
    println!(
        "{} resolved tickets imported for {tenant_id} from {}{}{}",
        result.imported,
        kind.display_name(),
        if result.resumed {
            " (resumed an earlier import)"
        } else {
            ""
        },
        if result.unchanged > 0 {
            format!(
                "; {} of them already in its history as they are, not published again",
                result.unchanged
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Embeds the tenant's articles that have no vector yet.
async fn embed_new_articles(tenant: &TenantId) -> anyhow::Result<()> {
    let pool = aia_store::pool(&env("DATABASE_URL")?, 1)?;
    let mut client = pool.get().await?;
    let http = aia_http::outbound::client_builder().build()?;
    let local = local_embedder(&http)?;
    let record = aia_store::tenants::get(&mut client, &keyring()?, tenant)
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
        let (n, refused) = crate::reembed::fill(
            &mut client,
            tenant,
            aia_store::embeddings::Corpus::Articles,
            model,
            true,
        )
        .await?;
        println!("{n} articles embedded with {}", model.model());
        if refused > 0 {
            eprintln!(
                "{refused} articles refused by {} (named above); they are searched by words",
                model.model()
            );
        }
    }
    Ok(())
}
