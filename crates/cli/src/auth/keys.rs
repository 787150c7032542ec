//! The client's RSA key: made by `keygen`, read from its PEM file to sign assertions, and shown
//! as the public JWK the operator registers.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::Digest;

use crate::error::CliError;

/// Bits of a key `keygen` makes: what Maskinporten asks for.
const KEY_BITS: usize = 2048;

/// A private key ready to sign, with its key id and public half.
pub struct ClientKey {
    kid: String,
    n: String,
    e: String,
    encoding: EncodingKey,
}

impl ClientKey {
    /// A new RSA-2048 key and its PKCS#8 PEM text; `kid` defaults to the JWK thumbprint.
    pub fn generate(kid: Option<String>) -> Result<(Self, String), CliError> {
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, KEY_BITS)
            .map_err(|error| CliError::Key(format!("cannot generate a key: {error}")))?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|error| CliError::Key(format!("cannot encode the key: {error}")))?;
        Ok((Self::from_private(&key, kid)?, pem.to_string()))
    }

    /// Reads a PEM private key (PKCS#8, or PKCS#1 as older `openssl genrsa` writes).
    pub fn load(path: &Path, kid: Option<String>) -> Result<Self, CliError> {
        let pem = std::fs::read_to_string(path).map_err(|error| CliError::io(path, error))?;
        let key = rsa::PrivateKey::from_pkcs8_pem(&pem)
            .or_else(|_| rsa::PrivateKey::from_pkcs1_pem(&pem))
            .map_err(|error| {
                CliError::Key(format!(
                    "{} is not an RSA private key in PEM form: {error}",
                    path.display()
                ))
            })?;
        Self::from_private(&key, kid)
    }

    fn from_private(key: &rsa::PrivateKey, kid: Option<String>) -> Result<Self, CliError> {
        let n = URL_SAFE_NO_PAD.encode(key.n_bytes());
        let e = URL_SAFE_NO_PAD.encode(key.e_bytes());
        let der = key
            .to_pkcs1_der()
            .map_err(|error| CliError::Key(format!("cannot encode the key: {error}")))?;
        Ok(Self {
            kid: kid.unwrap_or_else(|| thumbprint(&n, &e)),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            n,
            e,
        })
    }

    /// The key id the assertion's header names.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key that signs.
    pub fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The public key as a JWK set, the form `POST /admin/v1/clients` takes.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [{
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
            "n": self.n,
            "e": self.e,
        }]})
    }
}

/// The RFC 7638 thumbprint of an RSA public key: a key id that the key itself determines, so a
/// profile need not store one.
fn thumbprint(n: &str, e: &str) -> String {
    // The members in lexicographic order, no whitespace, as RFC 7638 prescribes.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // The example key of RFC 7638, section 3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_generated_key_reads_back_with_the_same_kid() {
        let (key, pem) = ClientKey::generate(None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, pem).unwrap();
        let loaded = ClientKey::load(&path, None).unwrap();
        assert_eq!(loaded.kid(), key.kid());
        assert_eq!(loaded.jwks(), key.jwks());
        assert_eq!(
            ClientKey::load(&path, Some("k1".into())).unwrap().kid(),
            "k1"
        );
    }
}
