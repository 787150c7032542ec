//! Broker's daemon as a library: which services a process runs ([`Mode`]) and how they are
//! composed and started ([`start`]), so `brokerd` and in-process tests share one composition.
//!
//! The binary (`main.rs`) only parses its arguments, reads the configuration, sets up telemetry
//! and prints what [`Running`] reports; everything between configuration and serving is here.

mod mode;
mod service;
mod start;

pub use mode::Mode;
pub use service::{Service, UnknownService};
pub use start::{Running, start};
