//! `aiagents migrate`: the SQL migrations of `migrations/`.

use super::env;

pub async fn run() -> anyhow::Result<()> {
    let report = crate::ops::migrate(&env("OWNER_DATABASE_URL")?).await?;
    for version in &report.applied {
        println!("applied {version}");
    }
    println!(
        "{} applied, {} already applied",
        report.applied.len(),
        report.already_applied.len()
    );
    Ok(())
}
