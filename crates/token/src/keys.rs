//! The service's own signing keys and their rotation.
//!
//! Keys live in the store so every replica signs with the same key and publishes the same set.
//! A key is published `lead` before it starts signing (so verifiers have it before the first
//! token it signs arrives), signs for `rotation`, and stays published until every token it
//! signed has expired. Replicas race to add the next key by generation number; the store's
//! uniqueness makes exactly one win, and everyone reloads what won.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use broker_common::auth::{JwkSet, RsaJwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

use crate::domain::error::TokenError;
use crate::store::{SigningKeyRecord, StoreError, TokenStore};

/// RSA modulus size of the service's keys.
const KEY_BITS: usize = 2048;

/// When keys rotate, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// How long a key signs.
    pub rotation: i64,
    /// How long before it signs a key is published.
    pub lead: i64,
    /// How long a key stays published after its successor took over: the longest token lifetime.
    pub retain: i64,
}

/// What [`plan`] decided to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// A key to create: generation and activation time.
    pub create: Option<(i64, i64)>,
    /// Generations below this are no longer published and can be deleted.
    pub delete_before: Option<i64>,
}

/// Decides rotation from `(generation, activates_at)` pairs sorted by generation.
pub fn plan(keys: &[(i64, i64)], policy: &KeyPolicy, now: i64) -> Plan {
    let Some(&(last_generation, _)) = keys.last() else {
        return Plan {
            create: Some((1, now)),
            delete_before: None,
        };
    };
    let active = keys.iter().rev().find(|(_, at)| *at <= now).copied();
    let has_pending = keys.iter().any(|(_, at)| *at > now);
    let create = match active {
        Some((_, activated))
            if !has_pending && now >= activated + policy.rotation - policy.lead =>
        {
            Some((
                last_generation + 1,
                (activated + policy.rotation).max(now + policy.lead),
            ))
        }
        _ => None,
    };
    // A key may go once its successor has been signing for longer than any token lives.
    let delete_before = keys
        .windows(2)
        .filter(|pair| pair[1].1 + policy.retain <= now)
        .map(|pair| pair[1].0)
        .max();
    Plan {
        create,
        delete_before,
    }
}

struct LoadedKey {
    generation: i64,
    activates_at: i64,
    kid: String,
    jwk: RsaJwk,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// The keys of the service, reloaded from the store by [`KeyRing::maintain`].
pub struct KeyRing {
    store: Arc<dyn TokenStore>,
    policy: KeyPolicy,
    keys: RwLock<Arc<Vec<LoadedKey>>>,
}

impl KeyRing {
    /// Loads the keys, creating the first one on a fresh store.
    pub async fn load(
        store: Arc<dyn TokenStore>,
        policy: KeyPolicy,
        now: i64,
    ) -> Result<Self, TokenError> {
        let ring = Self {
            store,
            policy,
            keys: RwLock::new(Arc::new(Vec::new())),
        };
        ring.maintain(now).await?;
        Ok(ring)
    }

    /// Creates the next key when due, deletes keys nobody can need, and reloads.
    pub async fn maintain(&self, now: i64) -> Result<(), TokenError> {
        let records = self.store.signing_keys().await?;
        let pairs: Vec<(i64, i64)> = records
            .iter()
            .map(|k| (k.generation, k.activates_at))
            .collect();
        let plan = plan(&pairs, &self.policy, now);
        if let Some((generation, activates_at)) = plan.create {
            let record = generate(generation, activates_at, now).await?;
            // Losing the race to another replica is fine: we reload its key below.
            self.store.insert_signing_key(&record).await?;
            tracing::info!(generation, kid = %record.kid, activates_at, "signing key created");
        }
        if let Some(generation) = plan.delete_before {
            let deleted = self.store.delete_signing_keys_before(generation).await?;
            if deleted > 0 {
                tracing::info!(deleted, "retired signing keys removed");
            }
        }
        let records = if plan
            == (Plan {
                create: None,
                delete_before: None,
            }) {
            records
        } else {
            self.store.signing_keys().await?
        };
        let current = self.keys.read().await.clone();
        let unchanged = current.len() == records.len()
            && current
                .iter()
                .zip(&records)
                .all(|(a, b)| a.generation == b.generation);
        if !unchanged {
            let loaded = records
                .iter()
                .map(load_key)
                .collect::<Result<Vec<_>, _>>()?;
            *self.keys.write().await = Arc::new(loaded);
        }
        Ok(())
    }

    /// Signs `claims` with the key active at `now`.
    pub async fn sign(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
        now: i64,
    ) -> Result<String, TokenError> {
        let keys = self.keys.read().await.clone();
        let index = keys
            .iter()
            .rposition(|key| key.activates_at <= now)
            .ok_or_else(|| TokenError::Signing("no signing key is active".into()))?;
        let claims = claims.clone();
        // RSA signing takes about a millisecond of CPU: keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            let key = &keys[index];
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(key.kid.clone());
            jsonwebtoken::encode(&header, &claims, &key.encoding)
        })
        .await
        .map_err(|error| TokenError::Signing(error.to_string()))?
        .map_err(|error| TokenError::Signing(error.to_string()))
    }

    /// The published keys: every key still in the store (see [`plan`] for when they leave).
    pub async fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .keys
                .read()
                .await
                .iter()
                .map(|key| key.jwk.clone())
                .collect(),
        }
    }

    /// The verification key for one of our published `kid`s.
    pub async fn decoding_key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys
            .read()
            .await
            .iter()
            .find(|key| key.kid == kid)
            .map(|key| key.decoding.clone())
    }
}

async fn generate(
    generation: i64,
    activates_at: i64,
    now: i64,
) -> Result<SigningKeyRecord, TokenError> {
    let key =
        tokio::task::spawn_blocking(|| rsa::PrivateKey::new(&mut getrandom::SysRng, KEY_BITS))
            .await
            .map_err(|error| TokenError::Signing(error.to_string()))?
            .map_err(|error| TokenError::Signing(error.to_string()))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|error| TokenError::Signing(error.to_string()))?;
    Ok(SigningKeyRecord {
        generation,
        kid: thumbprint(&public_jwk(&key, String::new())),
        private_key: pem.to_string(),
        activates_at,
        created_at: now,
    })
}

fn load_key(record: &SigningKeyRecord) -> Result<LoadedKey, TokenError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("signing key {}: {what}", record.kid));
    let key = rsa::PrivateKey::from_pkcs8_pem(&record.private_key)
        .map_err(|_| corrupt("not PKCS#8 PEM"))?;
    let der = key.to_pkcs1_der().map_err(|_| corrupt("cannot encode"))?;
    let jwk = public_jwk(&key, record.kid.clone());
    let decoding =
        DecodingKey::from_rsa_components(&jwk.n, &jwk.e).map_err(|_| corrupt("bad public key"))?;
    Ok(LoadedKey {
        generation: record.generation,
        activates_at: record.activates_at,
        kid: record.kid.clone(),
        jwk,
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        decoding,
    })
}

fn public_jwk(key: &rsa::PrivateKey, kid: String) -> RsaJwk {
    RsaJwk {
        kty: "RSA".into(),
        kid,
        n: URL_SAFE_NO_PAD.encode(key.n_bytes()),
        e: URL_SAFE_NO_PAD.encode(key.e_bytes()),
        key_use: Some("sig".into()),
        alg: Some("RS256".into()),
    }
}

/// RFC 7638 JWK thumbprint: a `kid` that is stable and derived from the key itself.
fn thumbprint(jwk: &RsaJwk) -> String {
    let canonical = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, jwk.e, jwk.n);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: KeyPolicy = KeyPolicy {
        rotation: 1000,
        lead: 100,
        retain: 50,
    };

    #[test]
    fn creates_the_first_key_active_now() {
        assert_eq!(
            plan(&[], &POLICY, 7),
            Plan {
                create: Some((1, 7)),
                delete_before: None
            }
        );
    }

    #[test]
    fn publishes_the_next_key_before_it_signs() {
        assert_eq!(plan(&[(1, 0)], &POLICY, 899).create, None);
        assert_eq!(plan(&[(1, 0)], &POLICY, 900).create, Some((2, 1000)));
        // Once pending, nothing more is created.
        assert_eq!(plan(&[(1, 0), (2, 1000)], &POLICY, 950).create, None);
        // After downtime the next key still gets a full lead.
        assert_eq!(plan(&[(1, 0)], &POLICY, 5000).create, Some((2, 5100)));
    }

    #[test]
    fn keeps_a_retired_key_until_its_tokens_expired() {
        let keys = [(1, 0), (2, 1000)];
        assert_eq!(plan(&keys, &POLICY, 1049).delete_before, None);
        assert_eq!(plan(&keys, &POLICY, 1050).delete_before, Some(2));
    }
}
