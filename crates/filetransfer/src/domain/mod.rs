//! The file-transfer domain: statuses, transfers, settings and validation.
