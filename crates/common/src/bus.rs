//! Choosing the bus: RabbitMQ when `BROKER_AMQP_URL` is set, else the in-process bus, which
//! only reaches services in the same process (embedded mode).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use broker_bus::{Bus, BusError, InProcessBus, RabbitBus};
use tokio::time::Instant;

use crate::config::CommonConfig;

/// How long start-up keeps dialling RabbitMQ: a broker that is still booting, restarting or
/// slow to answer under load must not turn into a crash loop of every service that needs it.
const START_UP_WAIT: Duration = Duration::from_secs(90);
/// The first pause between attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// The longest pause between attempts.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// The bus the configuration names.
pub async fn connect(common: &CommonConfig) -> anyhow::Result<Arc<dyn Bus>> {
    match &common.amqp_url {
        Some(url) => {
            let bus = connect_rabbit(url, &common.amqp_exchange, START_UP_WAIT)
                .await
                .context("connecting to RabbitMQ (BROKER_AMQP_URL)")?;
            Ok(Arc::new(bus))
        }
        None => Ok(Arc::new(InProcessBus::new())),
    }
}

/// Dials RabbitMQ until it answers or `wait` has passed; only connection failures are retried.
async fn connect_rabbit(url: &str, exchange: &str, wait: Duration) -> Result<RabbitBus, BusError> {
    let deadline = Instant::now() + wait;
    let mut pause = FIRST_PAUSE;
    loop {
        match RabbitBus::connect(url, exchange).await {
            Ok(bus) => return Ok(bus),
            Err(error @ BusError::Connection(_)) if Instant::now() + pause < deadline => {
                tracing::warn!(%error, retry_in = ?pause, "RabbitMQ is not answering yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_broker_that_never_answers_is_given_up_after_the_wait() {
        // Nothing listens on port 1 of loopback, so every attempt is refused at once.
        let started = Instant::now();
        let error = connect_rabbit(
            "amqp://guest:guest@127.0.0.1:1/%2f",
            "x",
            Duration::from_secs(1),
        )
        .await
        .expect_err("nobody listens there");
        assert!(matches!(error, BusError::Connection(_)), "{error}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(700),
            "gave up after {waited:?}"
        );
        assert!(
            waited < Duration::from_secs(3),
            "kept trying for {waited:?}"
        );
    }

    #[tokio::test]
    async fn a_bad_exchange_name_is_not_retried() {
        let started = Instant::now();
        let long = "x".repeat(300);
        let error = connect_rabbit("amqp://127.0.0.1:1/%2f", &long, Duration::from_secs(30))
            .await
            .expect_err("the name is too long");
        assert!(matches!(error, BusError::Invalid { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
