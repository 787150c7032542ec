//! The event service's domain: CloudEvents, subscriptions and their filters, the retry schedule,
//! and the errors clients see.

pub mod cloud_event;
pub mod error;
pub mod retry;
pub mod subscription;
