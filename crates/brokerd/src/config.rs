//! Every setting one process reads, from one source: the environment for `brokerd`, or a given
//! list of `BROKER_*` variables for services started inside a test process.

use broker_common::config::{self, CommonConfig, ConfigError, ServiceUrls};
use broker_events::EventsConfig;
use broker_filetransfer::FileTransferConfig;
use broker_gateway::GatewayConfig;
use broker_token::TokenConfig;

/// The settings of every service, read once at start.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// What every service shares.
    pub common: CommonConfig,
    /// Where the services this process does not run are.
    pub urls: ServiceUrls,
    /// The token service's own settings.
    pub token: TokenConfig,
    /// The file-transfer service's own settings.
    pub filetransfer: FileTransferConfig,
    /// The event service's own settings.
    pub events: EventsConfig,
    /// The gateway's listener limits and rate limits.
    pub gateway: GatewayConfig,
}

impl Config {
    /// Reads the `BROKER_*` environment (and the `BROKER_CONFIG` file it may name).
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::vars().collect())
    }

    /// Reads the given `BROKER_*` variables instead of the environment.
    pub fn load_from(vars: Vec<(String, String)>) -> Result<Self, ConfigError> {
        Ok(Self {
            common: config::load_from(vars.clone())?,
            urls: config::load_from(vars.clone())?,
            token: config::load_from(vars.clone())?,
            filetransfer: config::load_from(vars.clone())?,
            events: config::load_from(vars.clone())?,
            gateway: config::load_from(vars)?,
        })
    }
}
