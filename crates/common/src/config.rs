//! Typed configuration: defaults, then an optional TOML file named by `BROKER_CONFIG`, then
//! `BROKER_*` environment variables, each layer overriding the one before.
//!
//! Every service reads [`CommonConfig`] plus its own struct from the same layers; each crate
//! lists its settings in a `SETTINGS` table that the README's configuration table is checked
//! against, so documentation cannot drift from code.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::collections::BTreeMap;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One documented setting, for the README's configuration table.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The environment variable.
    pub name: &'static str,
    /// The default, as a human reads it.
    pub default: &'static str,
    /// What it does.
    pub description: &'static str,
}

/// Why configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

/// Reads `T` from defaults, the optional `BROKER_CONFIG` TOML file and `BROKER_*` variables.
pub fn load<T: DeserializeOwned + Serialize + Default>() -> Result<T, ConfigError> {
    load_from(std::env::vars())
}

/// Reads `T` as [`load`] does, from the given variables instead of the environment (services
/// started inside a test process, whose environment they must not share).
pub fn load_from<T: DeserializeOwned + Serialize + Default>(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    // Variables stay strings here (figment's own Env provider would turn an admin token of
    // digits into a number); the lossy extraction parses them only where a field wants a number.
    let mut variables = BTreeMap::new();
    for (key, value) in vars {
        match key.strip_prefix("BROKER_") {
            Some("CONFIG") => figment = figment.merge(Toml::file_exact(value)),
            Some(name) => {
                variables.insert(name.to_lowercase(), value);
            }
            None => {}
        }
    }
    figment
        .merge(Serialized::defaults(variables))
        .extract_lossy()
        .map_err(|error| {
            let setting = error
                .path
                .last()
                .map(|key| format!("BROKER_{}", key.to_uppercase()));
            ConfigError(match setting {
                Some(setting) => format!("{setting}: {}", error.kind),
                None => error.kind.to_string(),
            })
        })
}

/// Settings every service shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CommonConfig {
    /// The gateway's listening address.
    pub http_addr: SocketAddr,
    /// Where a service run on its own (`brokerd <service>`) serves gRPC; each service has its
    /// own default port (see [`ServiceUrls`]).
    pub grpc_addr: Option<SocketAddr>,
    /// Where embedded mode keeps its databases, files and generated admin token.
    pub data_dir: PathBuf,
    /// The external base URL clients use; issuers derive from it.
    pub public_url: Option<String>,
    /// The admin credential; generated into the data directory when unset.
    pub admin_token: Option<String>,
    /// `postgres://…` or `sqlite://…`; SQLite files in the data directory when unset.
    pub database_url: Option<String>,
    /// `amqp://…` to use RabbitMQ as the bus; the in-process bus when unset.
    pub amqp_url: Option<String>,
    /// The RabbitMQ topic exchange every service publishes to.
    pub amqp_exchange: String,
    /// Log filter in `RUST_LOG` syntax.
    pub log: String,
    /// `text` or `json`.
    pub log_format: String,
    /// OTLP/gRPC endpoint for traces; none exported when unset.
    pub otlp_endpoint: Option<String>,
    /// Where the process serves Prometheus metrics (`GET /metrics`); `off` serves none.
    pub metrics_addr: String,
}

impl Default for CommonConfig {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            grpc_addr: None,
            data_dir: PathBuf::from("./data"),
            public_url: None,
            admin_token: None,
            database_url: None,
            amqp_url: None,
            amqp_exchange: "broker".to_owned(),
            log: "info".to_owned(),
            log_format: "text".to_owned(),
            otlp_endpoint: None,
            metrics_addr: "127.0.0.1:9464".to_owned(),
        }
    }
}

impl CommonConfig {
    /// The external base URL without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.http_addr),
        }
    }

    /// The Maskinporten-style issuer: the public URL with a trailing slash, as Maskinporten writes it.
    pub fn issuer(&self) -> String {
        format!("{}/", self.public_url())
    }

    /// The metrics listener's address; `None` when switched off.
    pub fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        match self.metrics_addr.trim() {
            "" | "off" => Ok(None),
            addr => addr.parse().map(Some).map_err(|_| {
                anyhow::anyhow!("BROKER_METRICS_ADDR must be host:port or off, not {addr:?}")
            }),
        }
    }

    /// The issuer of platform tokens from the exchange endpoint.
    pub fn platform_issuer(&self) -> String {
        format!("{}/authentication/api/v1/openid/", self.public_url())
    }
}

/// Where each service's gRPC server is, for the services that call it. Embedded mode fills
/// these in itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceUrls {
    /// The token service.
    pub token_url: String,
    /// The access registry.
    pub access_url: String,
    /// The file-transfer service.
    pub filetransfer_url: String,
    /// The event service.
    pub events_url: String,
}

/// Default gRPC port of the token service.
pub const TOKEN_PORT: u16 = 50051;
/// Default gRPC port of the access registry.
pub const ACCESS_PORT: u16 = 50052;
/// Default gRPC port of the file-transfer service.
pub const FILETRANSFER_PORT: u16 = 50053;
/// Default gRPC port of the event service.
pub const EVENTS_PORT: u16 = 50054;

impl Default for ServiceUrls {
    fn default() -> Self {
        Self {
            token_url: format!("http://127.0.0.1:{TOKEN_PORT}"),
            access_url: format!("http://127.0.0.1:{ACCESS_PORT}"),
            filetransfer_url: format!("http://127.0.0.1:{FILETRANSFER_PORT}"),
            events_url: format!("http://127.0.0.1:{EVENTS_PORT}"),
        }
    }
}

impl CommonConfig {
    /// The gRPC address of a service run alone: `BROKER_GRPC_ADDR`, else loopback on `port`.
    pub fn grpc_addr_or(&self, port: u16) -> SocketAddr {
        self.grpc_addr
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], port)))
    }
}

/// The settings of [`ServiceUrls`].
pub const SERVICE_URL_SETTINGS: &[Setting] = &[
    Setting {
        name: "BROKER_TOKEN_URL",
        default: "http://127.0.0.1:50051",
        description: "gRPC URL of the token service, for the gateway and the services that verify tokens (several, comma-separated, balance between replicas); embedded mode sets it itself.",
    },
    Setting {
        name: "BROKER_ACCESS_URL",
        default: "http://127.0.0.1:50052",
        description: "gRPC URL of the access registry, for the gateway and the services that ask it for decisions (several, comma-separated, balance between replicas); embedded mode sets it itself.",
    },
    Setting {
        name: "BROKER_FILETRANSFER_URL",
        default: "http://127.0.0.1:50053",
        description: "gRPC URL of the file-transfer service, for the gateway (several, comma-separated, balance between replicas); embedded mode sets it itself.",
    },
    Setting {
        name: "BROKER_EVENTS_URL",
        default: "http://127.0.0.1:50054",
        description: "gRPC URL of the event service, for the gateway (several, comma-separated, balance between replicas); embedded mode sets it itself.",
    },
];

/// The settings of [`CommonConfig`].
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "BROKER_HTTP_ADDR",
        default: "127.0.0.1:8080",
        description: "Address the gateway listens on (the one public HTTP surface).",
    },
    Setting {
        name: "BROKER_GRPC_ADDR",
        default: "127.0.0.1:<service's port>",
        description: "Address a service run on its own (`brokerd token`, …) serves gRPC on; ports default to token 50051, access 50052, filetransfer 50053, events 50054; use `0.0.0.0:<port>` in containers.",
    },
    Setting {
        name: "BROKER_METRICS_ADDR",
        default: "127.0.0.1:9464",
        description: "Address each process serves Prometheus metrics on (`GET /metrics`), apart from the public gateway; `off` for none; use `0.0.0.0:9464` in containers.",
    },
    Setting {
        name: "BROKER_DATA_DIR",
        default: "./data",
        description: "Embedded mode's SQLite databases, files and generated admin token.",
    },
    Setting {
        name: "BROKER_PUBLIC_URL",
        default: "http://<BROKER_HTTP_ADDR>",
        description: "External base URL of the gateway; the token issuer is this URL with a trailing slash, and the events pull's `next` links start with it.",
    },
    Setting {
        name: "BROKER_ADMIN_TOKEN",
        default: "generated into <data dir>/admin-token",
        description: "Admin credential for `/admin/v1/…` (`Authorization: Bearer <token>`).",
    },
    Setting {
        name: "BROKER_DATABASE_URL",
        default: "SQLite files in the data directory",
        description: "`postgres://…` to use PostgreSQL; each service keeps its tables in its own schema.",
    },
    Setting {
        name: "BROKER_AMQP_URL",
        default: "unset (in-process bus)",
        description: "`amqp://user:password@host:5672/%2f` to use RabbitMQ as the bus; required when services run as separate processes.",
    },
    Setting {
        name: "BROKER_AMQP_EXCHANGE",
        default: "broker",
        description: "The durable topic exchange every service publishes to.",
    },
    Setting {
        name: "BROKER_LOG",
        default: "info",
        description: "Log filter (`RUST_LOG` syntax), e.g. `info,broker_token=debug`.",
    },
    Setting {
        name: "BROKER_LOG_FORMAT",
        default: "text",
        description: "`text` for people, `json` for log collectors.",
    },
    Setting {
        name: "BROKER_OTLP_ENDPOINT",
        default: "unset (no export)",
        description: "OTLP/gRPC endpoint, e.g. `http://otel-collector:4317`, to export traces.",
    },
    Setting {
        name: "BROKER_CONFIG",
        default: "unset",
        description: "Path of a TOML file with the same settings in lower case without the prefix (`http_addr = \"…\"`); variables override it.",
    },
];
