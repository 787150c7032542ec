//! The gateway's own settings; everything shared (listening address, issuers, admin credential)
//! comes from [`broker_common::config::CommonConfig`].

use broker_common::config::Setting;
use serde::{Deserialize, Serialize};

/// Gateway settings (read with `broker_common::config::load::<GatewayConfig>()` from `BROKER_*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayConfig {
    /// gRPC URL of the token service (`BROKER_TOKEN_URL`).
    pub token_url: String,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            token_url: "http://127.0.0.1:50051".to_owned(),
        }
    }
}

/// The settings of [`GatewayConfig`], for the README's configuration table.
pub const SETTINGS: &[Setting] = &[Setting {
    name: "BROKER_TOKEN_URL",
    default: "http://127.0.0.1:50051",
    description: "gRPC URL the gateway reaches the token service at; embedded mode sets it itself.",
}];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_defaults_match_the_code() {
        assert_eq!(SETTINGS[0].default, GatewayConfig::default().token_url);
    }
}
