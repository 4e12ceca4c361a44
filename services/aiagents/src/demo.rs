//! `aiagents demo`: the whole pipeline on real NATS JetStream and
//! PostgreSQL, with a local ServiceDesk Plus stand-in, end to end.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use aia_events::ItsmKind;
use aia_standins::servicedesk::ServiceDeskStandIn;
use aia_store::Keyring;
use anyhow::Context as _;

use crate::{all_in_one, dataset, ops, webhook};

pub struct DemoSettings {
    pub nats_url: String,
    pub database_url: String,
    pub owner_database_url: String,
    pub keyring_spec: Option<String>,
    pub llm: Option<aia_llm::Provider>,
    /// The local embedding model; without it tickets are searched by words.
    pub model_dir: Option<std::path::PathBuf>,
    pub data: std::path::PathBuf,
    /// After the run, serve the admin console here on the demo's data (with
    /// a throw-away operator) until Ctrl-C.
    pub console: Option<DemoConsole>,
}

pub struct DemoConsole {
    pub listen: SocketAddr,
    /// As the admin role (the console's own tables, reads across tenants).
    pub admin_database_url: String,
}

const DEMO_AUTHTOKEN: &str = "demo-sdp-authtoken";

pub async fn run(settings: DemoSettings) -> anyhow::Result<()> {
    let data = dataset::load(&settings.data)?;
    let keyring_spec = match settings.keyring_spec.clone() {
        Some(spec) => spec,
        None => {
            println!("• AI_AGENTS_SECRET_KEYS is not set; using a throw-away key for this demo");
            Keyring::generate_spec("demo")
        }
    };
    let keyring = Keyring::parse(&keyring_spec)?;

    let report = ops::migrate(&settings.owner_database_url).await?;
    println!(
        "• migrations: {} applied, {} already there",
        report.applied.len(),
        report.already_applied.len()
    );
    for applied in ops::apply_nats(&settings.nats_url).await? {
        println!("• nats {applied}");
    }

    let sdp = ServiceDeskStandIn::new(DEMO_AUTHTOKEN);
    let sdp_server = aia_standins::serve(sdp.router()).await?;
    println!("• ServiceDesk Plus stand-in on {}", sdp_server.url());

    let tenant_ids: std::collections::BTreeSet<&str> = data
        .resolved
        .iter()
        .map(|r| r.tenant_id.as_str())
        .chain(data.queries.iter().map(|q| q.tenant_id.as_str()))
        .collect();
    let mut secrets = std::collections::HashMap::new();
    for tenant in tenant_ids {
        let created = ops::add_tenant(
            &settings.database_url,
            &keyring,
            tenant,
            &format!("Demo tenant {tenant}"),
            ItsmKind::ServicedeskPlus,
            &sdp_server.url(),
            &serde_json::json!({"authtoken": DEMO_AUTHTOKEN}).to_string(),
        )
        .await
        .with_context(|| format!("creating tenant {tenant}"))?;
        println!(
            "• tenant {tenant}: webhook secret {} (shown once)",
            created.webhook_secret.masked()
        );
        secrets.insert(tenant.to_owned(), created.webhook_secret);
    }

    let mut running = all_in_one::start(all_in_one::Settings {
        nats_url: settings.nats_url.clone(),
        database_url: settings.database_url.clone(),
        keyring_spec: keyring_spec.clone(),
        llm: settings.llm.clone(),
        ingress_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        public_url: None,
        model_dir: settings.model_dir.clone(),
        metrics_addr: None,
    })
    .await?;
    println!(
        "• {} services running; ingress on {}",
        if settings.model_dir.is_some() {
            "six"
        } else {
            "five"
        },
        running.ingress_url
    );
    match &settings.model_dir {
        Some(dir) => println!("• embedder: all-MiniLM-L6-v2 from {}", dir.display()),
        None => println!(
            "• no embedding model (AI_AGENTS_MODEL_DIR): similar tickets are searched by words"
        ),
    }
    match &settings.llm {
        Some(provider) => println!("• LLM: {} at {}", provider.model, provider.base_url),
        None => println!(
            "• no LLM configured (AI_AGENTS_LLM_BASE_URL): notes show the labelled raw context"
        ),
    }

    let ingress_url = running.ingress_url.clone();
    let result = tokio::select! {
        result = drive(&settings, &data, &secrets, &sdp, &ingress_url) => result,
        err = running.any_exited() => err,
    };
    let result = match (result, &settings.console) {
        (Ok(()), Some(console)) => tokio::select! {
            result = serve_console(&settings, console, Keyring::parse(&keyring_spec)?, &ingress_url) => result,
            err = running.any_exited() => err,
        },
        (result, _) => result,
    };
    running.stop().await?;
    result
}

/// The admin console on the demo's data, with an operator made for it.
async fn serve_console(
    settings: &DemoSettings,
    console: &DemoConsole,
    keyring: Keyring,
    ingress_url: &str,
) -> anyhow::Result<()> {
    let password = admin::console::auth::random_password();
    let pool = aia_store::pool(&console.admin_database_url, 1)?;
    admin::console::auth::create_user(&pool, "demo", &password, admin::console::Role::Admin)
        .await
        .context("creating the console's demo operator")?;
    let listener = tokio::net::TcpListener::bind(console.listen)
        .await
        .with_context(|| format!("binding {}", console.listen))?;
    println!(
        "• admin console: http://{}/console — user demo, password {password} (this run only); Ctrl-C stops",
        listener.local_addr()?
    );
    let config = admin::Config {
        nats_url: settings.nats_url.clone(),
        database_url: settings.database_url.clone(),
        admin_database_url: console.admin_database_url.clone(),
        keyring,
        token: password.repeat(2),
        public_url: ingress_url.to_owned(),
        listen: console.listen,
        console: Default::default(),
    };
    admin::serve(config, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

async fn drive(
    settings: &DemoSettings,
    data: &dataset::DataSet,
    secrets: &std::collections::HashMap<String, aia_store::Secret>,
    sdp: &ServiceDeskStandIn,
    ingress_url: &str,
) -> anyhow::Result<()> {
    let (_client, jetstream) = aia_bus::connect(&settings.nats_url, "aiagents-demo").await?;
    // The demo's tenants keep the default language settings.
    let languages = aia_store::tenant_settings::LanguageSettings::default();
    dataset::publish_resolved(&jetstream, &data.resolved, &languages).await?;
    let admin = aia_store::connect(&settings.owner_database_url).await?;
    let expected = i64::try_from(data.resolved.len())?;
    wait_for(
        "the resolved tickets to reach the history table",
        Duration::from_secs(60),
        || async {
            let count: i64 = admin
                .query_one("select count(*) from ticket_history", &[])
                .await
                .ok()?
                .get(0);
            (count >= expected).then_some(())
        },
    )
    .await?;
    println!(
        "• {} resolved tickets projected into ticket_history from ticket.resolved events",
        expected
    );
    if settings.model_dir.is_some() {
        wait_for(
            "the resolved tickets to be embedded",
            Duration::from_secs(120),
            || async {
                let count: i64 = admin
                    .query_one("select count(*) from ticket_embeddings", &[])
                    .await
                    .ok()?
                    .get(0);
                (count >= expected).then_some(())
            },
        )
        .await?;
        println!("• {expected} resolved tickets embedded by the embedding indexer");
    }
    println!();

    let http = reqwest::Client::new();
    for query in &data.queries {
        let secret = &secrets[&query.tenant_id];
        let sent = Instant::now();
        let (status, answer) = webhook::send_servicedesk(
            &http,
            ingress_url,
            secret.expose(),
            webhook::servicedesk_body(query),
        )
        .await?;
        anyhow::ensure!(
            status == 202,
            "webhook for {} answered {status}: {answer}",
            query.ticket_id
        );
        println!(
            "── {} {:?} → 202, event {}",
            query.ticket_id,
            query.subject.as_deref().unwrap_or(""),
            answer["event_id"]
        );
        wait_for("the note", Duration::from_secs(60), || async {
            (!sdp.notes(&query.ticket_id).is_empty()).then_some(())
        })
        .await?;
        let note: String = wait_for("the history row", Duration::from_secs(30), || async {
            let row = admin
                .query_opt(
                    "select note_markdown from enhancement_history
                      where tenant_id = $1 and ticket_id = $2 and status = 'completed'
                      order by received_at desc limit 1",
                    &[&query.tenant_id, &query.ticket_id],
                )
                .await
                .ok()??;
            row.get(0)
        })
        .await?;
        println!(
            "   note on ServiceDesk Plus after {} ms:",
            sent.elapsed().as_millis()
        );
        for line in note.lines() {
            println!("   │ {line}");
        }
        println!();
    }
    let notes = sdp.all_notes().len();
    println!(
        "• {} notes written for {} webhooks",
        notes,
        data.queries.len()
    );
    println!("• where to look:");
    println!(
        "    history:  psql \"$AI_AGENTS_OWNER_DATABASE_URL\" -c \"select ticket_id, status, processing_ms, context_summary from enhancement_history\""
    );
    println!(
        "    stream:   subjects tickets.<tenant>.<ticket>.<event_type> in stream TICKETS on {}",
        aia_bus::shown_url(&settings.nats_url)
    );
    anyhow::ensure!(
        notes == data.queries.len(),
        "expected one note per webhook, found {notes}"
    );
    Ok(())
}

async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The demo's data file, relative to the repository.
pub fn default_data() -> &'static Path {
    Path::new("demo/tickets.json")
}
