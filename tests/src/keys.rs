//! RSA key pairs as clients (and fake issuers) hold them: the private half signs assertions,
//! the public half is registered as a JWK.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

/// An RSA-2048 key pair with a key id. Cheap to clone.
#[derive(Clone)]
pub struct ClientKeys(Arc<Inner>);

struct Inner {
    kid: String,
    n: String,
    e: String,
    encoding: EncodingKey,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientKeys({})", self.0.kid)
    }
}

impl ClientKeys {
    /// A new key pair with a random key id.
    pub fn generate() -> Self {
        Self::generate_with_kid(&format!("key-{}", uuid::Uuid::new_v4().simple()))
    }

    /// A new key pair with the given key id (e.g. to collide with another key's).
    pub fn generate_with_kid(kid: &str) -> Self {
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("generating RSA key");
        let der = key.to_pkcs1_der().expect("encoding RSA key");
        Self(Arc::new(Inner {
            kid: kid.to_owned(),
            n: URL_SAFE_NO_PAD.encode(key.n_bytes()),
            e: URL_SAFE_NO_PAD.encode(key.e_bytes()),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        }))
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "kid": self.0.kid,
            "n": self.0.n,
            "e": self.0.e,
            "alg": "RS256",
            "use": "sig",
        })
    }

    /// A JWK set holding only this key.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk()] })
    }

    /// The public key for verifying what this key signed.
    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_rsa_components(&self.0.n, &self.0.e).expect("own public key")
    }

    /// Signs `claims` with `alg` (an RSA algorithm), writing `kid` in the header.
    pub fn sign_as(&self, alg: Algorithm, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.0.encoding).expect("signing a JWT")
    }

    /// Signs `claims` with RS256 under this key's own id.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(Algorithm::RS256, &self.0.kid, claims)
    }
}
