//! `aiagents tenant`: tenants, through the operations the admin API and
//! console run.

use aia_events::ItsmKind;
use anyhow::Context as _;

use super::{print_json, tenant_admin};

#[derive(clap::Subcommand)]
pub enum Command {
    /// List tenants (id, name, tool, active), optionally matching a search.
    List {
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one tenant, secrets masked.
    Show { id: String },
    /// Change a tenant's name, help-desk URL or credentials, active flag or settings.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        itsm_url: Option<String>,
        /// New credentials as JSON, or `-` to read them from standard
        /// input (out of shell history). Never taken from the environment:
        /// a variable exported for another tenant's `add` must not move
        /// into this one.
        #[arg(long)]
        itsm_credentials: Option<String>,
        #[arg(long)]
        active: Option<bool>,
        /// Settings to change, as JSON merged into the current ones (RFC
        /// 7396): the fields named change, objects are merged, `null`
        /// resets a field to its default, the rest stays (see TenantSettings).
        #[arg(long)]
        settings: Option<String>,
    },
    /// Soft-delete a tenant: its webhooks are refused, its history is kept.
    Delete {
        id: String,
        /// Required: the deletion is not undone by this CLI.
        #[arg(long)]
        yes: bool,
    },
    /// Issue a new webhook secret (shown once); the old one stays valid for 24 hours, or is revoked at once with --revoke-previous.
    RotateSecret {
        id: String,
        /// Revoke the old secret now (it leaked).
        #[arg(long, conflicts_with = "keep_previous_hours")]
        revoke_previous: bool,
        /// How long the old secret stays valid (hours, at most 168).
        #[arg(long)]
        keep_previous_hours: Option<u64>,
    },
    /// End a rotation early: the previous webhook secret stops working, the current one stays.
    EndRotation { id: String },
    /// Check that the tenant's help desk answers and accepts its credentials.
    TestConnection { id: String },
    /// Change the tenant's integration tokens and keys, read as JSON from
    /// standard input (so they stay out of shell history) and merged into
    /// the current ones: a token or key named is set, `null` removes it,
    /// the others stay. Fields: {"knowledge_base_token", "monitoring_token",
    /// "incident_webhook_url", "incident_webhook_secret", "llm_keys": {name: key},
    /// "embedding_keys": {name: key}}; `{"incident_webhook_url": null}` stops
    /// the tenant's incident webhook.
    SetIntegrations { id: String },
    /// Create a tenant and print its webhook URL and secret (shown only this once).
    Add(AddArgs),
}

#[derive(clap::Args)]
pub struct AddArgs {
    /// Tenant id: a-z, 0-9 and '-'.
    #[arg(long)]
    id: String,
    #[arg(long)]
    name: String,
    #[arg(long, value_enum, default_value_t = Tool::ServicedeskPlus)]
    itsm: Tool,
    /// The help desk's base URL, for example https://sdp.example.com,
    /// https://acme.zendesk.com, https://acme.freshservice.com,
    /// https://acme.service-now.com, https://api-na.myconnectwise.net/v4_6_release/apis/3.0,
    /// https://webservices.autotask.net/ATServicesRest or https://acme.halopsa.com.
    #[arg(long)]
    itsm_url: String,
    /// Credentials as JSON (see `docs/help-desks.md`): ServiceDesk Plus {"authtoken": "…"},
    /// Freshservice {"api_key": "…"}, …; `-` reads them from standard input
    /// (out of shell history and `ps`).
    #[arg(long, env = "AI_AGENTS_ITSM_CREDENTIALS", hide_env_values = true)]
    itsm_credentials: String,
    /// The public base URL of the ingress, to print the webhook URL.
    #[arg(
        long,
        env = "AI_AGENTS_PUBLIC_URL",
        default_value = "http://localhost:8080"
    )]
    public_url: String,
}

/// The help desks and PSAs a tenant can be on.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Tool {
    ServicedeskPlus,
    Jira,
    Zendesk,
    Freshservice,
    Servicenow,
    Connectwise,
    Autotask,
    Halopsa,
}

impl From<Tool> for ItsmKind {
    fn from(tool: Tool) -> Self {
        match tool {
            Tool::ServicedeskPlus => ItsmKind::ServicedeskPlus,
            Tool::Jira => ItsmKind::Jira,
            Tool::Zendesk => ItsmKind::Zendesk,
            Tool::Freshservice => ItsmKind::Freshservice,
            Tool::Servicenow => ItsmKind::Servicenow,
            Tool::Connectwise => ItsmKind::Connectwise,
            Tool::Autotask => ItsmKind::Autotask,
            Tool::Halopsa => ItsmKind::Halopsa,
        }
    }
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Add(args) => add(args).await?,
        Command::List { search, limit } => {
            let admin = tenant_admin()?;
            println!("{:<24} {:<32} {:<18} active", "tenant", "name", "tool");
            // The operations answer pages of at most 200: as many pages as
            // the limit asks for.
            let (mut left, mut cursor) = (limit.max(1), None::<String>);
            let more = loop {
                let page = admin
                    .list(search.as_deref(), cursor.as_deref(), left.min(200))
                    .await?;
                for tenant in &page.items {
                    println!(
                        "{:<24} {:<32} {:<18} {}",
                        tenant.tenant_id, tenant.name, tenant.itsm, tenant.active
                    );
                }
                left -= page.items.len() as i64;
                match page.next_cursor {
                    Some(next) if left > 0 => cursor = Some(next),
                    next => break next.is_some(),
                }
            };
            if more {
                println!("… more; narrow with --search or raise --limit");
            }
        }
        Command::Show { id } => print_json(&tenant_admin()?.get(&id).await?)?,
        Command::Update {
            id,
            name,
            itsm_url,
            itsm_credentials,
            active,
            settings,
        } => {
            let admin = tenant_admin()?;
            let itsm_credentials = match itsm_credentials.as_deref() {
                Some("-") => Some(read_stdin()?),
                _ => itsm_credentials,
            };
            let patch: Option<serde_json::Value> = settings
                .map(|raw| serde_json::from_str(&raw))
                .transpose()
                .context("--settings must be JSON")?;
            let update = aia_ops::tenants::UpdateTenant {
                name,
                itsm_base_url: itsm_url,
                itsm_credentials: itsm_credentials
                    .map(|raw| serde_json::from_str(&raw))
                    .transpose()
                    .context("--itsm-credentials must be JSON")?,
                active,
                settings: None,
            };
            // The settings are patched from what is stored when the change
            // lands, so a change made meanwhile is kept, not written over.
            let view = match &patch {
                Some(patch) => admin.update_patching(&id, update, patch).await?,
                None => admin.update(&id, update).await?,
            };
            print_json(&view)?;
        }
        Command::Delete { id, yes } => {
            anyhow::ensure!(yes, "deleting {id} needs --yes");
            tenant_admin()?.delete(&id).await?;
            println!("tenant {id} deleted");
        }
        Command::RotateSecret {
            id,
            revoke_previous,
            keep_previous_hours,
        } => {
            let keep = match (revoke_previous, keep_previous_hours) {
                (true, _) => std::time::Duration::ZERO,
                (false, Some(hours)) => std::time::Duration::from_secs(hours.saturating_mul(3600)),
                (false, None) => aia_ops::tenants::KEEP_PREVIOUS,
            };
            let secret = tenant_admin()?.rotate_secret(&id, keep).await?;
            println!("new webhook secret: {secret}");
            if keep.is_zero() {
                println!("Shown only now. The previous secret is revoked.");
            } else {
                println!(
                    "Shown only now. The previous secret stays valid for {} hours.",
                    keep.as_secs() / 3600
                );
            }
        }
        Command::EndRotation { id } => {
            tenant_admin()?.end_rotation(&id).await?;
            println!(
                "rotation of {id} ended: the previous webhook secret no longer works (within the ingress's 30 s cache)"
            );
        }
        Command::SetIntegrations { id } => {
            let patch: serde_json::Value = serde_json::from_str(&read_stdin()?)
                .context("standard input is not integrations JSON")?;
            let set = tenant_admin()?.patch_integrations(&id, &patch).await?;
            println!("integrations of {id} changed (encrypted); now set: {set}");
        }
        Command::TestConnection { id } => {
            let result = tenant_admin()?.test_connection(&id).await?;
            println!("{}", result.message);
            anyhow::ensure!(result.ok, "the connection test failed");
        }
    }
    Ok(())
}

fn read_stdin() -> anyhow::Result<String> {
    let mut raw = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut raw)
        .context("reading standard input")?;
    Ok(raw)
}

async fn add(args: AddArgs) -> anyhow::Result<()> {
    let credentials = match args.itsm_credentials.as_str() {
        "-" => serde_json::from_str(&read_stdin()?),
        given => serde_json::from_str(given),
    }
    .context("--itsm-credentials must be JSON")?;
    let mut tenants = tenant_admin()?;
    tenants.public_url = args.public_url;
    let kind: ItsmKind = args.itsm.into();
    let created = tenants
        .create(aia_ops::tenants::CreateTenant {
            tenant_id: args.id,
            name: args.name,
            itsm_kind: kind,
            itsm_base_url: args.itsm_url,
            itsm_credentials: credentials,
            settings: None,
        })
        .await?;
    println!("tenant:            {}", created.tenant.tenant_id);
    for (what, url) in created
        .tenant
        .webhook_urls
        .as_object()
        .into_iter()
        .flatten()
    {
        println!(
            "{:<18} POST {}",
            format!("{what}:"),
            url.as_str().unwrap_or_default()
        );
    }
    println!("webhook secret:    {}", created.webhook_secret);
    println!("The secret is shown only now; it is stored encrypted.");
    println!();
    println!("Set up {}:", kind.display_name());
    for step in &created.setup {
        println!("- {step}");
    }
    println!("The whole guide: docs/help-desks.md.");
    Ok(())
}
