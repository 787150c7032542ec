//! The file-transfer domain: statuses, transfers, settings, statistics and validation.

pub mod error;
pub mod event;
pub mod lifecycle;
pub mod settings;
pub mod statistics;
pub mod status;
pub mod transfer;
pub mod validation;
