//! `aiagents`: the operator CLI (see [`aiagents::cli`]).

use aiagents::cli::{self, Cli};
use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // reqwest is built without a default TLS backend: the workspace uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A service run from here logs and traces under its own name.
    let _telemetry = aia_telemetry::init(cli.command.service_name().unwrap_or("aiagents"));
    cli::run(cli.command).await
}
