//! Per-client rate limits by operation (`BROKER_RATE_LIMITS`), as Altinn's API management
//! limits its broker API: each client (the verified token's organisation and client id) has its
//! own allowance per operation, refilled continuously (governor's GCRA, a burst of the whole
//! allowance); an excess call gets 429 with `Retry-After`.
//!
//! Off unless configured, so benchmarks and single-tenant installs are not throttled. The
//! counters live in this process: N gateway replicas allow N times the limit.
//!
//! A request whose token does not verify is not counted: the handler refuses it anyway, and
//! counting it under the client id it claims would let anyone spend another client's allowance.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use broker_common::Problem;
use broker_common::auth::TokenVerifier;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use http::{HeaderValue, Method, StatusCode, header};

use crate::auth::{Authenticated, bearer_token};

/// An operation limited on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// `POST …/filetransfer` and `POST …/filetransfer/upload`.
    Initialize,
    /// `POST …/filetransfer/{id}/upload`.
    Upload,
    /// `GET …/filetransfer/{id}`.
    Overview,
    /// `GET …/filetransfer/{id}/details`.
    Details,
    /// `GET …/filetransfer/{id}/download`.
    Download,
    /// `POST …/filetransfer/{id}/confirmdownload`.
    Confirm,
    /// `GET …/filetransfer`.
    Search,
    /// `POST /token`, keyed by the peer's address (the caller has no token yet).
    Token,
}

const FILETRANSFER: &str = "/broker/api/v1/filetransfer";

impl Operation {
    /// Every operation with its name in `BROKER_RATE_LIMITS`.
    const NAMES: [(&'static str, Self); 8] = [
        ("initialize", Self::Initialize),
        ("upload", Self::Upload),
        ("overview", Self::Overview),
        ("details", Self::Details),
        ("download", Self::Download),
        ("confirm", Self::Confirm),
        ("search", Self::Search),
        ("token", Self::Token),
    ];

    /// The names of every operation, comma-separated.
    fn known() -> String {
        Self::NAMES.map(|(name, _)| name).join(", ")
    }

    fn named(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, operation)| *operation)
    }

    /// The operation a request to route template `route` with `method` is.
    fn of(method: &Method, route: &str) -> Option<Self> {
        if route == "/token" {
            return (method == Method::POST).then_some(Self::Token);
        }
        let rest = route.strip_prefix(FILETRANSFER)?;
        Some(match (method, rest) {
            (&Method::POST, "" | "/upload") => Self::Initialize,
            (&Method::GET, "") => Self::Search,
            (&Method::POST, "/{fileTransferId}/upload") => Self::Upload,
            (&Method::GET, "/{fileTransferId}") => Self::Overview,
            (&Method::GET, "/{fileTransferId}/details") => Self::Details,
            (&Method::GET, "/{fileTransferId}/download") => Self::Download,
            (&Method::POST, "/{fileTransferId}/confirmdownload") => Self::Confirm,
            _ => return None,
        })
    }
}

/// Altinn's API-management limits, per client and minute.
const ALTINN: [(Operation, u32); 7] = [
    (Operation::Initialize, 120),
    (Operation::Upload, 120),
    (Operation::Overview, 120),
    (Operation::Download, 120),
    (Operation::Confirm, 120),
    (Operation::Details, 15),
    (Operation::Search, 10),
];

/// Why `BROKER_RATE_LIMITS` does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RateLimitError {
    /// An entry is not `altinn` or `operation=N/unit`.
    #[error("`{0}` is not `altinn` or `operation=N/unit` (such as `search=10/min`)")]
    Entry(String),
    /// An unknown operation name.
    #[error("unknown operation `{0}`; known: {known}", known = Operation::known())]
    Operation(String),
    /// A count that is not a positive integer.
    #[error("`{0}` is not a positive number of calls")]
    Count(String),
    /// A unit that is not s, min or h.
    #[error("unknown unit `{0}`; use s, min or h")]
    Unit(String),
}

/// One operation's limit: `calls` per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Calls allowed in each period (and at once).
    pub calls: NonZeroU32,
    /// The period.
    pub period: Duration,
}

impl Limit {
    fn per_minute(calls: u32) -> Self {
        Self {
            calls: NonZeroU32::new(calls).unwrap_or(NonZeroU32::MIN),
            period: Duration::from_secs(60),
        }
    }

    /// `120/min` → 120 calls a minute.
    fn parse(text: &str) -> Result<Self, RateLimitError> {
        let (calls, unit) = text
            .split_once('/')
            .ok_or_else(|| RateLimitError::Entry(text.to_owned()))?;
        let calls = calls
            .trim()
            .parse::<NonZeroU32>()
            .map_err(|_| RateLimitError::Count(calls.trim().to_owned()))?;
        let period = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => return Err(RateLimitError::Unit(other.to_owned())),
        };
        Ok(Self { calls, period })
    }

    fn quota(self) -> Quota {
        // `calls` at once, then one more every period / calls.
        let interval = self.period / self.calls.get();
        Quota::with_period(interval.max(Duration::from_nanos(1)))
            .expect("a positive interval")
            .allow_burst(self.calls)
    }
}

/// Keys kept per operation before idle ones are dropped (`retain_recent`), so addresses seen
/// once at `/token` do not pile up.
const PRUNE_ABOVE: usize = 10_000;

/// The configured limits with their counters; cheap to clone.
#[derive(Clone, Default)]
pub struct RateLimits {
    limits: Arc<HashMap<Operation, (Limit, DefaultKeyedRateLimiter<String>)>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.limits.iter().map(|(op, (limit, _))| (op, limit)))
            .finish()
    }
}

impl RateLimits {
    /// Parses `BROKER_RATE_LIMITS`: empty or `off` for none; `altinn` for Altinn's limits;
    /// `operation=N/unit` entries, comma-separated, a later one replacing an earlier one.
    pub fn parse(text: &str) -> Result<Self, RateLimitError> {
        let mut limits = HashMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry.eq_ignore_ascii_case("off") {
                continue;
            }
            if entry.eq_ignore_ascii_case("altinn") {
                for (operation, calls) in ALTINN {
                    limits.insert(operation, Limit::per_minute(calls));
                }
                continue;
            }
            let (name, limit) = entry
                .split_once('=')
                .ok_or_else(|| RateLimitError::Entry(entry.to_owned()))?;
            let operation = Operation::named(name.trim())
                .ok_or_else(|| RateLimitError::Operation(name.trim().to_owned()))?;
            limits.insert(operation, Limit::parse(limit)?);
        }
        let limits = limits
            .into_iter()
            .map(|(operation, limit)| {
                let limiter = DefaultKeyedRateLimiter::keyed(limit.quota());
                (operation, (limit, limiter))
            })
            .collect();
        Ok(Self {
            limits: Arc::new(limits),
        })
    }

    /// Whether no operation is limited.
    pub fn is_off(&self) -> bool {
        self.limits.is_empty()
    }

    /// The limit of `operation`, if it has one.
    pub fn limit(&self, operation: Operation) -> Option<Limit> {
        self.limits.get(&operation).map(|(limit, _)| *limit)
    }

    /// Counts a call of `operation` by `key`; `Err` with the wait until the next allowed call.
    fn check(&self, operation: Operation, key: String) -> Result<(), Duration> {
        let Some((_, limiter)) = self.limits.get(&operation) else {
            return Ok(());
        };
        if limiter.len() > PRUNE_ABOVE {
            limiter.retain_recent();
        }
        limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// What the rate-limit middleware needs: the limits and the verifier that names the client.
#[derive(Clone)]
pub struct Limiter {
    /// The configured limits.
    pub limits: RateLimits,
    /// Verifies the caller's token, so only a proven client id is counted.
    pub verifier: Arc<TokenVerifier>,
}

/// Counts the request against its client's allowance for its operation, answering 429 when it
/// is spent. The verified caller is kept in the request for the handler's extractor, so the
/// token is verified once.
pub async fn limit(State(limiter): State<Limiter>, mut request: Request, next: Next) -> Response {
    let operation = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|route| Operation::of(request.method(), route.as_str()));
    let Some(operation) = operation.filter(|op| limiter.limits.limit(*op).is_some()) else {
        return next.run(request).await;
    };
    let key = if operation == Operation::Token {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip().to_string())
    } else {
        match bearer_token(request.headers()) {
            Ok(token) => limiter.verifier.verify(token).await.ok(),
            Err(_) => None,
        }
        .map(|caller| {
            let key = format!("{}/{}", caller.org, caller.client_id);
            request.extensions_mut().insert(Authenticated(caller));
            key
        })
    };
    let Some(key) = key else {
        return next.run(request).await;
    };
    match limiter.limits.check(operation, key) {
        Ok(()) => next.run(request).await,
        Err(wait) => too_many_requests(wait),
    }
}

/// 429 as a problem, with `Retry-After` in whole seconds (at least 1).
fn too_many_requests(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut response = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("this client's rate limit for the operation is spent; retry in {seconds} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_altinn_preset_is_altinns_limits() {
        let limits = RateLimits::parse("altinn").unwrap();
        for operation in [
            Operation::Initialize,
            Operation::Upload,
            Operation::Overview,
            Operation::Download,
            Operation::Confirm,
        ] {
            assert_eq!(limits.limit(operation), Some(Limit::per_minute(120)));
        }
        assert_eq!(
            limits.limit(Operation::Details),
            Some(Limit::per_minute(15))
        );
        assert_eq!(limits.limit(Operation::Search), Some(Limit::per_minute(10)));
        assert_eq!(limits.limit(Operation::Token), None);
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let limits = RateLimits::parse("altinn, search=5/s ,token=3/h").unwrap();
        let search = limits.limit(Operation::Search).unwrap();
        assert_eq!(
            (search.calls.get(), search.period),
            (5, Duration::from_secs(1))
        );
        let token = limits.limit(Operation::Token).unwrap();
        assert_eq!(
            (token.calls.get(), token.period),
            (3, Duration::from_secs(3600))
        );
        assert_eq!(
            limits.limit(Operation::Details),
            Some(Limit::per_minute(15))
        );
    }

    #[test]
    fn unset_or_off_limits_nothing() {
        assert!(RateLimits::parse("").unwrap().is_off());
        assert!(RateLimits::parse("off").unwrap().is_off());
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        assert_eq!(
            RateLimits::parse("search").unwrap_err(),
            RateLimitError::Entry("search".to_owned())
        );
        assert_eq!(
            RateLimits::parse("upload=1/min,purge=1/min").unwrap_err(),
            RateLimitError::Operation("purge".to_owned())
        );
        assert_eq!(
            RateLimits::parse("search=0/min").unwrap_err(),
            RateLimitError::Count("0".to_owned())
        );
        assert_eq!(
            RateLimits::parse("search=1/week").unwrap_err(),
            RateLimitError::Unit("week".to_owned())
        );
    }

    #[test]
    fn routes_map_to_their_operations() {
        let cases = [
            (
                Method::POST,
                "/broker/api/v1/filetransfer",
                Some(Operation::Initialize),
            ),
            (
                Method::POST,
                "/broker/api/v1/filetransfer/upload",
                Some(Operation::Initialize),
            ),
            (
                Method::GET,
                "/broker/api/v1/filetransfer",
                Some(Operation::Search),
            ),
            (
                Method::GET,
                "/broker/api/v1/filetransfer/{fileTransferId}",
                Some(Operation::Overview),
            ),
            (
                Method::GET,
                "/broker/api/v1/filetransfer/{fileTransferId}/details",
                Some(Operation::Details),
            ),
            (Method::POST, "/token", Some(Operation::Token)),
            (Method::GET, "/broker/api/v1/resource/{resourceId}", None),
        ];
        for (method, route, expected) in cases {
            assert_eq!(Operation::of(&method, route), expected, "{method} {route}");
        }
    }

    #[test]
    fn a_spent_allowance_waits_for_the_next_call() {
        let limits = RateLimits::parse("search=2/min").unwrap();
        assert!(limits.check(Operation::Search, "a".to_owned()).is_ok());
        assert!(limits.check(Operation::Search, "a".to_owned()).is_ok());
        let wait = limits.check(Operation::Search, "a".to_owned()).unwrap_err();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(limits.check(Operation::Search, "b".to_owned()).is_ok());
        assert!(limits.check(Operation::Overview, "a".to_owned()).is_ok());
    }
}
