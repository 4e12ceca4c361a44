//! Operator commands that set a deployment up: migrations, the JetStream
//! topology, tenants.

use aia_bus::topology::{Applied, Topology};
use aia_events::{ItsmKind, TenantId};
use aia_store::{Keyring, Secret};
use anyhow::Context as _;

/// Applies the SQL migrations with the admin URL.
pub async fn migrate(
    owner_database_url: &str,
) -> anyhow::Result<aia_store::migrate::MigrationReport> {
    let mut client = aia_store::connect(owner_database_url)
        .await
        .context("connecting to PostgreSQL with AI_AGENTS_OWNER_DATABASE_URL")?;
    Ok(aia_store::migrate::run(&mut client).await?)
}

/// Applies the stream and consumer definitions of `nats/`.
pub async fn apply_nats(nats_url: &str) -> anyhow::Result<Vec<Applied>> {
    apply_nats_replicated(nats_url, None).await
}

/// Applies the definitions of `nats/`, the stream replicated `replicas`
/// times when given (3 on a clustered server).
pub async fn apply_nats_replicated(
    nats_url: &str,
    replicas: Option<usize>,
) -> anyhow::Result<Vec<Applied>> {
    let (client, jetstream) = aia_bus::connect(nats_url, "aiagents-cli")
        .await
        .context("connecting to NATS")?;
    let mut topology = Topology::builtin()?;
    match replicas {
        Some(replicas) => {
            anyhow::ensure!((1..=5).contains(&replicas), "replicas must be 1 to 5");
            // The client connects in the background; the server's INFO is
            // known once a round trip has been made.
            client.flush().await.context("reaching NATS")?;
            aia_bus::topology::check_replicas(&client.server_info(), replicas)?;
            topology = topology.with_replicas(replicas);
        }
        None => {
            // Not said: a stream already replicated keeps its replicas (an
            // `apply` run by hand after a restore must not make a
            // production stream R1); only --replicas changes them.
            // Only a stream that is not there is made as the files say; a
            // server that cannot answer now (an election after a restore)
            // is an error, not a missing stream.
            use async_nats::jetstream::ErrorCode;
            use async_nats::jetstream::context::GetStreamErrorKind;
            match jetstream.get_stream(topology.stream_name()).await {
                Ok(mut stream) => {
                    let existing = stream
                        .info()
                        .await
                        .context("reading the stream's configuration")?
                        .config
                        .num_replicas;
                    if existing > 1 {
                        topology = topology.with_replicas(existing);
                    }
                }
                Err(err)
                    if matches!(err.kind(), GetStreamErrorKind::JetStream(ref js)
                        if js.error_code() == ErrorCode::STREAM_NOT_FOUND) => {}
                Err(err) => {
                    return Err(anyhow::Error::new(err).context("reading the stream's replicas"));
                }
            }
        }
    }
    Ok(topology.apply(&jetstream).await?)
}

/// A tenant as created, with its webhook secret: shown once, never again.
pub struct CreatedTenant {
    pub tenant_id: TenantId,
    pub webhook_secret: Secret,
}

/// Creates a tenant through the same path as the admin API.
pub async fn add_tenant(
    database_url: &str,
    keyring: &Keyring,
    tenant_id: &str,
    name: &str,
    itsm: ItsmKind,
    itsm_base_url: &str,
    itsm_credentials_json: &str,
) -> anyhow::Result<CreatedTenant> {
    let credentials: serde_json::Value =
        serde_json::from_str(itsm_credentials_json).context("ITSM credentials must be JSON")?;
    let keyring = Keyring::parse(&keyring.export_spec())?;
    let admin = aia_ops::tenant_admin(database_url, database_url, keyring, String::new())?;
    let created = admin
        .create(aia_ops::tenants::CreateTenant {
            tenant_id: tenant_id.to_owned(),
            name: name.to_owned(),
            itsm_kind: itsm,
            itsm_base_url: itsm_base_url.to_owned(),
            itsm_credentials: credentials,
            settings: None,
        })
        .await?;
    Ok(CreatedTenant {
        tenant_id: TenantId::parse(tenant_id)?,
        webhook_secret: Secret::new(created.webhook_secret),
    })
}

/// Re-encrypts every tenant's secrets with the primary key of the keyring
/// (after a new key was put first in `AI_AGENTS_SECRET_KEYS`). Returns the
/// number of tenants and of values rewritten.
pub async fn reencrypt_secrets(
    database_url: &str,
    admin_database_url: &str,
    keyring: &Keyring,
) -> anyhow::Result<(usize, usize)> {
    let admin = aia_store::connect(admin_database_url)
        .await
        .context("connecting with AI_AGENTS_ADMIN_DATABASE_URL")?;
    let ids: Vec<String> = admin
        .query("select tenant_id from tenants order by tenant_id", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let pool = aia_store::pool(database_url, 1)?;
    let mut client = pool
        .get()
        .await
        .context("connecting with AI_AGENTS_DATABASE_URL")?;
    let mut rewritten = 0;
    for id in &ids {
        rewritten +=
            aia_store::tenants::reencrypt(&mut client, keyring, &TenantId::parse(id)?).await?;
    }
    Ok((ids.len(), rewritten))
}
