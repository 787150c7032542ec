//! Broker's daemon as a library: which services a process runs ([`Mode`]) and how they are
//! composed and started ([`start`]), so `brokerd` and in-process tests share one composition;
//! [`migrate`] brings their databases up to date, [`data_dir`] guards, checkpoints, backs up and
//! restores the embedded data directory, and [`demo`] seeds a broker for a first
//! transfer; [`memory`] keeps the allocator from growing with an upload's length.
//!
//! The binary (`main.rs`) only parses its arguments, reads the configuration, sets up telemetry
//! and prints what [`Running`] reports; everything between configuration and serving is here.

mod config;
pub mod data_dir;
pub mod demo;
pub mod memory;
pub mod migrate;
mod mode;
mod service;
mod start;

pub use config::Config;
pub use mode::Mode;
pub use service::{Service, UnknownService};
pub use start::{Running, start};
