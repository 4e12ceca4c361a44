//! What one query embedding costs the local model, in CPU as well as in
//! time: the figure issue 26 names. The texts are a data set's queries,
//! embedded as the context stage embeds them (subject, newline,
//! description), one request at a time and then by several callers at once
//! (the context stage's concurrency), with the process's CPU seconds read
//! from `/proc` around each phase.
//!
//! Set `RAYON_NUM_THREADS` to choose the threads one forward pass may use,
//! `--precision` the weights' (f32, int8, auto).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use aia_embed::Embedder;
use aia_embed::local::{MiniLm, Precision};

use crate::semantic_bench::{rss_kb, summary};

/// The process's user + system CPU seconds so far.
fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name may hold spaces; the fields after it are fixed.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("unreadable /proc/self/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// The process's CPU seconds and the wall clock from a phase's start.
struct Phase {
    cpu: f64,
    started: Instant,
}

impl Phase {
    fn start() -> anyhow::Result<Self> {
        Ok(Self {
            cpu: cpu_seconds()?,
            started: Instant::now(),
        })
    }

    /// Prints the phase's CPU per item and items per second.
    fn report(self, label: &str, unit: &str, items: usize) -> anyhow::Result<()> {
        let wall = self.started.elapsed().as_secs_f64();
        let cpu = cpu_seconds()? - self.cpu;
        println!(
            "{label}: {:.1} ms CPU per {unit}, {:.0} per second",
            cpu * 1000.0 / items as f64,
            items as f64 / wall
        );
        Ok(())
    }
}

pub fn run(
    data: &Path,
    model_dir: &Path,
    precision: Precision,
    rounds: usize,
    callers: &[usize],
) -> anyhow::Result<()> {
    let set = aiagents::dataset::load(data)?;
    let texts: Vec<String> = set
        .queries
        .iter()
        .map(aiagents::dataset::Query::text)
        .collect();
    let model = Arc::new(MiniLm::load_with(model_dir, precision)?);
    let mut tokens: Vec<usize> = texts
        .iter()
        .map(|text| model.token_ids(text).map(|ids| ids.len()))
        .collect::<Result<_, _>>()?;
    tokens.sort_unstable();
    println!(
        "{:?} weights; {} texts from {}; tokens p50 {} max {}",
        model.precision(),
        texts.len(),
        data.display(),
        tokens[tokens.len() / 2],
        tokens[tokens.len() - 1],
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let embedder = Embedder::Local(model);
        for text in texts.iter().take(8) {
            embedder.embed_one(text).await?; // warm-up
        }
        let n = texts.len() * rounds;

        let mut ms = Vec::with_capacity(n);
        let phase = Phase::start()?;
        for text in texts.iter().cycle().take(n) {
            let one = Instant::now();
            embedder.embed_one(text).await?;
            ms.push(one.elapsed().as_secs_f64() * 1000.0);
        }
        phase.report("one caller", "query", n)?;
        summary("query embedding, one caller", ms);

        // Several texts per request, as imports send them (the model
        // passes texts of similar length together).
        for batch in [4, 16] {
            let all: Vec<String> = texts.iter().cycle().take(n).cloned().collect();
            let phase = Phase::start()?;
            for chunk in all.chunks(batch) {
                embedder.embed(chunk).await?;
            }
            phase.report(&format!("batches of {batch}"), "text", n)?;
        }

        for &at_once in callers {
            let phase = Phase::start()?;
            let mut tasks = tokio::task::JoinSet::new();
            for caller in 0..at_once {
                let embedder = embedder.clone();
                let mine: Vec<String> = texts
                    .iter()
                    .cycle()
                    .skip(caller)
                    .step_by(at_once)
                    .take(n / at_once)
                    .cloned()
                    .collect();
                tasks.spawn(async move {
                    for text in &mine {
                        embedder.embed_one(text).await?;
                    }
                    anyhow::Ok(mine.len())
                });
            }
            let mut done = 0;
            while let Some(result) = tasks.join_next().await {
                done += result??;
            }
            phase.report(&format!("{at_once} callers at once"), "query", done)?;
        }
        let mb = |field| anyhow::Ok(rss_kb(std::process::id(), field)? as f64 / 1024.0);
        println!(
            "resident memory: {:.0} MB at the end, {:.0} MB at the peak (loading included)",
            mb("VmRSS")?,
            mb("VmHWM")?
        );
        anyhow::Ok(())
    })
}
