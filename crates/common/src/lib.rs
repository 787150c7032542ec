//! What every Broker service needs once, so each service crate only wires its own domain.
//!
//! - [`config`]: typed settings from `BROKER_*` variables and an optional TOML file;
//! - [`telemetry`]: readable logs, or OpenTelemetry export when configured;
//! - [`problem`]: the one error shape, rendered as RFC 7807 problem+json or a gRPC status;
//! - [`shutdown`]: one cancellation signal threaded through every server and job;
//! - [`identity`]: organisation numbers and party URNs, parsed once at the edge;
//! - [`clock`]: the injectable source of "now";
//! - [`auth`]: verifying Broker access tokens against the token service's published keys;
//! - [`md5`]: the checksum Altinn's API speaks, at assembly speed;
//! - [`db`]: connecting to PostgreSQL (one schema per service) or SQLite;
//! - [`grpc`]: serving a service on a listener with health and graceful shutdown;
//! - [`call_log`]: failed gRPC calls logged by whose fault they were, callers' rate-limited;
//! - [`bus`]: RabbitMQ or the in-process bus, as configured;
//! - [`outbox`]: relaying committed outbox rows to the bus;
//! - [`changes`]: hearing of changes elsewhere through the bus;
//! - [`authz`]: asking the access registry for decisions, with a cache the bus keeps honest.

pub mod admin;
pub mod auth;
pub mod authz;
pub mod bus;
pub mod call_log;
pub mod changes;
pub mod checksum;
pub mod clock;
pub mod config;
pub mod db;
pub mod grpc;
pub mod identity;
pub mod md5;
pub mod metrics;
pub mod outbox;
pub mod problem;
pub mod shutdown;
pub mod telemetry;
pub mod transfer_event;

pub use problem::{AltinnError, Plain, Problem, ValidationError};
pub use shutdown::Shutdown;
