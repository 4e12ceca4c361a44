//! Local stand-ins for the SaaS the pipeline talks to, speaking the real
//! APIs' request and response shapes: an OpenAI-compatible chat-completions
//! endpoint, embeddings, and each help desk's ticket, note and search API
//! (ServiceDesk Plus, Jira, Zendesk, Freshservice, ServiceNow, ConnectWise
//! PSA, Autotask, HaloPSA), checking requests field by field as the real
//! service would and refusing what it would refuse.
//!
//! Tests and the demo point the services' base URLs here; the same code then
//! works against the real services by changing the URL. Each stand-in
//! records what it received, so tests can assert on it.

pub mod autotask;
pub mod connectwise;
pub mod desk;
pub mod embeddings;
pub mod freshservice;
pub mod halopsa;
pub mod jira;
pub mod knowledge;
pub mod llm;
pub mod prometheus;
pub mod servicedesk;
pub mod servicenow;
pub mod zendesk;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A stand-in listening on a loopback port chosen by the OS; stops when
/// dropped.
pub struct Running {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on `127.0.0.1:0`.
pub async fn serve(router: Router) -> std::io::Result<Running> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Running { addr, task })
}
