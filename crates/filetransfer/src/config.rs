//! The file-transfer service's own settings, read from `BROKER_*` variables by
//! [`broker_common::config::load`]; [`SETTINGS`] documents them for the README.

use std::time::Duration;

use broker_common::config::Setting;
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

/// Altinn's global ceiling on a transfer's size: 32 × 50,000 MiB, about 1.6 TB (its error 22
/// still says "100GB").
pub const DEFAULT_MAX_FILE_TRANSFER_SIZE: u64 = 32 * 50_000 * 1024 * 1024;
/// Altinn's ceiling when the virus scan is on: 50 GB (10⁹ bytes each), what its scanner takes.
pub const DEFAULT_MAX_VIRUS_SCAN_SIZE: u64 = 50_000_000_000;
/// Part size of uploads to S3: above its 5 MiB minimum part, small enough to keep memory flat.
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
    /// How often each replica runs the lifecycle jobs (purge, stuck uploads, byte sweep).
    pub lifecycle_interval: String,
    /// How long an upload may stay in UploadStarted before it is failed.
    pub stuck_upload_after: String,
    /// How long a transfer may stay in UploadProcessing (waiting for a scan) before it is failed.
    pub stuck_processing_after: String,
    /// Seconds an upload's lease lasts unless the process writing it renews it.
    pub upload_lease_seconds: u64,
    /// `host:port` of a ClamAV daemon to scan uploads with (INSTREAM); no clamd when unset.
    pub clamd_addr: Option<String>,
    /// The bearer credential an external scanner presents to the malware-scan-result webhook;
    /// when set (and no clamd is), uploads to scan wait for that scanner's verdict.
    pub malware_scan_token: Option<String>,
    /// Seconds a resumable (tus) upload lives after its last request unless another comes.
    pub tus_expiration_seconds: u64,
    /// Seconds after its expiry a token may still carry requests of a resumable upload its
    /// client created.
    pub tus_token_grace_seconds: u64,
}

impl Default for FileTransferConfig {
    fn default() -> Self {
        Self {
            storage_url: None,
            max_file_transfer_size: DEFAULT_MAX_FILE_TRANSFER_SIZE,
            max_virus_scan_size: DEFAULT_MAX_VIRUS_SCAN_SIZE,
            upload_part_bytes: DEFAULT_UPLOAD_PART_BYTES,
            lifecycle_interval: DEFAULT_LIFECYCLE_INTERVAL.to_owned(),
            stuck_upload_after: DEFAULT_STUCK_UPLOAD_AFTER.to_owned(),
            stuck_processing_after: DEFAULT_STUCK_PROCESSING_AFTER.to_owned(),
            upload_lease_seconds: DEFAULT_UPLOAD_LEASE_SECONDS,
            clamd_addr: None,
            malware_scan_token: None,
            tus_expiration_seconds: DEFAULT_TUS_EXPIRATION_SECONDS,
            tus_token_grace_seconds: DEFAULT_TUS_TOKEN_GRACE_SECONDS,
        }
    }
}

/// How often the lifecycle jobs run.
pub const DEFAULT_LIFECYCLE_INTERVAL: &str = "30s";
/// Altinn fails an upload stuck in UploadStarted after 24 hours (ecosystem.md §6.5).
pub const DEFAULT_STUCK_UPLOAD_AFTER: &str = "24h";
/// Altinn only alerts after 15 minutes in UploadProcessing; we fail after an hour, ample for
/// a scanner to read the largest scannable file.
pub const DEFAULT_STUCK_PROCESSING_AFTER: &str = "1h";

/// An upload's lease lasts this long unless renewed (a third of it between renewals): an upload
/// whose process died is failed this long after, plus at most half of it until the job's next
/// round, so within a minute.
pub const DEFAULT_UPLOAD_LEASE_SECONDS: u64 = 30;

/// Altinn's resumable uploads expire 24 hours after their last request (a sliding expiration).
pub const DEFAULT_TUS_EXPIRATION_SECONDS: u64 = 24 * 60 * 60;
/// Altinn accepts an expired token on a resumable upload its party has been active on within
/// the expiration; the grace is that long by default.
pub const DEFAULT_TUS_TOKEN_GRACE_SECONDS: u64 = 24 * 60 * 60;

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct InvalidSetting {
    /// The variable.
    pub setting: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// The lifecycle settings, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleSettings {
    /// See [`FileTransferConfig::lifecycle_interval`].
    pub interval: Duration,
    /// See [`FileTransferConfig::stuck_upload_after`].
    pub stuck_upload_after: TimeDelta,
    /// See [`FileTransferConfig::stuck_processing_after`].
    pub stuck_processing_after: TimeDelta,
    /// See [`FileTransferConfig::upload_lease_seconds`].
    pub upload_lease: TimeDelta,
}

impl LifecycleSettings {
    /// How long the jobs wait between rounds: the interval, or half an upload lease when that
    /// is shorter, so that an abandoned upload is failed soon after its lease lapses.
    pub fn round_every(&self) -> Duration {
        let half_lease = (self.upload_lease / 2).to_std().unwrap_or(self.interval);
        self.interval.min(half_lease)
    }
}

impl FileTransferConfig {
    /// How long a resumable upload lives after its last request: at least a second, at most
    /// a year (what a transfer may live).
    pub fn tus_expiration(&self) -> Result<TimeDelta, InvalidSetting> {
        i64::try_from(self.tus_expiration_seconds)
            .ok()
            .filter(|seconds| (1..=365 * 24 * 60 * 60).contains(seconds))
            .map(TimeDelta::seconds)
            .ok_or_else(|| InvalidSetting {
                setting: "BROKER_TUS_EXPIRATION_SECONDS",
                reason: format!(
                    "{} is not between 1 and 31536000 seconds",
                    self.tus_expiration_seconds
                ),
            })
    }

    /// The lifecycle durations, or the first that does not parse as a positive duration.
    pub fn lifecycle(&self) -> Result<LifecycleSettings, InvalidSetting> {
        let positive = |setting: &'static str, text: &str| {
            parse_setting_duration(text)
                .filter(|delta| *delta > TimeDelta::zero())
                .ok_or_else(|| InvalidSetting {
                    setting,
                    reason: format!(
                        "`{text}` is not a positive duration such as 30s, 15m, 24h or PT1H"
                    ),
                })
        };
        let interval = positive("BROKER_LIFECYCLE_INTERVAL", &self.lifecycle_interval)?;
        let upload_lease = i64::try_from(self.upload_lease_seconds)
            .ok()
            .and_then(TimeDelta::try_seconds)
            .filter(|lease| *lease > TimeDelta::zero())
            .ok_or_else(|| InvalidSetting {
                setting: "BROKER_UPLOAD_LEASE_SECONDS",
                reason: format!(
                    "`{}` is not a positive number of seconds",
                    self.upload_lease_seconds
                ),
            })?;
        Ok(LifecycleSettings {
            interval: interval.to_std().unwrap_or(Duration::from_secs(30)),
            stuck_upload_after: positive("BROKER_STUCK_UPLOAD_AFTER", &self.stuck_upload_after)?,
            stuck_processing_after: positive(
                "BROKER_STUCK_PROCESSING_AFTER",
                &self.stuck_processing_after,
            )?,
            upload_lease,
        })
    }
}

/// A duration setting: a whole number with a unit as the event service's settings take them
/// (`500ms`, `30s`, `15m`, `24h`, and `7d`), or an ISO-8601 duration as resource settings take
/// them (`PT1H`, `P1D`).
pub fn parse_setting_duration(text: &str) -> Option<TimeDelta> {
    let text = text.trim();
    if text.starts_with('P') {
        return crate::domain::settings::parse_duration(text);
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let amount: i64 = digits.parse().ok()?;
    let millis_per_unit: i64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    TimeDelta::try_milliseconds(amount.checked_mul(millis_per_unit)?)
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
        description: "Bytes per part of an upload to S3-compatible storage (at least 5 MiB); memory per such upload is a small multiple of it. Uploads to local disk are written as they arrive.",
    },
    Setting {
        name: "BROKER_LIFECYCLE_INTERVAL",
        default: "30s",
        description: "How often every file-transfer replica runs the lifecycle jobs: purge on time to live and after all recipients confirmed, fail stuck uploads, delete the bytes of purged and failed transfers. Rows are taken with `FOR UPDATE SKIP LOCKED`, so replicas share the work. Durations are `500ms`, `30s`, `15m`, `24h`, `7d` or ISO-8601 (`PT1H`).",
    },
    Setting {
        name: "BROKER_STUCK_UPLOAD_AFTER",
        default: "24h (Altinn's)",
        description: "An upload still in UploadStarted this long after it began is failed (`uploadfailed`) and its bytes removed.",
    },
    Setting {
        name: "BROKER_STUCK_PROCESSING_AFTER",
        default: "1h",
        description: "A transfer still in UploadProcessing (waiting for a malware verdict) this long is failed (`uploadfailed`) and its bytes removed.",
    },
    Setting {
        name: "BROKER_UPLOAD_LEASE_SECONDS",
        default: "30",
        description: "An upload holds a lease for this long, renewed by the process receiving it while it runs (every third of it). Once the lease lapses (the process was killed or stopped mid-upload), the lifecycle job of any replica fails the transfer (`uploadfailed`) and removes its partial bytes (staging file, or S3 multipart upload); the jobs then run at least every half lease.",
    },
    Setting {
        name: "BROKER_CLAMD_ADDR",
        default: "unset (no clamd)",
        description: "`host:port` of a ClamAV daemon: uploads of transfers with the virus scan on are streamed to it (INSTREAM) before they are published; a FOUND verdict fails the transfer and deletes its bytes.",
    },
    Setting {
        name: "BROKER_MALWARE_SCAN_TOKEN",
        default: "unset (no external scanner)",
        description: "Credential of an external malware scanner (one that watches the storage, as Defender for Storage does, and reads `<fileTransferId>` objects): uploads to scan wait in UploadProcessing until it posts its verdict to `POST /broker/api/v1/webhooks/malwarescanresults` with `Authorization: Bearer <token>`. Ignored for scanning when `BROKER_CLAMD_ADDR` is set (clamd then scans; the webhook still accepts verdicts). Without either, uploads are published unscanned.",
    },
    Setting {
        name: "BROKER_TUS_EXPIRATION_SECONDS",
        default: "86400 (24 h, Altinn's)",
        description: "A resumable (tus) upload expires this long after its last request (`Upload-Expires`, sliding with every PATCH); once expired, the lifecycle job fails its transfer (`uploadfailed`) and removes its bytes. Resumable uploads are never failed as stuck (`BROKER_STUCK_UPLOAD_AFTER`) while they are alive.",
    },
    Setting {
        name: "BROKER_TUS_TOKEN_GRACE_SECONDS",
        default: "86400 (24 h)",
        description: "How long after its expiry an access token may still carry the requests (HEAD, PATCH, DELETE, the final concatenation) of a resumable upload created by the same organisation and client, so a long upload outlives its token; never a token of another party. Set the same value on the gateway.",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_other_settings_do() {
        assert_eq!(parse_setting_duration("30s"), Some(TimeDelta::seconds(30)));
        assert_eq!(parse_setting_duration("15m"), Some(TimeDelta::minutes(15)));
        assert_eq!(parse_setting_duration("24h"), Some(TimeDelta::hours(24)));
        assert_eq!(parse_setting_duration("2d"), Some(TimeDelta::days(2)));
        assert_eq!(
            parse_setting_duration("250ms"),
            Some(TimeDelta::milliseconds(250))
        );
        assert_eq!(parse_setting_duration("PT1H"), Some(TimeDelta::hours(1)));
        for bad in ["", "10", "s", "1w", "-1s", "P"] {
            assert_eq!(parse_setting_duration(bad), None, "{bad}");
        }
        let defaults = FileTransferConfig::default().lifecycle().unwrap();
        assert_eq!(defaults.interval, Duration::from_secs(30));
        assert_eq!(defaults.stuck_upload_after, TimeDelta::hours(24));
        let bad = FileTransferConfig {
            stuck_upload_after: "0s".into(),
            ..FileTransferConfig::default()
        };
        assert_eq!(
            bad.lifecycle().unwrap_err().setting,
            "BROKER_STUCK_UPLOAD_AFTER"
        );
        let no_lease = FileTransferConfig {
            upload_lease_seconds: 0,
            ..FileTransferConfig::default()
        };
        assert_eq!(
            no_lease.lifecycle().unwrap_err().setting,
            "BROKER_UPLOAD_LEASE_SECONDS"
        );
    }

    #[test]
    fn rounds_come_at_least_every_half_lease() {
        let defaults = FileTransferConfig::default().lifecycle().unwrap();
        assert_eq!(defaults.upload_lease, TimeDelta::seconds(30));
        assert_eq!(defaults.round_every(), Duration::from_secs(15));
        let long_lease = FileTransferConfig {
            upload_lease_seconds: 600,
            ..FileTransferConfig::default()
        };
        assert_eq!(
            long_lease.lifecycle().unwrap().round_every(),
            Duration::from_secs(30)
        );
    }
}
