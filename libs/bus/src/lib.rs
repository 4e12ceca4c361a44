//! JetStream wiring shared by every service: connecting, the declarative
//! topology of `nats/`, publishing events with deduplication and trace
//! context, and the consumer loop every stage runs.

pub mod advisory;
pub mod handler;
pub mod kit;
pub mod metrics;
pub mod msg_id;
pub mod publish;
pub mod read;
pub mod stage;
pub mod topology;

use std::time::Duration;

pub use async_nats::jetstream::Context as JetStream;
pub use handler::{
    Delivery, Failure, Handled, Handler, HandlerError, TenantPolicy, Work, dispatch,
};
pub use kit::{StageDeps, StageSettings};
pub use publish::{PublishError, publish_event};
pub use stage::{StageConfig, run_stage};

/// The stream every ticket event lives in.
pub const STREAM: &str = "TICKETS";

/// How long after its signed timestamp the ingress accepts a webhook.
pub const WEBHOOK_MAX_AGE: Duration = Duration::from_secs(300);

/// How far ahead of our clock a signed timestamp may be (the sender's
/// clock runs fast). A delivery stamped that far ahead is accepted for
/// `WEBHOOK_MAX_AGE` after its stamp, so the stream's duplicate window must
/// cover both (checked when the topology is applied).
pub const WEBHOOK_MAX_FUTURE: Duration = Duration::from_secs(30);

/// Runs a JetStream request of an operator's tool (a rebuild, a replay)
/// again while it fails, for up to a minute: a cluster that has just lost
/// or regained a node times requests out while it elects leaders and
/// catches up, and the tool should outlast that rather than fail.
pub async fn patiently<T, E, F, Fut>(what: &str, mut request: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match request().await {
            Ok(done) => return Ok(done),
            Err(err) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %err, "{what} failed; asking again");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

/// The stream's first sequence less one and its last sequence: the range
/// an operator's tool reads ([`patiently`]).
pub async fn stream_bounds(jetstream: &JetStream) -> Result<(u64, u64), async_nats::Error> {
    patiently("Reading the stream's bounds", || async {
        let mut stream = jetstream.get_stream(STREAM).await?;
        let state = stream.info().await?.state.clone();
        Ok::<_, async_nats::Error>((state.first_sequence.saturating_sub(1), state.last_sequence))
    })
    .await
}

/// How long a stopping process waits for its last acks to reach NATS.
pub const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connects to NATS and returns the client and its JetStream context.
///
/// The client reconnects by itself; the first connection is retried so a
/// service started together with nats-server does not die in the race.
pub async fn connect(
    url: &str,
    client_name: &str,
) -> Result<(async_nats::Client, JetStream), async_nats::ConnectError> {
    let (servers, auth) = servers_and_auth(url).map_err(|err| {
        async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::ServerParse, err)
    })?;
    let options = match auth {
        Auth::None => async_nats::ConnectOptions::new(),
        Auth::Token(token) => async_nats::ConnectOptions::with_token(token),
        Auth::UserPassword(user, password) => {
            async_nats::ConnectOptions::with_user_and_password(user, password)
        }
    };
    let client = options
        .name(client_name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(servers.as_slice())
        .await?;
    let mut jetstream = async_nats::jetstream::new(client.clone());
    jetstream.set_timeout(Duration::from_secs(5));
    Ok((client, jetstream))
}

/// How a client proves who it is to nats-server.
#[derive(PartialEq, Eq)]
enum Auth {
    None,
    /// `nats://TOKEN@host`
    Token(String),
    /// `nats://USER:PASSWORD@host`
    UserPassword(String, String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Token(_) => "Token(…)",
            Self::UserPassword(..) => "UserPassword(…)",
        })
    }
}

/// The servers a NATS URL names and the credentials it carries, as
/// nats-server's own tools read them: a cluster is named by several URLs,
/// comma-separated (the client connects to one and moves to another when
/// it leaves), and `user:password@` or `token@` in them authenticates.
/// The addresses are returned without the credentials, which the client
/// sends in its CONNECT only (it would otherwise ignore them).
fn servers_and_auth(url: &str) -> Result<(Vec<async_nats::ServerAddr>, Auth), String> {
    let mut servers = Vec::new();
    let mut auth = Auth::None;
    for server in url.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let address: async_nats::ServerAddr = server
            .parse()
            .map_err(|_| "a NATS server address is not a URL".to_owned())?;
        let mut plain = address.clone().into_inner();
        let this = match (address.username(), address.password()) {
            (Some(user), Some(password)) => {
                Auth::UserPassword(percent_decoded(user)?, percent_decoded(password)?)
            }
            (Some(token), None) => Auth::Token(percent_decoded(token)?),
            _ => Auth::None,
        };
        if this != Auth::None {
            if auth != Auth::None && auth != this {
                return Err("the NATS server addresses carry different credentials".into());
            }
            auth = this;
            let _ = plain.set_username("");
            let _ = plain.set_password(None);
        }
        servers.push(
            async_nats::ServerAddr::from_url(plain)
                .map_err(|_| "a NATS server address is not a NATS URL".to_owned())?,
        );
    }
    Ok((servers, auth))
}

/// A NATS URL as it may be shown or logged: its servers without the
/// credentials they carry.
pub fn shown_url(url: &str) -> String {
    match servers_and_auth(url) {
        Ok((servers, _)) => servers
            .iter()
            .map(|server| server.as_url_str())
            .collect::<Vec<_>>()
            .join(","),
        Err(_) => "(a NATS URL that does not parse)".into(),
    }
}

fn percent_decoded(text: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| "NATS credentials in the URL are not UTF-8".to_owned())
}

/// Completes on Ctrl-C or SIGTERM: what a service's `main` passes as its
/// shutdown signal.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("Shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_nats_url_are_taken_out_of_the_addresses() {
        let (servers, auth) =
            servers_and_auth("nats://svc:s%40cret@n1:4222, nats://svc:s%40cret@n2:4222").unwrap();
        assert_eq!(auth, Auth::UserPassword("svc".into(), "s@cret".into()));
        let addresses: Vec<&str> = servers.iter().map(|s| s.as_url_str()).collect();
        assert_eq!(addresses, ["nats://n1:4222", "nats://n2:4222"]);
        assert!(!format!("{auth:?}").contains("cret"));

        let (_, auth) = servers_and_auth("nats://t0ken@n1:4222").unwrap();
        assert_eq!(auth, Auth::Token("t0ken".into()));
        let (servers, auth) = servers_and_auth("nats://127.0.0.1:4222").unwrap();
        assert_eq!(auth, Auth::None);
        assert_eq!(servers[0].as_url_str(), "nats://127.0.0.1:4222");
        assert!(servers_and_auth("nats://a:1@n1:4222,nats://b:2@n2:4222").is_err());
        assert_eq!(
            shown_url("nats://svc:s3cret@n1:4222,nats://svc:s3cret@n2:4222"),
            "nats://n1:4222,nats://n2:4222"
        );
    }
}
