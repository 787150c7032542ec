//! Signed deliveries as the Standard Webhooks specification defines them
//! (<https://www.standardwebhooks.com>): the secret is `whsec_<base64 key>`, and each POST
//! carries `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, so receivers can use the specification's libraries to verify.
//!
//! HMAC is a dozen lines over SHA-256 (RFC 2104), which saves a dependency.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of a generated key (the specification asks for 24 to 64).
const KEY_BYTES: usize = 24;
/// SHA-256's block size, which HMAC pads the key to.
const BLOCK: usize = 64;

/// A subscription's signing secret (`whsec_…`): shown to its owner once, never in logs, so its
/// `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl SigningSecret {
    /// Wraps a generated or stored secret.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret itself: for signing, storing, and the one answer that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(redacted)")
    }
}

/// A new random secret, `whsec_<base64 of 24 random bytes>`.
pub fn generate_secret() -> Result<String, getrandom::Error> {
    let mut key = [0u8; KEY_BYTES];
    getrandom::fill(&mut key)?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|byte| byte ^ 0x36));
    for part in message {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|byte| byte ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// `v1,<signature>` of `body` sent as message `id` at `timestamp` (Unix seconds), or `None`
/// if `secret` is not a Standard Webhooks secret.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let timestamp = timestamp.to_string();
    let mac = hmac_sha256(
        &key,
        &[
            id.as_bytes(),
            b".",
            timestamp.as_bytes(),
            b".",
            body.as_bytes(),
        ],
    );
    Some(format!("v1,{}", STANDARD.encode(mac)))
}

/// The three headers of a signed POST, or `None` if `secret` is malformed.
pub fn headers(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &str,
) -> Option<Vec<(HeaderName, HeaderValue)>> {
    let signature = signature(secret, id, timestamp, body)?;
    Some(vec![
        (
            HeaderName::from_static("webhook-id"),
            HeaderValue::from_str(id).ok()?,
        ),
        (
            HeaderName::from_static("webhook-timestamp"),
            HeaderValue::from(timestamp),
        ),
        (
            HeaderName::from_static("webhook-signature"),
            HeaderValue::from_str(&signature).ok()?,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let hex: String = mac.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        let mac = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        let hex: String = mac.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(
            hex,
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn matches_the_standard_webhooks_example() {
        // The reference implementations' test vector.
        let signed = signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signed.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert!(signature("not-a-secret", "id", 1, "").is_none());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = SigningSecret::new("whsec_c2VjcmV0".to_owned());
        let shown = format!("{:?}", Some(secret.clone()));
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert_eq!(secret.expose(), "whsec_c2VjcmV0");
    }

    #[test]
    fn generates_distinct_secrets_of_the_right_shape() {
        let one = generate_secret().unwrap();
        let two = generate_secret().unwrap();
        assert_ne!(one, two);
        let key = STANDARD
            .decode(one.strip_prefix(SECRET_PREFIX).unwrap())
            .unwrap();
        assert_eq!(key.len(), KEY_BYTES);
        assert_eq!(headers(&one, "id", 1, "{}").unwrap().len(), 3);
    }
}
