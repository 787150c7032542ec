//! Who is calling: extractors for the two credentials the gateway accepts, and the scope guard.
//!
//! - [`Authenticated`]: a Broker access token (Maskinporten-style or platform), verified here
//!   against the token service's published keys before anything is forwarded;
//! - [`Authorized`]: the same, holding one of the scopes of a route's [`Policy`], checked before
//!   the rest of the request is read (ASP.NET authorizes before it binds) and refused as
//!   Altinn's servers refuse: 401 with a bearer challenge or 403, no body;
//! - [`ResumableAuthorized`]: [`Authorized`], but for the tus upload routes, whose uploads may
//!   outlive a token: one expired less than [`TokenGrace`] ago is accepted too and forwarded
//!   (the service accepts it only from the client that started the upload, while it runs);
//! - [`Admin`]: the operator's admin credential, compared in constant time and forwarded so the
//!   owning service checks it again.
//!
//! Tokens never reach logs: extractors keep them out of `Debug` output and spans.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use broker_common::Problem;
use broker_common::admin::AdminToken;
use broker_common::auth::{Caller, TokenVerifier};
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};

/// The bearer token of `Authorization: Bearer <token>`; 401 with a challenge when absent.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Problem> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| missing_credentials("the request has no Authorization header"))?;
    let text = value
        .to_str()
        .map_err(|_| Problem::unauthorized("the Authorization header is not readable"))?;
    // The scheme is case-insensitive (RFC 9110 §11.1); the token itself must not be empty.
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(Problem::unauthorized(
            "the Authorization header is not `Bearer <token>`",
        )),
    }
}

/// Refuses a request with more than one `Authorization` header (400): a proxy in front that
/// reads the last one would have authorised someone other than the caller we see first.
pub async fn single_authorization(request: Request, next: Next) -> Response {
    if request
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "the request has more than one Authorization header",
        )
        .into_response();
    }
    next.run(request).await
}

/// 401 for a request without credentials: RFC 6750 §3.1 says the challenge then carries no error.
fn missing_credentials(detail: &str) -> Problem {
    Problem {
        www_authenticate: Some("Bearer".to_owned()),
        ..Problem::new(StatusCode::UNAUTHORIZED, detail)
    }
}

/// A caller with a verified Broker access token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

impl Authenticated {
    /// The caller, if its token carries at least one of `scopes` (no scopes: any token, as a
    /// bare `[Authorize]`); else 403 `insufficient_scope`.
    pub fn require_any_scope(&self, scopes: &[&str]) -> Result<&Caller, Problem> {
        if scopes.is_empty() || scopes.iter().any(|scope| self.0.has_scope(scope)) {
            return Ok(&self.0);
        }
        // RFC 6750 §3: the challenge's `scope` is a space-separated list.
        let wanted = scopes.join(" ");
        Err(Problem {
            detail: Some(format!("the token needs one of the scopes: {wanted}")),
            ..Problem::insufficient_scope(&wanted)
        })
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        // The rate limiter verified it already to name the client.
        if let Some(caller) = parts.extensions.get::<Self>().cloned() {
            return Ok(caller);
        }
        let token = bearer_token(&parts.headers)?;
        let verifier = Arc::<TokenVerifier>::from_ref(state);
        verifier.verify(token).await.map(Self)
    }
}

/// The scopes a route accepts, any one of which is enough: an ASP.NET authorization policy
/// (Altinn's `Sender` is `altinn:broker.write`, say).
pub trait Policy {
    /// The accepted scopes; none for any authenticated caller, as a bare `[Authorize]`.
    const SCOPES: &'static [&'static str];
}

/// A caller whose token holds one of `P`'s scopes.
pub struct Authorized<P> {
    caller: Authenticated,
    policy: PhantomData<P>,
}

impl<P> Deref for Authorized<P> {
    type Target = Authenticated;

    fn deref(&self) -> &Authenticated {
        &self.caller
    }
}

impl<P: Policy> Authorized<P> {
    /// `caller`, if it holds one of `P`'s scopes.
    fn new(caller: Authenticated) -> Result<Self, Problem> {
        caller.require_any_scope(P::SCOPES)?;
        Ok(Self {
            caller,
            policy: PhantomData,
        })
    }
}

impl<S, P> FromRequestParts<S> for Authorized<P>
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
    P: Policy,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let caller = Authenticated::from_request_parts(parts, state)
            .await
            .map_err(refused)?;
        Self::new(caller).map_err(refused)
    }
}

/// How long after its expiry a token still opens the tus upload routes
/// (`BROKER_TUS_TOKEN_GRACE_SECONDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenGrace(pub Duration);

/// [`Authorized`] for the tus upload routes: the token may have expired less than
/// [`TokenGrace`] ago, as Altinn lets a running upload go on past its token (the service
/// decides whether this upload may: the same client, while it runs).
pub struct ResumableAuthorized<P>(Authorized<P>);

impl<P> Deref for ResumableAuthorized<P> {
    type Target = Authenticated;

    fn deref(&self) -> &Authenticated {
        &self.0
    }
}

impl<S, P> FromRequestParts<S> for ResumableAuthorized<P>
where
    Arc<TokenVerifier>: FromRef<S>,
    TokenGrace: FromRef<S>,
    S: Send + Sync,
    P: Policy,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let caller = match parts.extensions.get::<Authenticated>().cloned() {
            // Verified already (by the rate limiter), and unexpired.
            Some(caller) => Ok(caller),
            None => match bearer_token(&parts.headers) {
                Ok(token) => Arc::<TokenVerifier>::from_ref(state)
                    .verify_within_grace(token, TokenGrace::from_ref(state).0)
                    .await
                    .map(|(caller, _)| Authenticated(caller)),
                Err(problem) => Err(problem),
            },
        };
        Authorized::new(caller.map_err(refused)?)
            .map(Self)
            .map_err(refused)
    }
}

/// ASP.NET's answer to a failed authentication (401 with the bearer challenge, which carries
/// the reason) or authorization (403): no body.
pub fn refused(problem: Problem) -> Response {
    let mut response = crate::problem::bare(problem.status_code());
    if problem.status == 401
        && let Some(challenge) = problem
            .www_authenticate
            .as_deref()
            .and_then(|c| http::HeaderValue::from_str(c).ok())
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
}

/// A request carrying the admin credential; holds the presented token to forward it.
pub struct Admin(String);

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admin(<redacted>)")
    }
}

impl Admin {
    /// A gRPC request for `message` with the admin credential in its metadata.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        broker_common::grpc::with_bearer(tonic::Request::new(message), &self.0)
    }
}

impl<S> FromRequestParts<S> for Admin
where
    AdminToken: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let token = bearer_token(&parts.headers)?;
        if AdminToken::from_ref(state).matches(token) {
            Ok(Self(token.to_owned()))
        } else {
            Err(Problem::unauthorized("the admin credential is not valid"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker_common::auth::TokenKind;
    use broker_common::identity::OrgNumber;

    fn caller(scopes: &[&str]) -> Authenticated {
        Authenticated(Caller {
            org: OrgNumber::parse("991825827").unwrap(),
            client_id: "client".to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            org_code: None,
            system_user_id: None,
            consumer: None,
            kind: TokenKind::Maskinporten,
            token: String::new(),
        })
    }

    #[test]
    fn any_listed_scope_is_enough() {
        let caller = caller(&["altinn:broker.read"]);
        assert!(
            caller
                .require_any_scope(&["altinn:broker.read", "altinn:broker.write"])
                .is_ok()
        );
    }

    #[test]
    fn no_scopes_asked_is_any_token() {
        assert!(caller(&[]).require_any_scope(&[]).is_ok());
    }

    #[test]
    fn a_missing_scope_is_forbidden_with_a_challenge() {
        let problem = caller(&["altinn:broker.read"])
            .require_any_scope(&["altinn:broker.write", "altinn:serviceowner"])
            .unwrap_err();
        assert_eq!(problem.status, 403);
        assert_eq!(
            problem.www_authenticate.as_deref(),
            Some(concat!(
                "Bearer error=\"insufficient_scope\", ",
                "scope=\"altinn:broker.write altinn:serviceowner\""
            ))
        );
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            bearer_token(&headers)
                .unwrap_err()
                .www_authenticate
                .as_deref(),
            Some("Bearer")
        );
        headers.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&headers).unwrap(), "abc");
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers).unwrap_err().status, 401);
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer_token(&headers).unwrap_err().status, 401);
    }
}
