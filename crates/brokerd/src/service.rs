//! The services a `brokerd` process can run, by the names the command line and logs use.

use std::str::FromStr;

use broker_common::config;

/// One of Broker's services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// The public HTTP gateway.
    Gateway,
    /// The token service.
    Token,
    /// The access registry.
    Access,
    /// The file-transfer service.
    FileTransfer,
    /// The event service.
    Events,
}

/// A name on the command line that is no service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service: {0}")]
pub struct UnknownService(pub String);

impl Service {
    /// Every service, as embedded mode runs them.
    pub const ALL: [Service; 5] = [
        Service::Gateway,
        Service::Token,
        Service::Access,
        Service::FileTransfer,
        Service::Events,
    ];

    /// The name on the command line and in `listening:` lines.
    pub fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Token => "token",
            Service::Access => "access",
            Service::FileTransfer => "filetransfer",
            Service::Events => "events",
        }
    }
}

impl Service {
    /// Whether the service keeps a database (and so has migrations).
    pub fn has_database(self) -> bool {
        self != Service::Gateway
    }

    /// The gRPC port the service serves on alone when `BROKER_GRPC_ADDR` is unset; the gateway
    /// serves HTTP (on `BROKER_HTTP_ADDR`) instead.
    pub fn default_grpc_port(self) -> Option<u16> {
        match self {
            Service::Gateway => None,
            Service::Token => Some(config::TOKEN_PORT),
            Service::Access => Some(config::ACCESS_PORT),
            Service::FileTransfer => Some(config::FILETRANSFER_PORT),
            Service::Events => Some(config::EVENTS_PORT),
        }
    }
}

impl FromStr for Service {
    type Err = UnknownService;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Service::ALL
            .into_iter()
            .find(|service| service.name() == name)
            .ok_or_else(|| UnknownService(name.to_owned()))
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
