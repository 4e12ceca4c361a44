//! Calls to addresses an operator configured per tenant (help desk,
//! knowledge base, monitoring, LLM and embeddings providers). Whoever can
//! set such a URL must not be able to make the services fetch a cloud's
//! metadata endpoint (and its credentials) or anything else link-local:
//! those addresses are refused — as a URL, as what a host name resolves to,
//! and as where a redirect points — unless the deployment allows them
//! (`AI_AGENTS_OUTBOUND_ALLOW_LINK_LOCAL=true`). Loopback and private
//! networks stay allowed: an MSP's help desk is often on one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Why an outbound address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("{0} is not a URL")]
    NotUrl(String),
    #[error(
        "{0} is a link-local or cloud metadata address, which the services may not call (AI_AGENTS_OUTBOUND_ALLOW_LINK_LOCAL)"
    )]
    Forbidden(IpAddr),
    #[error("{0} resolves only to link-local or cloud metadata addresses")]
    ResolvesToForbidden(String),
}

/// Cloud metadata services outside 169.254.0.0/16.
const METADATA_V4: [Ipv4Addr; 1] = [Ipv4Addr::new(100, 100, 100, 200)];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];

/// Whether the deployment allows link-local addresses.
fn allowed_by_deployment() -> bool {
    aia_config::shared_or_default().outbound_allow_link_local
}

/// Whether `ip` is link-local, unspecified, or a cloud metadata service.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_link_local()
                || v4.is_unspecified()
                || v4.octets()[0] == 0
                || METADATA_V4.contains(&v4)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden(IpAddr::V4(v4));
            }
            // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last
            // 32 bits.
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return is_forbidden(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
            }
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.is_unspecified()
                || METADATA_V6.contains(&v6)
        }
    }
}

fn refused(ip: IpAddr) -> bool {
    is_forbidden(ip) && !allowed_by_deployment()
}

/// Refuses a URL whose host is a forbidden address. Host names are checked
/// when they are resolved, by the clients of [`client_builder`].
pub fn check_url(url: &str) -> Result<(), OutboundError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| OutboundError::NotUrl(url.to_owned()))?;
    check_host(&parsed)
}

fn check_host(url: &reqwest::Url) -> Result<(), OutboundError> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if refused(ip) {
        Err(OutboundError::Forbidden(ip))
    } else {
        Ok(())
    }
}

/// A client builder whose connections never reach a forbidden address:
/// host names resolve only to allowed addresses, and a redirect to a
/// forbidden one is an error (at most ten redirects are followed).
///
/// Only 307 and 308 are followed: they repeat the request as it was. A
/// 301, 302 or 303 would turn a `POST` into a `GET` without its body —
/// a help desk behind such a redirect would answer the note's `POST` with
/// a `200` to a `GET`, a note recorded as posted that was never written —
/// so that answer is handed back as it is, and the caller reports the
/// redirect (the base URL should be the address it points to).
///
/// No proxy from the environment (`HTTPS_PROXY`) is followed: a proxy
/// resolves host names itself, past [`GuardedResolver`]. A deployment that
/// must go through one names it in `AI_AGENTS_OUTBOUND_PROXY`, and makes it
/// refuse the same addresses.
pub fn client_builder() -> reqwest::ClientBuilder {
    builder_via(aia_config::shared_or_default().outbound_proxy.as_deref())
}

fn builder_via(proxy: Option<&str>) -> reqwest::ClientBuilder {
    let builder = match proxy {
        Some(proxy) => match reqwest::Proxy::all(proxy) {
            Ok(proxy) => reqwest::Client::builder().proxy(proxy),
            Err(err) => {
                // Read as an http(s) URL already, so rare; said loudly.
                tracing::error!(error = %err, "AI_AGENTS_OUTBOUND_PROXY is not usable; calling directly");
                reqwest::Client::builder().no_proxy()
            }
        },
        None => reqwest::Client::builder().no_proxy(),
    };
    builder
        .dns_resolver(Arc::new(GuardedResolver))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if !matches!(attempt.status().as_u16(), 307 | 308) {
                return attempt.stop();
            }
            if let Err(err) = check_host(attempt.url()) {
                return attempt.error(err);
            }
            if attempt.previous().len() >= 10 {
                return attempt.error("too many redirects");
            }
            attempt.follow()
        }))
}

/// The system resolver, keeping only allowed addresses.
#[derive(Debug)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|addr| !refused(addr.ip()))
                .collect();
            if allowed.is_empty() && !resolved.is_empty() {
                return Err(Box::new(OutboundError::ResolvesToForbidden(host)) as _);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_and_metadata_addresses_are_forbidden_and_ordinary_ones_are_not() {
        for forbidden in [
            "169.254.169.254",
            "169.254.170.2",
            "169.254.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::",
        ] {
            assert!(is_forbidden(forbidden.parse().unwrap()), "{forbidden}");
        }
        for allowed in [
            "127.0.0.1",
            "10.0.0.5",
            "192.168.1.10",
            "172.16.0.1",
            "203.0.113.7",
            "::1",
            "fd00::1",
            "2001:db8::1",
            "64:ff9b::cb00:7107",
        ] {
            assert!(!is_forbidden(allowed.parse().unwrap()), "{allowed}");
        }
    }

    #[test]
    fn urls_with_a_forbidden_host_are_refused() {
        assert_eq!(
            check_url("http://169.254.169.254/latest/meta-data/"),
            Err(OutboundError::Forbidden("169.254.169.254".parse().unwrap()))
        );
        assert!(check_url("http://[fd00:ec2::254]/").is_err());
        assert!(check_url("https://sdp.example.com/api/v3").is_ok());
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        assert!(matches!(
            check_url("not a url"),
            Err(OutboundError::NotUrl(_))
        ));
    }

    #[tokio::test]
    async fn a_name_that_resolves_only_to_a_forbidden_address_is_refused() {
        use reqwest::dns::Resolve as _;
        let name: reqwest::dns::Name = "169.254.169.254".parse().unwrap();
        let err = GuardedResolver.resolve(name).await.err().expect("refused");
        assert!(err.to_string().contains("169.254.169.254"), "{err}");
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let addrs: Vec<SocketAddr> = GuardedResolver.resolve(name).await.unwrap().collect();
        assert!(addrs.iter().all(|addr| addr.ip().is_loopback()) && !addrs.is_empty());
    }

    /// The proxy a deployment names is the way out: the request goes to
    /// it, in absolute form, and the far end's name is not resolved here.
    #[tokio::test]
    async fn calls_go_through_the_proxy_the_deployment_names() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = proxy.local_addr().unwrap();
        let seen = tokio::spawn(async move {
            let (mut socket, _) = proxy.accept().await.unwrap();
            let mut request = vec![0; 4096];
            let read = socket.read(&mut request).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await
                .unwrap();
            String::from_utf8_lossy(&request[..read]).into_owned()
        });
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = builder_via(Some(&format!("http://{address}")))
            .build()
            .unwrap();
        // `.invalid` never resolves (RFC 2606): only the proxy can answer.
        let answer = client
            .get("http://helpdesk.invalid/api/v3/requests")
            .send()
            .await
            .expect("answered by the proxy");
        assert_eq!(answer.text().await.unwrap(), "ok");
        let request = seen.await.unwrap();
        assert!(
            request.starts_with("GET http://helpdesk.invalid/api/v3/requests HTTP/1.1"),
            "{request}"
        );
    }

    /// Without a proxy named the far end's name is resolved here, through
    /// the guard (a name that never resolves fails to connect). That no
    /// `HTTPS_PROXY` is followed is `client_builder`'s `no_proxy()`, which
    /// this test cannot see: the test process has no proxy to ignore.
    #[tokio::test]
    async fn without_a_proxy_named_the_far_end_is_resolved_here() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = builder_via(None).build().unwrap();
        let failed = client
            .get("http://helpdesk.invalid/")
            .send()
            .await
            .expect_err("a name that never resolves cannot be called directly");
        assert!(failed.is_connect(), "{failed:?}");
    }
}
