//! The demo clients' keys: RSA-2048 PKCS#8 PEM files, owner-only (0600), whose key id is the
//! RFC 7638 thumbprint as `broker keygen` makes it, so the CLI profiles need no `kid`.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::Digest;

use super::DemoError;

/// Bits of a demo key: what Maskinporten asks for.
const KEY_BITS: usize = 2048;
/// Seconds an assertion is valid: it is used at once, and the broker allows at most 120.
const ASSERTION_SECONDS: i64 = 60;

/// A client's private key, ready to sign assertions, with its public half.
pub struct ClientKey {
    kid: String,
    n: String,
    e: String,
    encoding: EncodingKey,
}

impl ClientKey {
    /// The key in `path`; a missing file is made first, so a second demo reuses its keys.
    pub fn load_or_create(path: &Path) -> Result<Self, DemoError> {
        let io = |source| DemoError::Io {
            path: path.to_owned(),
            source,
        };
        let key = match std::fs::read_to_string(path) {
            Ok(pem) => rsa::PrivateKey::from_pkcs8_pem(&pem)
                .map_err(|error| DemoError::Key(format!("{}: {error}", path.display())))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = rsa::PrivateKey::new(&mut getrandom::SysRng, KEY_BITS)
                    .map_err(|error| DemoError::Key(error.to_string()))?;
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|error| DemoError::Key(error.to_string()))?;
                write_private(path, pem.as_bytes()).map_err(io)?;
                key
            }
            Err(error) => return Err(io(error)),
        };
        let n = URL_SAFE_NO_PAD.encode(key.n_bytes());
        let e = URL_SAFE_NO_PAD.encode(key.e_bytes());
        let der = key
            .to_pkcs1_der()
            .map_err(|error| DemoError::Key(error.to_string()))?;
        Ok(Self {
            kid: thumbprint(&n, &e),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            n,
            e,
        })
    }

    /// The key id: the public key's thumbprint.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        json!({"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig", "n": self.n, "e": self.e})
    }

    /// A JWT-bearer assertion from `client_id` to `issuer` asking for `scope`.
    pub fn assertion(
        &self,
        client_id: &str,
        issuer: &str,
        scope: &str,
    ) -> Result<String, DemoError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64);
        let claims = json!({
            "aud": issuer,
            "iss": client_id,
            "scope": scope,
            "iat": now,
            "exp": now + ASSERTION_SECONDS,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|error| DemoError::Key(format!("cannot sign an assertion: {error}")))
    }
}

/// Writes a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The RFC 7638 thumbprint of an RSA public key (members in lexicographic order, no spaces).
fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_written_once_owner_only_and_read_back_with_its_kid() {
        let dir = std::env::temp_dir().join(format!("brokerd-demo-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("client.pem");
        let made = ClientKey::load_or_create(&path).unwrap();
        let read = ClientKey::load_or_create(&path).unwrap();
        assert_eq!(made.kid(), read.kid());
        assert_eq!(made.jwk(), read.jwk());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
