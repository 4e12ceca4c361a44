#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = aia_telemetry::init("context-gatherer");
    let config = context_gatherer::Config::from_env()?;
    context_gatherer::run(config, aia_bus::shutdown_signal()).await
}
