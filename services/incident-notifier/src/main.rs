#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = aia_telemetry::init("incident-notifier");
    let config = incident_notifier::Config::from_env()?;
    incident_notifier::run(config, aia_bus::shutdown_signal()).await
}
