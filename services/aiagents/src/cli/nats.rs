//! `aiagents nats`: the JetStream stream and consumers of `nats/`.

use super::env;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create or update the stream and consumers; report what changed.
    Apply {
        /// Replicate the stream and every consumer (3 on a three-node cluster;
        /// refused beyond the cluster's size). Without it a stream already
        /// replicated keeps its count; a new one is made as in nats/.
        #[arg(long, env = "AI_AGENTS_NATS_REPLICAS")]
        replicas: Option<usize>,
    },
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Apply { replicas } => {
            for applied in crate::ops::apply_nats_replicated(&env("NATS_URL")?, replicas).await? {
                println!("{applied}");
            }
        }
    }
    Ok(())
}
