//! Service owners and per-resource settings, with their defaults, limits and the ISO-8601
//! durations Altinn writes them in.

use broker_common::identity::OrgNumber;
use chrono::{DateTime, TimeDelta, Utc};

use super::error::FileTransferError;

/// An organisation registered to offer broker resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOwner {
    /// Its organisation number.
    pub org_number: OrgNumber,
    /// Its short org code (`digdir`).
    pub org_code: String,
    /// Its name.
    pub name: String,
    /// When it was registered.
    pub created: DateTime<Utc>,
}

/// Default time to live of a transfer: 30 days.
pub const DEFAULT_TIME_TO_LIVE: TimeDelta = TimeDelta::days(30);
/// Longest time to live: 365 days.
pub const MAX_TIME_TO_LIVE: TimeDelta = TimeDelta::days(365);
/// Default grace period before a fully confirmed transfer is purged: 2 hours.
pub const DEFAULT_GRACE_PERIOD: TimeDelta = TimeDelta::hours(2);
/// Longest grace period: 24 hours.
pub const MAX_GRACE_PERIOD: TimeDelta = TimeDelta::hours(24);

/// Upper bounds on `maxFileTransferSize`, as Altinn sets them in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// Largest size for a resource whose transfers are scanned for malware (code 13 above).
    pub virus_scan: u64,
    /// Largest size for any resource (code 22 above).
    pub global: u64,
}

impl Default for SizeLimits {
    fn default() -> Self {
        Self {
            virus_scan: 2 * 1024 * 1024 * 1024,
            global: 100 * 1024 * 1024 * 1024,
        }
    }
}

impl SizeLimits {
    /// The largest file any resource may allow: an explicit `maxFileTransferSize` is at most
    /// `global`, and a resource without one allows `virus_scan` or `global`, so the larger.
    pub fn largest(&self) -> u64 {
        self.global.max(self.virus_scan)
    }
}

/// How a broker resource's transfers behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSettings {
    /// The resource.
    pub resource_id: String,
    /// The service owner that configured it.
    pub service_owner: OrgNumber,
    /// Largest file in bytes; `None`: the service's global limit.
    pub max_file_transfer_size: Option<u64>,
    /// How long a transfer lives.
    pub file_transfer_time_to_live: TimeDelta,
    /// Whether a transfer is purged once every recipient confirmed.
    pub purge_after_all_confirmed: bool,
    /// How long after the last confirmation the purge waits.
    pub purge_grace_period: TimeDelta,
    /// Whether Altinn 2 clients get a manifest file added to the download.
    pub use_manifest_file_shim: bool,
    /// Altinn 2 service code, needed with the manifest shim.
    pub external_service_code_legacy: Option<String>,
    /// Altinn 2 service edition code, needed with the manifest shim.
    pub external_service_edition_code_legacy: Option<i64>,
    /// A party that must be the only recipient of every transfer.
    pub required_party: Option<String>,
    /// Whether transfers may disable the malware scan (set by the operator, never by the owner).
    pub approved_for_disabled_virus_scan: bool,
}

impl ResourceSettings {
    /// A resource's settings before its owner changes any.
    pub fn defaults(resource_id: impl Into<String>, service_owner: OrgNumber) -> Self {
        Self {
            resource_id: resource_id.into(),
            service_owner,
            max_file_transfer_size: None,
            file_transfer_time_to_live: DEFAULT_TIME_TO_LIVE,
            purge_after_all_confirmed: true,
            purge_grace_period: DEFAULT_GRACE_PERIOD,
            use_manifest_file_shim: false,
            external_service_code_legacy: None,
            external_service_edition_code_legacy: None,
            required_party: None,
            approved_for_disabled_virus_scan: false,
        }
    }
}

/// A `PUT /broker/api/v1/resource/{resourceId}` body: each field given replaces the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceSettingsChange {
    /// `maxFileTransferSize`, bytes.
    pub max_file_transfer_size: Option<i64>,
    /// `fileTransferTimeToLive`, an ISO-8601 duration.
    pub file_transfer_time_to_live: Option<String>,
    /// `purgeFileTransferAfterAllRecipientsConfirmed`.
    pub purge_after_all_confirmed: Option<bool>,
    /// `purgeFileTransferGracePeriod`, an ISO-8601 duration.
    pub purge_grace_period: Option<String>,
    /// `useManifestFileShim`.
    pub use_manifest_file_shim: Option<bool>,
    /// `externalServiceCodeLegacy`.
    pub external_service_code_legacy: Option<String>,
    /// `externalServiceEditionCodeLegacy`.
    pub external_service_edition_code_legacy: Option<i64>,
    /// `requiredParty`.
    pub required_party: Option<String>,
}

impl ResourceSettingsChange {
    /// `current` with this change applied, or the first rule it breaks (Altinn's codes 11–23).
    pub fn apply(
        self,
        mut current: ResourceSettings,
        limits: SizeLimits,
    ) -> Result<ResourceSettings, FileTransferError> {
        if let Some(size) = self.max_file_transfer_size {
            current.max_file_transfer_size = Some(check_max_size(
                size,
                limits,
                current.approved_for_disabled_virus_scan,
            )?);
        }
        if let Some(text) = self.file_transfer_time_to_live {
            let ttl = parse_duration(&text).ok_or(FileTransferError::InvalidTimeToLiveFormat)?;
            if ttl > MAX_TIME_TO_LIVE {
                return Err(FileTransferError::TimeToLiveOver365Days);
            }
            current.file_transfer_time_to_live = ttl;
        }
        if let Some(purge) = self.purge_after_all_confirmed {
            current.purge_after_all_confirmed = purge;
        }
        if let Some(text) = self.purge_grace_period {
            let grace = parse_duration(&text).ok_or(FileTransferError::InvalidGracePeriodFormat)?;
            if grace > MAX_GRACE_PERIOD {
                return Err(FileTransferError::GracePeriodOver24Hours);
            }
            current.purge_grace_period = grace;
        }
        if let Some(code) = self.external_service_code_legacy {
            current.external_service_code_legacy = Some(code);
        }
        if let Some(edition) = self.external_service_edition_code_legacy {
            current.external_service_edition_code_legacy = Some(edition);
        }
        if let Some(shim) = self.use_manifest_file_shim {
            let codes = current.external_service_code_legacy.is_some()
                && current.external_service_edition_code_legacy.is_some();
            if shim && !codes {
                return Err(FileTransferError::ManifestShimNeedsServiceCodes);
            }
            current.use_manifest_file_shim = shim;
        }
        if let Some(party) = self.required_party {
            current.required_party = Some(party);
        }
        Ok(current)
    }
}

fn check_max_size(
    size: i64,
    limits: SizeLimits,
    approved_for_disabled_virus_scan: bool,
) -> Result<u64, FileTransferError> {
    let size = match u64::try_from(size) {
        Err(_) => return Err(FileTransferError::MaxSizeNegative),
        Ok(0) => return Err(FileTransferError::MaxSizeZero),
        Ok(size) => size,
    };
    if size > limits.global {
        return Err(FileTransferError::MaxSizeOverGlobal);
    }
    if size > limits.virus_scan && !approved_for_disabled_virus_scan {
        return Err(FileTransferError::MaxSizeOverVirusScanLimit);
    }
    Ok(size)
}

/// Parses an ISO-8601 duration (`P30D`, `PT2H`, `P1Y2M3W4DT5H6M7.5S`) as .NET's
/// `XmlConvert.ToTimeSpan` does, which Altinn uses: a year is 365 days and a month 30. Only
/// the seconds may have a fraction. `None` when the text is not such a duration.
pub fn parse_duration(text: &str) -> Option<TimeDelta> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return None,
        None => (rest, None),
    };
    if date.is_empty() && time.is_none() {
        return None;
    }
    let mut total = TimeDelta::zero();
    let date_units: [(char, TimeDelta); 4] = [
        ('Y', TimeDelta::days(365)),
        ('M', TimeDelta::days(30)),
        ('W', TimeDelta::weeks(1)),
        ('D', TimeDelta::days(1)),
    ];
    total = total.checked_add(&sum_parts(date, &date_units, false)?)?;
    if let Some(time) = time {
        let time_units: [(char, TimeDelta); 3] = [
            ('H', TimeDelta::hours(1)),
            ('M', TimeDelta::minutes(1)),
            ('S', TimeDelta::seconds(1)),
        ];
        total = total.checked_add(&sum_parts(time, &time_units, true)?)?;
    }
    Some(total)
}

/// Sums `<number><unit>` parts whose units appear in `units`' order, each at most once.
fn sum_parts(
    text: &str,
    units: &[(char, TimeDelta)],
    last_may_be_fraction: bool,
) -> Option<TimeDelta> {
    let mut total = TimeDelta::zero();
    let mut next_unit = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let position = units[next_unit..].iter().position(|(unit, _)| *unit == c)? + next_unit;
        next_unit = position + 1;
        let unit = units[position].1;
        let is_last = position + 1 == units.len();
        total = total.checked_add(&scale(&number, unit, last_may_be_fraction && is_last)?)?;
        number.clear();
    }
    number.is_empty().then_some(total)
}

fn scale(number: &str, unit: TimeDelta, fraction_allowed: bool) -> Option<TimeDelta> {
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) if fraction_allowed && !fraction.is_empty() => (whole, fraction),
        Some(_) => return None,
        None => (number, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let count: i32 = whole.parse().ok()?;
    let mut value = unit.checked_mul(count)?;
    if !fraction.is_empty() {
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Nanoseconds: at most nine digits count.
        let digits: String = fraction
            .chars()
            .chain("000000000".chars())
            .take(9)
            .collect();
        value = value.checked_add(&TimeDelta::nanoseconds(digits.parse().ok()?))?;
    }
    Some(value)
}

/// Writes a duration as .NET's `XmlConvert.ToString(TimeSpan)` does: `P30D`, `PT2H`,
/// `P1DT30M`, `PT0S` for zero (negative durations never occur here and are written as zero).
pub fn format_duration(duration: TimeDelta) -> String {
    let total = duration.num_seconds().max(0);
    let nanos = if duration > TimeDelta::zero() {
        duration.subsec_nanos()
    } else {
        0
    };
    let (days, rest) = (total / 86_400, total % 86_400);
    let (hours, minutes, seconds) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let mut text = String::from("P");
    if days > 0 {
        text += &format!("{days}D");
    }
    if hours > 0 || minutes > 0 || seconds > 0 || nanos > 0 || days == 0 {
        text.push('T');
        if hours > 0 {
            text += &format!("{hours}H");
        }
        if minutes > 0 {
            text += &format!("{minutes}M");
        }
        if nanos > 0 {
            let fraction = format!("{nanos:09}");
            text += &format!("{seconds}.{}S", fraction.trim_end_matches('0'));
        } else if seconds > 0 || (days == 0 && hours == 0 && minutes == 0) {
            text += &format!("{seconds}S");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> OrgNumber {
        OrgNumber::parse("991825827").unwrap()
    }

    #[test]
    fn the_largest_size_is_the_larger_ceiling_whichever_it_is() {
        assert_eq!(
            SizeLimits::default().largest(),
            SizeLimits::default().global
        );
        let odd = SizeLimits {
            virus_scan: 10,
            global: 5,
        };
        assert_eq!(odd.largest(), 10);
    }

    #[test]
    fn parses_iso_durations() {
        let cases = [
            ("P30D", TimeDelta::days(30)),
            ("PT2H", TimeDelta::hours(2)),
            ("P365D", TimeDelta::days(365)),
            ("P1Y", TimeDelta::days(365)),
            ("P1M", TimeDelta::days(30)),
            ("P2W", TimeDelta::days(14)),
            ("PT90M", TimeDelta::minutes(90)),
            ("PT1.5S", TimeDelta::milliseconds(1500)),
            (
                "P1DT2H3M4S",
                TimeDelta::days(1)
                    + TimeDelta::hours(2)
                    + TimeDelta::minutes(3)
                    + TimeDelta::seconds(4),
            ),
            ("P0D", TimeDelta::zero()),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in [
            "",
            "P",
            "PT",
            "30D",
            "P30",
            "PD",
            "P1.5D",
            "PT1.S",
            "P1H",
            "PT1D",
            "P1D2Y",
            "P1D1D",
            "p30d",
            "P-1D",
            "P30DT",
            "P99999999999D",
            "PT2H ",
            " PT2H",
        ] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
    }

    #[test]
    fn formats_as_dotnet_does_and_round_trips() {
        assert_eq!(format_duration(TimeDelta::days(30)), "P30D");
        assert_eq!(format_duration(TimeDelta::hours(2)), "PT2H");
        assert_eq!(format_duration(TimeDelta::zero()), "PT0S");
        assert_eq!(format_duration(TimeDelta::milliseconds(1500)), "PT1.5S");
        let mixed = TimeDelta::days(1) + TimeDelta::minutes(30);
        assert_eq!(format_duration(mixed), "P1DT30M");
        for delta in [TimeDelta::days(365), TimeDelta::seconds(86_401), mixed] {
            assert_eq!(parse_duration(&format_duration(delta)), Some(delta));
        }
    }

    #[test]
    fn settings_changes_keep_the_rules_and_codes() {
        let base = ResourceSettings::defaults("res", org());
        let limits = SizeLimits::default();
        let code = |change: ResourceSettingsChange| {
            change.apply(base.clone(), limits).map_err(|e| e.code())
        };
        let size = |n: i64| ResourceSettingsChange {
            max_file_transfer_size: Some(n),
            ..Default::default()
        };
        assert_eq!(code(size(-1)), Err(Some(11)));
        assert_eq!(code(size(0)), Err(Some(12)));
        assert_eq!(code(size(3 * 1024 * 1024 * 1024)), Err(Some(13)));
        assert_eq!(code(size(101 * 1024 * 1024 * 1024)), Err(Some(22)));
        let approved = ResourceSettings {
            approved_for_disabled_virus_scan: true,
            ..base.clone()
        };
        let big = size(3 * 1024 * 1024 * 1024)
            .apply(approved, limits)
            .unwrap();
        assert_eq!(big.max_file_transfer_size, Some(3 * 1024 * 1024 * 1024));
        let ttl = |text: &str| ResourceSettingsChange {
            file_transfer_time_to_live: Some(text.into()),
            ..Default::default()
        };
        assert_eq!(code(ttl("30 days")), Err(Some(14)));
        assert_eq!(code(ttl("P366D")), Err(Some(15)));
        let grace = |text: &str| ResourceSettingsChange {
            purge_grace_period: Some(text.into()),
            ..Default::default()
        };
        assert_eq!(code(grace("2h")), Err(Some(17)));
        assert_eq!(code(grace("PT25H")), Err(Some(18)));
        let shim = ResourceSettingsChange {
            use_manifest_file_shim: Some(true),
            external_service_code_legacy: Some("4126".into()),
            ..Default::default()
        };
        assert_eq!(code(shim.clone()), Err(Some(23)));
        let with_edition = ResourceSettingsChange {
            external_service_edition_code_legacy: Some(1),
            ..shim
        };
        assert!(
            with_edition
                .apply(base.clone(), limits)
                .unwrap()
                .use_manifest_file_shim
        );
        let fine = ResourceSettingsChange {
            max_file_transfer_size: Some(1000),
            file_transfer_time_to_live: Some("P365D".into()),
            purge_grace_period: Some("PT24H".into()),
            purge_after_all_confirmed: Some(false),
            ..Default::default()
        }
        .apply(base, limits)
        .unwrap();
        assert_eq!(fine.max_file_transfer_size, Some(1000));
        assert_eq!(fine.file_transfer_time_to_live, MAX_TIME_TO_LIVE);
        assert_eq!(fine.purge_grace_period, MAX_GRACE_PERIOD);
        assert!(!fine.purge_after_all_confirmed);
    }
}
