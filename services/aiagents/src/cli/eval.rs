//! `aiagents eval-retrieval`: similar-ticket retrieval scored on a data set.

use std::path::PathBuf;

use anyhow::Context as _;
use context_gatherer::sources::fusion;

use super::env;

#[derive(clap::Args)]
pub struct Args {
    /// JSON files with resolved[] and queries[] (the shape of
    /// demo/tickets.json); each is scored on its own, with its own table.
    #[arg(required = true)]
    datasets: Vec<PathBuf>,
    /// Hits that count (recall@K).
    #[arg(long, default_value_t = 5)]
    k: usize,
    #[command(flatten)]
    embeddings: EmbeddingsArgs,
    /// Least cosine similarity of a hit (to calibrate on your own data).
    #[arg(long, default_value_t = fusion::DEFAULT.threshold)]
    threshold: f32,
    /// Cosine similarity from which a hit is a likely match; repeat to
    /// sweep (every value is scored on every set, the corpus embedded once).
    #[arg(long, default_values_t = [fusion::DEFAULT.likely])]
    likely: Vec<f32>,
    /// Most the full-text rank adds to a cosine; repeat to sweep.
    #[arg(long, default_values_t = [fusion::DEFAULT.lexical_weight])]
    lexical_weight: Vec<f32>,
    /// How far below the best hit, in meaning, a hit that is not likely
    /// may be and still be shown (`inf`: every hit above the floor);
    /// repeat to sweep. Without it, the search's own: 0.25 scaled to the
    /// band between `--threshold` and `--likely`, as for an endpoint model.
    #[arg(long)]
    gap: Vec<f32>,
    /// Also score each fusion with the lexical bonus counting only words
    /// rare in the tenant.
    #[arg(long)]
    rare_words: bool,
    /// Most ratings move a cosine, in the run after a simulated technician
    /// rated every note (0: skip that run).
    #[arg(long, default_value_t = fusion::DEFAULT.feedback_weight)]
    feedback_weight: f32,
    #[command(flatten)]
    llm: LlmArgs,
    /// A data set whose resolved tickets are added to every tenant of each
    /// set scored, relevant to no query (for example the shipped English
    /// sets under a multilingual one): a larger, harder history.
    #[arg(long)]
    distractors: Option<PathBuf>,
}

/// An OpenAI-compatible chat endpoint whose rewrite of each query is
/// scored too, with its cost and latency.
#[derive(clap::Args, Debug)]
pub struct LlmArgs {
    /// The chat API root, for example `http://localhost:4000/v1`; no
    /// rewrite is measured when absent.
    #[arg(long)]
    llm_url: Option<String>,
    /// The endpoint's model.
    #[arg(long, requires = "llm_url", default_value = "gpt-4o-mini")]
    llm_model: String,
    /// The endpoint's key (`AI_AGENTS_LLM_API_KEY`).
    #[arg(long, env = "AI_AGENTS_LLM_API_KEY", hide_env_values = true)]
    llm_key: Option<String>,
    /// How long one rewrite may take, in milliseconds (the gatherer's
    /// source timeout).
    #[arg(long, default_value_t = 2000)]
    llm_timeout_ms: u64,
}

impl LlmArgs {
    fn llm(&self) -> anyhow::Result<Option<crate::eval::rewrite::Llm>> {
        let Some(base_url) = &self.llm_url else {
            return Ok(None);
        };
        let timeout = std::time::Duration::from_millis(self.llm_timeout_ms);
        Ok(Some(crate::eval::rewrite::Llm {
            provider: aia_llm::Provider {
                name: "eval".into(),
                kind: aia_llm::ProviderKind::OpenAi,
                base_url: base_url.clone(),
                api_key: self.llm_key.clone(),
                model: self.llm_model.clone(),
                timeout,
            },
            prices: aia_llm::tenant::prices_from_env()?,
            timeout,
        }))
    }
}

/// Which model embeds: the local one (from `AI_AGENTS_MODEL_DIR`) unless
/// an OpenAI-compatible endpoint is named.
#[derive(clap::Args, Debug)]
pub struct EmbeddingsArgs {
    /// An OpenAI-compatible embeddings API root, for example
    /// `http://localhost:11434/v1`; the local model when absent.
    #[arg(long)]
    embeddings_url: Option<String>,
    /// The endpoint's model.
    #[arg(long, requires = "embeddings_url")]
    embeddings_model: Option<String>,
    /// The endpoint's key (`AI_AGENTS_EMBEDDINGS_API_KEY`).
    #[arg(long, env = "AI_AGENTS_EMBEDDINGS_API_KEY", hide_env_values = true)]
    embeddings_key: Option<String>,
    /// How long one batch of texts may take, in milliseconds (a model
    /// served on this machine's CPU takes seconds for a full batch).
    #[arg(long, requires = "embeddings_url", default_value_t = 10_000)]
    embeddings_timeout_ms: u64,
}

impl EmbeddingsArgs {
    pub(crate) fn embedder(&self) -> anyhow::Result<aia_embed::Embedder> {
        match &self.embeddings_url {
            Some(url) => {
                let model = self
                    .embeddings_model
                    .clone()
                    .context("--embeddings-model is required with --embeddings-url")?;
                let mut config = aia_embed::EndpointConfig::new(url, model);
                config.api_key = self.embeddings_key.clone();
                config.timeout = std::time::Duration::from_millis(self.embeddings_timeout_ms);
                Ok(aia_embed::Embedder::Endpoint(aia_embed::Endpoint::new(
                    reqwest::Client::new(),
                    config,
                )))
            }
            None => {
                let dir = env("MODEL_DIR")?;
                let model = aia_embed::local::MiniLm::load_with(
                    std::path::Path::new(&dir),
                    aia_embed::local::configured_precision()?,
                )?;
                Ok(aia_embed::Embedder::Local(std::sync::Arc::new(model)))
            }
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let embedder = args.embeddings.embedder()?;
    eprintln!("embedding with {}", embedder.model());
    let fusions: Vec<fusion::Fusion> = args
        .likely
        .iter()
        .flat_map(|likely| {
            args.lexical_weight
                .iter()
                .map(move |lexical_weight| (*likely, *lexical_weight))
        })
        .flat_map(|(likely, lexical_weight)| {
            let gaps = if args.gap.is_empty() {
                vec![fusion::DEFAULT.gap * fusion::band_scale(args.threshold, likely)]
            } else {
                args.gap.clone()
            };
            gaps.into_iter().map(move |gap| fusion::Fusion {
                threshold: args.threshold,
                likely,
                lexical_weight,
                // Ratings are measured by the simulated technician's rows
                // alone (`--feedback-weight`); every other row, scored
                // after its ratings are stored, ranks without.
                feedback_weight: 0.0,
                rare_words_only: false,
                gap,
            })
        })
        .collect();
    let fusions: Vec<fusion::Fusion> = if args.rare_words {
        fusions
            .iter()
            .flat_map(|fusion| {
                [
                    *fusion,
                    fusion::Fusion {
                        rare_words_only: true,
                        ..*fusion
                    },
                ]
            })
            .collect()
    } else {
        fusions
    };
    let llm = args.llm.llm()?;
    let distractors = match &args.distractors {
        Some(path) => crate::dataset::load(path)?.resolved,
        None => Vec::new(),
    };
    for dataset in &args.datasets {
        let report = crate::eval::run(
            &env("OWNER_DATABASE_URL")?,
            &env("DATABASE_URL")?,
            dataset,
            &embedder,
            crate::eval::Plan {
                k: args.k,
                fusions: &fusions,
                feedback_weight: args.feedback_weight,
                llm: llm.as_ref(),
                distractors: &distractors,
            },
        )
        .await
        .with_context(|| format!("scoring {}", dataset.display()))?;
        let scores = &report.scores;
        println!(
            "\n{}{}: {} queries ({} with a relevant ticket, {} without)",
            dataset.display(),
            match distractors.len() {
                0 => String::new(),
                n => format!(" (+{n} distractors per tenant)"),
            },
            scores[0].queries_with_relevant + scores[0].no_match_queries,
            scores[0].queries_with_relevant,
            scores[0].no_match_queries,
        );
        print!("{}", crate::eval::table(scores, args.k));
        let groups = crate::eval::group_table(scores, args.k);
        if !groups.is_empty() {
            println!("\nper language and across languages:\n");
            print!("{groups}");
        }
        if let Some(spend) = &report.rewrite {
            println!("{}", spend.summary());
        }
    }
    Ok(())
}
