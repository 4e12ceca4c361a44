#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = aia_telemetry::init("admin");
    let config = admin::Config::from_env()?;
    admin::run(config, aia_bus::shutdown_signal()).await
}
