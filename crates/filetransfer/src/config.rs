//! The file-transfer service's own settings, read from `BROKER_*` variables by
//! [`broker_common::config::load`]; [`SETTINGS`] documents them for the README.

use broker_common::config::Setting;
use serde::{Deserialize, Serialize};

/// Altinn's global ceiling on a transfer's size: 100 GiB.
pub const DEFAULT_MAX_FILE_TRANSFER_SIZE: u64 = 100 * 1024 * 1024 * 1024;
/// Altinn's ceiling when the virus scan is on: 2 GiB, what its scanner accepts.
pub const DEFAULT_MAX_VIRUS_SCAN_SIZE: u64 = 2 * 1024 * 1024 * 1024;
/// Upload part size: above S3's 5 MiB minimum part, small enough to keep memory flat.
pub const DEFAULT_UPLOAD_PART_BYTES: usize = 8 * 1024 * 1024;

/// Settings of the file-transfer service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct FileTransferConfig {
    /// `s3://bucket/prefix` for S3-compatible storage; local disk under `<data dir>/files` when unset.
    pub storage_url: Option<String>,
    /// The largest transfer any resource may allow (error 22 above it).
    pub max_file_transfer_size: u64,
    /// The largest transfer a resource with the virus scan on may allow (error 13 above it).
    pub max_virus_scan_size: u64,
    /// Bytes written to storage per part.
    pub upload_part_bytes: usize,
}

impl Default for FileTransferConfig {
    fn default() -> Self {
        Self {
            storage_url: None,
            max_file_transfer_size: DEFAULT_MAX_FILE_TRANSFER_SIZE,
            max_virus_scan_size: DEFAULT_MAX_VIRUS_SCAN_SIZE,
            upload_part_bytes: DEFAULT_UPLOAD_PART_BYTES,
        }
    }
}

/// The settings of [`FileTransferConfig`], for the README's configuration table.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "BROKER_STORAGE_URL",
        default: "unset (local disk under `<data dir>/files`)",
        description: "Where file bytes live: `s3://bucket/prefix` for S3-compatible storage, configured by the usual `AWS_*` variables (`AWS_ENDPOINT` for MinIO).",
    },
    Setting {
        name: "BROKER_MAX_FILE_TRANSFER_SIZE",
        default: "107374182400 (100 GiB)",
        description: "The largest file transfer any resource may allow, in bytes.",
    },
    Setting {
        name: "BROKER_MAX_VIRUS_SCAN_SIZE",
        default: "2147483648 (2 GiB)",
        description: "The largest file transfer a resource with the virus scan on may allow, in bytes.",
    },
    Setting {
        name: "BROKER_UPLOAD_PART_BYTES",
        default: "8388608 (8 MiB)",
        description: "Bytes written to storage per upload part (S3 needs at least 5 MiB); memory per upload is a small multiple of it.",
    },
];
