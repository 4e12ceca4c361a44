#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = aia_telemetry::init("history-projector");
    let config = history_projector::Config::from_env()?;
    history_projector::run(config, aia_bus::shutdown_signal()).await
}
