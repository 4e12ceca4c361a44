#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = aia_telemetry::init("ingress");
    let config = ingress::Config::from_env()?;
    ingress::run(config, aia_bus::shutdown_signal()).await
}
