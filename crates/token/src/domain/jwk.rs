//! Public RSA keys as JWKs: validating the ones clients register, and turning them into
//! verification keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use broker_common::auth::RsaJwk;
use jsonwebtoken::DecodingKey;

use super::error::TokenError;

/// Smallest RSA modulus accepted, in bits (Maskinporten and NIST require 2048).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits; bigger keys only cost verification time.
pub const MAX_RSA_BITS: usize = 8192;
/// Longest key id accepted.
pub const MAX_KID_LEN: usize = 255;

/// Checks one client JWK; `field` names it in errors (e.g. `jwks.keys[0]`).
pub fn validate(jwk: &RsaJwk, field: &str) -> Result<(), TokenError> {
    if jwk.kty != "RSA" {
        return Err(TokenError::invalid(
            format!("{field}.kty"),
            "only RSA keys are accepted",
        ));
    }
    if jwk.kid.is_empty() || jwk.kid.len() > MAX_KID_LEN || !jwk.kid.bytes().all(is_kid_byte) {
        return Err(TokenError::invalid(
            format!("{field}.kid"),
            "kid is 1-255 characters of letters, digits and . _ - :",
        ));
    }
    if let Some(alg) = &jwk.alg
        && !matches!(alg.as_str(), "RS256" | "RS384" | "RS512")
    {
        return Err(TokenError::invalid(
            format!("{field}.alg"),
            "alg must be RS256, RS384 or RS512",
        ));
    }
    if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
        return Err(TokenError::invalid(
            format!("{field}.use"),
            "use must be sig",
        ));
    }
    let modulus = URL_SAFE_NO_PAD
        .decode(&jwk.n)
        .map_err(|_| TokenError::invalid(format!("{field}.n"), "n is not base64url"))?;
    let bits = significant_bits(&modulus);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(TokenError::invalid(
            format!("{field}.n"),
            format!("the modulus has {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"),
        ));
    }
    let exponent = URL_SAFE_NO_PAD
        .decode(&jwk.e)
        .map_err(|_| TokenError::invalid(format!("{field}.e"), "e is not base64url"))?;
    if exponent.is_empty() || exponent.len() > 8 {
        return Err(TokenError::invalid(
            format!("{field}.e"),
            "e is not a usable RSA exponent",
        ));
    }
    decoding_key(jwk)
        .map(|_| ())
        .ok_or_else(|| TokenError::invalid(field, "not a usable RSA key"))
}

/// The verification key of a JWK, or `None` when it cannot be one.
pub fn decoding_key(jwk: &RsaJwk) -> Option<DecodingKey> {
    DecodingKey::from_rsa_components(&jwk.n, &jwk.e).ok()
}

fn is_kid_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b':')
}

fn significant_bits(big_endian: &[u8]) -> usize {
    match big_endian.iter().position(|&b| b != 0) {
        Some(first) => (big_endian.len() - first) * 8 - big_endian[first].leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_modulus_bits() {
        assert_eq!(significant_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(significant_bits(&[0x01]), 1);
        assert_eq!(significant_bits(&[]), 0);
    }

    #[test]
    fn refuses_small_and_symmetric_keys() {
        let small = RsaJwk {
            kty: "RSA".into(),
            kid: "k1".into(),
            n: URL_SAFE_NO_PAD.encode([0xff; 128]),
            e: "AQAB".into(),
            key_use: None,
            alg: None,
        };
        assert!(
            matches!(validate(&small, "k"), Err(TokenError::Invalid { field, .. }) if field == "k.n")
        );
        let oct = RsaJwk {
            kty: "oct".into(),
            ..small
        };
        assert!(
            matches!(validate(&oct, "k"), Err(TokenError::Invalid { field, .. }) if field == "k.kty")
        );
    }
}
