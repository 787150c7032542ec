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
            virus_scan: crate::config::DEFAULT_MAX_VIRUS_SCAN_SIZE,
            global: crate::config::DEFAULT_MAX_FILE_TRANSFER_SIZE,
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
    /// Altinn's model rule on the body itself (its `ValidateUseManifestFileShim`): turning the
    /// manifest shim on needs both legacy codes in the same body. A 400 validation problem
    /// about the body as a whole (the empty key), before any other check.
    pub fn validate(&self) -> Result<(), FileTransferError> {
        if self.use_manifest_file_shim != Some(true) {
            return Ok(());
        }
        if self
            .external_service_code_legacy
            .as_deref()
            .is_none_or(str::is_empty)
        {
            return Err(FileTransferError::invalid(
                "",
                "ExternalServiceCodeLegacy must be set and not be an empty string.",
            ));
        }
        if self
            .external_service_edition_code_legacy
            .is_none_or(|edition| edition == 0)
        {
            return Err(FileTransferError::invalid(
                "",
                "ExternalServiceEditionCodeLegacy must be set and not be zero.",
            ));
        }
        Ok(())
    }

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

/// Parses an xs:duration (`P30D`, `PT2H`, `P1Y2M3DT4H5M6.5S`) as .NET's
/// `XmlConvert.ToTimeSpan` reads it, which Altinn uses: surrounding blanks allowed, a year is 365
/// days, months count as whole years and 30 days for the rest (`P12M` is 365 days), only the
/// seconds may have a fraction (`PT.5S`), and weeks are not a unit. A negative duration (Altinn
/// takes `-P1D`) is refused here: a time to live or grace period below zero means nothing.
/// `None` when the text is not such a duration.
pub fn parse_duration(text: &str) -> Option<TimeDelta> {
    let rest = text.trim().strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return None,
        None => (rest, None),
    };
    if date.is_empty() && time.is_none() {
        return None;
    }
    let [years, months, days] = parts(date, ['Y', 'M', 'D'], false)?;
    let months = months.to_integer()?;
    let days_total = years
        .to_integer()?
        .checked_mul(365)?
        .checked_add((months / 12).checked_mul(365)?)?
        .checked_add((months % 12) * 30)?
        .checked_add(days.to_integer()?)?;
    let mut total = TimeDelta::try_days(days_total)?;
    if let Some(time) = time {
        let [hours, minutes, seconds] = parts(time, ['H', 'M', 'S'], true)?;
        total = total
            .checked_add(&TimeDelta::try_hours(hours.to_integer()?)?)?
            .checked_add(&TimeDelta::try_minutes(minutes.to_integer()?)?)?
            .checked_add(&seconds.to_seconds()?)?;
    }
    Some(total)
}

/// One `<number>` of a duration, as written (absent parts are zero).
#[derive(Debug, Default, Clone, Copy)]
struct Part<'a>(&'a str);

impl Part<'_> {
    /// A whole number that fits .NET's `int`, as `XsdDuration` requires.
    fn to_integer(self) -> Option<i64> {
        if self.0.is_empty() {
            return Some(0);
        }
        if !self.0.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.0.parse::<i32>().ok().map(i64::from)
    }

    /// Seconds with an optional fraction (`7`, `7.5`, `.5`).
    fn to_seconds(self) -> Option<TimeDelta> {
        let (whole, fraction) = self.0.split_once('.').unwrap_or((self.0, ""));
        if self.0.contains('.') && fraction.is_empty() {
            return None;
        }
        let whole = Part(whole).to_integer()?;
        scale(fraction_digits(fraction)?, whole)
    }
}

/// Nanoseconds of a fraction's digits (`5` → 500,000,000); at most nine digits count.
fn fraction_digits(fraction: &str) -> Option<i64> {
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = fraction
        .chars()
        .chain("000000000".chars())
        .take(9)
        .collect();
    digits.parse().ok()
}

/// The `<number><unit>` parts of `text` for `units`, which must appear in that order, each at
/// most once; only the last may have a fraction, and only when `fraction_last`.
fn parts<'a>(text: &'a str, units: [char; 3], fraction_last: bool) -> Option<[Part<'a>; 3]> {
    let mut found = [Part::default(); 3];
    let mut next_unit = 0;
    let mut start = 0;
    for (at, c) in text.char_indices() {
        if c.is_ascii_digit() || c == '.' {
            continue;
        }
        let position = units[next_unit..].iter().position(|unit| *unit == c)? + next_unit;
        let number = &text[start..at];
        let fraction_ok = fraction_last && position == units.len() - 1;
        if number.is_empty() || (number.contains('.') && !fraction_ok) {
            return None;
        }
        found[position] = Part(number);
        next_unit = position + 1;
        start = at + c.len_utf8();
    }
    (start == text.len()).then_some(found)
}

/// `whole` seconds and `nanos`.
fn scale(nanos: i64, whole: i64) -> Option<TimeDelta> {
    TimeDelta::try_seconds(whole)?.checked_add(&TimeDelta::nanoseconds(nanos))
}

/// Writes a duration as .NET's `TimeSpan.ToString()` does (the `c` format Altinn answers
/// resource settings in): `[-][d.]hh:mm:ss[.fffffff]`, such as `30.00:00:00` or `02:00:00`.
pub fn format_timespan(duration: TimeDelta) -> String {
    let sign = if duration < TimeDelta::zero() {
        "-"
    } else {
        ""
    };
    let duration = duration.abs();
    let total = duration.num_seconds();
    let (days, rest) = (total / 86_400, total % 86_400);
    let (hours, minutes, seconds) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let mut text = String::from(sign);
    if days > 0 {
        text += &format!("{days}.");
    }
    text += &format!("{hours:02}:{minutes:02}:{seconds:02}");
    // .NET ticks are 100 ns: seven digits.
    let ticks = duration.subsec_nanos() / 100;
    if ticks > 0 {
        text += &format!(".{ticks:07}");
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
            ("P12M", TimeDelta::days(365)),
            ("P13M", TimeDelta::days(395)),
            ("PT.5S", TimeDelta::milliseconds(500)),
            (" PT2H ", TimeDelta::hours(2)),
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
            "P2W",
            "PT1.5H",
            "-P1D",
        ] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
    }

    #[test]
    fn writes_durations_as_dotnet_timespans() {
        assert_eq!(format_timespan(TimeDelta::days(30)), "30.00:00:00");
        assert_eq!(format_timespan(TimeDelta::hours(2)), "02:00:00");
        assert_eq!(format_timespan(TimeDelta::hours(48)), "2.00:00:00");
        assert_eq!(format_timespan(TimeDelta::zero()), "00:00:00");
        assert_eq!(
            format_timespan(TimeDelta::milliseconds(500)),
            "00:00:00.5000000"
        );
        assert_eq!(format_timespan(-TimeDelta::days(1)), "-1.00:00:00");
        let mixed = TimeDelta::days(1) + TimeDelta::minutes(30) + TimeDelta::seconds(5);
        assert_eq!(format_timespan(mixed), "1.00:30:05");
    }

    #[test]
    fn the_manifest_shim_needs_both_legacy_codes_in_the_body() {
        let shim = |code: Option<&str>, edition: Option<i64>| ResourceSettingsChange {
            use_manifest_file_shim: Some(true),
            external_service_code_legacy: code.map(str::to_owned),
            external_service_edition_code_legacy: edition,
            ..Default::default()
        };
        let message = |change: ResourceSettingsChange| match change.validate() {
            Err(FileTransferError::Invalid(errors)) => errors[""][0].clone(),
            other => panic!("expected a validation problem, got {other:?}"),
        };
        assert!(message(shim(None, Some(2))).starts_with("ExternalServiceCodeLegacy"));
        assert!(message(shim(Some(""), Some(2))).starts_with("ExternalServiceCodeLegacy"));
        assert!(
            message(shim(Some("4434"), Some(0))).starts_with("ExternalServiceEditionCodeLegacy")
        );
        assert!(shim(Some("4434"), Some(2)).validate().is_ok());
        assert!(ResourceSettingsChange::default().validate().is_ok());
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
        assert_eq!(code(size(50_000_000_001)), Err(Some(13)));
        assert_eq!(code(size(1_677_721_600_001)), Err(Some(22)));
        let approved = ResourceSettings {
            approved_for_disabled_virus_scan: true,
            ..base.clone()
        };
        let big = size(100_000_000_000).apply(approved, limits).unwrap();
        assert_eq!(big.max_file_transfer_size, Some(100_000_000_000));
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
