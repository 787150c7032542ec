//! Hearing of changes made elsewhere: a broadcast subscription that runs a callback for every
//! message on some routing keys, used to drop cached decisions when access rules change.
//!
//! Each listener has its own exclusive queue, so every process hears every change. While the
//! connection is down changes may be missed, so the callback also runs after every
//! (re)subscription: a cache that cannot trust what it missed starts over.

use std::sync::Arc;
use std::time::Duration;

use broker_bus::{Bus, QueueKind, Subscription};

use crate::Shutdown;

/// Pause before subscribing again after the bus failed.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// Calls `on_change` for every message matching `bindings`, and after every subscription.
pub async fn listen(
    bus: Arc<dyn Bus>,
    bindings: Vec<String>,
    on_change: Arc<dyn Fn() + Send + Sync>,
    shutdown: Shutdown,
) {
    while !shutdown.is_triggered() {
        let subscription = Subscription {
            queue: QueueKind::Exclusive,
            bindings: bindings.clone(),
            prefetch: 100,
        };
        match bus.subscribe(subscription).await {
            Ok(mut subscriber) => {
                on_change();
                loop {
                    let delivery = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        delivery = subscriber.next() => delivery,
                    };
                    match delivery {
                        Some(Ok(delivery)) => {
                            on_change();
                            if let Err(error) = delivery.ack().await {
                                tracing::warn!(%error, "acking a change notice failed");
                            }
                        }
                        Some(Err(error)) => {
                            tracing::warn!(%error, "change subscription failed; subscribing again");
                            break;
                        }
                        None => break,
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot subscribe to changes; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RESUBSCRIBE_AFTER) => {}
        }
    }
}
