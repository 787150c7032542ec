//! Table-driven checks that report every failing case at once: each case names the rule it
//! proves, and a run lists all the rules the broker broke instead of stopping at the first.

use std::fmt::Write;

use serde_json::Value;

use crate::reply::Reply;

/// What a case expects of the broker's answer.
#[derive(Debug, Clone, Copy)]
pub enum Expected<'a> {
    /// Exactly this status (a success, or an error whose body does not matter).
    Status(u16),
    /// A problem with this status and broker error code (`BRO-000nn`).
    Code(u16, u16),
    /// A 400 validation problem whose `errors` name this field (case-insensitive).
    Field(&'a str),
}

impl Expected<'_> {
    /// Why `reply` does not meet this expectation, or `None` when it does.
    pub fn mismatch(&self, reply: &Reply) -> Option<String> {
        let status = reply.status.as_u16();
        let problem = || {
            reply
                .has_problem_type()
                .then(|| serde_json::from_str::<Value>(&reply.body).ok())
                .flatten()
        };
        let ok = match *self {
            Expected::Status(expected) => status == expected,
            Expected::Code(expected, code) => {
                status == expected
                    && problem().is_some_and(|p| p["code"] == format!("BRO-{code:05}"))
            }
            Expected::Field(field) => {
                let wanted = field.to_lowercase();
                status == 400
                    && problem().is_some_and(|p| {
                        p["errors"].as_object().is_some_and(|errors| {
                            errors
                                .keys()
                                .any(|key| key.to_lowercase().contains(&wanted))
                        })
                    })
            }
        };
        (!ok).then(|| {
            format!(
                "expected {self:?}, got {status} {} {}",
                reply.content_type(),
                reply.body
            )
        })
    }
}

/// Collected failures of named cases.
#[derive(Debug, Default)]
pub struct Checklist {
    failures: Vec<String>,
    checked: usize,
}

impl Checklist {
    /// An empty checklist.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records whether the case `name` got what it `expected`.
    pub fn check(&mut self, name: &str, reply: &Reply, expected: Expected<'_>) {
        self.checked += 1;
        if let Some(why) = expected.mismatch(reply) {
            self.failures
                .push(format!("{name}: {}: {why}", reply.request));
        }
    }

    /// Records a failure found by other means.
    pub fn fail(&mut self, name: &str, why: impl std::fmt::Display) {
        self.checked += 1;
        self.failures.push(format!("{name}: {why}"));
    }

    /// Panics listing every failed case, if any.
    #[track_caller]
    pub fn assert_all_passed(&self) {
        if self.failures.is_empty() {
            return;
        }
        let mut text = format!(
            "{} of {} cases failed:\n",
            self.failures.len(),
            self.checked
        );
        for failure in &self.failures {
            let _ = writeln!(text, "- {failure}");
        }
        panic!("{text}");
    }
}
