//! The report as Altinn writes it: UTF-8 without a BOM, the header line always (so a month with
//! nothing in it is the header alone), one line per row, every line ending in `\n`; numbers
//! bare (the month not padded), text fields quoted only when they hold `,`, `"` or a line break.

use std::fmt::Write;

use super::super::wire::MonthlyStatisticsRow;

/// The header line: the columns in order, named as the JSON view's keys.
pub const HEADER: &str = "year,month,resourceId,senderVendor,recipientVendor,sender,recipient,\
    totalFileTransfers,uploadCount,totalTransferDownloadAttempts,transfersWithDownloadConfirmed";

/// The CSV of `rows`.
pub fn write(rows: &[MonthlyStatisticsRow]) -> String {
    let mut csv = String::with_capacity(HEADER.len() + 1 + rows.len() * 96);
    csv.push_str(HEADER);
    csv.push('\n');
    for row in rows {
        // Writing to a String cannot fail.
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{}",
            row.year,
            row.month,
            field(&row.resource_id),
            field(&row.sender_vendor),
            field(&row.recipient_vendor),
            field(&row.sender),
            field(&row.recipient),
            row.total_file_transfers,
            row.upload_count,
            row.total_transfer_download_attempts,
            row.transfers_with_download_confirmed,
        );
    }
    csv
}

/// A text field: as it is, or quoted with inner quotes doubled when it needs to be.
fn field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

/// `monthly_statistics_<resource>_<yyyy-MM>.csv`, where `<resource>` is `all-resources` for a
/// report of every resource, else the resource id split at the characters a Linux file name
/// cannot hold (`/` and NUL) and joined with `_`, empty pieces dropped.
pub fn file_name(resource_id: &str, year: i32, month: u32) -> String {
    let segment = if resource_id.trim().is_empty() {
        "all-resources".to_owned()
    } else {
        resource_id
            .split(['/', '\0'])
            .filter(|piece| !piece.is_empty())
            .collect::<Vec<_>>()
            .join("_")
    };
    format!("monthly_statistics_{segment}_{year:04}-{month:02}.csv")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(resource_id: &str, sender: &str, counts: [u64; 4]) -> MonthlyStatisticsRow {
        MonthlyStatisticsRow {
            year: 2026,
            month: 1,
            resource_id: resource_id.to_owned(),
            sender_vendor: String::new(),
            recipient_vendor: String::new(),
            sender: sender.to_owned(),
            recipient: "0192:986252932".to_owned(),
            total_file_transfers: counts[0],
            upload_count: counts[1],
            total_transfer_download_attempts: counts[2],
            transfers_with_download_confirmed: counts[3],
        }
    }

    #[test]
    fn an_empty_report_is_its_header_line() {
        assert_eq!(
            write(&[]),
            "year,month,resourceId,senderVendor,recipientVendor,sender,recipient,\
             totalFileTransfers,uploadCount,totalTransferDownloadAttempts,\
             transfersWithDownloadConfirmed\n"
        );
    }

    #[test]
    fn rows_are_lines_with_fields_quoted_only_when_needed() {
        let csv = write(&[
            row("my-resource", "0192:991825827", [3, 2, 3, 2]),
            row("odd,\"one\"\nhere", "", [0, 1, 0, 0]),
        ]);
        assert_eq!(
            csv.strip_prefix(HEADER),
            Some(
                "\n2026,1,my-resource,,,0192:991825827,0192:986252932,3,2,3,2\n\
                 2026,1,\"odd,\"\"one\"\"\nhere\",,,,0192:986252932,0,1,0,0\n"
            )
        );
    }

    #[test]
    fn the_header_names_the_json_keys() {
        let json = serde_json::to_value(row("r", "s", [0; 4])).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut columns: Vec<&str> = HEADER.split(',').collect();
        keys.sort_unstable();
        columns.sort_unstable();
        assert_eq!(keys, columns);
    }

    #[test]
    fn the_file_name_names_the_resource_and_month() {
        assert_eq!(
            file_name("", 2026, 1),
            "monthly_statistics_all-resources_2026-01.csv"
        );
        assert_eq!(
            file_name("my-resource", 2026, 4),
            "monthly_statistics_my-resource_2026-04.csv"
        );
        assert_eq!(
            file_name("a//b/", 987, 12),
            "monthly_statistics_a_b_0987-12.csv"
        );
    }
}
