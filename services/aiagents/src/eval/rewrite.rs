//! The LLM query rewrite, measured: every query's technical terms asked of
//! an OpenAI-compatible endpoint (`--llm-url`) exactly as the gatherer asks
//! a tenant's LLM, embedded beside the query and searched with it, scored
//! like every other method, with what it cost and how long it took.

use std::time::Duration;

use aia_llm::Provider;
use aia_llm::chain::Chain;
use aia_llm::cost::PriceTable;
use context_gatherer::rewrite;
use context_gatherer::sources::fusion::Fusion;
use context_gatherer::sources::similar::{self, Semantic};

use super::scores::{Hit, Scores, score};
use super::{Ask, owned};
use crate::dataset::DataSet;

/// The endpoint the rewrite is asked of.
#[derive(Debug)]
pub struct Llm {
    pub provider: Provider,
    pub prices: PriceTable,
    /// How long one answer may take, as the gatherer's source timeout.
    pub timeout: Duration,
}

/// What the rewrites of one data set cost.
#[derive(Debug, Default)]
pub struct Spend {
    pub asked: usize,
    /// Rewrites that gave terms.
    pub answered: usize,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    /// Each call's latency, sorted.
    pub latencies_ms: Vec<u64>,
    /// Why the first rewrite that gave no terms gave none.
    pub first_failure: Option<String>,
}

impl Spend {
    fn percentile(&self, p: f64) -> u64 {
        if self.latencies_ms.is_empty() {
            return 0;
        }
        let rank = (p * (self.latencies_ms.len() - 1) as f64).round() as usize;
        self.latencies_ms[rank]
    }

    /// One line for the report.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "LLM rewrite: {}/{} answered, {} tokens in, {} out, ${:.4} in all (${:.6} per query); added latency p50 {} ms, p95 {} ms",
            self.answered,
            self.asked,
            self.tokens_in,
            self.tokens_out,
            self.cost_usd,
            self.cost_usd / self.asked.max(1) as f64,
            self.percentile(0.5),
            self.percentile(0.95),
        );
        if let Some(why) = &self.first_failure {
            line.push_str(&format!("; first failure: {why}"));
        }
        line
    }
}

/// Every query searched with its LLM terms beside it under `fusion`.
pub(super) async fn scored(
    data: &DataSet,
    ask: &Ask<'_>,
    embedder: &aia_embed::Embedder,
    fusion: Fusion,
    llm: &Llm,
) -> anyhow::Result<(Scores, Spend)> {
    let http = reqwest::Client::new();
    let chain = Chain::default();
    let providers = [llm.provider.clone()];
    let mut spend = Spend::default();
    let mut answers: Vec<Vec<Hit>> = Vec::new();
    for (query, (tenant, text, vector)) in data.queries.iter().zip(ask.embedded) {
        let asked = rewrite::ask(
            &chain,
            &http,
            &llm.prices,
            &providers,
            text,
            super::language_of(query),
            llm.timeout,
        )
        .await;
        spend.asked += 1;
        spend.tokens_in += u64::from(asked.tokens_in);
        spend.tokens_out += u64::from(asked.tokens_out);
        spend.cost_usd += asked.cost_usd;
        spend.latencies_ms.push(asked.latency_ms);
        let hits = match &asked.terms {
            Some(terms) => {
                spend.answered += 1;
                let terms_vector = embedder.embed_one(terms).await?;
                similar::similar_tickets_by_meaning(
                    ask.pool,
                    tenant,
                    &format!("{text}\n{terms}"),
                    super::language_of(query),
                    Semantic {
                        model: ask.model,
                        vector,
                        rewrite: Some(terms_vector.as_slice()),
                        fusion,
                    },
                    ask.k,
                )
                .await
                .map_err(|err| anyhow::anyhow!("{err}"))?
            }
            None => {
                if spend.first_failure.is_none() {
                    spend.first_failure = asked.skipped_because.clone();
                }
                super::by_meaning(ask.pool, tenant, query, vector, ask.model, fusion, ask.k).await?
            }
        };
        answers.push(owned(ask.by_tenant, &query.tenant_id, &hits));
    }
    spend.latencies_ms.sort_unstable();
    let label = format!("ours, fused + LLM rewrite ({})", llm.provider.model);
    Ok((score(label, data, &answers, ask.k), spend))
}
