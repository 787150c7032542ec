//! The token service's operations, independent of transport: issuing tokens for grants,
//! exchanging tokens, publishing keys and metadata, and the client registry.

use std::sync::Arc;

use broker_common::auth::{JwkSet, RsaJwk};
use broker_common::clock::Clock;
use jsonwebtoken::Validation;
use serde_json::{Map, Value, json};

use crate::domain::client::{self, Registration};
use crate::domain::error::{GrantError, TokenError};
use crate::domain::{grant, token};
use crate::exchange::{ServiceOwnerDirectory, TrustedIssuers};
use crate::keys::KeyRing;
use crate::store::{ClientKeyRecord, ClientRecord, Inserted, TokenStore};

/// Clock skew the exchange tolerates on incoming tokens, as Altinn Authentication does.
const EXCHANGE_LEEWAY_SECONDS: u64 = 10;
/// Largest page of clients.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// An issued access token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// URLs the service publishes, derived from the public base URL.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Maskinporten-style issuer, with a trailing slash.
    pub issuer: String,
    /// Issuer of platform tokens.
    pub platform_issuer: String,
}

/// Lifetimes of issued tokens, seconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Access tokens.
    pub access: i64,
    /// Platform tokens.
    pub platform: i64,
}

/// The token service.
pub struct TokenCore {
    store: Arc<dyn TokenStore>,
    keys: Arc<KeyRing>,
    endpoints: Endpoints,
    lifetimes: Lifetimes,
    trusted: TrustedIssuers,
    owners: Arc<dyn ServiceOwnerDirectory>,
    clock: Arc<dyn Clock>,
}

impl TokenCore {
    /// Assembles the service from its parts.
    pub fn new(
        store: Arc<dyn TokenStore>,
        keys: Arc<KeyRing>,
        endpoints: Endpoints,
        lifetimes: Lifetimes,
        trusted: TrustedIssuers,
        owners: Arc<dyn ServiceOwnerDirectory>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            keys,
            endpoints,
            lifetimes,
            trusted,
            owners,
            clock,
        }
    }

    /// RFC 7523 JWT-bearer grant: verifies the assertion and issues an access token.
    pub async fn issue(
        &self,
        grant_type: &str,
        assertion: &str,
    ) -> Result<IssuedToken, TokenError> {
        let unverified = grant::parse(grant_type, assertion)?;
        let client = self
            .store
            .client(&unverified.client_id)
            .await?
            .ok_or_else(|| {
                GrantError::InvalidClient(format!(
                    "no client {:?} is registered (MP-100)",
                    unverified.client_id
                ))
            })?;
        let keys = client_keys(&client)?;
        let now = self.clock.unix();
        let verified = unverified.verify(&keys, &client.scopes, &self.endpoints.issuer, now)?;
        // Last, so that a refused assertion does not burn its replay key.
        if self
            .store
            .record_assertion(&client.client_id, &verified.replay_key, verified.expires_at)
            .await?
            == Inserted::AlreadyExists
        {
            return Err(verified.replay_key.replayed().into());
        }
        let org = broker_common::identity::OrgNumber::parse(&client.org_number).map_err(|_| {
            crate::store::StoreError::Corrupt(format!("org number of {}", client.client_id))
        })?;
        let jti = uuid::Uuid::new_v4().to_string();
        let claims = token::access_token(
            &self.endpoints.issuer,
            &client.client_id,
            org,
            &verified,
            now,
            self.lifetimes.access,
            &jti,
        );
        let access_token = self.keys.sign(&claims, now).await?;
        tracing::info!(client_id = %client.client_id, scope = %verified.scopes.join(" "), "token issued");
        Ok(IssuedToken {
            access_token,
            expires_in: self.lifetimes.access.unsigned_abs(),
            scope: verified.scopes.join(" "),
        })
    }

    /// Exchanges a Maskinporten-style token (ours or a trusted issuer's) for a platform token.
    pub async fn exchange(&self, presented: &str) -> Result<(String, u64), TokenError> {
        let unauthorized = |detail: &str| TokenError::Unauthorized(detail.to_owned());
        let header = jsonwebtoken::decode_header(presented)
            .map_err(|_| unauthorized("the token is not a JWT"))?;
        if !broker_common::auth::RSA_ALGORITHMS.contains(&header.alg) {
            return Err(unauthorized("the token's algorithm is not accepted"));
        }
        let kid = header
            .kid
            .ok_or_else(|| unauthorized("the token has no kid"))?;
        let iss = jsonwebtoken::dangerous::insecure_decode_claims::<Map<String, Value>>(presented)
            .ok()
            .and_then(|claims| claims.get("iss").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| unauthorized("the token has no issuer"))?;
        let key = if iss == self.endpoints.issuer {
            self.keys.decoding_key(&kid).await.ok_or_else(|| {
                unauthorized("the token was not signed by a key this broker publishes")
            })?
        } else {
            match self.trusted.key(&iss, &kid).await {
                Some(key) => key.map_err(|problem| {
                    unauthorized(problem.detail.as_deref().unwrap_or("untrusted"))
                })?,
                None => return Err(unauthorized("the token's issuer is not trusted")),
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = EXCHANGE_LEEWAY_SECONDS;
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.set_issuer(&[&iss]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(presented, &key, &validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    unauthorized("the token has expired")
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    unauthorized("the token's signature is invalid")
                }
                _ => unauthorized("the token is invalid"),
            })?
            .claims;
        let org = token::consumer_org(&claims).ok_or_else(|| {
            unauthorized("the token has no valid consumer (iso6523-actorid-upis, 0192:<orgnr>)")
        })?;
        let org_code = if token::asks_for_service_owner(&claims) {
            self.owners
                .org_code(org)
                .await
                .map_err(TokenError::Upstream)?
        } else {
            None
        };
        let now = self.clock.unix();
        let sid = uuid::Uuid::new_v4().to_string();
        let claims = token::platform_token(
            claims,
            org,
            org_code,
            &self.endpoints.platform_issuer,
            now,
            self.lifetimes.platform,
            &sid,
        );
        let platform_token = self.keys.sign(&claims, now).await?;
        Ok((platform_token, self.lifetimes.platform.unsigned_abs()))
    }

    /// The published signing keys.
    pub async fn jwks(&self) -> JwkSet {
        self.keys.jwks().await
    }

    /// RFC 8414 authorization-server metadata.
    pub fn metadata(&self) -> Value {
        let issuer = &self.endpoints.issuer;
        json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}token"),
            "jwks_uri": format!("{issuer}jwk"),
            "grant_types_supported": [grant::JWT_BEARER],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "RS512"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// Registers a client.
    pub async fn create_client(
        &self,
        registration: Registration,
    ) -> Result<ClientRecord, TokenError> {
        let valid = client::validate(registration, || uuid::Uuid::new_v4().to_string())?;
        let now = self.clock.unix();
        let record = ClientRecord {
            client_id: valid.client_id,
            org_number: valid.org.to_string(),
            name: valid.name,
            scopes: valid.scopes,
            keys: valid.keys.iter().map(|key| key_record(key, now)).collect(),
            created_at: now,
        };
        match self.store.insert_client(&record).await? {
            Inserted::New => {
                tracing::info!(client_id = %record.client_id, org = %record.org_number, "client registered");
                Ok(record)
            }
            Inserted::AlreadyExists => Err(TokenError::Conflict(format!(
                "a client {:?} is already registered",
                record.client_id
            ))),
        }
    }

    /// One page of clients: those after `after`, at most `size` (default 100).
    pub async fn list_clients(
        &self,
        after: &str,
        size: u32,
    ) -> Result<(Vec<ClientRecord>, Option<String>), TokenError> {
        let size = match size {
            0 => 100,
            size => size.min(MAX_PAGE_SIZE),
        };
        let after = (!after.is_empty()).then_some(after);
        let mut clients = self.store.list_clients(after, size + 1).await?;
        let next = if clients.len() > size as usize {
            clients.truncate(size as usize);
            clients.last().map(|c| c.client_id.clone())
        } else {
            None
        };
        Ok((clients, next))
    }

    /// One client.
    pub async fn client(&self, client_id: &str) -> Result<ClientRecord, TokenError> {
        self.store
            .client(client_id)
            .await?
            .ok_or_else(|| no_client(client_id))
    }

    /// Deletes a client; its tokens stay valid until they expire.
    pub async fn delete_client(&self, client_id: &str) -> Result<(), TokenError> {
        if self.store.delete_client(client_id).await? {
            tracing::info!(%client_id, "client deleted");
            Ok(())
        } else {
            Err(no_client(client_id))
        }
    }

    /// Adds a public key to a client.
    pub async fn add_client_key(
        &self,
        client_id: &str,
        jwk_json: &str,
    ) -> Result<ClientRecord, TokenError> {
        let key = client::parse_key(jwk_json)?;
        let current = self.client(client_id).await?;
        // A valid key the client has no room for: its state, not the request, is in the way.
        if current.keys.len() >= client::MAX_KEYS {
            return Err(TokenError::Conflict(format!(
                "the client has {} keys, the most it may have; remove one first",
                client::MAX_KEYS
            )));
        }
        match self
            .store
            .add_client_key(client_id, &key_record(&key, self.clock.unix()))
            .await?
        {
            None => Err(no_client(client_id)),
            Some(Inserted::AlreadyExists) => Err(TokenError::Conflict(format!(
                "the client already has a key {:?}",
                key.kid
            ))),
            Some(Inserted::New) => self.client(client_id).await,
        }
    }

    /// Removes a public key; assertions signed with it are refused from now on.
    pub async fn remove_client_key(
        &self,
        client_id: &str,
        kid: &str,
    ) -> Result<ClientRecord, TokenError> {
        if self.store.remove_client_key(client_id, kid).await? {
            self.client(client_id).await
        } else {
            Err(TokenError::NotFound(format!(
                "client {client_id:?} has no key {kid:?}"
            )))
        }
    }
}

fn no_client(client_id: &str) -> TokenError {
    TokenError::NotFound(format!("no client {client_id:?} is registered"))
}

fn key_record(key: &RsaJwk, now: i64) -> ClientKeyRecord {
    ClientKeyRecord {
        kid: key.kid.clone(),
        jwk: serde_json::to_string(key).unwrap_or_default(),
        created_at: now,
    }
}

/// The client's keys as JWKs.
pub fn client_keys(client: &ClientRecord) -> Result<Vec<RsaJwk>, TokenError> {
    client
        .keys
        .iter()
        .map(|key| {
            serde_json::from_str(&key.jwk).map_err(|_| {
                TokenError::Store(crate::store::StoreError::Corrupt(format!(
                    "key {} of client {}",
                    key.kid, client.client_id
                )))
            })
        })
        .collect()
}
