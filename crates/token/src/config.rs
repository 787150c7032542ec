//! Settings of the token service.

use broker_common::config::Setting;
use serde::{Deserialize, Serialize};

/// Token service settings, read from `BROKER_*` variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenConfig {
    /// Lifetime of access tokens from `POST /token`, seconds.
    pub token_lifetime_seconds: u64,
    /// Lifetime of platform tokens from the exchange, seconds.
    pub platform_token_lifetime_seconds: u64,
    /// How long a signing key signs before the next takes over, hours.
    pub signing_key_rotation_hours: u64,
    /// Comma-separated metadata URLs of external issuers the exchange trusts.
    pub trusted_issuers: String,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            token_lifetime_seconds: 120,
            platform_token_lifetime_seconds: 1800,
            signing_key_rotation_hours: 24 * 30,
            trusted_issuers: String::new(),
        }
    }
}

impl TokenConfig {
    /// The trusted issuers' metadata URLs.
    pub fn trusted_issuer_urls(&self) -> Vec<String> {
        self.trusted_issuers
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The settings of [`TokenConfig`].
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "BROKER_TOKEN_LIFETIME_SECONDS",
        default: "120",
        description: "Lifetime of access tokens issued by `POST /token`.",
    },
    Setting {
        name: "BROKER_PLATFORM_TOKEN_LIFETIME_SECONDS",
        default: "1800",
        description: "Lifetime of platform tokens from `/authentication/api/v1/exchange/maskinporten`.",
    },
    Setting {
        name: "BROKER_SIGNING_KEY_ROTATION_HOURS",
        default: "720",
        description: "How long a signing key signs; the next is published an hour (at most a tenth of this) before it takes over.",
    },
    Setting {
        name: "BROKER_TRUSTED_ISSUERS",
        default: "none",
        description: "Comma-separated metadata URLs (`…/.well-known/oauth-authorization-server`) of external Maskinporten-style issuers whose tokens the exchange accepts.",
    },
];
