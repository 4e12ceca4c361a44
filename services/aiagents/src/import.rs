//! Importing a tenant's history and reference data from files.
//!
//! Resolved tickets become `ticket.resolved` events (so the history
//! projection stays rebuildable from the stream), with message ids derived
//! from their content: importing a file twice stores nothing new. Knowledge
//! articles are upserted by id; an inventory import replaces the tenant's
//! inventory in one transaction.

use std::path::Path;

use aia_events::TenantId;
use aia_store::tenant_settings::LanguageSettings;
use aia_store::tenant_transaction;
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

use crate::dataset::{self, Resolved};

fn is_csv(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"))
}

/// Splits `a;b;c` (CSV cells) into tags.
fn tags_of(cell: &str) -> Vec<String> {
    cell.split([';', '|'])
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Deserialize)]
struct TicketCsvRow {
    ticket_id: String,
    subject: String,
    description: String,
    resolution: String,
    #[serde(alias = "resolved_date")]
    resolved_at: DateTime<Utc>,
    priority: String,
    #[serde(default)]
    tags: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TicketFile {
    DataSet { resolved: Vec<serde_json::Value> },
    List(Vec<serde_json::Value>),
}

/// Reads resolved tickets from JSON (a list, or a data set's `resolved`) or
/// CSV (`ticket_id,subject,description,resolution,resolved_at,priority,tags`).
/// Every ticket is given `tenant`.
pub fn read_tickets(path: &Path, tenant: &TenantId) -> anyhow::Result<Vec<Resolved>> {
    let mut tickets = Vec::new();
    if is_csv(path) {
        let mut reader =
            csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
        for (line, row) in reader.deserialize::<TicketCsvRow>().enumerate() {
            let row = row.with_context(|| format!("{} row {}", path.display(), line + 2))?;
            tickets.push(Resolved {
                tenant_id: tenant.to_string(),
                ticket_id: row.ticket_id,
                subject: row.subject,
                description: row.description,
                resolution: row.resolution,
                resolved_at: row.resolved_at,
                priority: row.priority,
                tags: tags_of(&row.tags),
                language: None,
            });
        }
    } else {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: TicketFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a list of tickets", path.display()))?;
        let (TicketFile::DataSet { resolved: items } | TicketFile::List(items)) = file;
        for (idx, mut item) in items.into_iter().enumerate() {
            let Some(fields) = item.as_object_mut() else {
                anyhow::bail!("{} item {idx} is not an object", path.display());
            };
            fields.insert(
                "tenant_id".into(),
                serde_json::Value::String(tenant.to_string()),
            );
            if item.get("resolved_at").is_none()
                && let Some(date) = item.get("resolved_date").cloned()
            {
                item["resolved_at"] = date;
            }
            tickets.push(
                serde_json::from_value(item)
                    .with_context(|| format!("{} item {idx}", path.display()))?,
            );
        }
    }
    for ticket in &tickets {
        // Fail before publishing anything when one record is bad.
        ticket
            .to_event(&LanguageSettings::default())
            .with_context(|| format!("ticket {}", ticket.ticket_id))?;
    }
    Ok(tickets)
}

/// The tenant's language settings, which decide the language its imported
/// tickets and articles are searched in; an error when it does not exist.
pub async fn language_settings(
    client: &mut aia_store::Client,
    tenant: &TenantId,
) -> anyhow::Result<LanguageSettings> {
    let (settings, _active) = aia_store::tenants::settings(client, tenant)
        .await?
        .ok_or_else(|| anyhow::anyhow!("tenant {tenant} does not exist"))?;
    Ok(settings.languages)
}

/// What an import of resolved tickets published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub published: usize,
    /// Already in the tenant's history exactly as in the file.
    pub unchanged: usize,
}

/// Publishes resolved tickets with a progress bar, each in the language
/// `languages` (the tenant's settings) gives it, leaving out those the
/// tenant's history already holds as they are.
pub async fn publish_tickets(
    jetstream: &aia_bus::JetStream,
    client: &mut aia_store::Client,
    tenant: &TenantId,
    tickets: &[Resolved],
    languages: &LanguageSettings,
) -> anyhow::Result<Published> {
    let progress = ProgressBar::new(tickets.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{wide_bar} {pos}/{len} tickets").expect("template"),
    );
    let mut unchanged = 0;
    for chunk in tickets.chunks(100) {
        let stored = dataset::already_stored(client, tenant, chunk, languages).await?;
        let fresh: Vec<Resolved> = chunk
            .iter()
            .filter(|ticket| !stored.contains(&ticket.ticket_id))
            .cloned()
            .collect();
        unchanged += chunk.len() - fresh.len();
        dataset::publish_resolved(jetstream, &fresh, languages).await?;
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    Ok(Published {
        published: tickets.len() - unchanged,
        unchanged,
    })
}

#[derive(Debug, Deserialize)]
pub struct Article {
    pub article_id: String,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "tags_field")]
    pub tags: Vec<String>,
}

fn tags_field<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tags {
        List(Vec<String>),
        Cell(String),
    }
    Ok(match Tags::deserialize(deserializer)? {
        Tags::List(list) => list,
        Tags::Cell(cell) => tags_of(&cell),
    })
}

#[derive(Debug, Deserialize)]
pub struct InventoryEntry {
    #[serde(default, alias = "ip_address", alias = "ip")]
    pub address: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
}

fn read_records<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    if is_csv(path) {
        let mut reader =
            csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
        reader
            .deserialize()
            .enumerate()
            .map(|(line, row)| row.with_context(|| format!("{} row {}", path.display(), line + 2)))
            .collect()
    } else {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON list", path.display()))
    }
}

/// Upserts knowledge articles by id; returns how many.
pub async fn import_articles(
    database_url: &str,
    tenant: &TenantId,
    path: &Path,
) -> anyhow::Result<usize> {
    let articles: Vec<Article> = read_records(path)?;
    let pool = aia_store::pool(database_url, 1)?;
    let mut client = pool.get().await?;
    let languages = language_settings(&mut client, tenant).await?;
    let tx = tenant_transaction(&mut client, tenant).await?;
    for article in &articles {
        anyhow::ensure!(
            !article.article_id.trim().is_empty(),
            "an article has no article_id"
        );
        // Searched by words in its own language, decided like a ticket's.
        let language = languages
            .ticket_language(&format!("{}\n{}", article.title, article.body))
            .language;
        tx.execute(
            "insert into knowledge_articles (tenant_id, article_id, title, body, url, tags, language)
             values ($1, $2, $3, $4, $5, $6, $7)
             on conflict (tenant_id, article_id) do update
                set title = excluded.title, body = excluded.body, url = excluded.url, tags = excluded.tags,
                    language = excluded.language, updated_at = now()",
            &[&tenant.as_str(), &article.article_id, &article.title, &article.body, &article.url, &article.tags,
              &language.code()],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(articles.len())
}

/// Replaces the tenant's inventory; returns how many entries it now has.
pub async fn import_inventory(
    database_url: &str,
    tenant: &TenantId,
    path: &Path,
    allow_empty: bool,
) -> anyhow::Result<usize> {
    let entries: Vec<InventoryEntry> = read_records(path)?;
    anyhow::ensure!(
        allow_empty || !entries.is_empty(),
        "{} holds no entries; the inventory is replaced whole, so this would empty it \
         (--allow-empty to mean that)",
        path.display()
    );
    for (idx, entry) in entries.iter().enumerate() {
        anyhow::ensure!(
            entry.address.as_deref().is_some_and(|a| !a.is_empty())
                || entry.hostname.as_deref().is_some_and(|h| !h.is_empty()),
            "entry {idx} has neither an address nor a host name"
        );
        if let Some(address) = entry.address.as_deref().filter(|a| !a.is_empty()) {
            let host = address.split('/').next().unwrap_or(address);
            anyhow::ensure!(
                host.parse::<std::net::IpAddr>().is_ok(),
                "entry {idx}: {address:?} is not an address or network"
            );
        }
    }
    let pool = aia_store::pool(database_url, 1)?;
    let mut client = pool.get().await?;
    // A typo's tenant would get an inventory nobody reads.
    language_settings(&mut client, tenant).await?;
    let tx = tenant_transaction(&mut client, tenant).await?;
    tx.execute(
        "delete from system_inventory where tenant_id = $1",
        &[&tenant.as_str()],
    )
    .await?;
    for entry in &entries {
        let address = entry.address.as_deref().filter(|a| !a.is_empty());
        tx.execute(
            "insert into system_inventory (tenant_id, address, hostname, role, client, location)
             values ($1, $2::text::inet, $3, $4, $5, $6)",
            &[
                &tenant.as_str(),
                &address,
                &entry.hostname,
                &entry.role,
                &entry.client,
                &entry.location,
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(entries.len())
}

/// What an import from a help desk did.
#[derive(Debug, Clone, PartialEq)]
pub struct HelpDeskImport {
    /// Tickets imported by the import of this window, this run and the
    /// runs it resumed together.
    pub imported: u64,
    /// True when it continued an earlier, interrupted import.
    pub resumed: bool,
    /// True when the import of this window had already read its last page:
    /// nothing was fetched (tickets resolved since need `--since`).
    pub already_complete: bool,
    /// Of this run's, those the tenant's history already held as they are,
    /// counted but not published again.
    pub unchanged: usize,
}

/// Imports the tenant's resolved tickets from its help desk or PSA, page by
/// page in the tool's own paging, at most `requests_per_second`, as
/// `ticket.resolved` events. Progress (the tool's cursor) is saved after
/// every page, so a run that stops (or is stopped after `max_pages`)
/// resumes where it was.
#[allow(clippy::too_many_arguments)]
pub async fn import_from_help_desk(
    itsm: &aia_itsm::Itsm,
    jetstream: &aia_bus::JetStream,
    database_url: &str,
    tenant: &TenantId,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    requests_per_second: u32,
    max_pages: Option<u64>,
) -> anyhow::Result<HelpDeskImport> {
    let source = format!(
        "{}:{}:{}",
        match itsm.kind() {
            // The name earlier imports recorded their progress under.
            aia_events::ItsmKind::ServicedeskPlus => "servicedesk",
            other => other.as_str(),
        },
        since.map(|d| d.timestamp()).unwrap_or(0),
        until.map(|d| d.timestamp()).unwrap_or(0)
    );
    let window = aia_itsm::ImportWindow { since, until };
    let pace = aia_itsm::Pace::per_second(requests_per_second);
    let pool = aia_store::pool(database_url, 1)?;
    let mut client = pool.get().await?;
    let languages = language_settings(&mut client, tenant).await?;
    let (mut cursor, mut read, mut imported, done) = {
        let tx = tenant_transaction(&mut client, tenant).await?;
        let row = tx
            .query_opt(
                "select cursor, next_index, imported from import_progress where tenant_id = $1 and source = $2",
                &[&tenant.as_str(), &source],
            )
            .await?;
        tx.commit().await?;
        match row {
            // ServiceDesk Plus imports before cursors kept only the index.
            Some(row) => {
                let next_index: i64 = row.get(1);
                let cursor: Option<String> = row
                    .get::<_, Option<String>>(0)
                    .or_else(|| (next_index > 1).then(|| next_index.to_string()));
                let done = cursor.as_deref() == Some(DONE);
                (cursor, next_index, row.get::<_, i64>(2), done)
            }
            None => (None, 0, 0, false),
        }
    };
    let resumed = cursor.is_some();
    if done {
        return Ok(HelpDeskImport {
            imported: u64::try_from(imported).unwrap_or(0),
            resumed,
            already_complete: true,
            unchanged: 0,
        });
    }
    let progress = ProgressBar::new(0);
    progress.set_style(
        ProgressStyle::with_template("{wide_bar} {pos} resolved tickets").expect("template"),
    );
    let mut pages = 0;
    let mut unchanged = 0;
    loop {
        if max_pages.is_some_and(|max| pages >= max) {
            break;
        }
        let page = with_retries(|| itsm.resolved_page(cursor.as_deref(), &window, &pace)).await?;
        if let Some(total) = page.total {
            progress.set_length(total);
        }
        let mut tickets: Vec<Resolved> = page
            .tickets
            .into_iter()
            .map(|ticket| Resolved {
                tenant_id: tenant.to_string(),
                ticket_id: ticket.id,
                subject: ticket.subject,
                description: ticket.description,
                resolution: ticket.resolution,
                resolved_at: ticket.resolved_at,
                priority: ticket.priority.as_str().to_owned(),
                tags: ticket.tags,
                language: None,
            })
            .collect();
        // What the history already holds as it is (an overlapping window
        // read again) is counted, not published again.
        let read_here = tickets.len();
        let stored = dataset::already_stored(&mut client, tenant, &tickets, &languages).await?;
        tickets.retain(|ticket| !stored.contains(&ticket.ticket_id));
        unchanged += read_here - tickets.len();
        dataset::publish_resolved(jetstream, &tickets, &languages).await?;
        imported += read_here as i64;
        read += 1;
        progress.inc(read_here as u64);
        cursor = Some(page.next.clone().unwrap_or_else(|| DONE.to_owned()));
        let tx = tenant_transaction(&mut client, tenant).await?;
        tx.execute(
            "insert into import_progress (tenant_id, source, next_index, imported, cursor) values ($1, $2, $3, $4, $5)
             on conflict (tenant_id, source) do update
                set next_index = excluded.next_index, imported = excluded.imported,
                    cursor = excluded.cursor, updated_at = now()",
            &[&tenant.as_str(), &source, &read, &imported, &cursor],
        )
        .await?;
        tx.commit().await?;
        pages += 1;
        if page.next.is_none() {
            break;
        }
    }
    progress.finish_and_clear();
    Ok(HelpDeskImport {
        imported: u64::try_from(imported).unwrap_or(0),
        resumed,
        already_complete: false,
        unchanged,
    })
}

/// The cursor of an import that read its last page.
const DONE: &str = "done";

/// Retries transient help-desk errors (honouring Retry-After), up to five
/// times.
async fn with_retries<T, F, Fut>(mut call: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, aia_itsm::ItsmError>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(aia_itsm::ItsmError::Transient {
                reason,
                retry_after,
                ..
            }) if attempt < 5 => {
                attempt += 1;
                let wait = retry_after.unwrap_or(std::time::Duration::from_millis(500 << attempt));
                tracing::warn!(reason = %reason, attempt, "Help desk busy; retrying");
                tokio::time::sleep(wait.min(std::time::Duration::from_secs(60))).await;
            }
            Err(err) => return Err(anyhow::anyhow!("{err}")),
        }
    }
}
