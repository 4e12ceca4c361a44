#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = aia_telemetry::init("llm-enhancer");
    let config = llm_enhancer::Config::from_env()?;
    llm_enhancer::run(config, aia_bus::shutdown_signal()).await
}
