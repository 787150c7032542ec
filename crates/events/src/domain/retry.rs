//! Altinn Events' retry schedule for webhook deliveries: after each failed attempt the next one
//! waits the next delay; after the last delay's attempt fails, the delivery is a dead letter.
//! The validation handshake uses the same shape with its own delays.
//!
//! Schedules and durations are configured as text (`10s,30s,1m`), parsed once at start-up.

use chrono::{DateTime, TimeDelta, Utc};

/// Altinn's delays in seconds: 10 s, 30 s, 1 m, 5 m, 10 m, 30 m, 1 h, 3 h, 6 h, 12 h, 12 h.
const ALTINN_DELAYS: [i64; 11] = [
    10, 30, 60, 300, 600, 1800, 3600, 10_800, 21_600, 43_200, 43_200,
];

/// Why a duration or schedule setting is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not `<digits><unit>` with unit `ms`, `s`, `m` or `h`.
    #[error("`{0}` is not a duration such as 250ms, 10s, 5m or 1h")]
    Format(String),
    /// Too large to represent.
    #[error("`{0}` is too long")]
    TooLong(String),
}

/// Parses `<digits><unit>`, unit `ms`, `s`, `m` or `h` (surrounding spaces ignored).
pub fn parse_duration(text: &str) -> Result<TimeDelta, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| DurationError::Format(text.to_owned()))?;
    let (digits, unit) = text.split_at(split);
    let amount: i64 = digits
        .parse()
        .map_err(|_| DurationError::Format(text.to_owned()))?;
    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(DurationError::Format(text.to_owned())),
    };
    amount
        .checked_mul(millis_per_unit)
        .and_then(TimeDelta::try_milliseconds)
        .ok_or_else(|| DurationError::TooLong(text.to_owned()))
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// No tries left.
    DeadLetter,
}

/// The delays between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<TimeDelta>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::altinn()
    }
}

impl RetrySchedule {
    /// Altinn's schedule.
    pub fn altinn() -> Self {
        Self::new(
            ALTINN_DELAYS
                .iter()
                .map(|&s| TimeDelta::seconds(s))
                .collect(),
        )
    }

    /// Parses comma-separated delays such as `10s,30s,1m`; an empty text is no retries.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        if text.trim().is_empty() {
            return Ok(Self::new(Vec::new()));
        }
        text.split(',')
            .map(parse_duration)
            .collect::<Result<_, _>>()
            .map(Self::new)
    }

    /// A schedule with these delays, in order.
    pub fn new(delays: Vec<TimeDelta>) -> Self {
        Self { delays }
    }

    /// The same schedule with every delay divided by `divisor` (at least 1), so tests can run
    /// the whole schedule in seconds.
    pub fn scaled_down(&self, divisor: i32) -> Self {
        let divisor = divisor.max(1);
        Self::new(self.delays.iter().map(|&delay| delay / divisor).collect())
    }

    /// The delays.
    pub fn delays(&self) -> &[TimeDelta] {
        &self.delays
    }

    /// Attempts in all: the first plus one per delay.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// What to do after the `failed_attempts`-th attempt (1-based) failed at `now`.
    pub fn after_failure(&self, failed_attempts: u32, now: DateTime<Utc>) -> NextStep {
        let index = usize::try_from(failed_attempts)
            .unwrap_or(usize::MAX)
            .saturating_sub(1);
        match self.delays.get(index) {
            Some(&delay) if failed_attempts > 0 => NextStep::RetryAt(now + delay),
            _ => NextStep::DeadLetter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn follows_altinns_schedule_then_dead_letters() {
        let schedule = RetrySchedule::altinn();
        assert_eq!(schedule.max_attempts(), 12);
        let waits: Vec<i64> = (1..=11)
            .map(|failed| match schedule.after_failure(failed, at(0)) {
                NextStep::RetryAt(time) => (time - at(0)).num_seconds(),
                NextStep::DeadLetter => panic!("dead letter after {failed}"),
            })
            .collect();
        assert_eq!(waits, ALTINN_DELAYS);
        assert_eq!(schedule.after_failure(12, at(0)), NextStep::DeadLetter);
        assert_eq!(schedule.after_failure(0, at(0)), NextStep::DeadLetter);
    }

    #[test]
    fn parses_schedules_and_durations() {
        let schedule = RetrySchedule::parse("10s,30s,1m,5m,10m,30m,1h,3h,6h,12h,12h").unwrap();
        assert_eq!(schedule, RetrySchedule::altinn());
        let short = RetrySchedule::parse(" 100ms, 200ms ,300ms").unwrap();
        assert_eq!(short.delays()[1], TimeDelta::milliseconds(200));
        assert_eq!(short.max_attempts(), 4);
        assert_eq!(RetrySchedule::parse("").unwrap().max_attempts(), 1);
        for bad in [
            "10",
            "s",
            "10x",
            "-1s",
            "1.5s",
            "10s,",
            "99999999999999999h",
        ] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("30s").unwrap(), TimeDelta::seconds(30));
    }

    #[test]
    fn scales_for_tests() {
        let schedule = RetrySchedule::altinn().scaled_down(1000);
        assert_eq!(schedule.delays()[0], TimeDelta::milliseconds(10));
        assert_eq!(
            schedule.after_failure(11, at(0)),
            NextStep::RetryAt(at(0) + TimeDelta::milliseconds(43_200))
        );
        let custom = RetrySchedule::new(vec![TimeDelta::seconds(1)]);
        assert_eq!(custom.after_failure(2, at(0)), NextStep::DeadLetter);
    }
}
