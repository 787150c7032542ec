//! The RabbitMQ server tests may use, named by `BROKER_TEST_AMQP_URL`.
//!
//! Without the variable, RabbitMQ tests skip with a line saying so; in CI they fail instead.

use crate::database::in_ci;

/// The variable naming the RabbitMQ server.
pub const SERVER_VAR: &str = "BROKER_TEST_AMQP_URL";

/// The AMQP URL, or `None` (after printing why) when RabbitMQ tests should skip.
///
/// Panics in CI without `BROKER_TEST_AMQP_URL`.
pub fn amqp_url() -> Option<String> {
    match std::env::var(SERVER_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if in_ci() => {
            panic!("{SERVER_VAR} is not set but CI is: RabbitMQ tests must run in CI, not skip")
        }
        _ => {
            println!("skipping: {SERVER_VAR} not set");
            None
        }
    }
}
