//! Who the exchange trusts besides ourselves, and the seam to the access registry.
//!
//! External issuers are configured by their RFC 8414 metadata URL. Metadata is fetched on first
//! use (so an unreachable issuer never stops start-up) and the issuer string in it must match a
//! token's `iss` exactly; Altinn's substring check is a known weakness we do not copy.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use broker_common::Problem;
use broker_common::auth::{JwkSet, JwksSource, KeyCache};
use broker_common::grpc::Channel;
use broker_common::identity::OrgNumber;
use broker_proto::access::LookupServiceOwnerRequest;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use tokio::sync::OnceCell;

/// Answers whether an organisation is a registered service owner, and its org code.
#[async_trait]
pub trait ServiceOwnerDirectory: Send + Sync {
    /// The org code (`skd`, `digdir`, …) of `org`, or `None` when it is not a service owner.
    async fn org_code(&self, org: OrgNumber) -> Result<Option<String>, Problem>;
}

/// The access registry's service-owner register, over gRPC.
pub struct GrpcServiceOwners(pub AccessRegistryClient<Channel>);

#[async_trait]
impl ServiceOwnerDirectory for GrpcServiceOwners {
    async fn org_code(&self, org: OrgNumber) -> Result<Option<String>, Problem> {
        let request = LookupServiceOwnerRequest {
            org_number: org.to_string(),
        };
        let answer = self
            .0
            .clone()
            .lookup_service_owner(request)
            .await?
            .into_inner();
        Ok(Some(answer.org_code).filter(|code| !code.is_empty()))
    }
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
}

struct HttpJwks {
    http: reqwest::Client,
    url: String,
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet, Problem> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status());
        let set = match response {
            Ok(response) => response.json::<JwkSet>().await,
            Err(error) => Err(error),
        };
        set.map_err(|error| {
            tracing::warn!(url = %self.url, %error, "trusted issuer's keys are unavailable");
            Problem::unauthorized("the token's issuer cannot be verified right now")
        })
    }
}

struct Resolved {
    issuer: String,
    keys: KeyCache,
}

struct TrustedIssuer {
    metadata_url: String,
    resolved: OnceCell<Resolved>,
}

/// External Maskinporten-style issuers the operator trusts for the exchange.
pub struct TrustedIssuers {
    http: reqwest::Client,
    issuers: Vec<TrustedIssuer>,
}

impl TrustedIssuers {
    /// Issuers from their metadata URLs.
    pub fn new(metadata_urls: Vec<String>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let issuers = metadata_urls
            .into_iter()
            .map(|metadata_url| TrustedIssuer {
                metadata_url,
                resolved: OnceCell::new(),
            })
            .collect();
        Ok(Self { http, issuers })
    }

    /// The key `kid` of the trusted issuer `iss`; `None` when no configured issuer is `iss`.
    pub async fn key(&self, iss: &str, kid: &str) -> Option<Result<DecodingKey, Problem>> {
        for trusted in &self.issuers {
            let resolved = trusted
                .resolved
                .get_or_try_init(|| self.resolve(&trusted.metadata_url))
                .await;
            match resolved {
                Ok(resolved) if resolved.issuer == iss => {
                    return Some(resolved.keys.key(kid).await);
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(url = %trusted.metadata_url, %error, "trusted issuer's metadata is unavailable");
                }
            }
        }
        None
    }

    async fn resolve(&self, metadata_url: &str) -> Result<Resolved, reqwest::Error> {
        let metadata: Metadata = self
            .http
            .get(metadata_url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(Resolved {
            issuer: metadata.issuer,
            keys: KeyCache::new(Arc::new(HttpJwks {
                http: self.http.clone(),
                url: metadata.jwks_uri,
            })),
        })
    }
}
