//! JWT-bearer grants (RFC 7523) as a Maskinporten client writes them: valid by default, with one
//! method per rule a test wants to break.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

use crate::keys::ClientKeys;

/// A grant being built. Defaults: RS256, the key's `kid`, `iat` now, `exp` a minute later and a
/// fresh `jti`.
#[derive(Debug, Clone)]
pub struct Assertion {
    keys: ClientKeys,
    alg: Algorithm,
    kid: String,
    claims: Map<String, Value>,
}

impl Assertion {
    /// A valid grant from `client_id` for `audience` (the broker's issuer), signed by `keys`.
    pub fn new(keys: &ClientKeys, client_id: &str, audience: &str, scope: &str) -> Self {
        let now = crate::now();
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "scope": scope,
            "iat": now,
            "exp": now + 60,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let Value::Object(claims) = claims else {
            unreachable!("an object literal")
        };
        Self {
            keys: keys.clone(),
            alg: Algorithm::RS256,
            kid: keys.kid().to_owned(),
            claims,
        }
    }

    /// Sets any claim.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// The requested scopes, space-separated.
    pub fn scope(self, scope: &str) -> Self {
        self.claim("scope", scope)
    }

    /// The audience.
    pub fn audience(self, aud: &str) -> Self {
        self.claim("aud", aud)
    }

    /// The issuer (the client id).
    pub fn issuer(self, iss: &str) -> Self {
        self.claim("iss", iss)
    }

    /// The assertion id.
    pub fn jti(self, jti: &str) -> Self {
        self.claim("jti", jti)
    }

    /// No `jti`, as Maskinporten allows and Altinn's own scripts send.
    pub fn without_jti(self) -> Self {
        self.without("jti")
    }

    /// `iat` at `seconds` from now (negative: in the past), keeping the lifetime.
    pub fn issued_in(self, seconds: i64) -> Self {
        let lifetime = self.exp() - self.iat();
        let iat = crate::now() + seconds;
        self.claim("iat", iat).claim("exp", iat + lifetime)
    }

    /// `exp - iat` in seconds.
    pub fn lifetime(self, seconds: i64) -> Self {
        let iat = self.iat();
        self.claim("exp", iat + seconds)
    }

    /// `exp` at `seconds` from now (negative: already expired), keeping `iat`.
    pub fn expiring_in(self, seconds: i64) -> Self {
        self.claim("exp", crate::now() + seconds)
    }

    /// The header's key id.
    pub fn kid(mut self, kid: &str) -> Self {
        self.kid = kid.to_owned();
        self
    }

    /// The header's algorithm (RS256, RS384 or RS512 sign with the key).
    pub fn alg(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self
    }

    /// Signs with `other` instead, keeping the header's `kid`: a forged signature.
    pub fn signed_by(mut self, other: &ClientKeys) -> Self {
        self.keys = other.clone();
        self
    }

    /// The claims as they will be signed.
    pub fn claims(&self) -> Value {
        Value::Object(self.claims.clone())
    }

    fn iat(&self) -> i64 {
        self.claims["iat"].as_i64().unwrap_or_else(crate::now)
    }

    fn exp(&self) -> i64 {
        self.claims["exp"].as_i64().unwrap_or_else(crate::now)
    }

    /// The signed JWT.
    pub fn sign(&self) -> String {
        self.keys.sign_as(self.alg, &self.kid, &self.claims())
    }

    /// The same header and claims signed with HMAC-SHA256 under `secret`: a symmetric forgery.
    pub fn sign_hs256(&self, secret: &[u8]) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        let key = EncodingKey::from_secret(secret).expect("an HMAC key");
        jsonwebtoken::encode(&header, &self.claims(), &key).expect("HS256 signing")
    }

    /// An unsecured JWT (`alg: none`, empty signature), written by hand since no library will.
    pub fn unsigned(&self) -> String {
        let header = json!({ "alg": "none", "kid": self.kid, "typ": "JWT" });
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(self.claims().to_string())
        )
    }
}
