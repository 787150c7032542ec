//! The validation handshake: before a subscription receives events, its endpoint must accept
//! a `platform.events.validatesubscription` CloudEvent with a 2xx (Altinn Events §5.3).
//!
//! The schedule lives in the subscription row (`validation_attempts`, `next_validation`), not
//! in memory: creating a subscription makes its first handshake due at once (and wakes this
//! loop), a failure schedules the next per the validation schedule, and a claim leases the row
//! by moving `next_validation` to the lease's end. So a restart resumes every handshake whose
//! schedule is not used up, and a crashed worker's handshake returns after its lease. When the
//! schedule is used up the subscription stays unvalidated and never receives events.

use std::sync::Arc;
use std::time::Duration;

use broker_common::Shutdown;
use broker_common::clock::Clock;
use chrono::TimeDelta;
use serde_json::json;
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

use crate::delivery::client::WebhookClient;
use crate::domain::retry::{NextStep, RetrySchedule};
use crate::store::{EventStore, PendingValidation, ValidationOutcome};

/// The CloudEvent type of the handshake.
pub const VALIDATION_TYPE: &str = "platform.events.validatesubscription";
/// How often an idle loop looks for handshakes that fell due.
const POLL: Duration = Duration::from_millis(500);
/// Pause after a store failure.
const STORE_PAUSE: Duration = Duration::from_secs(1);
/// Most handshakes in flight at once; they are rare next to deliveries.
const CONCURRENCY: usize = 16;

/// Runs validation handshakes.
pub struct Validator {
    shared: Arc<Shared>,
    wake: Arc<Notify>,
}

struct Shared {
    store: Arc<dyn EventStore>,
    client: WebhookClient,
    clock: Arc<dyn Clock>,
    schedule: RetrySchedule,
    lease: TimeDelta,
    public_url: String,
    slots: Arc<Semaphore>,
    wake: Arc<Notify>,
}

impl Validator {
    /// Validates the subscriptions of `store`; `wake` is notified when one is created.
    /// `timeout` is the client's per-POST timeout, which the lease must outlast.
    pub fn new(
        store: Arc<dyn EventStore>,
        client: WebhookClient,
        clock: Arc<dyn Clock>,
        schedule: RetrySchedule,
        timeout: Duration,
        public_url: String,
        wake: Arc<Notify>,
    ) -> Self {
        let timeout = TimeDelta::from_std(timeout).unwrap_or(TimeDelta::MAX / 4);
        Self {
            shared: Arc::new(Shared {
                store,
                client,
                clock,
                schedule,
                lease: timeout * 2 + TimeDelta::seconds(30),
                public_url: public_url.trim_end_matches('/').to_owned(),
                slots: Arc::new(Semaphore::new(CONCURRENCY)),
                wake: wake.clone(),
            }),
            wake,
        }
    }

    /// Claims and runs due handshakes until shutdown.
    pub async fn run(self, shutdown: Shutdown) {
        while !shutdown.is_triggered() {
            let free = self.shared.slots.available_permits();
            let pause = if free == 0 {
                POLL
            } else {
                let now = self.shared.clock.now();
                let lease_until = now + self.shared.lease;
                let limit = u32::try_from(free).unwrap_or(u32::MAX);
                match self
                    .shared
                    .store
                    .claim_validations(now, limit, lease_until)
                    .await
                {
                    Ok(claimed) => {
                        for pending in claimed {
                            let Ok(permit) = self.shared.slots.clone().try_acquire_owned() else {
                                break;
                            };
                            let shared = self.shared.clone();
                            tokio::spawn(async move {
                                shared.validate(pending).await;
                                drop(permit);
                                shared.wake.notify_one();
                            });
                        }
                        POLL
                    }
                    Err(error) => {
                        tracing::warn!(%error, "claiming validation handshakes failed");
                        STORE_PAUSE
                    }
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

impl Shared {
    /// One handshake and its record.
    async fn validate(&self, pending: PendingValidation) {
        let subscription = &pending.subscription;
        let event = json!({
            "id": Uuid::new_v4(),
            "source": format!(
                "{}/events/api/v1/subscriptions/{}",
                self.public_url, subscription.id
            ),
            "type": VALIDATION_TYPE,
            "specversion": "1.0",
        });
        let result = self
            .client
            .post(
                &subscription.request.end_point,
                event.to_string(),
                reqwest::header::HeaderMap::new(),
            )
            .await;
        let now = self.clock.now();
        let outcome = match result {
            Ok(_) => {
                tracing::info!(subscription = subscription.id, "subscription validated");
                ValidationOutcome::Validated
            }
            Err(error) => match self.schedule.after_failure(pending.attempts + 1, now) {
                NextStep::RetryAt(at) => {
                    tracing::debug!(subscription = subscription.id, %error, "validation failed; retrying");
                    ValidationOutcome::RetryAt(at)
                }
                NextStep::DeadLetter => {
                    tracing::warn!(
                        subscription = subscription.id,
                        %error,
                        "validation failed for the last time; the subscription gets no events"
                    );
                    ValidationOutcome::GiveUp
                }
            },
        };
        if let Err(error) = self.store.record_validation(subscription.id, outcome).await {
            tracing::warn!(
                subscription = subscription.id,
                %error,
                "recording a validation failed; it is retried when its lease runs out"
            );
        }
    }
}
