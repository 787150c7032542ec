//! What every handler may use: the gRPC clients, the token verifier and the admin credential.
//! The gateway keeps no other state, so any number of gateways can run side by side.

use std::sync::Arc;

use axum::extract::FromRef;
use broker_common::admin::AdminToken;
use broker_common::auth::{GrpcJwks, TokenVerifier};
use broker_common::config::{CommonConfig, ServiceUrls};

use crate::auth::TokenGrace;
use crate::clients::Clients;
use crate::config::GatewayConfig;
use crate::rate_limit::RateLimits;

/// The gateway's shared, cheaply cloned state.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Clients of the services requests are forwarded to.
    pub clients: Clients,
    /// Verifies Broker access tokens against the token service's published keys.
    pub verifier: Arc<TokenVerifier>,
    /// The operator's admin credential.
    pub admin: AdminToken,
    /// The gateway's external base URL without a trailing slash (`BROKER_PUBLIC_URL`), for
    /// the absolute links Altinn's answers carry.
    pub public_url: PublicUrl,
    /// Per-client limits by operation (`BROKER_RATE_LIMITS`); none by default.
    pub rate_limits: RateLimits,
    /// How long an expired token still opens the tus upload routes
    /// (`BROKER_TUS_TOKEN_GRACE_SECONDS`).
    pub tus_token_grace: TokenGrace,
}

/// The gateway's external base URL without a trailing slash.
#[derive(Debug, Clone)]
pub struct PublicUrl(pub String);

impl AppState {
    /// State for the gateway `common` and `config` describe: lazy channels, and keys fetched
    /// from the token service on first use.
    pub fn new(
        common: &CommonConfig,
        config: &ServiceUrls,
        admin: AdminToken,
    ) -> Result<Self, tonic::transport::Error> {
        let clients = Clients::connect(config)?;
        let verifier = TokenVerifier::new(
            common.issuer(),
            common.platform_issuer(),
            Arc::new(GrpcJwks(clients.token())),
        );
        Ok(Self {
            clients,
            verifier: Arc::new(verifier),
            admin,
            public_url: PublicUrl(common.public_url()),
            rate_limits: RateLimits::default(),
            tus_token_grace: GatewayConfig::default().tus_token_grace(),
        })
    }

    /// The same state limiting each client's calls by `rate_limits`.
    pub fn with_rate_limits(self, rate_limits: RateLimits) -> Self {
        Self {
            rate_limits,
            ..self
        }
    }

    /// The same state accepting tokens expired less than `grace` ago on the tus routes.
    pub fn with_tus_token_grace(self, grace: TokenGrace) -> Self {
        Self {
            tus_token_grace: grace,
            ..self
        }
    }

    /// The same state verifying tokens with `verifier` instead (tests sign with their own keys).
    pub fn with_verifier(self, verifier: TokenVerifier) -> Self {
        Self {
            verifier: Arc::new(verifier),
            ..self
        }
    }
}
