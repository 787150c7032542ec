//! The SQL of [`FileTransferStore`](super::FileTransferStore), written once and instantiated for
//! each database by [`file_transfer_store_impl!`]. Every statement is plain SQL valid on both
//! PostgreSQL and SQLite, except the outbox claim, which each backend passes in (PostgreSQL
//! locks the rows it claims; SQLite has a single writer and needs no lock). Each write starts
//! with an UPDATE, so SQLite never upgrades a read lock to a write lock inside a transaction.

use std::collections::BTreeMap;
use std::fmt::Display;

use broker_common::identity::OrgNumber;
use broker_common::transfer_event::TransferEvent;
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{OutboxRecord, StoreError};
use crate::domain::settings::{ResourceSettings, ServiceOwner};
use crate::domain::statistics::{Counts, StatisticsKey, StatisticsRow};
use crate::domain::status::{RecipientStatus, TransferStatus};
use crate::domain::transfer::{
    RecipientHistoryEntry, RecipientState, Transfer, TransferHistoryEntry,
};

pub(super) const INSERT_TRANSFER: &str = "INSERT INTO file_transfers (id, resource_id, file_name,
       senders_reference, sender, property_list, checksum, use_virus_scan, status, status_changed,
       created, created_month, expires, version, sender_party)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, 0, $13)";
pub(super) const INSERT_RECIPIENT: &str = "INSERT INTO transfer_recipients
       (transfer_id, org_number, position, status, status_changed) VALUES ($1, $2, $3, $4, $5)";
pub(super) const INSERT_TRANSFER_HISTORY: &str = "INSERT INTO transfer_history
       (transfer_id, status, detail, at, vendor) VALUES ($1, $2, $3, $4, $5)";
pub(super) const INSERT_RECIPIENT_HISTORY: &str = "INSERT INTO recipient_history
       (transfer_id, org_number, status, at, vendor) VALUES ($1, $2, $3, $4, $5)";

/// The sender comes as the client wrote it; rows from before that was kept have its number.
pub(super) const SELECT_TRANSFER: &str = "SELECT id, resource_id, file_name, senders_reference,
       COALESCE(sender_party, sender), property_list, checksum, use_virus_scan, size, status, status_changed, created,
       expires, published, upload_started, storage_key
     FROM file_transfers WHERE id = $1";
pub(super) const SELECT_RECIPIENTS: &str = "SELECT org_number, status, status_changed
     FROM transfer_recipients WHERE transfer_id = $1 ORDER BY position";
pub(super) const SELECT_STATUS: &str = "SELECT status FROM file_transfers WHERE id = $1";
pub(super) const SELECT_TRANSFER_HISTORY: &str =
    "SELECT status, detail, at FROM transfer_history WHERE transfer_id = $1 ORDER BY seq";
pub(super) const SELECT_RECIPIENT_HISTORY: &str =
    "SELECT org_number, status, at FROM recipient_history WHERE transfer_id = $1 ORDER BY seq";

/// How many statuses a compare-and-set may expect: every transfer status.
pub(super) const FROM_SLOTS: usize = 8;
/// The compare-and-set: the status check is in the WHERE, so of concurrent movers exactly one
/// matches. `$8..$15` are the expected statuses, padded with '' (no status).
pub(super) const TRANSITION: &str = "UPDATE file_transfers SET status = $2, status_changed = $3,
       version = version + 1,
       size = COALESCE($4, size), checksum = COALESCE($5, checksum),
       storage_key = COALESCE($6, storage_key), published = COALESCE($7, published),
       upload_started = CASE WHEN $2 = 'UploadStarted' THEN $3 ELSE upload_started END,
       bytes_pending = CASE WHEN $2 IN ('Purged', 'Failed') THEN TRUE ELSE bytes_pending END
     WHERE id = $1 AND status IN ($8, $9, $10, $11, $12, $13, $14, $15)";
/// Takes the transfer's row lock, so recipient changes of one transfer run one at a time and
/// the all-confirmed answer is decided by exactly one of them.
pub(super) const LOCK_TRANSFER: &str =
    "UPDATE file_transfers SET version = version + 1 WHERE id = $1";
pub(super) const SELECT_RECIPIENT_STATUS: &str =
    "SELECT status FROM transfer_recipients WHERE transfer_id = $1 AND org_number = $2";
pub(super) const SET_RECIPIENT_STATUS: &str = "UPDATE transfer_recipients
     SET status = $3, status_changed = $4 WHERE transfer_id = $1 AND org_number = $2";
pub(super) const COUNT_RECENT_DOWNLOADS: &str = "SELECT COUNT(*) FROM recipient_history
     WHERE transfer_id = $1 AND org_number = $2 AND status = 'DownloadStarted' AND at >= $3";
/// A download keeps a confirmed recipient confirmed, and moves any other to DownloadStarted.
pub(super) const SET_RECIPIENT_DOWNLOADED: &str = "UPDATE transfer_recipients
     SET status = CASE WHEN status = 'DownloadConfirmed' THEN status ELSE 'DownloadStarted' END,
         status_changed = $3
     WHERE transfer_id = $1 AND org_number = $2";
pub(super) const COUNT_UNCONFIRMED: &str = "SELECT COUNT(*) FROM transfer_recipients
     WHERE transfer_id = $1 AND status <> 'DownloadConfirmed'";

/// The search, ordered by `$time` (the transfer's creation, or with a status (`$2`) the time it
/// entered it, as Altinn sorts and filters): `$5`/`$6` admit the caller (`$7`) as
/// sender/recipient, unless a recipient status (`$8`) is given: then only the caller's own
/// recipient row counts. The window is Altinn's: with both bounds (`$10`) inclusive
/// (`BETWEEN`), with one of them exclusive. The caller's transfers are gathered first, each
/// branch by its own index, so a caller with few transfers in a large resource costs a few
/// index lookups rather than a scan of the resource (measured on PostgreSQL with 500 000
/// transfers in one resource: 0.2 ms instead of 200 ms).
macro_rules! search {
    ($time:literal, $order:literal) => {
        concat!(
            "SELECT t.id FROM file_transfers t
             WHERE t.id IN (
                   SELECT f.id FROM file_transfers f
                   WHERE $8 = '' AND $5 AND f.resource_id = $1 AND f.sender = $7
                   UNION ALL
                   SELECT r.transfer_id FROM transfer_recipients r
                   WHERE ($8 <> '' OR $6) AND r.org_number = $7 AND ($8 = '' OR r.status = $8))
               AND t.resource_id = $1
               AND ($2 = '' OR t.status = $2)
               AND (($10 AND ",
            $time,
            " >= $3 AND ",
            $time,
            " <= $4) OR (NOT $10 AND ",
            $time,
            " > $3 AND ",
            $time,
            " < $4))
             ORDER BY ",
            $time,
            " ",
            $order,
            ", t.id ",
            $order,
            " LIMIT $9"
        )
    };
}
/// The service owner's search: every transfer of resource `$1`, filtered as [`search!`] does
/// (`$6`: both bounds given).
macro_rules! owner_search {
    ($time:literal, $order:literal) => {
        concat!(
            "SELECT t.id FROM file_transfers t
             WHERE t.resource_id = $1
               AND ($2 = '' OR t.status = $2)
               AND (($6 AND ",
            $time,
            " >= $3 AND ",
            $time,
            " <= $4) OR (NOT $6 AND ",
            $time,
            " > $3 AND ",
            $time,
            " < $4))
             ORDER BY ",
            $time,
            " ",
            $order,
            ", t.id ",
            $order,
            " LIMIT $5"
        )
    };
}

/// The four orders of one search: by creation or status time, oldest or newest first.
pub(super) struct SearchStatements {
    created_ascending: &'static str,
    created_descending: &'static str,
    status_ascending: &'static str,
    status_descending: &'static str,
}

impl SearchStatements {
    /// The statement for a search with or without a status filter, in `ascending` order.
    pub(super) fn pick(&self, by_status: bool, ascending: bool) -> &'static str {
        match (by_status, ascending) {
            (false, true) => self.created_ascending,
            (false, false) => self.created_descending,
            (true, true) => self.status_ascending,
            (true, false) => self.status_descending,
        }
    }
}

pub(super) const OWNER_SEARCH: SearchStatements = SearchStatements {
    created_ascending: owner_search!("t.created", "ASC"),
    created_descending: owner_search!("t.created", "DESC"),
    status_ascending: owner_search!("t.status_changed", "ASC"),
    status_descending: owner_search!("t.status_changed", "DESC"),
};
pub(super) const SEARCH: SearchStatements = SearchStatements {
    created_ascending: search!("t.created", "ASC"),
    created_descending: search!("t.created", "DESC"),
    status_ascending: search!("t.status_changed", "ASC"),
    status_descending: search!("t.status_changed", "DESC"),
};
/// Resumable uploads are left out: they expire after their last request instead.
pub(super) const STUCK_UPLOADS: &str = "SELECT id FROM file_transfers
     WHERE status = 'UploadStarted' AND upload_started < $1
       AND NOT EXISTS (SELECT 1 FROM upload_leases l
                       WHERE l.transfer_id = file_transfers.id AND l.holder = 'tus')
     ORDER BY upload_started LIMIT $2";

/// Transfers due for purging at `$1` (Unix ms), at most `$2`: expired ones (never uploaded,
/// published or all confirmed; uploads under way are the stuck job's), and fully confirmed ones
/// of resources that purge then, once the grace period has passed. `$lock` goes last.
macro_rules! due_purge {
    ($lock:literal) => {
        concat!(
            "SELECT t.id FROM file_transfers t
             WHERE (t.status IN ('Initialized', 'Published', 'AllConfirmedDownloaded')
                    AND t.expires <= $1)
                OR (t.status = 'AllConfirmedDownloaded' AND EXISTS (
                      SELECT 1 FROM resource_settings s
                      WHERE s.resource_id = t.resource_id AND s.purge_after_all_confirmed
                        AND t.status_changed + s.grace_period_ms <= $1))
             ORDER BY t.expires LIMIT $2 ",
            $lock
        )
    };
}
/// Uploads started before `$1` still in UploadStarted, and transfers in UploadProcessing since
/// before `$3`, at most `$2`. A resumable (tus) upload is not stuck for taking long: it expires
/// a while after its last PATCH instead (its lease, held by `tus`, slides with each).
macro_rules! due_stuck {
    ($lock:literal) => {
        concat!(
            "SELECT id FROM file_transfers
             WHERE (status = 'UploadStarted' AND upload_started < $1
                    AND NOT EXISTS (SELECT 1 FROM upload_leases l
                                    WHERE l.transfer_id = file_transfers.id AND l.holder = 'tus'))
                OR (status = 'UploadProcessing' AND status_changed < $3)
             ORDER BY status_changed LIMIT $2 ",
            $lock
        )
    };
}
/// Uploads in UploadStarted whose lease, still held, lapsed before `$1`, at most `$2`. On
/// PostgreSQL the lock covers the lease row too, so a renewal under way makes the job skip it.
macro_rules! due_abandoned {
    ($lock:literal) => {
        concat!(
            "SELECT t.id FROM file_transfers t JOIN upload_leases l ON l.transfer_id = t.id
             WHERE t.status = 'UploadStarted' AND l.holder <> '' AND l.expires < $1
             ORDER BY l.expires LIMIT $2 ",
            $lock
        )
    };
}
/// Replicas skip the rows another one is settling instead of waiting for them.
pub(super) const DUE_PURGE_POSTGRES: &str = due_purge!("FOR UPDATE SKIP LOCKED");
/// SQLite has one writer at a time (the write gate): no row lock.
pub(super) const DUE_PURGE_SQLITE: &str = due_purge!("");
pub(super) const DUE_STUCK_POSTGRES: &str = due_stuck!("FOR UPDATE SKIP LOCKED");
pub(super) const DUE_STUCK_SQLITE: &str = due_stuck!("");
pub(super) const DUE_ABANDONED_POSTGRES: &str = due_abandoned!("FOR UPDATE SKIP LOCKED");
pub(super) const DUE_ABANDONED_SQLITE: &str = due_abandoned!("");
pub(super) const INSERT_LEASE: &str = "INSERT INTO upload_leases
       (transfer_id, holder, expires, staging, multipart_id) VALUES ($1, $2, $3, $4, $5)";
pub(super) const DELETE_LEASE: &str = "DELETE FROM upload_leases WHERE transfer_id = $1";
pub(super) const SURRENDER_LEASE: &str =
    "UPDATE upload_leases SET holder = '', expires = $2 WHERE transfer_id = $1";
pub(super) const RENEW_LEASE: &str =
    "UPDATE upload_leases SET expires = $3 WHERE transfer_id = $1 AND holder = $2";
/// No holder matches '' any more: the holder's next renewal finds the lease gone.
pub(super) const TAKE_LEASE: &str = "UPDATE upload_leases SET holder = '' WHERE transfer_id = $1";
pub(super) const LEASES_TO_CLEAR: &str = "SELECT l.transfer_id, l.staging, l.multipart_id
     FROM upload_leases l JOIN file_transfers t ON t.id = l.transfer_id
     WHERE l.expires < $1 AND t.status <> 'UploadStarted' ORDER BY l.expires LIMIT $2";
pub(super) const BYTES_PENDING: &str = "SELECT id FROM file_transfers
     WHERE bytes_pending AND status_changed < $1 ORDER BY status_changed LIMIT $2";
pub(super) const BYTES_DELETED: &str =
    "UPDATE file_transfers SET bytes_pending = FALSE WHERE id = $1";

pub(super) const INSERT_OWNER: &str =
    "INSERT INTO service_owners (org_number, org_code, name, created)
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
pub(super) const SELECT_OWNER: &str =
    "SELECT org_number, org_code, name, created FROM service_owners WHERE org_number = $1";
pub(super) const UPSERT_SETTINGS: &str = "INSERT INTO resource_settings (resource_id,
       service_owner, max_file_transfer_size, time_to_live_ms, purge_after_all_confirmed,
       grace_period_ms, use_manifest_file_shim, external_service_code_legacy,
       external_service_edition_code_legacy, required_party, approved_for_disabled_virus_scan,
       updated)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ON CONFLICT (resource_id) DO UPDATE SET service_owner = excluded.service_owner,
       max_file_transfer_size = excluded.max_file_transfer_size,
       time_to_live_ms = excluded.time_to_live_ms,
       purge_after_all_confirmed = excluded.purge_after_all_confirmed,
       grace_period_ms = excluded.grace_period_ms,
       use_manifest_file_shim = excluded.use_manifest_file_shim,
       external_service_code_legacy = excluded.external_service_code_legacy,
       external_service_edition_code_legacy = excluded.external_service_edition_code_legacy,
       required_party = excluded.required_party,
       approved_for_disabled_virus_scan = excluded.approved_for_disabled_virus_scan,
       updated = excluded.updated";
pub(super) const SELECT_SETTINGS: &str = "SELECT resource_id, service_owner,
       max_file_transfer_size, time_to_live_ms, purge_after_all_confirmed, grace_period_ms,
       use_manifest_file_shim, external_service_code_legacy,
       external_service_edition_code_legacy, required_party, approved_for_disabled_virus_scan
     FROM resource_settings WHERE resource_id = $1";
/// The monthly statistics of the resources owner `$1` configured (only resource `$4` unless
/// it is ''), for the month `[$2, $3)`. The pairs counted are every (transfer, recipient) with a
/// recipient history row in the month (each transfer's recipients get their Initialized row
/// when it is created) and every recipient of a transfer published in the month. Each pair
/// counts its transfer's creation and publication in the month, its download starts in the
/// month, and whether it was confirmed in the month; the sender's vendor is the one of the
/// transfer's Initialized row, the recipient's the latest one of the pair's rows in the month.
/// Correlated subqueries rather than LATERAL joins, which SQLite lacks.
pub(super) const MONTHLY_STATISTICS: &str = "WITH
     activity AS (
       SELECT transfer_id, org_number,
              SUM(CASE WHEN status = 'DownloadStarted' THEN 1 ELSE 0 END) AS attempts,
              MAX(CASE WHEN status = 'DownloadConfirmed' THEN 1 ELSE 0 END) AS confirmed
       FROM recipient_history WHERE at >= $2 AND at < $3
       GROUP BY transfer_id, org_number),
     published AS (
       SELECT DISTINCT transfer_id FROM transfer_history
       WHERE status = 'Published' AND at >= $2 AND at < $3),
     pairs AS (
       SELECT transfer_id, org_number FROM activity
       UNION
       SELECT r.transfer_id, r.org_number
       FROM transfer_recipients r JOIN published p ON p.transfer_id = r.transfer_id),
     counted AS (
       SELECT f.resource_id, f.sender, pair.org_number AS recipient,
              COALESCE((SELECT h.vendor FROM transfer_history h
                        WHERE h.transfer_id = f.id AND h.status = 'Initialized'
                        ORDER BY h.at, h.seq LIMIT 1), '') AS sender_vendor,
              COALESCE((SELECT h.vendor FROM recipient_history h
                        WHERE h.transfer_id = pair.transfer_id
                          AND h.org_number = pair.org_number
                          AND h.at >= $2 AND h.at < $3 AND h.vendor IS NOT NULL
                        ORDER BY h.at DESC, h.seq DESC LIMIT 1), '') AS recipient_vendor,
              CASE WHEN f.created >= $2 AND f.created < $3 THEN 1 ELSE 0 END AS created_in_month,
              CASE WHEN p.transfer_id IS NULL THEN 0 ELSE 1 END AS published_in_month,
              COALESCE(a.attempts, 0) AS attempts,
              COALESCE(a.confirmed, 0) AS confirmed
       FROM pairs pair
       JOIN file_transfers f ON f.id = pair.transfer_id
       JOIN resource_settings s ON s.resource_id = f.resource_id
       LEFT JOIN activity a
         ON a.transfer_id = pair.transfer_id AND a.org_number = pair.org_number
       LEFT JOIN published p ON p.transfer_id = pair.transfer_id
       WHERE s.service_owner = $1 AND ($4 = '' OR f.resource_id = $4))
     SELECT resource_id, sender, recipient, sender_vendor, recipient_vendor,
            CAST(SUM(created_in_month) AS BIGINT), CAST(SUM(published_in_month) AS BIGINT),
            CAST(SUM(attempts) AS BIGINT), CAST(SUM(confirmed) AS BIGINT)
     FROM counted
     GROUP BY resource_id, sender, recipient, sender_vendor, recipient_vendor";

/// A stored value that must parse, or the row is corrupt.
pub(super) fn stored<T, E: Display>(what: &str, result: Result<T, E>) -> Result<T, StoreError> {
    result.map_err(|error| StoreError::Corrupt(format!("{what}: {error}")))
}

/// Unix milliseconds, as every time is stored.
pub(super) fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

pub(super) fn time(what: &str, millis: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: {millis} is out of range")))
}

fn optional_time(what: &str, millis: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    millis.map(|millis| time(what, millis)).transpose()
}

/// A byte count as the BIGINT columns hold it.
pub(super) fn to_i64(what: &str, value: u64) -> Result<i64, StoreError> {
    stored(what, i64::try_from(value))
}

pub(super) fn to_u64(what: &str, value: i64) -> Result<u64, StoreError> {
    stored(what, u64::try_from(value))
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    stored("encoding JSON", serde_json::to_string(value))
}

/// The expected statuses that may legally move to `to`, padded to [`FROM_SLOTS`] with ''.
pub(super) fn legal_from(from: &[TransferStatus], to: TransferStatus) -> Vec<&'static str> {
    let mut slots: Vec<&'static str> = from
        .iter()
        .filter(|status| status.can_move_to(to))
        .map(|status| status.as_str())
        .collect();
    slots.dedup();
    slots.resize(FROM_SLOTS, "");
    slots
}

/// The outbox row of an event.
pub(super) fn outbox_record(event: &TransferEvent) -> Result<OutboxRecord, StoreError> {
    Ok(OutboxRecord {
        id: event.id.to_string(),
        routing_key: event.kind.routing_key(),
        payload: json(event)?,
        created_at: millis(event.time),
        traceparent: broker_common::telemetry::propagation::current_traceparent(),
    })
}

/// `YYYY-MM` of a time, for `created_month`. Nothing reads that column any more, but replicas
/// of the previous release still do and insert it during a rolling update, so it is written
/// until the release after this one drops it.
pub(super) fn month(time: DateTime<Utc>) -> String {
    time.format("%Y-%m").to_string()
}

pub(super) type TransferRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    bool,
    Option<i64>,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

pub(super) type RecipientRow = (String, String, i64);

pub(super) fn transfer_from_rows(
    row: TransferRow,
    recipients: Vec<RecipientRow>,
) -> Result<Transfer, StoreError> {
    let (
        id,
        resource_id,
        file_name,
        senders_reference,
        sender,
        property_list,
        checksum,
        use_virus_scan,
        size,
        status,
        status_changed,
        created,
        expires,
        published,
        upload_started,
        storage_key,
    ) = row;
    let property_list: BTreeMap<String, String> =
        stored("property list", serde_json::from_str(&property_list))?;
    Ok(Transfer {
        id: stored("transfer id", Uuid::parse_str(&id))?,
        resource_id,
        file_name,
        senders_reference,
        sender: stored("sender", OrgNumber::parse_identifier(&sender))?,
        sender_party: if sender.contains(':') {
            sender
        } else {
            format!("0192:{sender}")
        },
        recipients: recipients
            .into_iter()
            .map(recipient_from_row)
            .collect::<Result<_, _>>()?,
        property_list,
        checksum,
        use_virus_scan,
        size: size.map(|size| to_u64("size", size)).transpose()?,
        status: stored("status", status.parse())?,
        status_changed: time("status changed", status_changed)?,
        created: time("created", created)?,
        expires: time("expires", expires)?,
        published: optional_time("published", published)?,
        upload_started: optional_time("upload started", upload_started)?,
        storage_key,
    })
}

fn recipient_from_row(
    (org_number, status, changed): RecipientRow,
) -> Result<RecipientState, StoreError> {
    Ok(RecipientState {
        org_number: stored("recipient", OrgNumber::parse(&org_number))?,
        status: stored("recipient status", status.parse())?,
        changed: time("recipient status changed", changed)?,
    })
}

pub(super) fn parse_status(status: &str) -> Result<TransferStatus, StoreError> {
    stored("status", status.parse())
}

pub(super) fn parse_recipient_status(status: &str) -> Result<RecipientStatus, StoreError> {
    stored("recipient status", status.parse())
}

pub(super) fn transfer_history_from_row(
    (status, detail, at): (String, Option<String>, i64),
) -> Result<TransferHistoryEntry, StoreError> {
    Ok(TransferHistoryEntry {
        status: parse_status(&status)?,
        detail,
        at: time("history time", at)?,
    })
}

pub(super) fn recipient_history_from_row(
    (org_number, status, at): RecipientRow,
) -> Result<RecipientHistoryEntry, StoreError> {
    Ok(RecipientHistoryEntry {
        recipient: stored("recipient", OrgNumber::parse(&org_number))?,
        status: parse_recipient_status(&status)?,
        at: time("recipient history time", at)?,
    })
}

pub(super) fn uuid_from_row((id,): (String,)) -> Result<Uuid, StoreError> {
    stored("transfer id", Uuid::parse_str(&id))
}

pub(super) type StatisticsDbRow = (String, String, String, String, String, i64, i64, i64, i64);

pub(super) fn statistics_from_row(row: StatisticsDbRow) -> Result<StatisticsRow, StoreError> {
    let (
        resource_id,
        sender,
        recipient,
        sender_vendor,
        recipient_vendor,
        created,
        published,
        attempts,
        confirmed,
    ) = row;
    // Rows written before vendors were recorded have none: an empty column.
    let vendor = |what: &str, text: String| {
        Ok::<_, StoreError>(if text.is_empty() {
            None
        } else {
            Some(stored(what, OrgNumber::parse(&text))?)
        })
    };
    Ok(StatisticsRow {
        key: StatisticsKey {
            resource_id,
            sender: Some(stored("sender", OrgNumber::parse(&sender))?),
            sender_vendor: vendor("sender vendor", sender_vendor)?,
            recipient: Some(stored("recipient", OrgNumber::parse(&recipient))?),
            recipient_vendor: vendor("recipient vendor", recipient_vendor)?,
        },
        counts: Counts {
            file_transfers: to_u64("transfers", created)?,
            uploads: to_u64("uploads", published)?,
            download_attempts: to_u64("download attempts", attempts)?,
            downloads_confirmed: to_u64("confirmations", confirmed)?,
        },
    })
}

pub(super) type OwnerRow = (String, String, String, i64);

pub(super) fn owner_from_row(
    (org_number, org_code, name, created): OwnerRow,
) -> Result<ServiceOwner, StoreError> {
    Ok(ServiceOwner {
        org_number: stored("service owner", OrgNumber::parse(&org_number))?,
        org_code,
        name,
        created: time("service owner created", created)?,
    })
}

pub(super) type SettingsRow = (
    String,
    String,
    Option<i64>,
    i64,
    bool,
    i64,
    bool,
    Option<String>,
    Option<i64>,
    Option<String>,
    bool,
);

pub(super) fn settings_from_row(row: SettingsRow) -> Result<ResourceSettings, StoreError> {
    let (
        resource_id,
        service_owner,
        max_size,
        ttl,
        purge,
        grace,
        shim,
        service_code,
        edition_code,
        required_party,
        approved,
    ) = row;
    Ok(ResourceSettings {
        resource_id,
        service_owner: stored("service owner", OrgNumber::parse(&service_owner))?,
        max_file_transfer_size: max_size.map(|size| to_u64("max size", size)).transpose()?,
        file_transfer_time_to_live: TimeDelta::milliseconds(ttl),
        purge_after_all_confirmed: purge,
        purge_grace_period: TimeDelta::milliseconds(grace),
        use_manifest_file_shim: shim,
        external_service_code_legacy: service_code,
        external_service_edition_code_legacy: edition_code,
        required_party,
        approved_for_disabled_virus_scan: approved,
    })
}

/// Implements `FileTransferStore` for `$store` (a struct with a `pool: sqlx::Pool<$db>`),
/// claiming outbox rows with `$claim` and due transfers with `$due_purge` / `$due_stuck` /
/// `$due_abandoned`.
macro_rules! file_transfer_store_impl {
    ($store:ty, $db:ty, $claim:expr, $due_purge:expr, $due_stuck:expr, $due_abandoned:expr) => {
        impl $store {
            /// Applies one step in `tx`: the compare-and-set, its history row and its outbox
            /// rows. False (nothing written) when the transfer is not in a status of `from` that
            /// may move to `to`.
            async fn apply_step(
                tx: &mut sqlx::Transaction<'_, $db>,
                id: &str,
                step: &$crate::store::Step<'_>,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::sql;
                let at_millis = sql::millis(step.at);
                let size = step
                    .update
                    .size
                    .map(|size| sql::to_i64("size", size))
                    .transpose()?;
                let mut query = sqlx::query(sql::TRANSITION)
                    .bind(id)
                    .bind(step.to.as_str())
                    .bind(at_millis)
                    .bind(size)
                    .bind(&step.update.checksum)
                    .bind(&step.update.storage_key)
                    .bind(step.update.published.map(sql::millis));
                for status in sql::legal_from(step.from, step.to) {
                    query = query.bind(status);
                }
                if query.execute(&mut **tx).await?.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query(sql::INSERT_TRANSFER_HISTORY)
                    .bind(id)
                    .bind(step.to.as_str())
                    .bind(&step.update.detail)
                    .bind(at_millis)
                    .bind(step.update.vendor.map(|vendor| vendor.to_string()))
                    .execute(&mut **tx)
                    .await?;
                match &step.update.lease {
                    Some($crate::store::LeaseChange::Grant(lease)) => {
                        sqlx::query(sql::INSERT_LEASE)
                            .bind(id)
                            .bind(&lease.holder)
                            .bind(sql::millis(lease.expires))
                            .bind(&lease.staging.key)
                            .bind(&lease.staging.multipart_id)
                            .execute(&mut **tx)
                            .await?;
                    }
                    Some($crate::store::LeaseChange::Release) => {
                        sqlx::query(sql::DELETE_LEASE)
                            .bind(id)
                            .execute(&mut **tx)
                            .await?;
                    }
                    Some($crate::store::LeaseChange::Surrender) => {
                        sqlx::query(sql::SURRENDER_LEASE)
                            .bind(id)
                            .bind(at_millis)
                            .execute(&mut **tx)
                            .await?;
                    }
                    None => {}
                }
                Self::insert_outbox(tx, step.events).await?;
                Ok(true)
            }

            /// Inserts the events' outbox rows in `tx`.
            async fn insert_outbox(
                tx: &mut sqlx::Transaction<'_, $db>,
                events: &[broker_common::transfer_event::TransferEvent],
            ) -> Result<(), $crate::store::StoreError> {
                for event in events {
                    let row = $crate::store::sql::outbox_record(event)?;
                    sqlx::query(broker_common::outbox::sql::INSERT)
                        .bind(&row.id)
                        .bind(&row.routing_key)
                        .bind(&row.payload)
                        .bind(row.created_at)
                        .bind(&row.traceparent)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            /// The transfer as `connection` sees it.
            async fn read_transfer(
                connection: &mut <$db as sqlx::Database>::Connection,
                id: &str,
            ) -> Result<Option<$crate::domain::transfer::Transfer>, $crate::store::StoreError>
            {
                let row: Option<$crate::store::sql::TransferRow> =
                    sqlx::query_as($crate::store::sql::SELECT_TRANSFER)
                        .bind(id)
                        .fetch_optional(&mut *connection)
                        .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let recipients: Vec<$crate::store::sql::RecipientRow> =
                    sqlx::query_as($crate::store::sql::SELECT_RECIPIENTS)
                        .bind(id)
                        .fetch_all(&mut *connection)
                        .await?;
                $crate::store::sql::transfer_from_rows(row, recipients).map(Some)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::FileTransferStore for $store {
            async fn create(
                &self,
                transfer: &$crate::domain::transfer::NewTransfer,
                events: &[broker_common::transfer_event::TransferEvent],
            ) -> Result<$crate::domain::transfer::Transfer, $crate::store::StoreError> {
                use $crate::domain::status::{RecipientStatus, TransferStatus};
                use $crate::store::sql;
                let id = transfer.id.to_string();
                let created = sql::millis(transfer.created);
                let _turn = self.writes.enter().await;
                let mut tx = self.pool.begin().await?;
                sqlx::query(sql::INSERT_TRANSFER)
                    .bind(&id)
                    .bind(&transfer.resource_id)
                    .bind(&transfer.file_name)
                    .bind(&transfer.senders_reference)
                    .bind(transfer.sender.to_string())
                    .bind(sql::json(&transfer.property_list)?)
                    .bind(&transfer.checksum)
                    .bind(transfer.use_virus_scan)
                    .bind(TransferStatus::Initialized.as_str())
                    .bind(created)
                    .bind(sql::month(transfer.created))
                    .bind(sql::millis(transfer.expires))
                    .bind(&transfer.sender_party)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::INSERT_TRANSFER_HISTORY)
                    .bind(&id)
                    .bind(TransferStatus::Initialized.as_str())
                    .bind(None::<String>)
                    .bind(created)
                    .bind(transfer.vendor.map(|vendor| vendor.to_string()))
                    .execute(&mut *tx)
                    .await?;
                for (position, recipient) in transfer.recipients.iter().enumerate() {
                    let org = recipient.to_string();
                    sqlx::query(sql::INSERT_RECIPIENT)
                        .bind(&id)
                        .bind(&org)
                        .bind(sql::to_i64("position", position as u64)?)
                        .bind(RecipientStatus::Initialized.as_str())
                        .bind(created)
                        .execute(&mut *tx)
                        .await?;
                    // The sender's vendor did not act for the recipient: no vendor here.
                    sqlx::query(sql::INSERT_RECIPIENT_HISTORY)
                        .bind(&id)
                        .bind(&org)
                        .bind(RecipientStatus::Initialized.as_str())
                        .bind(created)
                        .bind(None::<String>)
                        .execute(&mut *tx)
                        .await?;
                }
                Self::insert_outbox(&mut tx, events).await?;
                tx.commit().await?;
                Ok(transfer.initialized())
            }

            async fn get(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<$crate::domain::transfer::Transfer>, $crate::store::StoreError>
            {
                let mut connection = self.pool.acquire().await?;
                Self::read_transfer(&mut connection, &id.to_string()).await
            }

            async fn history(
                &self,
                id: uuid::Uuid,
            ) -> Result<$crate::domain::transfer::History, $crate::store::StoreError> {
                use $crate::store::sql;
                let id = id.to_string();
                let transfer: Vec<(String, Option<String>, i64)> =
                    sqlx::query_as(sql::SELECT_TRANSFER_HISTORY)
                        .bind(&id)
                        .fetch_all(&self.pool)
                        .await?;
                let recipients: Vec<sql::RecipientRow> =
                    sqlx::query_as(sql::SELECT_RECIPIENT_HISTORY)
                        .bind(&id)
                        .fetch_all(&self.pool)
                        .await?;
                Ok($crate::domain::transfer::History {
                    transfer: transfer
                        .into_iter()
                        .map(sql::transfer_history_from_row)
                        .collect::<Result<_, _>>()?,
                    recipients: recipients
                        .into_iter()
                        .map(sql::recipient_history_from_row)
                        .collect::<Result<_, _>>()?,
                })
            }

            async fn transition_steps(
                &self,
                id: uuid::Uuid,
                steps: &[$crate::store::Step<'_>],
            ) -> Result<$crate::store::Transitioned, $crate::store::StoreError> {
                use $crate::store::{Transitioned, sql};
                let id = id.to_string();
                let _turn = self.writes.enter().await;
                let mut tx = self.pool.begin().await?;
                for step in steps {
                    if !Self::apply_step(&mut tx, &id, step).await? {
                        // Read after the rollback: the status earlier steps reached is undone.
                        tx.rollback().await?;
                        let current: Option<(String,)> = sqlx::query_as(sql::SELECT_STATUS)
                            .bind(&id)
                            .fetch_optional(&self.pool)
                            .await?;
                        return Ok(match current {
                            None => Transitioned::NotFound,
                            Some((status,)) => Transitioned::Refused {
                                current: sql::parse_status(&status)?,
                            },
                        });
                    }
                }
                let transfer = Self::read_transfer(&mut *tx, &id).await?;
                tx.commit().await?;
                transfer.map(Transitioned::Applied).ok_or_else(|| {
                    $crate::store::StoreError::Corrupt(format!("transfer {id} vanished"))
                })
            }

            async fn set_recipient_status(
                &self,
                id: uuid::Uuid,
                recipient: broker_common::identity::OrgNumber,
                from: &[$crate::domain::status::RecipientStatus],
                to: $crate::domain::status::RecipientStatus,
                at: chrono::DateTime<chrono::Utc>,
                vendor: Option<broker_common::identity::OrgNumber>,
                events: &[broker_common::transfer_event::TransferEvent],
            ) -> Result<$crate::store::RecipientTransitioned, $crate::store::StoreError> {
                use $crate::store::{RecipientTransitioned, sql};
                let id = id.to_string();
                let org = recipient.to_string();
                let _turn = self.writes.enter().await;
                let mut tx = self.pool.begin().await?;
                let locked = sqlx::query(sql::LOCK_TRANSFER)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let current: Option<(String,)> = if locked == 0 {
                    None
                } else {
                    sqlx::query_as(sql::SELECT_RECIPIENT_STATUS)
                        .bind(&id)
                        .bind(&org)
                        .fetch_optional(&mut *tx)
                        .await?
                };
                let Some((current,)) = current else {
                    tx.rollback().await?;
                    return Ok(RecipientTransitioned::NotFound);
                };
                let current = sql::parse_recipient_status(&current)?;
                if !from.contains(&current) || !current.can_move_to(to) {
                    tx.rollback().await?;
                    return Ok(RecipientTransitioned::Refused { current });
                }
                if current.is_no_op(to) {
                    tx.rollback().await?;
                    return Ok(RecipientTransitioned::Unchanged);
                }
                let at = sql::millis(at);
                sqlx::query(sql::SET_RECIPIENT_STATUS)
                    .bind(&id)
                    .bind(&org)
                    .bind(to.as_str())
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::INSERT_RECIPIENT_HISTORY)
                    .bind(&id)
                    .bind(&org)
                    .bind(to.as_str())
                    .bind(at)
                    .bind(vendor.map(|vendor| vendor.to_string()))
                    .execute(&mut *tx)
                    .await?;
                Self::insert_outbox(&mut tx, events).await?;
                let (unconfirmed,): (i64,) = sqlx::query_as(sql::COUNT_UNCONFIRMED)
                    .bind(&id)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(RecipientTransitioned::Applied {
                    all_confirmed: unconfirmed == 0,
                })
            }

            async fn record_download(
                &self,
                id: uuid::Uuid,
                recipient: broker_common::identity::OrgNumber,
                at: chrono::DateTime<chrono::Utc>,
                vendor: Option<broker_common::identity::OrgNumber>,
                debounce_since: Option<chrono::DateTime<chrono::Utc>>,
            ) -> Result<$crate::store::DownloadRecorded, $crate::store::StoreError> {
                use $crate::domain::status::RecipientStatus;
                use $crate::store::{DownloadRecorded, sql};
                let id = id.to_string();
                let org = recipient.to_string();
                let _turn = self.writes.enter().await;
                let mut tx = self.pool.begin().await?;
                // The transfer's row lock orders this after a concurrent confirmation.
                sqlx::query(sql::LOCK_TRANSFER)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                if let Some(since) = debounce_since {
                    let (recent,): (i64,) = sqlx::query_as(sql::COUNT_RECENT_DOWNLOADS)
                        .bind(&id)
                        .bind(&org)
                        .bind(sql::millis(since))
                        .fetch_one(&mut *tx)
                        .await?;
                    if recent > 0 {
                        tx.rollback().await?;
                        return Ok(DownloadRecorded::Debounced);
                    }
                }
                let at = sql::millis(at);
                let updated = sqlx::query(sql::SET_RECIPIENT_DOWNLOADED)
                    .bind(&id)
                    .bind(&org)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if updated == 0 {
                    tx.rollback().await?;
                    return Ok(DownloadRecorded::NotFound);
                }
                sqlx::query(sql::INSERT_RECIPIENT_HISTORY)
                    .bind(&id)
                    .bind(&org)
                    .bind(RecipientStatus::DownloadStarted.as_str())
                    .bind(at)
                    .bind(vendor.map(|vendor| vendor.to_string()))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(DownloadRecorded::Recorded)
            }

            async fn search(
                &self,
                query: &$crate::store::SearchQuery,
            ) -> Result<Vec<uuid::Uuid>, $crate::store::StoreError> {
                use $crate::store::{SEARCH_LIMIT, SearchRole, sql};
                let by_status = query.status.is_some();
                let both_bounds = query.from.is_some() && query.to.is_some();
                if query.role == SearchRole::ServiceOwner {
                    let statement = sql::OWNER_SEARCH.pick(by_status, query.ascending);
                    let rows: Vec<(String,)> = sqlx::query_as(statement)
                        .bind(&query.resource_id)
                        .bind(query.status.map_or("", |status| status.as_str()))
                        .bind(query.from.map_or(i64::MIN, sql::millis))
                        .bind(query.to.map_or(i64::MAX, sql::millis))
                        .bind(i64::from(query.limit.min(SEARCH_LIMIT)))
                        .bind(both_bounds)
                        .fetch_all(&self.pool)
                        .await?;
                    return rows.into_iter().map(sql::uuid_from_row).collect();
                }
                let statement = sql::SEARCH.pick(by_status, query.ascending);
                let (as_sender, as_recipient) = match query.role {
                    SearchRole::Sender => (true, false),
                    SearchRole::Recipient => (false, true),
                    SearchRole::Both | SearchRole::ServiceOwner => (true, true),
                };
                let rows: Vec<(String,)> = sqlx::query_as(statement)
                    .bind(&query.resource_id)
                    .bind(query.status.map_or("", |status| status.as_str()))
                    .bind(query.from.map_or(i64::MIN, sql::millis))
                    .bind(query.to.map_or(i64::MAX, sql::millis))
                    .bind(as_sender)
                    .bind(as_recipient)
                    .bind(query.caller.to_string())
                    .bind(query.recipient_status.map_or("", |status| status.as_str()))
                    .bind(i64::from(query.limit.min(SEARCH_LIMIT)))
                    .bind(both_bounds)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(sql::uuid_from_row).collect()
            }

            async fn stuck_uploads(
                &self,
                before: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> Result<Vec<uuid::Uuid>, $crate::store::StoreError> {
                use $crate::store::sql;
                let rows: Vec<(String,)> = sqlx::query_as(sql::STUCK_UPLOADS)
                    .bind(sql::millis(before))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(sql::uuid_from_row).collect()
            }

            async fn settle_due(
                &self,
                due: $crate::store::Due,
                limit: u32,
                at: chrono::DateTime<chrono::Utc>,
                decide: &(dyn for<'t> Fn(
                    &'t $crate::domain::transfer::Transfer,
                ) -> $crate::domain::lifecycle::Settlement
                      + Send
                      + Sync),
            ) -> Result<Vec<$crate::domain::transfer::Transfer>, $crate::store::StoreError> {
                use $crate::store::{Due, Step, TransitionUpdate, sql};
                let _turn = self.writes.enter().await;
                let mut tx = self.pool.begin().await?;
                let rows: Vec<(String,)> = match due {
                    Due::Purge { now } => {
                        sqlx::query_as($due_purge)
                            .bind(sql::millis(now))
                            .bind(i64::from(limit))
                            .fetch_all(&mut *tx)
                            .await?
                    }
                    Due::Abandoned { now } => {
                        sqlx::query_as($due_abandoned)
                            .bind(sql::millis(now))
                            .bind(i64::from(limit))
                            .fetch_all(&mut *tx)
                            .await?
                    }
                    Due::Stuck {
                        upload_started_before,
                        processing_before,
                    } => {
                        sqlx::query_as($due_stuck)
                            .bind(sql::millis(upload_started_before))
                            .bind(i64::from(limit))
                            .bind(sql::millis(processing_before))
                            .fetch_all(&mut *tx)
                            .await?
                    }
                };
                let takes_lease = matches!(due, Due::Abandoned { .. });
                let mut settled = Vec::with_capacity(rows.len());
                for (id,) in rows {
                    let Some(transfer) = Self::read_transfer(&mut *tx, &id).await? else {
                        continue;
                    };
                    let settlement = decide(&transfer);
                    let update = TransitionUpdate {
                        detail: settlement.detail.clone(),
                        ..TransitionUpdate::default()
                    };
                    let step = Step {
                        from: &[transfer.status],
                        to: settlement.to,
                        at,
                        update: &update,
                        events: &settlement.events,
                    };
                    // Under the row lock the status cannot have changed; the compare-and-set
                    // still guards a decision for an illegal move.
                    if Self::apply_step(&mut tx, &id, &step).await? {
                        if takes_lease {
                            sqlx::query(sql::TAKE_LEASE)
                                .bind(&id)
                                .execute(&mut *tx)
                                .await?;
                        }
                        if let Some(now) = Self::read_transfer(&mut *tx, &id).await? {
                            settled.push(now);
                        }
                    }
                }
                tx.commit().await?;
                Ok(settled)
            }

            async fn bytes_to_delete(
                &self,
                before: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> Result<Vec<uuid::Uuid>, $crate::store::StoreError> {
                use $crate::store::sql;
                let rows: Vec<(String,)> = sqlx::query_as(sql::BYTES_PENDING)
                    .bind(sql::millis(before))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(sql::uuid_from_row).collect()
            }

            async fn bytes_deleted(&self, id: uuid::Uuid) -> Result<(), $crate::store::StoreError> {
                let _turn = self.writes.enter().await;
                sqlx::query($crate::store::sql::BYTES_DELETED)
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn renew_lease(
                &self,
                id: uuid::Uuid,
                holder: &str,
                expires: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::sql;
                let _turn = self.writes.enter().await;
                let renewed = sqlx::query(sql::RENEW_LEASE)
                    .bind(id.to_string())
                    .bind(holder)
                    .bind(sql::millis(expires))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(renewed == 1)
            }

            async fn leases_to_clear(
                &self,
                before: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> Result<Vec<(uuid::Uuid, $crate::storage::Staging)>, $crate::store::StoreError>
            {
                use $crate::store::sql;
                let rows: Vec<(String, String, Option<String>)> =
                    sqlx::query_as(sql::LEASES_TO_CLEAR)
                        .bind(sql::millis(before))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter()
                    .map(|(id, key, multipart_id)| {
                        let id = sql::uuid_from_row((id,))?;
                        Ok((id, $crate::storage::Staging { key, multipart_id }))
                    })
                    .collect()
            }

            async fn lease_cleared(&self, id: uuid::Uuid) -> Result<(), $crate::store::StoreError> {
                let _turn = self.writes.enter().await;
                sqlx::query($crate::store::sql::DELETE_LEASE)
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn register_service_owner(
                &self,
                owner: &$crate::domain::settings::ServiceOwner,
            ) -> Result<$crate::store::Inserted, $crate::store::StoreError> {
                use $crate::store::{Inserted, sql};
                let _turn = self.writes.enter().await;
                let inserted = sqlx::query(sql::INSERT_OWNER)
                    .bind(owner.org_number.to_string())
                    .bind(&owner.org_code)
                    .bind(&owner.name)
                    .bind(sql::millis(owner.created))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(if inserted == 0 {
                    Inserted::AlreadyExists
                } else {
                    Inserted::New
                })
            }

            async fn get_service_owner(
                &self,
                org_number: broker_common::identity::OrgNumber,
            ) -> Result<Option<$crate::domain::settings::ServiceOwner>, $crate::store::StoreError>
            {
                use $crate::store::sql;
                let row: Option<sql::OwnerRow> = sqlx::query_as(sql::SELECT_OWNER)
                    .bind(org_number.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(sql::owner_from_row).transpose()
            }

            async fn put_resource_settings(
                &self,
                settings: &$crate::domain::settings::ResourceSettings,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::sql;
                let _turn = self.writes.enter().await;
                let max_size = settings
                    .max_file_transfer_size
                    .map(|size| sql::to_i64("max size", size))
                    .transpose()?;
                sqlx::query(sql::UPSERT_SETTINGS)
                    .bind(&settings.resource_id)
                    .bind(settings.service_owner.to_string())
                    .bind(max_size)
                    .bind(settings.file_transfer_time_to_live.num_milliseconds())
                    .bind(settings.purge_after_all_confirmed)
                    .bind(settings.purge_grace_period.num_milliseconds())
                    .bind(settings.use_manifest_file_shim)
                    .bind(&settings.external_service_code_legacy)
                    .bind(settings.external_service_edition_code_legacy)
                    .bind(&settings.required_party)
                    .bind(settings.approved_for_disabled_virus_scan)
                    .bind(sql::millis(at))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn get_resource_settings(
                &self,
                resource_id: &str,
            ) -> Result<
                Option<$crate::domain::settings::ResourceSettings>,
                $crate::store::StoreError,
            > {
                use $crate::store::sql;
                let row: Option<sql::SettingsRow> = sqlx::query_as(sql::SELECT_SETTINGS)
                    .bind(resource_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(sql::settings_from_row).transpose()
            }

            async fn monthly_statistics(
                &self,
                query: &$crate::store::StatisticsQuery,
            ) -> Result<
                Vec<$crate::domain::statistics::StatisticsRow>,
                $crate::store::StoreError,
            > {
                use $crate::store::sql;
                let rows: Vec<sql::StatisticsDbRow> = sqlx::query_as(sql::MONTHLY_STATISTICS)
                    .bind(query.service_owner.to_string())
                    .bind(sql::millis(query.from))
                    .bind(sql::millis(query.to))
                    .bind(query.resource_id.as_deref().unwrap_or_default())
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(sql::statistics_from_row).collect()
            }

            async fn claim_unpublished_outbox(
                &self,
                limit: u32,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<$crate::store::OutboxRecord>, $crate::store::StoreError> {
                use $crate::store::{OUTBOX_LEASE_MILLIS, OutboxRecord};
                let _turn = self.writes.enter().await;
                let now = $crate::store::sql::millis(now);
                let mut rows: Vec<(String, String, String, i64, Option<String>)> =
                    sqlx::query_as($claim)
                    .bind(now)
                    .bind(i64::from(limit))
                    .bind(now + OUTBOX_LEASE_MILLIS)
                    .fetch_all(&self.pool)
                    .await?;
                // RETURNING gives no order; the relay publishes oldest first.
                rows.sort();
                Ok(rows
                    .into_iter()
                    .map(|(id, routing_key, payload, created_at, traceparent)| OutboxRecord {
                        id,
                        routing_key,
                        payload,
                        created_at,
                        traceparent,
                    })
                    .collect())
            }

            async fn mark_outbox_published(
                &self,
                ids: &[String],
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                let now = $crate::store::sql::millis(now);
                let _turn = self.writes.enter().await;
                let mut tx = self.pool.begin().await?;
                let mut marked = 0;
                for id in ids {
                    marked += sqlx::query(broker_common::outbox::sql::MARK_PUBLISHED)
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(marked)
            }
        }
    };
}

pub(super) use file_transfer_store_impl;
