//! Background work of the token service: key rotation and forgetting expired replay keys
//! (assertion ids, and digests of assertions without one).
//! Every replica runs it; both jobs are idempotent and race-safe through the store.

use std::sync::Arc;
use std::time::Duration;

use broker_common::Shutdown;
use broker_common::clock::Clock;

use crate::keys::KeyRing;
use crate::store::TokenStore;

/// How often the jobs run. Well under the key lead time, so a replica reloads a new key long
/// before it starts signing.
pub const INTERVAL: Duration = Duration::from_secs(30);
/// Replay keys are kept this long past their assertion's expiry, to cover clock skew between
/// replicas.
const REPLAY_MARGIN_SECONDS: i64 = 60;

/// Runs until shutdown.
pub async fn run(
    store: Arc<dyn TokenStore>,
    keys: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
) {
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = clock.unix();
        if let Err(error) = keys.maintain(now).await {
            tracing::error!(%error, "signing key maintenance failed");
        }
        match store.purge_assertions(now - REPLAY_MARGIN_SECONDS).await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "expired replay keys forgotten"),
            Err(error) => tracing::error!(%error, "purging replay keys failed"),
        }
    }
}
