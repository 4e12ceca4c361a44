//! `aiagents reembed --tenant X`: gives every resolved ticket and knowledge
//! article of a tenant an up-to-date vector of the model it is moving to
//! (`embeddings_next`), or of its current model when it is not moving.
//!
//! Resumable: each batch is stored as it is made, and a new run picks up
//! only what still has no up-to-date vector. Search keeps answering from the
//! current model's vectors throughout; only when the new model covers the
//! whole corpus does it become the tenant's model, and the old vectors go.

use aia_embed::Embedder;
use aia_embed::tenant::embedders;
use aia_events::TenantId;
use aia_store::embeddings::{self, Corpus, NewVector};
use aia_store::{Client, Keyring, tenants};
use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub model: String,
    pub tickets: u64,
    pub articles: u64,
    /// Whether the new model became the tenant's model.
    pub promoted: bool,
    /// Vectors of other models removed.
    pub retired: u64,
}

const BATCH: i64 = 32;

/// Embeds what `embedder` has not embedded yet in one corpus; returns how
/// many items it embedded, and how many the provider refused (named on
/// standard error).
pub async fn fill(
    client: &mut Client,
    tenant: &TenantId,
    corpus: Corpus,
    embedder: &Embedder,
    show_progress: bool,
) -> anyhow::Result<(u64, u64)> {
    let (missing, _) = embeddings::coverage(client, tenant, corpus, embedder.model()).await?;
    let progress = if show_progress {
        ProgressBar::new(u64::try_from(missing).unwrap_or(0))
    } else {
        ProgressBar::hidden()
    };
    let what = match corpus {
        Corpus::Tickets => "tickets",
        Corpus::Articles => "articles",
    };
    progress.set_style(
        ProgressStyle::with_template(&format!(
            "{{wide_bar}} {{pos}}/{{len}} {what} ({{per_sec}}, {{eta}} left)"
        ))
        .expect("template"),
    );
    let mut done = 0;
    let mut refused = 0;
    let mut after: Option<String> = None;
    loop {
        let batch = embeddings::pending(
            client,
            tenant,
            corpus,
            embedder.model(),
            after.as_deref(),
            BATCH,
        )
        .await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id.clone());
        let texts: Vec<String> = batch.iter().map(|item| item.text.clone()).collect();
        let vectors: Vec<Option<aia_embed::Vector>> = match embedder.embed(&texts).await {
            Ok(vectors) => vectors.into_iter().map(Some).collect(),
            // One text the provider refuses stops no other: each is asked
            // alone, and one still refused is named and passed over (it
            // stays missing, so the move to the model is not completed).
            Err(aia_embed::EmbedError::Refused(_)) => {
                let mut one_by_one = Vec::with_capacity(texts.len());
                for (item, text) in batch.iter().zip(&texts) {
                    match embedder.embed(std::slice::from_ref(text)).await {
                        Ok(mut vector) => one_by_one.push(vector.pop()),
                        Err(aia_embed::EmbedError::Refused(reason)) => {
                            eprintln!("{what}: {} not embedded: {reason}", item.id);
                            refused += 1;
                            one_by_one.push(None);
                        }
                        Err(err) => {
                            return Err(anyhow::Error::new(err)
                                .context(format!("embedding {what} with {}", embedder.model())));
                        }
                    }
                }
                one_by_one
            }
            Err(err) => {
                return Err(anyhow::Error::new(err)
                    .context(format!("embedding {what} with {}", embedder.model())));
            }
        };
        let digests: Vec<[u8; 32]> = texts.iter().map(|t| aia_embed::content_digest(t)).collect();
        let rows: Vec<NewVector<'_>> = batch
            .iter()
            .zip(&vectors)
            .zip(&digests)
            .filter_map(|((item, vector), digest)| {
                Some(NewVector {
                    id: &item.id,
                    model: embedder.model(),
                    vector: vector.as_ref()?.as_slice(),
                    content_sha256: digest,
                })
            })
            .collect();
        embeddings::upsert(client, tenant, corpus, &rows).await?;
        done += rows.len() as u64;
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    Ok((done, refused))
}

/// Re-embeds the tenant's corpus; see the module's documentation.
pub async fn run(
    client: &mut Client,
    keyring: &Keyring,
    tenant_id: &TenantId,
    local: Option<&Embedder>,
    http: &reqwest::Client,
    show_progress: bool,
) -> anyhow::Result<Report> {
    let tenant = tenants::get(client, keyring, tenant_id)
        .await?
        .with_context(|| format!("tenant {tenant_id} does not exist"))?;
    let models = embedders(&tenant.settings, &tenant.integrations, local, http)
        .map_err(anyhow::Error::msg)?;
    let target = models.next.as_ref().unwrap_or(&models.active);
    let (tickets, refused_tickets) =
        fill(client, tenant_id, Corpus::Tickets, target, show_progress).await?;
    let (articles, refused_articles) =
        fill(client, tenant_id, Corpus::Articles, target, show_progress).await?;
    let refused = refused_tickets + refused_articles;
    anyhow::ensure!(
        refused == 0,
        "{refused} items the provider refused (named above) are not embedded, the other \
         {tickets} tickets and {articles} articles are; the move to {} is not completed",
        target.model()
    );
    for corpus in [Corpus::Tickets, Corpus::Articles] {
        let (missing, _) = embeddings::coverage(client, tenant_id, corpus, target.model()).await?;
        anyhow::ensure!(
            missing == 0,
            "{missing} items changed while embedding; run the command again"
        );
    }
    let promoted = match &tenant.settings.embeddings_next {
        Some(next) => tenants::promote_embeddings(client, tenant_id, next).await?,
        None => false,
    };
    // Vectors of other models are removed only once the target is the model
    // search uses.
    let retired = if promoted || tenant.settings.embeddings_next.is_none() {
        embeddings::retire_other_models(client, tenant_id, target.model()).await?
    } else {
        0
    };
    Ok(Report {
        model: target.model().to_owned(),
        tickets,
        articles,
        promoted,
        retired,
    })
}
