#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = aia_telemetry::init("embedder");
    let config = embedder::Config::from_env()?;
    embedder::run(config, aia_bus::shutdown_signal()).await
}
