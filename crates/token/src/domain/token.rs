//! The claims of the tokens the service issues: Maskinporten-style access tokens and the
//! platform tokens of the exchange.

use broker_common::auth::OrgClaim;
use broker_common::identity::OrgNumber;
use serde_json::{Map, Value, json};

use super::grant::VerifiedGrant;

/// The ISO 6523 authority Maskinporten writes in `consumer`.
pub const ISO6523_AUTHORITY: &str = "iso6523-actorid-upis";
/// Claims the exchange drops from the incoming token, as Altinn Authentication does.
pub const DROPPED_ON_EXCHANGE: [&str; 4] = ["aud", "iss", "client_amr", "sid"];
/// The scope that makes a registered service owner's platform token carry `urn:altinn:org`.
pub const SERVICE_OWNER_SCOPE: &str = "altinn:serviceowner";

/// Claims of an access token issued for a verified grant.
pub fn access_token(
    issuer: &str,
    client_id: &str,
    org: OrgNumber,
    grant: &VerifiedGrant,
    now: i64,
    lifetime: i64,
    jti: &str,
) -> Map<String, Value> {
    let mut claims = json!({
        "iss": issuer,
        "client_id": client_id,
        "client_amr": "private_key_jwt",
        "consumer": OrgClaim { authority: ISO6523_AUTHORITY.to_owned(), id: org.iso6523() },
        "scope": grant.scopes.join(" "),
        "token_type": "Bearer",
        "iat": now,
        "exp": now + lifetime,
        "jti": jti,
    });
    if let Some(resource) = &grant.resource {
        claims["aud"] = resource.clone();
    }
    match claims {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

/// The organisation a Maskinporten-style token's `consumer` names, when it names one properly.
pub fn consumer_org(claims: &Map<String, Value>) -> Option<OrgNumber> {
    let consumer: OrgClaim = serde_json::from_value(claims.get("consumer")?.clone()).ok()?;
    if consumer.authority != ISO6523_AUTHORITY {
        return None;
    }
    let digits = consumer.id.strip_prefix("0192:")?;
    OrgNumber::parse(digits).ok()
}

/// Whether the token's scopes include `altinn:serviceowner`.
pub fn asks_for_service_owner(claims: &Map<String, Value>) -> bool {
    claims
        .get("scope")
        .and_then(Value::as_str)
        .is_some_and(|scope| scope.split_whitespace().any(|s| s == SERVICE_OWNER_SCOPE))
}

/// The platform token's claims: the incoming ones minus [`DROPPED_ON_EXCHANGE`], with Altinn's
/// added claims, a fresh `sid` and a new lifetime.
pub fn platform_token(
    mut incoming: Map<String, Value>,
    org: OrgNumber,
    org_code: Option<String>,
    platform_issuer: &str,
    now: i64,
    lifetime: i64,
    sid: &str,
) -> Map<String, Value> {
    for claim in DROPPED_ON_EXCHANGE {
        incoming.remove(claim);
    }
    incoming.insert("iss".into(), platform_issuer.into());
    incoming.insert("urn:altinn:orgNumber".into(), org.to_string().into());
    incoming.insert(
        "urn:altinn:authenticatemethod".into(),
        "maskinporten".into(),
    );
    incoming.insert("urn:altinn:authlevel".into(), 3.into());
    incoming.insert("sid".into(), sid.into());
    incoming.insert("iat".into(), now.into());
    incoming.insert("nbf".into(), now.into());
    incoming.insert("exp".into(), (now + lifetime).into());
    match org_code {
        Some(code) => incoming.insert("urn:altinn:org".into(), code.into()),
        None => incoming.remove("urn:altinn:org"),
    };
    incoming
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_drops_and_adds_the_documented_claims() {
        let org = OrgNumber::parse("991825827").unwrap();
        let incoming = json!({
            "iss": "https://mp/", "aud": "x", "client_amr": "private_key_jwt", "sid": "old",
            "scope": "altinn:serviceowner", "client_id": "c", "jti": "j",
            "consumer": {"authority": ISO6523_AUTHORITY, "ID": "0192:991825827"},
            "urn:altinn:org": "forged",
        });
        let Value::Object(incoming) = incoming else {
            unreachable!()
        };
        assert_eq!(consumer_org(&incoming), Some(org));
        assert!(asks_for_service_owner(&incoming));
        let out = platform_token(
            incoming,
            org,
            None,
            "https://b/authentication/api/v1/openid/",
            100,
            1800,
            "s",
        );
        assert_eq!(out["iss"], "https://b/authentication/api/v1/openid/");
        assert!(out.get("aud").is_none() && out.get("client_amr").is_none());
        assert!(
            out.get("urn:altinn:org").is_none(),
            "an incoming org claim must not survive"
        );
        assert_eq!(out["sid"], "s");
        assert_eq!(out["jti"], "j");
        assert_eq!(out["urn:altinn:orgNumber"], "991825827");
        assert_eq!(out["urn:altinn:authlevel"], 3);
        assert_eq!(out["exp"], 1900);
    }
}
