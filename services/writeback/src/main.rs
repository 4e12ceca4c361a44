#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = aia_telemetry::init("writeback");
    let config = writeback::Config::from_env()?;
    writeback::run(config, aia_bus::shutdown_signal()).await
}
