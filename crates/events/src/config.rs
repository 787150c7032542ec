//! The event service's own settings, read from `BROKER_*` variables by
//! [`broker_common::config::load`] (a field `events_x` is `BROKER_EVENTS_X`); [`SETTINGS`]
//! documents them for the README. Durations and schedules stay text here and are parsed once
//! by [`EventsConfig::parsed`], so a bad value stops start-up with the setting's name.

use std::time::Duration;

use broker_common::config::Setting;
use serde::{Deserialize, Serialize};

use crate::domain::retry::{DurationError, RetrySchedule, parse_duration};

/// Altinn's delivery retry delays (reference §5.4).
pub const DEFAULT_RETRY_SCHEDULE: &str = "10s,30s,1m,5m,10m,30m,1h,3h,6h,12h,12h";
/// Altinn's validation retries: cooldowns 1, 5, 10 s, then 30 s, 1 m and 2 m three times (§5.3).
pub const DEFAULT_VALIDATION_SCHEDULE: &str = "1s,5s,10s,30s,1m,2m,2m,2m";

/// Settings of the event service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EventsConfig {
    /// Allow loopback, private and link-local webhook endpoints.
    pub events_allow_private_endpoints: bool,
    /// Delays between delivery attempts.
    pub events_retry_schedule: String,
    /// Delays between validation handshake attempts.
    pub events_validation_schedule: String,
    /// Timeout of one POST to a webhook.
    pub events_delivery_timeout: String,
    /// Most concurrent POSTs to one endpoint.
    pub events_max_per_endpoint: usize,
    /// Most concurrent POSTs in all.
    pub events_max_in_flight: usize,
    /// Bus prefetch of the ingest consumer.
    pub events_prefetch: u16,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            events_allow_private_endpoints: false,
            events_retry_schedule: DEFAULT_RETRY_SCHEDULE.to_owned(),
            events_validation_schedule: DEFAULT_VALIDATION_SCHEDULE.to_owned(),
            events_delivery_timeout: "30s".to_owned(),
            events_max_per_endpoint: 8,
            events_max_in_flight: 256,
            events_prefetch: 64,
        }
    }
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct InvalidSetting {
    /// The variable.
    pub setting: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// [`EventsConfig`] parsed into the types the service uses.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// See [`EventsConfig::events_allow_private_endpoints`].
    pub allow_private_endpoints: bool,
    /// Delivery retries.
    pub retry: RetrySchedule,
    /// Validation handshake retries.
    pub validation: RetrySchedule,
    /// Per-POST timeout.
    pub timeout: Duration,
    /// Most concurrent POSTs to one endpoint (at least 1).
    pub max_per_endpoint: usize,
    /// Most concurrent POSTs in all (at least 1).
    pub max_in_flight: usize,
}

impl EventsConfig {
    /// Parses the durations and schedules and checks the limits.
    pub fn parsed(&self) -> Result<DeliverySettings, InvalidSetting> {
        fn schedule(setting: &'static str, text: &str) -> Result<RetrySchedule, InvalidSetting> {
            RetrySchedule::parse(text).map_err(|error: DurationError| InvalidSetting {
                setting,
                reason: error.to_string(),
            })
        }
        fn positive(setting: &'static str, value: usize) -> Result<usize, InvalidSetting> {
            if value == 0 {
                return Err(InvalidSetting {
                    setting,
                    reason: "must be at least 1".to_owned(),
                });
            }
            Ok(value)
        }
        let timeout = parse_duration(&self.events_delivery_timeout)
            .ok()
            .and_then(|delta| delta.to_std().ok())
            .filter(|timeout| !timeout.is_zero())
            .ok_or_else(|| InvalidSetting {
                setting: "BROKER_EVENTS_DELIVERY_TIMEOUT",
                reason: format!(
                    "`{}` is not a positive duration such as 30s",
                    self.events_delivery_timeout
                ),
            })?;
        if self.events_prefetch == 0 {
            return Err(InvalidSetting {
                setting: "BROKER_EVENTS_PREFETCH",
                reason: "must be at least 1 (0 would be unbounded)".to_owned(),
            });
        }
        Ok(DeliverySettings {
            allow_private_endpoints: self.events_allow_private_endpoints,
            retry: schedule("BROKER_EVENTS_RETRY_SCHEDULE", &self.events_retry_schedule)?,
            validation: schedule(
                "BROKER_EVENTS_VALIDATION_SCHEDULE",
                &self.events_validation_schedule,
            )?,
            timeout,
            max_per_endpoint: positive(
                "BROKER_EVENTS_MAX_PER_ENDPOINT",
                self.events_max_per_endpoint,
            )?,
            max_in_flight: positive("BROKER_EVENTS_MAX_IN_FLIGHT", self.events_max_in_flight)?,
        })
    }
}

/// The settings of [`EventsConfig`], for the README's configuration table.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "BROKER_EVENTS_ALLOW_PRIVATE_ENDPOINTS",
        default: "false",
        description: "Allow webhook endpoints on loopback, private and link-local addresses (checked again on every resolved address); for tests and closed networks.",
    },
    Setting {
        name: "BROKER_EVENTS_RETRY_SCHEDULE",
        default: "10s,30s,1m,5m,10m,30m,1h,3h,6h,12h,12h",
        description: "Delays between webhook delivery attempts (units ms, s, m, h), Altinn's by default; when the attempt after the last delay fails, the delivery becomes a dead letter.",
    },
    Setting {
        name: "BROKER_EVENTS_VALIDATION_SCHEDULE",
        default: "1s,5s,10s,30s,1m,2m,2m,2m",
        description: "Delays between attempts of a new subscription's validation handshake; when they are used up the subscription stays unvalidated and never receives events.",
    },
    Setting {
        name: "BROKER_EVENTS_DELIVERY_TIMEOUT",
        default: "30s",
        description: "Timeout of one webhook POST (delivery or validation handshake).",
    },
    Setting {
        name: "BROKER_EVENTS_MAX_PER_ENDPOINT",
        default: "8",
        description: "Most concurrent webhook POSTs to one endpoint URL.",
    },
    Setting {
        name: "BROKER_EVENTS_MAX_IN_FLIGHT",
        default: "256",
        description: "Most concurrent webhook POSTs of one event-service process.",
    },
    Setting {
        name: "BROKER_EVENTS_PREFETCH",
        default: "64",
        description: "Unacknowledged file-transfer events the ingest consumer holds (and processes concurrently).",
    },
];

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn defaults_are_altinns() {
        let settings = EventsConfig::default().parsed().unwrap();
        assert_eq!(settings.retry, RetrySchedule::altinn());
        assert_eq!(settings.validation.max_attempts(), 9);
        assert_eq!(settings.timeout, Duration::from_secs(30));
        assert!(!settings.allow_private_endpoints);
        assert_eq!(SETTINGS.len(), 7);
    }

    #[test]
    fn bad_values_name_their_setting() {
        let config = EventsConfig {
            events_retry_schedule: "10s,often".into(),
            ..EventsConfig::default()
        };
        assert_eq!(
            config.parsed().unwrap_err().setting,
            "BROKER_EVENTS_RETRY_SCHEDULE"
        );
        let config = EventsConfig {
            events_delivery_timeout: "0s".into(),
            ..EventsConfig::default()
        };
        assert_eq!(
            config.parsed().unwrap_err().setting,
            "BROKER_EVENTS_DELIVERY_TIMEOUT"
        );
        let config = EventsConfig {
            events_max_in_flight: 0,
            ..EventsConfig::default()
        };
        assert!(config.parsed().is_err());
        let short = EventsConfig {
            events_retry_schedule: "100ms,200ms".into(),
            ..EventsConfig::default()
        };
        assert_eq!(
            short.parsed().unwrap().retry.delays()[0],
            TimeDelta::milliseconds(100)
        );
    }
}
