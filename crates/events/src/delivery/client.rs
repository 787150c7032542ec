//! The HTTP client of every webhook POST (deliveries and validation handshakes).
//!
//! A subscriber chooses the URL, so the client is hardened against being pointed inward
//! (SSRF): it never follows redirects (a 3xx is a failed attempt), uses no proxy, and unless
//! private endpoints are allowed it refuses loopback, private and link-local addresses. The
//! check runs on the addresses a name *resolves to*, inside the client's own DNS resolver, so
//! the address checked is the address connected to: a name that resolved publicly when the
//! subscription was created and privately now (DNS rebinding) is refused. IP-literal URLs never
//! reach a resolver, so they are checked before the request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use url::{Host, Url};

use crate::domain::subscription::is_private_address;

/// The content type of every webhook POST, as Altinn's `WebhookService` sends it (a UTF-8
/// `StringContent` of `application/json`), though the body is a structured CloudEvent.
pub const WEBHOOK_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Why a POST did not get a 2xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The endpoint is not a usable URL or resolves only to refused addresses.
    #[error("refused endpoint: {0}")]
    Refused(String),
    /// The endpoint answered with a status other than 2xx.
    #[error("the endpoint answered {0}")]
    Status(u16),
    /// No answer within the timeout.
    #[error("no answer within the timeout")]
    Timeout,
    /// Connecting or sending failed.
    #[error("sending failed: {0}")]
    Transport(String),
}

/// Posts CloudEvents to webhooks.
#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    allow_private: bool,
}

/// Resolves with the system resolver and drops refused addresses; fails if none is left.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| !is_private_address(address.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves only to private, loopback or link-local addresses"
                )
                .into());
            }
            let addresses: Addrs = Box::new(public.into_iter());
            Ok(addresses)
        })
    }
}

impl WebhookClient {
    /// A client with this per-POST `timeout` that keeps up to `idle_per_host` connections.
    pub fn new(
        timeout: Duration,
        allow_private: bool,
        idle_per_host: usize,
    ) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_max_idle_per_host(idle_per_host)
            .tcp_nodelay(true)
            .user_agent(concat!("broker-events/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Self {
            http: builder.build()?,
            allow_private,
        })
    }

    /// POSTs `body`, a CloudEvent, with `headers`; `Ok` on any 2xx.
    pub async fn post(
        &self,
        end_point: &str,
        body: String,
        mut headers: HeaderMap,
    ) -> Result<u16, PostError> {
        let url = self.checked(end_point)?;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(WEBHOOK_CONTENT_TYPE));
        let answer = self
            .http
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|error| {
                if error.is_timeout() {
                    PostError::Timeout
                } else {
                    PostError::Transport(chain(&error))
                }
            })?;
        let status = answer.status();
        // The body is not read: nothing in it matters, and dropping the answer lets the
        // connection be reused when the endpoint sent no body, or closes it otherwise.
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(PostError::Status(status.as_u16()))
        }
    }

    /// The URL, if it is http(s) and (unless allowed) not an IP literal of a refused range.
    fn checked(&self, end_point: &str) -> Result<Url, PostError> {
        let url = Url::parse(end_point).map_err(|error| PostError::Refused(error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PostError::Refused("not http(s)".to_owned()));
        }
        let literal = match url.host() {
            Some(Host::Ipv4(address)) => Some(address.into()),
            Some(Host::Ipv6(address)) => Some(address.into()),
            Some(Host::Domain(_)) => None,
            None => return Err(PostError::Refused("no host".to_owned())),
        };
        if !self.allow_private && literal.is_some_and(is_private_address) {
            return Err(PostError::Refused(
                "a private, loopback or link-local address".to_owned(),
            ));
        }
        Ok(url)
    }
}

/// An error with its causes, which reqwest keeps out of its own message.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_private_literals_and_names_unless_allowed() {
        let client = WebhookClient::new(Duration::from_secs(2), false, 1).unwrap();
        for end_point in [
            "http://127.0.0.1:9/hook",
            "http://[::1]:9/hook",
            "http://169.254.169.254/latest",
            "ftp://example.com/",
        ] {
            let error = client
                .post(end_point, "{}".into(), HeaderMap::new())
                .await
                .unwrap_err();
            assert!(
                matches!(error, PostError::Refused(_)),
                "{end_point}: {error}"
            );
        }
        // `localhost` passes the literal check and is refused by the resolver.
        let error = client
            .post("http://localhost:9/hook", "{}".into(), HeaderMap::new())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, PostError::Transport(text) if text.contains("private")),
            "{error}"
        );
        // Allowed, the same address is tried (and nothing listens on the discard port).
        let open = WebhookClient::new(Duration::from_secs(2), true, 1).unwrap();
        let error = open
            .post("http://127.0.0.1:9/hook", "{}".into(), HeaderMap::new())
            .await
            .unwrap_err();
        assert!(matches!(error, PostError::Transport(_)), "{error}");
    }
}
