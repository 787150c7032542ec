//! Choosing the bus: RabbitMQ when `BROKER_AMQP_URL` is set, else the in-process bus, which
//! only reaches services in the same process (embedded mode).

use std::sync::Arc;

use anyhow::Context;
use broker_bus::{Bus, InProcessBus, RabbitBus};

use crate::config::CommonConfig;

/// The bus the configuration names.
pub async fn connect(common: &CommonConfig) -> anyhow::Result<Arc<dyn Bus>> {
    match &common.amqp_url {
        Some(url) => {
            let bus = RabbitBus::connect(url, &common.amqp_exchange)
                .await
                .context("connecting to RabbitMQ (BROKER_AMQP_URL)")?;
            Ok(Arc::new(bus))
        }
        None => Ok(Arc::new(InProcessBus::new())),
    }
}
