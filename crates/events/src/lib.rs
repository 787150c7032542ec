//! The event service: file-transfer events as CloudEvents, Altinn Events–compatible
//! subscriptions, and the durable state of webhook delivery.

pub mod domain;
pub mod store;
