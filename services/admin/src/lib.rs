//! The admin service: the tenants API (`/admin/tenants`) and the admin
//! console's pages (`/console`, see [`console`]) on the same operations. Writes go through the application role one tenant
//! at a time; lists read across tenants through the admin role.

mod config;
pub mod console;
mod routes;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use aia_ops::{TenantAdmin, tenant_admin};
pub use config::Config;
pub use routes::AppState;

pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/admin/tenants", post(routes::create).get(routes::list))
        .route(
            "/admin/tenants/{id}",
            get(routes::get)
                .put(routes::update)
                .patch(routes::patch)
                .delete(routes::delete),
        )
        .route(
            "/admin/tenants/{id}/rotate-secret",
            post(routes::rotate_secret),
        )
        .route(
            "/admin/tenants/{id}/end-rotation",
            post(routes::end_rotation),
        )
        .route(
            "/admin/tenants/{id}/integrations",
            axum::routing::put(routes::set_integrations),
        )
        .route(
            "/admin/tenants/{id}/test-connection",
            post(routes::test_connection),
        )
        .route("/admin/tenants/{id}/feedback", get(routes::feedback))
        .route("/admin/dead-letters", get(routes::dead_letters))
        .route(
            "/admin/dead-letters/{tenant}/{run}/redrive",
            post(routes::redrive),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::require_token,
        ));
    Router::new()
        .merge(api)
        .merge(console::router(state.clone()))
        .route("/health", get(routes::health))
        .fallback(routes::not_found)
        .with_state(state)
}

pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState {
        tenants: Arc::new(tenant_admin(
            &config.database_url,
            &config.admin_database_url,
            config.keyring,
            config.public_url,
        )?),
        token: config.token.into(),
        jetstream: Some(
            aia_bus::connect(&config.nats_url, "admin")
                .await
                .context("connecting to NATS")?
                .1,
        ),
        console: Arc::new(config.console),
    };
    tracing::info!(addr = %listener.local_addr()?, "Admin API listening");
    // The console charts each stage's lag from these samples.
    let sampler = state.jetstream.clone().map(|jetstream| {
        tokio::spawn(console::lag::sample_forever(
            state.tenants.admin.clone(),
            jetstream,
        ))
    });
    // The console's sign-in limit counts failures per client address.
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP");
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    served
}

pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    serve(config, listener, shutdown).await
}
