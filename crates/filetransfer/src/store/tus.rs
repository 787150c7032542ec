//! Resumable (tus) uploads in the store: what a PATCH needs to go on where the last one stopped,
//! on any replica (see `migrations/filetransfer/*/0008_tus_uploads.sql`), and the claim that
//! lets one PATCH at a time write an upload.
//!
//! A PATCH [claims](TusStore::tus_claim) the upload at the offset it was sent for: of two
//! PATCHes racing at one offset exactly one UPDATE matches. The claim lapses unless renewed
//! ([`TusStore::tus_renew_claim`]), so a replica killed mid-PATCH blocks nobody for long; the
//! PATCH ends by [recording](TusStore::tus_finish_write) how far its bytes are durable, which
//! also slides the upload's expiry and the transfer's upload lease.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Inserted, StoreError};
use crate::storage::Staging;

/// The upload lease holder of a transfer uploaded through tus: no process holds it between
/// PATCHes, and its expiry slides with each, so the abandoned-upload job fails the transfer
/// once the upload expires.
pub const TUS_HOLDER: &str = "tus";

/// How an upload takes part in concatenation (`Upload-Concat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concat {
    /// An upload of its own.
    None,
    /// A partial upload, to be concatenated.
    Partial,
    /// The final upload: the partials' ids, in the order of their bytes.
    Final(Vec<String>),
}

impl Concat {
    /// As the `concat` column holds it.
    fn column(&self) -> String {
        match self {
            Self::None => String::new(),
            Self::Partial => "partial".to_owned(),
            Self::Final(partials) => format!("final;{}", partials.join(" ")),
        }
    }

    /// From the `concat` column.
    fn parse(column: &str) -> Result<Self, StoreError> {
        match column {
            "" => Ok(Self::None),
            "partial" => Ok(Self::Partial),
            other => other
                .strip_prefix("final;")
                .map(|ids| Self::Final(ids.split_whitespace().map(str::to_owned).collect()))
                .ok_or_else(|| StoreError::Corrupt(format!("tus concat {other:?}"))),
        }
    }
}

/// Who created an upload: a token that expired since may go on with it only if it is theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creator {
    /// The organisation the creating token acted for.
    pub org: String,
    /// Its OAuth2 client.
    pub client_id: String,
}

/// One tus upload as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TusRecord {
    /// The transfer.
    pub transfer_id: Uuid,
    /// '' for the transfer's own upload, else the partial upload's id.
    pub part: String,
    /// `Upload-Length`.
    pub length: u64,
    /// Bytes durable.
    pub offset: u64,
    /// The MD5 state after those bytes ([`broker_common::md5::Md5::state`]).
    pub md5_state: Vec<u8>,
    /// Where the bytes are.
    pub staging: Staging,
    /// The finished S3 parts' ids, in order.
    pub parts: Vec<String>,
    /// Bytes after the last part, kept in the tail object (S3).
    pub tail: u64,
    /// How it takes part in concatenation.
    pub concat: Concat,
    /// `Upload-Metadata` as sent.
    pub metadata: String,
    /// Who created it.
    pub creator: Creator,
    /// When it expires unless a PATCH comes.
    pub expires: DateTime<Utc>,
    /// When the running PATCH's claim lapses (in the past when none runs).
    pub writer_until: DateTime<Utc>,
}

impl TusRecord {
    /// Whether every byte is durable.
    pub fn complete(&self) -> bool {
        self.offset == self.length
    }
}

/// What a PATCH's claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The upload is this PATCH's to write, as it stood.
    Claimed(Box<TusRecord>),
    /// The upload's offset is another.
    Offset(u64),
    /// Another PATCH is writing it.
    Busy,
    /// There is no such upload.
    Missing,
}

/// How far a PATCH got: the upload's new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Bytes durable.
    pub offset: u64,
    /// The MD5 state after them.
    pub md5_state: Vec<u8>,
    /// The finished S3 parts' ids.
    pub parts: Vec<String>,
    /// Bytes in the tail object.
    pub tail: u64,
}

/// The tus uploads' rows.
#[async_trait]
pub trait TusStore: Send + Sync {
    /// Stores a new upload; [`Inserted::AlreadyExists`] (and nothing changed) when the
    /// transfer has one by that part already.
    async fn tus_insert(&self, record: &TusRecord) -> Result<Inserted, StoreError>;

    /// The upload `part` of `transfer`.
    async fn tus_get(&self, transfer: Uuid, part: &str) -> Result<Option<TusRecord>, StoreError>;

    /// Claims upload `part` of `transfer` for the PATCH `writer` at `offset`, until `until`,
    /// unless another PATCH's claim runs at `now`.
    async fn tus_claim(
        &self,
        transfer: Uuid,
        part: &str,
        offset: u64,
        writer: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;

    /// Extends the claim of `writer` to `until`; false when it is no longer its.
    async fn tus_renew_claim(
        &self,
        transfer: Uuid,
        part: &str,
        writer: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Records `checkpoint` (none: the request wrote nothing that counts) for the claim of
    /// `writer`, sliding the upload's expiry and the transfer's tus lease to `expires`, and ends
    /// the claim unless `hold` (the writer has more to do: publish the complete upload); false
    /// when the claim was no longer its (nothing recorded).
    async fn tus_finish_write(
        &self,
        transfer: Uuid,
        part: &str,
        writer: &str,
        checkpoint: Option<&Checkpoint>,
        expires: DateTime<Utc>,
        hold: bool,
    ) -> Result<bool, StoreError>;

    /// Removes the row of upload `part` of `transfer` (its bytes are gone or adopted).
    async fn tus_delete(&self, transfer: Uuid, part: &str) -> Result<(), StoreError>;

    /// Uploads whose bytes may go, at most `limit`: those of Failed transfers, and incomplete
    /// ones that expired before `now` with no PATCH running.
    async fn tus_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<TusRecord>, StoreError>;

    /// The holder of the transfer's upload lease, if it has one.
    async fn lease_holder(&self, transfer: Uuid) -> Result<Option<String>, StoreError>;
}

/// The columns a [`TusRecord`] is read from, in [`Row`]'s order.
macro_rules! columns {
    ($table:literal) => {
        concat!(
            $table,
            "transfer_id, ",
            $table,
            "part, ",
            $table,
            "length, ",
            $table,
            "upload_offset, ",
            $table,
            "md5_state, ",
            $table,
            "staging, ",
            $table,
            "multipart_id, ",
            $table,
            "parts, ",
            $table,
            "tail, ",
            $table,
            "concat, ",
            $table,
            "metadata, ",
            $table,
            "creator_org, ",
            $table,
            "creator_client, ",
            $table,
            "expires, ",
            $table,
            "writer_until"
        )
    };
}
pub(super) const INSERT: &str = "INSERT INTO tus_uploads (transfer_id, part, length,
       upload_offset, md5_state, staging, multipart_id, parts, tail, concat, metadata,
       creator_org, creator_client, expires, writer, writer_until, created)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, '', 0, $15)
     ON CONFLICT (transfer_id, part) DO NOTHING";
pub(super) const CLAIM: &str = "UPDATE tus_uploads SET writer = $4, writer_until = $5
     WHERE transfer_id = $1 AND part = $2 AND upload_offset = $3
       AND (writer = '' OR writer_until < $6)";
pub(super) const RENEW: &str = "UPDATE tus_uploads SET writer_until = $4
     WHERE transfer_id = $1 AND part = $2 AND writer = $3";
pub(super) const FINISH: &str = "UPDATE tus_uploads SET upload_offset = $4, md5_state = $5,
       parts = $6, tail = $7, expires = $8,
       writer = CASE WHEN $9 THEN writer ELSE '' END,
       writer_until = CASE WHEN $9 THEN writer_until ELSE 0 END
     WHERE transfer_id = $1 AND part = $2 AND writer = $3";
pub(super) const RELEASE: &str = "UPDATE tus_uploads SET expires = $4,
       writer = CASE WHEN $5 THEN writer ELSE '' END,
       writer_until = CASE WHEN $5 THEN writer_until ELSE 0 END
     WHERE transfer_id = $1 AND part = $2 AND writer = $3";
pub(super) const SLIDE_LEASE: &str =
    "UPDATE upload_leases SET expires = $2 WHERE transfer_id = $1 AND holder = 'tus'";
pub(super) const DELETE: &str = "DELETE FROM tus_uploads WHERE transfer_id = $1 AND part = $2";
pub(super) const LEASE_HOLDER: &str = "SELECT holder FROM upload_leases WHERE transfer_id = $1";

pub(super) const SELECT: &str = concat!(
    "SELECT ",
    columns!(""),
    " FROM tus_uploads WHERE transfer_id = $1 AND part = $2"
);
/// The uploads whose bytes may go (see [`TusStore::tus_due`]).
pub(super) const DUE: &str = concat!(
    "SELECT ",
    columns!("u."),
    " FROM tus_uploads u JOIN file_transfers t ON t.id = u.transfer_id
     WHERE t.status = 'Failed'
        OR (u.expires < $1 AND u.upload_offset < u.length AND u.writer_until < $1)
     ORDER BY u.expires LIMIT $2"
);

/// A row as selected.
pub(super) type Row = (
    String,
    String,
    i64,
    i64,
    String,
    String,
    Option<String>,
    String,
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
);

/// The values [`INSERT`] binds after the key, in order.
pub(super) struct Bound {
    pub length: i64,
    pub offset: i64,
    pub md5_state: String,
    pub parts: String,
    pub tail: i64,
    pub concat: String,
    pub expires: i64,
}

impl Bound {
    pub(super) fn of(record: &TusRecord) -> Result<Self, StoreError> {
        use super::sql::{json, millis, to_i64};
        Ok(Self {
            length: to_i64("tus length", record.length)?,
            offset: to_i64("tus offset", record.offset)?,
            md5_state: hex(&record.md5_state),
            parts: json(&record.parts)?,
            tail: to_i64("tus tail", record.tail)?,
            concat: record.concat.column(),
            expires: millis(record.expires),
        })
    }
}

/// The values [`FINISH`] binds after the writer, in order.
pub(super) fn checkpoint_values(
    checkpoint: &Checkpoint,
) -> Result<(i64, String, String, i64), StoreError> {
    use super::sql::{json, to_i64};
    Ok((
        to_i64("tus offset", checkpoint.offset)?,
        hex(&checkpoint.md5_state),
        json(&checkpoint.parts)?,
        to_i64("tus tail", checkpoint.tail)?,
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("tus md5 state {text:?}"));
    if !text.len().is_multiple_of(2) {
        return Err(corrupt());
    }
    (0..text.len())
        .step_by(2)
        .map(|at| {
            text.get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(corrupt)
        })
        .collect()
}

/// A [`TusRecord`] from its row.
pub(super) fn from_row(row: Row) -> Result<TusRecord, StoreError> {
    use super::sql::{stored, time, to_u64, uuid_from_row};
    let (
        transfer_id,
        part,
        length,
        offset,
        md5_state,
        key,
        multipart_id,
        parts,
        tail,
        concat,
        metadata,
        creator_org,
        creator_client,
        expires,
        writer_until,
    ) = row;
    Ok(TusRecord {
        transfer_id: uuid_from_row((transfer_id,))?,
        part,
        length: to_u64("tus length", length)?,
        offset: to_u64("tus offset", offset)?,
        md5_state: unhex(&md5_state)?,
        staging: Staging { key, multipart_id },
        parts: stored("tus parts", serde_json::from_str(&parts))?,
        tail: to_u64("tus tail", tail)?,
        concat: Concat::parse(&concat)?,
        metadata,
        creator: Creator {
            org: creator_org,
            client_id: creator_client,
        },
        expires: time("tus expires", expires)?,
        writer_until: time("tus claim", writer_until)?,
    })
}

/// Implements [`TusStore`] for `$store` (a struct with `pool` and `writes`, as the file-transfer
/// stores have).
macro_rules! tus_store_impl {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::tus::TusStore for $store {
            async fn tus_insert(
                &self,
                record: &$crate::store::tus::TusRecord,
            ) -> Result<$crate::store::Inserted, $crate::store::StoreError> {
                use $crate::store::tus;
                let bound = tus::Bound::of(record)?;
                let _turn = self.writes.enter().await;
                let inserted = sqlx::query(tus::INSERT)
                    .bind(record.transfer_id.to_string())
                    .bind(&record.part)
                    .bind(bound.length)
                    .bind(bound.offset)
                    .bind(&bound.md5_state)
                    .bind(&record.staging.key)
                    .bind(&record.staging.multipart_id)
                    .bind(&bound.parts)
                    .bind(bound.tail)
                    .bind(&bound.concat)
                    .bind(&record.metadata)
                    .bind(&record.creator.org)
                    .bind(&record.creator.client_id)
                    .bind(bound.expires)
                    .bind(chrono::Utc::now().timestamp_millis())
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(if inserted == 1 {
                    $crate::store::Inserted::New
                } else {
                    $crate::store::Inserted::AlreadyExists
                })
            }

            async fn tus_get(
                &self,
                transfer: uuid::Uuid,
                part: &str,
            ) -> Result<Option<$crate::store::tus::TusRecord>, $crate::store::StoreError> {
                use $crate::store::tus;
                let row: Option<tus::Row> = sqlx::query_as(tus::SELECT)
                    .bind(transfer.to_string())
                    .bind(part)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(tus::from_row).transpose()
            }

            async fn tus_claim(
                &self,
                transfer: uuid::Uuid,
                part: &str,
                offset: u64,
                writer: &str,
                until: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::store::tus::Claim, $crate::store::StoreError> {
                use $crate::store::{sql, tus};
                let claimed = {
                    let _turn = self.writes.enter().await;
                    sqlx::query(tus::CLAIM)
                        .bind(transfer.to_string())
                        .bind(part)
                        .bind(sql::to_i64("tus offset", offset)?)
                        .bind(writer)
                        .bind(sql::millis(until))
                        .bind(sql::millis(now))
                        .execute(&self.pool)
                        .await?
                        .rows_affected()
                        == 1
                };
                let Some(record) = self.tus_get(transfer, part).await? else {
                    return Ok(tus::Claim::Missing);
                };
                Ok(if claimed {
                    tus::Claim::Claimed(Box::new(record))
                } else if record.offset != offset {
                    tus::Claim::Offset(record.offset)
                } else {
                    tus::Claim::Busy
                })
            }

            async fn tus_renew_claim(
                &self,
                transfer: uuid::Uuid,
                part: &str,
                writer: &str,
                until: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::{sql, tus};
                let _turn = self.writes.enter().await;
                let renewed = sqlx::query(tus::RENEW)
                    .bind(transfer.to_string())
                    .bind(part)
                    .bind(writer)
                    .bind(sql::millis(until))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(renewed == 1)
            }

            async fn tus_finish_write(
                &self,
                transfer: uuid::Uuid,
                part: &str,
                writer: &str,
                checkpoint: Option<&$crate::store::tus::Checkpoint>,
                expires: chrono::DateTime<chrono::Utc>,
                hold: bool,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::{sql, tus};
                let id = transfer.to_string();
                let expires = sql::millis(expires);
                let _turn = self.writes.enter().await;
                let mut tx = self.pool.begin().await?;
                let query = match checkpoint {
                    Some(checkpoint) => {
                        let (offset, state, parts, tail) = tus::checkpoint_values(checkpoint)?;
                        sqlx::query(tus::FINISH)
                            .bind(&id)
                            .bind(part)
                            .bind(writer)
                            .bind(offset)
                            .bind(state)
                            .bind(parts)
                            .bind(tail)
                            .bind(expires)
                            .bind(hold)
                    }
                    None => sqlx::query(tus::RELEASE)
                        .bind(&id)
                        .bind(part)
                        .bind(writer)
                        .bind(expires)
                        .bind(hold),
                };
                if query.execute(&mut *tx).await?.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query(tus::SLIDE_LEASE)
                    .bind(&id)
                    .bind(expires)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn tus_delete(
                &self,
                transfer: uuid::Uuid,
                part: &str,
            ) -> Result<(), $crate::store::StoreError> {
                let _turn = self.writes.enter().await;
                sqlx::query($crate::store::tus::DELETE)
                    .bind(transfer.to_string())
                    .bind(part)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn tus_due(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
            ) -> Result<Vec<$crate::store::tus::TusRecord>, $crate::store::StoreError> {
                use $crate::store::{sql, tus};
                let rows: Vec<tus::Row> = sqlx::query_as(tus::DUE)
                    .bind(sql::millis(now))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(tus::from_row).collect()
            }

            async fn lease_holder(
                &self,
                transfer: uuid::Uuid,
            ) -> Result<Option<String>, $crate::store::StoreError> {
                let holder: Option<(String,)> = sqlx::query_as($crate::store::tus::LEASE_HOLDER)
                    .bind(transfer.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(holder.map(|(holder,)| holder))
            }
        }
    };
}

pub(super) use tus_store_impl;
