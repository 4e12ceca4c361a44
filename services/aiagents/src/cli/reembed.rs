//! `aiagents reembed`: a tenant's corpus with the model it is moving to.

use super::{env, keyring, local_embedder};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    tenant: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let tenant = aia_events::TenantId::parse(&args.tenant)?;
    let pool = aia_store::pool(&env("DATABASE_URL")?, 1)?;
    let mut client = pool.get().await?;
    let http = aia_http::outbound::client_builder().build()?;
    let local = local_embedder(&http)?;
    let report = crate::reembed::run(
        &mut client,
        &keyring()?,
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
    Ok(())
}
