//! `aiagents rebuild`: the read models from the event stream.

use super::env;

#[derive(clap::Args)]
pub struct Args {
    /// Rebuild only this tenant's rows.
    #[arg(long)]
    tenant: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (_client, jetstream) = aia_bus::connect(&env("NATS_URL")?, "aiagents-rebuild").await?;
    let owner_url = env("OWNER_DATABASE_URL")?;
    let tenant = match args.tenant.as_deref() {
        Some(raw) => Some(super::replay::known_tenant(raw).await?),
        None => None,
    };
    let report = match &tenant {
        Some(tenant) => {
            history_projector::rebuild::rebuild_tenant(&jetstream, &owner_url, tenant).await?
        }
        None => history_projector::rebuild::rebuild_all(&jetstream, &owner_url).await?,
    };
    let incidents =
        incident_correlator::rebuild::rebuild(&jetstream, &owner_url, tenant.as_ref()).await?;
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
    println!(
        "incidents rebuilt from {} events: {} incidents, {} of their tickets",
        incidents.events, incidents.incidents, incidents.tickets
    );
    Ok(())
}
