//! The gateway's own settings, read from `BROKER_*` variables by
//! [`broker_common::config::load`] (a field `http_x` is `BROKER_HTTP_X`); [`SETTINGS`] documents
//! them for the README. [`GatewayConfig::parsed`] checks them once, so a bad value stops
//! start-up with the setting's name.

use std::time::Duration;

use broker_common::config::Setting;
use serde::{Deserialize, Serialize};

use crate::auth::TokenGrace;
use crate::rate_limit::{RateLimitError, RateLimits};

/// Settings of the gateway's listener and rate limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayConfig {
    /// Seconds a client has to send a whole request header.
    pub http_header_read_timeout_seconds: u64,
    /// Seconds a connection may sit with no request in flight and no byte moving.
    pub http_idle_timeout_seconds: u64,
    /// Most open connections in all.
    pub http_max_connections: usize,
    /// Most open connections from one peer address.
    pub http_max_connections_per_peer: usize,
    /// Largest HTTP/1.1 request header, in bytes.
    pub http_max_header_bytes: usize,
    /// Most concurrent HTTP/2 streams on one connection.
    pub http_h2_max_concurrent_streams: u32,
    /// Largest HTTP/2 header list, in bytes.
    pub http_h2_max_header_list_bytes: u32,
    /// Seconds between HTTP/2 keep-alive pings; 0 sends none.
    pub http_h2_keep_alive_interval_seconds: u64,
    /// Seconds an HTTP/2 keep-alive ping may go unanswered before the connection is closed.
    pub http_h2_keep_alive_timeout_seconds: u64,
    /// Seconds a stopping gateway lets open requests finish before it cuts their connections.
    pub http_drain_seconds: u64,
    /// Per-client rate limits (`altinn`, or `operation=N/min,…`); empty for none.
    pub rate_limits: String,
    /// Seconds after its expiry a token still opens the tus upload routes.
    pub tus_token_grace_seconds: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            http_header_read_timeout_seconds: 30,
            http_idle_timeout_seconds: 60,
            http_max_connections: 10_000,
            http_max_connections_per_peer: 1_000,
            http_max_header_bytes: 64 * 1024,
            http_h2_max_concurrent_streams: 100,
            http_h2_max_header_list_bytes: 64 * 1024,
            http_h2_keep_alive_interval_seconds: 30,
            http_h2_keep_alive_timeout_seconds: 20,
            http_drain_seconds: 30,
            rate_limits: String::new(),
            tus_token_grace_seconds: 24 * 60 * 60,
        }
    }
}

/// hyper's smallest HTTP/1.1 read buffer, so the smallest header limit it can enforce.
const MIN_HEADER_BYTES: usize = 8192;

/// A gateway setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InvalidSetting {
    /// A count or duration that must be positive is 0.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// The header limit is below what hyper can enforce.
    #[error("BROKER_HTTP_MAX_HEADER_BYTES must be at least {MIN_HEADER_BYTES}, not {0}")]
    HeaderTooSmall(usize),
    /// `BROKER_RATE_LIMITS` does not parse.
    #[error("BROKER_RATE_LIMITS: {0}")]
    RateLimits(#[from] RateLimitError),
}

/// The listener's limits, checked.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// See [`GatewayConfig::http_header_read_timeout_seconds`].
    pub header_read_timeout: Duration,
    /// See [`GatewayConfig::http_idle_timeout_seconds`].
    pub idle_timeout: Duration,
    /// See [`GatewayConfig::http_max_connections`].
    pub max_connections: usize,
    /// See [`GatewayConfig::http_max_connections_per_peer`].
    pub max_per_peer: usize,
    /// See [`GatewayConfig::http_max_header_bytes`].
    pub max_header_bytes: usize,
    /// See [`GatewayConfig::http_h2_max_concurrent_streams`].
    pub h2_max_concurrent_streams: u32,
    /// See [`GatewayConfig::http_h2_max_header_list_bytes`].
    pub h2_max_header_list_bytes: u32,
    /// `None` sends no pings.
    pub h2_keep_alive_interval: Option<Duration>,
    /// See [`GatewayConfig::http_h2_keep_alive_timeout_seconds`].
    pub h2_keep_alive_timeout: Duration,
    /// See [`GatewayConfig::http_drain_seconds`].
    pub drain: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        GatewayConfig::default()
            .connection_limits()
            .expect("the defaults are valid")
    }
}

impl GatewayConfig {
    /// The listener's limits and the rate limits, checked.
    pub fn parsed(&self) -> Result<(ConnectionLimits, RateLimits), InvalidSetting> {
        let rate_limits = RateLimits::parse(&self.rate_limits)?;
        Ok((self.connection_limits()?, rate_limits))
    }

    /// How long after its expiry a token still opens the tus upload routes; 0 for not at all.
    pub fn tus_token_grace(&self) -> TokenGrace {
        TokenGrace(Duration::from_secs(self.tus_token_grace_seconds))
    }

    fn connection_limits(&self) -> Result<ConnectionLimits, InvalidSetting> {
        fn positive<T: Default + PartialEq>(
            setting: &'static str,
            value: T,
        ) -> Result<T, InvalidSetting> {
            if value == T::default() {
                return Err(InvalidSetting::Zero(setting));
            }
            Ok(value)
        }
        if self.http_max_header_bytes < MIN_HEADER_BYTES {
            return Err(InvalidSetting::HeaderTooSmall(self.http_max_header_bytes));
        }
        Ok(ConnectionLimits {
            header_read_timeout: Duration::from_secs(positive(
                "BROKER_HTTP_HEADER_READ_TIMEOUT_SECONDS",
                self.http_header_read_timeout_seconds,
            )?),
            idle_timeout: Duration::from_secs(positive(
                "BROKER_HTTP_IDLE_TIMEOUT_SECONDS",
                self.http_idle_timeout_seconds,
            )?),
            max_connections: positive("BROKER_HTTP_MAX_CONNECTIONS", self.http_max_connections)?,
            max_per_peer: positive(
                "BROKER_HTTP_MAX_CONNECTIONS_PER_PEER",
                self.http_max_connections_per_peer,
            )?,
            max_header_bytes: self.http_max_header_bytes,
            h2_max_concurrent_streams: positive(
                "BROKER_HTTP_H2_MAX_CONCURRENT_STREAMS",
                self.http_h2_max_concurrent_streams,
            )?,
            h2_max_header_list_bytes: positive(
                "BROKER_HTTP_H2_MAX_HEADER_LIST_BYTES",
                self.http_h2_max_header_list_bytes,
            )?,
            h2_keep_alive_interval: Some(self.http_h2_keep_alive_interval_seconds)
                .filter(|seconds| *seconds > 0)
                .map(Duration::from_secs),
            h2_keep_alive_timeout: Duration::from_secs(positive(
                "BROKER_HTTP_H2_KEEP_ALIVE_TIMEOUT_SECONDS",
                self.http_h2_keep_alive_timeout_seconds,
            )?),
            drain: Duration::from_secs(self.http_drain_seconds),
        })
    }
}

/// The gateway's settings, for the README's configuration table.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "BROKER_HTTP_HEADER_READ_TIMEOUT_SECONDS",
        default: "30",
        description: "Seconds a client has to send a request's whole header, counted from the connection's start and, on HTTP/1.1, from the previous answer (so it also ends idle keep-alive connections); then the connection is closed.",
    },
    Setting {
        name: "BROKER_HTTP_IDLE_TIMEOUT_SECONDS",
        default: "60",
        description: "A connection with no request in flight and no byte moving either way for this long is closed.",
    },
    Setting {
        name: "BROKER_HTTP_MAX_CONNECTIONS",
        default: "10000",
        description: "Most open gateway connections; more are closed as soon as they are accepted.",
    },
    Setting {
        name: "BROKER_HTTP_MAX_CONNECTIONS_PER_PEER",
        default: "1000",
        description: "Most open connections from one IP address; more are closed as soon as they are accepted. Behind a proxy every connection comes from it: raise this to BROKER_HTTP_MAX_CONNECTIONS.",
    },
    Setting {
        name: "BROKER_HTTP_MAX_HEADER_BYTES",
        default: "65536",
        description: "Largest HTTP/1.1 request line and header (at least 8192); a larger one is answered 431 and the connection closed.",
    },
    Setting {
        name: "BROKER_HTTP_H2_MAX_CONCURRENT_STREAMS",
        default: "100",
        description: "Most concurrent HTTP/2 streams (requests) on one connection.",
    },
    Setting {
        name: "BROKER_HTTP_H2_MAX_HEADER_LIST_BYTES",
        default: "65536",
        description: "Largest HTTP/2 header list a client may send.",
    },
    Setting {
        name: "BROKER_HTTP_H2_KEEP_ALIVE_INTERVAL_SECONDS",
        default: "30",
        description: "Seconds between HTTP/2 keep-alive pings; 0 sends none.",
    },
    Setting {
        name: "BROKER_HTTP_H2_KEEP_ALIVE_TIMEOUT_SECONDS",
        default: "20",
        description: "Seconds an HTTP/2 ping may go unanswered before the connection is closed.",
    },
    Setting {
        name: "BROKER_HTTP_DRAIN_SECONDS",
        default: "30",
        description: "Seconds a stopping gateway lets the requests in flight finish (HTTP/1.1 connections close after their answer, HTTP/2 peers get GOAWAY); connections still busy then are cut, and the client retries or resumes. 0 cuts them at once. Keep it below the time your orchestrator waits before it kills the process.",
    },
    Setting {
        name: "BROKER_RATE_LIMITS",
        default: "unset (no limits)",
        description: "Requests per client and operation, per gateway process: `altinn` for Altinn's API-management limits (initialize, upload, overview, download, confirm 120/min; details 15/min; search 10/min), or a list such as `initialize=120/min,search=10/s`, or both (`altinn,search=5/min`). Operations: initialize, upload, overview, details, download, confirm, search, token (keyed by peer address). Excess calls get 429 with `Retry-After`.",
    },
    Setting {
        name: "BROKER_TUS_TOKEN_GRACE_SECONDS",
        default: "86400 (24 h)",
        description: "How long after its expiry the gateway still accepts an access token on the resumable-upload (tus) routes and forwards it, so a long upload outlives its token; the file-transfer service then accepts it only for the upload its own client created, while it runs. 0 accepts no expired token. Set the same value on the file-transfer service.",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_limit_nothing_by_rate() {
        let (limits, rates) = GatewayConfig::default().parsed().unwrap();
        assert_eq!(limits.max_header_bytes, 65_536);
        assert!(rates.is_off());
        let grace = GatewayConfig::default().tus_token_grace();
        assert_eq!(
            grace,
            TokenGrace(Duration::from_secs(86_400)),
            "a day, as Altinn's"
        );
    }

    #[test]
    fn a_zero_limit_names_its_setting() {
        let config = GatewayConfig {
            http_max_connections_per_peer: 0,
            ..GatewayConfig::default()
        };
        let error = config.parsed().unwrap_err().to_string();
        assert!(
            error.contains("BROKER_HTTP_MAX_CONNECTIONS_PER_PEER"),
            "{error}"
        );
        let config = GatewayConfig {
            http_max_header_bytes: 100,
            ..GatewayConfig::default()
        };
        assert!(matches!(
            config.parsed(),
            Err(InvalidSetting::HeaderTooSmall(100))
        ));
    }
}
