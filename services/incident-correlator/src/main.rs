#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = aia_telemetry::init("incident-correlator");
    let config = incident_correlator::Config::from_env()?;
    incident_correlator::run(config, aia_bus::shutdown_signal()).await
}
