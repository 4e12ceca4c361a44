//! The writeback stage: for each `enhancement.generated`, put the note on
//! the ticket in the tenant's help-desk tool exactly once, and publish
//! `writeback.completed` or `writeback.failed`.

mod config;
mod handler;
pub mod ledger;
pub mod note;

use std::future::Future;

use aia_bus::{Handler as _, StageDeps};

pub use config::Config;
pub use handler::Writeback;
pub use note::marker;

/// Runs one instance of the stage until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let deps = StageDeps::connect(Writeback::NAME, config.stage).await?;
    let handler = Writeback {
        tenants: deps.tenants.clone(),
        db: deps.db.clone(),
        public_url: config.public_url,
        http: aia_http::outbound::client_builder()
            .timeout(config.http_timeout)
            .build()?,
        // A marker search (a page or two) or a post (with a token
        // refreshed), each call within the timeout, with room; renewed
        // before the post that follows a search.
        lease: config.http_timeout * 3 + std::time::Duration::from_secs(10),
    };
    deps.run(handler, shutdown).await?;
    Ok(())
}
