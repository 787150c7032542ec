//! Altinn's monthly statistics report: which month it covers, which resource it is limited to,
//! and how the store's counts become its rows (grouped by what the caller asked to see, sorted
//! as Altinn sorts them).
//!
//! The counting itself is the store's (`FileTransferStore::monthly_statistics`), per (transfer,
//! recipient) pair with activity in the month: a transfer created in the month counts once per
//! recipient, its publication in the month of the Published row, every DownloadStarted row of
//! the month as an attempt, a DownloadConfirmed row in the month of the confirmation. The sender's
//! vendor is that of the transfer's Initialized row, the recipient's the latest one the pair's
//! rows of the month name.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use broker_common::identity::OrgNumber;
use chrono::{DateTime, NaiveDate, Utc};

use super::error::FileTransferError;

/// The prefix of a resource written as a URN, which the report accepts and drops.
const RESOURCE_URN_PREFIX: &str = "urn:altinn:resource:";

/// The month a report covers: from its first instant (UTC) up to the next month's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportMonth {
    year: i32,
    month: u32,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl ReportMonth {
    /// The month, or code 6003 where Altinn refuses it: a year outside 1–9999, a month outside
    /// 1–12, or December 9999 (whose end is past .NET's last date). Any other month is a report,
    /// empty when nothing happened in it.
    pub fn new(year: i32, month: i32) -> Result<Self, FileTransferError> {
        if !(1..=9999).contains(&year) || (year, month) == (9999, 12) {
            return Err(FileTransferError::InvalidReportMonth);
        }
        let month = u32::try_from(month)
            .ok()
            .filter(|month| (1..=12).contains(month))
            .ok_or(FileTransferError::InvalidReportMonth)?;
        let (next_year, next_month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        let first = |year, month| {
            NaiveDate::from_ymd_opt(year, month, 1)
                .and_then(|day| day.and_hms_opt(0, 0, 0))
                .map(|midnight| midnight.and_utc())
        };
        match (first(year, month), first(next_year, next_month)) {
            (Some(from), Some(to)) => Ok(Self {
                year,
                month,
                from,
                to,
            }),
            _ => Err(FileTransferError::InvalidReportMonth),
        }
    }

    /// The year.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// The month, 1–12.
    pub fn month(&self) -> u32 {
        self.month
    }

    /// The month's first instant.
    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    /// The next month's first instant (exclusive).
    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }
}

/// The resource a report is limited to: `None` (all the caller's resources) for a blank value;
/// otherwise the value trimmed, with a `urn:altinn:resource:` prefix dropped.
pub fn resource_filter(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(
        text.strip_prefix(RESOURCE_URN_PREFIX)
            .unwrap_or(text)
            .to_owned(),
    )
}

/// The four counts of a report row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// (transfer, recipient) pairs whose transfer was created in the month.
    pub file_transfers: u64,
    /// Pairs whose transfer was published in the month.
    pub uploads: u64,
    /// Download starts recorded in the month.
    pub download_attempts: u64,
    /// Pairs whose download was confirmed in the month.
    pub downloads_confirmed: u64,
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Self) {
        self.file_transfers += other.file_transfers;
        self.uploads += other.uploads;
        self.download_attempts += other.download_attempts;
        self.downloads_confirmed += other.downloads_confirmed;
    }
}

/// Whose transfers a row counts; a party the report leaves out is `None`. The field order is
/// the report's sort order, and `None` before any organisation sorts as Altinn's empty column
/// before `0192:…` does, so the derived order is Altinn's ordinal one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StatisticsKey {
    /// The resource.
    pub resource_id: String,
    /// The sending organisation.
    pub sender: Option<OrgNumber>,
    /// The vendor of the sender's initialize call.
    pub sender_vendor: Option<OrgNumber>,
    /// The receiving organisation.
    pub recipient: Option<OrgNumber>,
    /// The vendor of the recipient's latest download or confirmation in the month.
    pub recipient_vendor: Option<OrgNumber>,
}

/// One row of the monthly statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatisticsRow {
    /// Whose transfers.
    pub key: StatisticsKey,
    /// What happened to them in the month.
    pub counts: Counts,
}

/// Which parties a report shows besides the resource: the end users (sender and recipient), the
/// vendors, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Projection {
    end_users: bool,
    vendors: bool,
}

impl Projection {
    /// The projection, or code 6005 when it would show neither.
    pub fn new(include_end_user: bool, include_vendor: bool) -> Result<Self, FileTransferError> {
        if !include_end_user && !include_vendor {
            return Err(FileTransferError::EndUserAndVendorBothExcluded);
        }
        Ok(Self {
            end_users: include_end_user,
            vendors: include_vendor,
        })
    }

    /// `rows` with the left-out parties blanked, summed per remaining key and sorted.
    pub fn apply(self, rows: impl IntoIterator<Item = StatisticsRow>) -> Vec<StatisticsRow> {
        let mut grouped = BTreeMap::<StatisticsKey, Counts>::new();
        for row in rows {
            let key = StatisticsKey {
                resource_id: row.key.resource_id,
                sender: row.key.sender.filter(|_| self.end_users),
                sender_vendor: row.key.sender_vendor.filter(|_| self.vendors),
                recipient: row.key.recipient.filter(|_| self.end_users),
                recipient_vendor: row.key.recipient_vendor.filter(|_| self.vendors),
            };
            *grouped.entry(key).or_default() += row.counts;
        }
        grouped
            .into_iter()
            .map(|(key, counts)| StatisticsRow { key, counts })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(text: &str) -> Option<OrgNumber> {
        Some(OrgNumber::parse(text).unwrap())
    }

    fn row(resource: &str, parties: [&str; 4], counts: [u64; 4]) -> StatisticsRow {
        let party = |text: &str| if text.is_empty() { None } else { org(text) };
        StatisticsRow {
            key: StatisticsKey {
                resource_id: resource.to_owned(),
                sender: party(parties[0]),
                sender_vendor: party(parties[1]),
                recipient: party(parties[2]),
                recipient_vendor: party(parties[3]),
            },
            counts: Counts {
                file_transfers: counts[0],
                uploads: counts[1],
                download_attempts: counts[2],
                downloads_confirmed: counts[3],
            },
        }
    }

    #[test]
    fn a_month_is_refused_where_altinn_refuses_it() {
        for (year, month) in [
            (2026, 0),
            (2026, 13),
            (0, 1),
            (10_000, 1),
            (9999, 12),
            (-1, 5),
        ] {
            assert!(
                matches!(
                    ReportMonth::new(year, month),
                    Err(FileTransferError::InvalidReportMonth)
                ),
                "{year}-{month}"
            );
        }
        let december = ReportMonth::new(2025, 12).unwrap();
        assert_eq!(december.from().to_rfc3339(), "2025-12-01T00:00:00+00:00");
        assert_eq!(december.to().to_rfc3339(), "2026-01-01T00:00:00+00:00");
        let last = ReportMonth::new(9999, 11).unwrap();
        assert_eq!((last.year(), last.month()), (9999, 11));
        assert!(ReportMonth::new(1, 1).is_ok());
    }

    #[test]
    fn a_blank_resource_is_every_resource_and_a_urn_is_its_id() {
        assert_eq!(resource_filter("  "), None);
        assert_eq!(resource_filter(" my-resource "), Some("my-resource".into()));
        assert_eq!(
            resource_filter("urn:altinn:resource:my-resource"),
            Some("my-resource".into())
        );
    }

    #[test]
    fn a_report_shows_the_end_users_the_vendors_or_both() {
        assert!(matches!(
            Projection::new(false, false),
            Err(FileTransferError::EndUserAndVendorBothExcluded)
        ));
        let (sender, vendor_a, vendor_b) = ("991825827", "910753614", "974760673");
        let (first, second) = ("310000000", "310000019");
        let rows = [
            row("b", [sender, vendor_a, first, ""], [1, 0, 0, 0]),
            row("a", [sender, vendor_a, second, vendor_b], [1, 1, 1, 0]),
            row("a", [sender, vendor_a, first, vendor_b], [1, 1, 2, 1]),
            row("a", [sender, vendor_b, first, ""], [1, 0, 0, 0]),
        ];
        // The end users only: vendors blank, their variants summed, sorted by resource first.
        assert_eq!(
            Projection::new(true, false).unwrap().apply(rows.clone()),
            [
                row("a", [sender, "", first, ""], [2, 1, 2, 1]),
                row("a", [sender, "", second, ""], [1, 1, 1, 0]),
                row("b", [sender, "", first, ""], [1, 0, 0, 0]),
            ]
        );
        // The vendors only; an empty vendor sorts before any organisation.
        assert_eq!(
            Projection::new(false, true).unwrap().apply(rows.clone()),
            [
                row("a", ["", vendor_a, "", vendor_b], [2, 2, 3, 1]),
                row("a", ["", vendor_b, "", ""], [1, 0, 0, 0]),
                row("b", ["", vendor_a, "", ""], [1, 0, 0, 0]),
            ]
        );
        // Both: the full grain, sorted by sender, sender vendor, recipient, recipient vendor.
        assert_eq!(
            Projection::new(true, true).unwrap().apply(rows.clone()),
            [
                rows[2].clone(),
                rows[1].clone(),
                rows[3].clone(),
                rows[0].clone()
            ]
        );
    }
}
