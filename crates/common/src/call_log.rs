//! How a served gRPC call that did not succeed is logged: by whose fault it was.
//!
//! ERROR is what an operator must act on, so only a server's own failures (Internal, Unknown,
//! DataLoss, Unavailable, or a broken transport) are logged there, every time. A caller's
//! mistake (a bad argument, an unknown id, a missing or refused token, a conflict) is logged at
//! WARN (credentials) or INFO (the rest), and at most [`LINES_PER_WINDOW`] times per
//! [`WINDOW`] for each status code: any caller can send bad requests in a loop, and that must
//! not flood the log. The first line logged after a window in which lines were dropped says how
//! many were.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tonic::Code;
use tower_http::classify::GrpcFailureClass;
use tower_http::trace::OnFailure;
use tracing::{Level, Span};

/// Lines logged per status code and window for callers' mistakes.
pub const LINES_PER_WINDOW: u32 = 10;
/// The window [`LINES_PER_WINDOW`] counts in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The level a call answered with `code` is logged at: ERROR only for the server's own faults.
pub fn level(code: Code) -> Level {
    match code {
        Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable => Level::ERROR,
        Code::Unauthenticated | Code::PermissionDenied => Level::WARN,
        _ => Level::INFO,
    }
}

/// Whether a line may be logged now, and how many like it were dropped before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Log it; `dropped` lines of its kind were left out in the window before.
    Log {
        /// Lines of this kind not logged since the last one that was.
        dropped: u64,
    },
    /// Leave it out (counted for the next line that is logged).
    Drop,
}

/// Counts lines per kind in fixed windows.
#[derive(Debug)]
pub struct RateLimit {
    per_window: u32,
    window: Duration,
    kinds: Mutex<HashMap<String, Window>>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    logged: u32,
    dropped: u64,
}

impl RateLimit {
    /// At most `per_window` lines of each kind per `window`.
    pub fn new(per_window: u32, window: Duration) -> Self {
        Self {
            per_window,
            window,
            kinds: Mutex::default(),
        }
    }

    /// Whether a line of `kind` at `now` is logged.
    pub fn admit(&self, kind: &str, now: Instant) -> Admission {
        // A poisoned lock only means another thread panicked while counting; the counts are
        // still usable.
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        let window = kinds.entry(kind.to_owned()).or_insert(Window {
            started: now,
            logged: 0,
            dropped: 0,
        });
        if now.duration_since(window.started) >= self.window {
            let dropped = window.dropped;
            *window = Window {
                started: now,
                logged: 1,
                dropped: 0,
            };
            return Admission::Log { dropped };
        }
        if window.logged < self.per_window {
            window.logged += 1;
            Admission::Log { dropped: 0 }
        } else {
            window.dropped += 1;
            Admission::Drop
        }
    }
}

/// The process's limit on callers' mistakes, shared by every service it runs.
fn client_faults() -> &'static RateLimit {
    static LIMIT: OnceLock<RateLimit> = OnceLock::new();
    LIMIT.get_or_init(|| RateLimit::new(LINES_PER_WINDOW, WINDOW))
}

/// tower-http's hook for failed calls, logging each by [`level`] instead of all at ERROR.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogByFault;

impl OnFailure<GrpcFailureClass> for LogByFault {
    fn on_failure(&mut self, failure: GrpcFailureClass, latency: Duration, _span: &Span) {
        let latency_ms = latency.as_millis();
        let code = match failure {
            GrpcFailureClass::Code(code) => Code::from_i32(code.get()),
            GrpcFailureClass::Error(error) => {
                tracing::error!(%error, latency_ms, "gRPC call failed");
                return;
            }
        };
        let level = level(code);
        if level == Level::ERROR {
            tracing::error!(?code, latency_ms, "gRPC call failed");
            return;
        }
        let Admission::Log { dropped } = client_faults().admit(code.description(), Instant::now())
        else {
            return;
        };
        if level == Level::WARN {
            tracing::warn!(?code, latency_ms, dropped, "gRPC call refused");
        } else {
            tracing::info!(?code, latency_ms, dropped, "gRPC call refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_faults_are_errors() {
        for code in [
            Code::Internal,
            Code::Unknown,
            Code::DataLoss,
            Code::Unavailable,
        ] {
            assert_eq!(level(code), Level::ERROR, "{code:?}");
        }
        for code in [Code::Unauthenticated, Code::PermissionDenied] {
            assert_eq!(level(code), Level::WARN, "{code:?}");
        }
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::FailedPrecondition,
            Code::OutOfRange,
            Code::ResourceExhausted,
            Code::Aborted,
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Unimplemented,
        ] {
            assert_eq!(level(code), Level::INFO, "{code:?}");
        }
    }

    #[test]
    fn repeated_lines_are_dropped_then_counted() {
        let limit = RateLimit::new(2, Duration::from_secs(60));
        let start = Instant::now();
        assert_eq!(limit.admit("a", start), Admission::Log { dropped: 0 });
        assert_eq!(limit.admit("a", start), Admission::Log { dropped: 0 });
        assert_eq!(limit.admit("a", start), Admission::Drop);
        assert_eq!(limit.admit("a", start), Admission::Drop);
        // Another kind has its own count.
        assert_eq!(limit.admit("b", start), Admission::Log { dropped: 0 });
        let later = start + Duration::from_secs(60);
        assert_eq!(limit.admit("a", later), Admission::Log { dropped: 2 });
        assert_eq!(limit.admit("a", later), Admission::Log { dropped: 0 });
    }
}
