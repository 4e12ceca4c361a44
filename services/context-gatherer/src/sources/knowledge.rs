//! Knowledge-base articles: the tenant's own `knowledge_articles`, searched
//! like resolved tickets, and an optional external knowledge base
//! (`GET {url}/api/search?query=…&limit=3`, Bearer token) whose answers are
//! cached per tenant and query for an hour.

use aia_telemetry::http::TracedSend as _;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aia_events::{KnowledgeArticle, Language, TenantId};
use aia_store::embeddings::Corpus;
use aia_store::{Client, Pool, StoreError, search_query, tenant_query};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::meaning::{self, Semantic};
use super::words;
use super::{SEARCH_TIMEOUT, SourceError};

const CACHE_TTL: Duration = Duration::from_secs(3600);

/// What a hit shows, read by [`article`].
const DETAILS: &str = "a.article_id, a.title, left(a.body, 200), a.url";

fn article(row: &aia_store::Row, score: f64) -> KnowledgeArticle {
    KnowledgeArticle {
        title: row.get(1),
        summary: row.get(2),
        url: row.get(3),
        score,
    }
}

/// The articles `ranked` names, in that order, each with its score.
async fn details(
    client: &mut Client,
    tenant: &TenantId,
    ranked: &[meaning::Ranked],
) -> Result<Vec<KnowledgeArticle>, SourceError> {
    let ids: Vec<&str> = ranked.iter().map(|hit| hit.id.as_str()).collect();
    let rows = tenant_query(
        client,
        tenant,
        &format!("select {DETAILS} from knowledge_articles a where tenant_id = $1 and article_id = any($2)"),
        &[&tenant.as_str(), &ids],
    )
    .await?;
    let mut by_id: HashMap<String, aia_store::Row> =
        rows.into_iter().map(|row| (row.get(0), row)).collect();
    Ok(ranked
        .iter()
        .filter_map(|hit| by_id.remove(&hit.id).map(|row| (row, hit.confidence)))
        .map(|(row, score)| article(&row, score))
        .collect())
}

/// Articles of the tenant's own knowledge base that match `text` by words;
/// scores scaled into [0, 0.5) as for similar tickets (never "likely").
pub async fn local(
    client: &mut Client,
    tenant: &TenantId,
    text: &str,
    language: Language,
    limit: i64,
) -> Result<Vec<KnowledgeArticle>, SourceError> {
    let query = words::query_text(text);
    let or_query = words::or_query(language);
    // The ranking and the hits' details in one statement, so one round trip.
    let rows = search_query(
        client,
        tenant,
        SEARCH_TIMEOUT,
        &format!(
            "with ranked as (
               select article_id, ts_rank(search, q, 32)::float8 as score
                 from knowledge_articles, {or_query}
                where tenant_id = $1 and q is not null and search @@ q
                order by score desc, article_id
                limit $3)
             select {DETAILS}, ranked.score
               from ranked join knowledge_articles a on a.tenant_id = $1 and a.article_id = ranked.article_id
              order by ranked.score desc, ranked.article_id"
        ),
        &[&tenant.as_str(), &query, &limit],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| article(row, words::score(row.get(4))))
        .collect())
}

/// Articles of the tenant's own knowledge base by meaning, with words as a
/// bounded bonus; scores are calibrated confidences.
pub async fn local_by_meaning(
    db: &Pool,
    tenant: &TenantId,
    text: &str,
    language: Language,
    semantic: Semantic<'_>,
    limit: usize,
) -> Result<Vec<KnowledgeArticle>, SourceError> {
    let mut client = db.get().await.map_err(StoreError::from)?;
    let ranked = meaning::ranked(
        &mut client,
        tenant,
        Corpus::Articles,
        text,
        language,
        semantic,
        limit,
    )
    .await?;
    details(&mut client, tenant, &ranked).await
}

#[derive(Deserialize)]
struct ExternalArticle {
    title: String,
    #[serde(default, alias = "snippet", alias = "excerpt")]
    summary: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    score: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ExternalAnswer {
    List(Vec<ExternalArticle>),
    Wrapped { results: Vec<ExternalArticle> },
}

/// A tenant and the hash of its knowledge base (address and token) and of
/// a query: a knowledge base moved or given another token is asked anew,
/// never answered from the old one's articles.
type CacheKey = (TenantId, [u8; 32]);

/// Answers of external knowledge bases, per tenant and query.
#[derive(Default)]
pub struct ExternalCache {
    entries: Mutex<HashMap<CacheKey, (Instant, Vec<KnowledgeArticle>)>>,
}

impl ExternalCache {
    fn key(tenant: &TenantId, base: &str, token: Option<&str>, query: &str) -> CacheKey {
        let mut digest = Sha256::new();
        for part in [base, token.unwrap_or_default(), query] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        (tenant.clone(), digest.finalize().into())
    }

    fn get(&self, key: &CacheKey) -> Option<Vec<KnowledgeArticle>> {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(key)
            .filter(|(stored, _)| stored.elapsed() < CACHE_TTL)
            .map(|(_, articles)| articles.clone())
    }

    /// Keeps `articles` for the query, unless there are none: a knowledge
    /// base still being filled is asked again next time, not answered
    /// "nothing" for an hour.
    fn put(&self, key: CacheKey, articles: &[KnowledgeArticle]) {
        if articles.is_empty() {
            return;
        }
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() > 10_000 {
            entries.retain(|_, (stored, _)| stored.elapsed() < CACHE_TTL);
        }
        entries.insert(key, (Instant::now(), articles.to_vec()));
    }
}

/// An external knowledge base's own score on our scale: whatever its range
/// (a probability, a BM25 score of 8.3), in [0, 0.5) and in its order —
/// never "likely", since nothing here can tell how sure it was.
fn external_score(score: Option<f64>) -> f64 {
    match score {
        Some(score) if score.is_finite() && score > 0.0 => 0.5 * score / (1.0 + score),
        _ => 0.0,
    }
}

/// Asks the tenant's external knowledge base, through the cache. `text` is
/// what may leave for it (redacted as the tenant wants).
pub async fn external(
    http: &reqwest::Client,
    cache: &ExternalCache,
    tenant: &TenantId,
    base_url: &str,
    token: Option<&str>,
    text: &str,
    timeout: Duration,
) -> Result<Vec<KnowledgeArticle>, SourceError> {
    let query = words::query_text(text);
    let key = ExternalCache::key(tenant, base_url, token, &query);
    if let Some(articles) = cache.get(&key) {
        return Ok(articles);
    }
    aia_http::outbound::check_url(base_url).map_err(|err| SourceError::Failed(err.to_string()))?;
    let url = format!("{}/api/search", base_url.trim_end_matches('/'));
    let mut request = http
        .get(&url)
        .query(&[("query", query.as_str()), ("limit", "3")])
        .timeout(timeout);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send_traced("knowledge-base").await.map_err(|err| {
        if err.is_timeout() {
            SourceError::TimedOut(format!(
                "external knowledge base did not answer within {} s",
                timeout.as_secs()
            ))
        } else {
            SourceError::Failed("external knowledge base could not be reached".into())
        }
    })?;
    if !response.status().is_success() {
        return Err(SourceError::Failed(format!(
            "external knowledge base answered HTTP {}",
            response.status().as_u16()
        )));
    }
    let answer: ExternalAnswer = aia_http::answer::json(response).await.map_err(|_| {
        SourceError::Failed("external knowledge base sent an unreadable answer".into())
    })?;
    let articles: Vec<KnowledgeArticle> = match answer {
        ExternalAnswer::List(list) | ExternalAnswer::Wrapped { results: list } => list,
    }
    .into_iter()
    .take(3)
    .map(|article| KnowledgeArticle {
        // Bounded like the summary: a title is the knowledge base's to
        // write, and it goes into the prompt and the event.
        title: article.title.chars().take(200).collect(),
        summary: article.summary.chars().take(200).collect(),
        url: article.url,
        score: external_score(article.score),
    })
    .collect();
    cache.put(key, &articles);
    Ok(articles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_answers_only_for_the_same_knowledge_base_and_never_with_nothing() {
        let cache = ExternalCache::default();
        let acme = TenantId::parse("acme").unwrap();
        let article = KnowledgeArticle {
            title: "Disk".into(),
            summary: "Free it".into(),
            url: None,
            score: 0.1,
        };
        let key =
            |base: &str, token: Option<&str>| ExternalCache::key(&acme, base, token, "disk full");
        cache.put(
            key("https://kb-a.example", Some("t1")),
            std::slice::from_ref(&article),
        );
        assert_eq!(
            cache.get(&key("https://kb-a.example", Some("t1"))),
            Some(vec![article])
        );
        // Moved, or another token: asked anew.
        assert_eq!(cache.get(&key("https://kb-b.example", Some("t1"))), None);
        assert_eq!(cache.get(&key("https://kb-a.example", Some("t2"))), None);
        // Nothing found is not kept.
        cache.put(key("https://kb-c.example", None), &[]);
        assert_eq!(cache.get(&key("https://kb-c.example", None)), None);
    }

    #[test]
    fn an_external_score_keeps_its_order_and_is_never_likely() {
        let scores: Vec<f64> = [
            None,
            Some(-1.0),
            Some(f64::NAN),
            Some(0.2),
            Some(0.9),
            Some(8.3),
            Some(1e9),
        ]
        .into_iter()
        .map(external_score)
        .collect();
        assert_eq!(&scores[..3], [0.0, 0.0, 0.0]);
        assert!(
            scores[3..].windows(2).all(|pair| pair[0] < pair[1]),
            "{scores:?}"
        );
        assert!(
            scores.iter().all(|score| (0.0..0.5).contains(score)),
            "{scores:?}"
        );
    }
}
