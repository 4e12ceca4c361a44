//! Operator commands that set a deployment up: migrations, the JetStream
//! topology, tenants.

use aia_bus::topology::{Applied, Topology};
use aia_events::{ItsmKind, TenantId};
use aia_store::{Keyring, NewTenant, Secret, TenantSettings};
use anyhow::Context as _;

/// Applies the SQL migrations with the admin URL.
pub async fn migrate(
    owner_database_url: &str,
) -> anyhow::Result<aia_store::migrate::MigrationReport> {
    let (mut client, connection) =
        tokio_postgres::connect(owner_database_url, tokio_postgres::NoTls)
            .await
            .context("connecting to PostgreSQL with AI_AGENTS_OWNER_DATABASE_URL")?;
    let connection = tokio::spawn(connection);
    let report = aia_store::migrate::run(&mut client).await?;
    drop(client);
    let _ = connection.await;
    Ok(report)
}

/// Applies the stream and consumer definitions of `nats/`.
pub async fn apply_nats(nats_url: &str) -> anyhow::Result<Vec<Applied>> {
    let (_client, jetstream) = aia_bus::connect(nats_url, "aiagents-cli")
        .await
        .context("connecting to NATS")?;
    Ok(Topology::builtin()?.apply(&jetstream).await?)
}

/// A tenant as created, with its webhook secret: shown once, never again.
pub struct CreatedTenant {
    pub tenant_id: TenantId,
    pub webhook_secret: Secret,
}

pub async fn add_tenant(
    database_url: &str,
    keyring: &Keyring,
    tenant_id: &str,
    name: &str,
    itsm: ItsmKind,
    itsm_base_url: &str,
    itsm_credentials_json: &str,
) -> anyhow::Result<CreatedTenant> {
    let tenant_id = TenantId::parse(tenant_id)?;
    serde_json::from_str::<serde_json::Value>(itsm_credentials_json)
        .context("ITSM credentials must be JSON")?;
    aia_itsm::Itsm::for_tenant(
        reqwest::Client::new(),
        itsm,
        itsm_base_url,
        itsm_credentials_json,
    )
    .map_err(|err| anyhow::anyhow!("{err}"))?;
    let webhook_secret = Secret::generate(32);
    let pool = aia_store::pool(database_url, 1)?;
    let mut client = pool.get().await.context("connecting to PostgreSQL")?;
    aia_store::tenants::create(
        &mut client,
        keyring,
        &NewTenant {
            tenant_id: tenant_id.clone(),
            name: name.to_owned(),
            itsm,
            itsm_base_url: itsm_base_url.to_owned(),
            itsm_credentials: Secret::new(itsm_credentials_json),
            webhook_secret: webhook_secret.clone(),
            settings: TenantSettings::default(),
        },
    )
    .await?;
    Ok(CreatedTenant {
        tenant_id,
        webhook_secret,
    })
}
