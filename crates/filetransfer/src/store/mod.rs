//! Persistence of the file-transfer service: one trait, implemented for PostgreSQL and SQLite.
//!
//! Both implementations share their SQL (see [`sql`]): times are integers (Unix milliseconds,
//! so status changes within one second keep their order), JSON is TEXT and parameters are
//! written `$n`, which both drivers accept. The store knows nothing of access or validation; it
//! stores what the service has already checked, with two exceptions that make races harmless:
//! every status change is a compare-and-set on the current status (checked against the one
//! transition table, [`TransferStatus::can_move_to`]), and every change commits its history row
//! and outbox rows in the same transaction.

mod outbox;
mod sql;
pub mod tus;

pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use broker_common::identity::OrgNumber;
use broker_common::transfer_event::TransferEvent;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use outbox::StoreOutbox;
pub use postgres::PostgresFileTransferStore;
pub use sqlite::SqliteFileTransferStore;

use crate::domain::lifecycle::Settlement;
use crate::domain::settings::{ResourceSettings, ServiceOwner};
use crate::domain::statistics::StatisticsRow;
use crate::domain::status::{RecipientStatus, TransferStatus};
use crate::domain::transfer::{History, NewTransfer, Transfer};
use crate::storage::Staging;

/// A store failure; never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back, or a value cannot be stored.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Outcome of inserting a row with a natural key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The row is new.
    New,
    /// A row with that key already existed; nothing was changed.
    AlreadyExists,
}

/// What a transfer transition writes besides the status; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransitionUpdate {
    /// The uploaded size in bytes.
    pub size: Option<u64>,
    /// The MD5 of the uploaded bytes (lowercase hex).
    pub checksum: Option<String>,
    /// Where the bytes are in object storage.
    pub storage_key: Option<String>,
    /// When the transfer was published.
    pub published: Option<DateTime<Utc>>,
    /// Text for the history row (a failure's cause); `None`: the status's own text.
    pub detail: Option<String>,
    /// The vendor of a step a caller takes (the token's consumer organisation), for the history
    /// row; `None` for the broker's own steps.
    pub vendor: Option<OrgNumber>,
    /// What happens to the transfer's upload lease with the step.
    pub lease: Option<LeaseChange>,
}

/// An upload lease: which process writes a transfer's upload, until when, and where the bytes
/// are meanwhile (what to remove should it never finish).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLease {
    /// The process writing the upload.
    pub holder: String,
    /// When the lease lapses unless renewed.
    pub expires: DateTime<Utc>,
    /// Where the bytes are until the upload is complete.
    pub staging: Staging,
}

/// A change to a transfer's upload lease, made in the transaction of a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseChange {
    /// The upload starts: the lease is granted (there was none).
    Grant(UploadLease),
    /// The upload ended in its holder's hands with its bytes stored: the lease goes.
    Release,
    /// The upload failed in its holder's hands: the lease is taken from it and lapses at once,
    /// so the lifecycle job removes what it staged even when the holder's own removal failed
    /// (storage away) and clears the lease once that is done.
    Surrender,
}

/// One transfer transition of [`FileTransferStore::transition_steps`].
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// The statuses the transfer may be in.
    pub from: &'a [TransferStatus],
    /// The status it moves to.
    pub to: TransferStatus,
    /// When.
    pub at: DateTime<Utc>,
    /// What else changes.
    pub update: &'a TransitionUpdate,
    /// The events to publish.
    pub events: &'a [TransferEvent],
}

/// Outcome of a transfer transition.
// Returned once per call and matched at once, never stored: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transitioned {
    /// Applied with its history and outbox rows; the transfer as it is now.
    Applied(Transfer),
    /// The transfer was not in one of the expected statuses, or the move is illegal; nothing
    /// was changed.
    Refused {
        /// Its status when refused.
        current: TransferStatus,
    },
    /// There is no such transfer.
    NotFound,
}

/// Outcome of a recipient's status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientTransitioned {
    /// Applied with its history and outbox rows.
    Applied {
        /// Whether every recipient of the transfer is now DownloadConfirmed; decided under the
        /// transfer's row lock, so of concurrent confirmations exactly the last one sees it.
        all_confirmed: bool,
    },
    /// Allowed but changes nothing (a second download start); nothing was written.
    Unchanged,
    /// The recipient was not in one of the expected statuses, or the move is illegal.
    Refused {
        /// Its status when refused.
        current: RecipientStatus,
    },
    /// No such transfer, or the organisation is not one of its recipients.
    NotFound,
}

/// Outcome of recording a recipient's download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadRecorded {
    /// A DownloadStarted history row was written (and an Initialized recipient moved on).
    Recorded,
    /// The recipient had a DownloadStarted row since the debounce time; nothing was written.
    Debounced,
    /// No such transfer, or the organisation is not one of its recipients.
    NotFound,
}

/// Whose transfers a search returns, relative to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchRole {
    /// Those the caller sent.
    Sender,
    /// Those the caller receives (published or not).
    Recipient,
    /// Either.
    Both,
    /// Every transfer of the resource, whoever sent or receives it: the service owner's view
    /// (the service checks the caller owns the resource; `caller` is then ignored).
    ServiceOwner,
}

/// The most ids a search returns.
pub const SEARCH_LIMIT: u32 = 100;

/// A search for transfer ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The caller's organisation; `role` is relative to it.
    pub caller: OrgNumber,
    /// Only this resource's transfers.
    pub resource_id: String,
    /// Only transfers currently in this status.
    pub status: Option<TransferStatus>,
    /// Only transfers where the caller is a recipient in this status; `role` is then ignored,
    /// as Altinn does.
    pub recipient_status: Option<RecipientStatus>,
    /// Lower bound on the time the transfer entered `status` (creation without it): inclusive
    /// when `to` is given too, exclusive alone, as Altinn bounds it.
    pub from: Option<DateTime<Utc>>,
    /// Upper bound on the same time, likewise.
    pub to: Option<DateTime<Utc>>,
    /// Oldest first when true, newest first otherwise (by the same time).
    pub ascending: bool,
    /// Whose transfers.
    pub role: SearchRole,
    /// At most this many (capped at [`SEARCH_LIMIT`]).
    pub limit: u32,
}

/// Which transfers the monthly statistics count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatisticsQuery {
    /// Only resources this organisation has configured for the broker.
    pub service_owner: OrgNumber,
    /// The month's first instant.
    pub from: DateTime<Utc>,
    /// The next month's first instant (exclusive).
    pub to: DateTime<Utc>,
    /// Only this resource; every one of the owner's when `None`.
    pub resource_id: Option<String>,
}

/// Which transfers a lifecycle job takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Published or AllConfirmedDownloaded transfers whose time to live has passed at `now`,
    /// and AllConfirmedDownloaded ones whose resource purges after all confirmed and whose grace
    /// period has passed at `now`.
    Purge {
        /// The time the job runs at.
        now: DateTime<Utc>,
    },
    /// Transfers in UploadStarted whose upload lease lapsed before `now` (its holder is gone);
    /// the lease is marked as taken with the move, so its holder can no longer renew it.
    Abandoned {
        /// The time the job runs at.
        now: DateTime<Utc>,
    },
    /// Transfers in UploadStarted since before `upload_started_before`, and in UploadProcessing
    /// since before `processing_before`.
    Stuck {
        /// Uploads started before this are stuck.
        upload_started_before: DateTime<Utc>,
        /// Processing entered before this is stuck.
        processing_before: DateTime<Utc>,
    },
}

/// A domain event waiting for the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    /// The event id (UUIDv7), which becomes the bus message id.
    pub id: String,
    /// Bus routing key, `filetransfer.<kind>`.
    pub routing_key: String,
    /// The `TransferEvent` as JSON.
    pub payload: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The W3C `traceparent` of the request that caused it, when traced.
    pub traceparent: Option<String>,
}

/// What the file-transfer service persists.
#[async_trait]
pub trait FileTransferStore: tus::TusStore + Send + Sync + 'static {
    /// Creates a transfer (Initialized), its recipients (Initialized), their first history rows
    /// and the events' outbox rows in one transaction.
    async fn create(
        &self,
        transfer: &NewTransfer,
        events: &[TransferEvent],
    ) -> Result<Transfer, StoreError>;
    /// One transfer with its recipients' current statuses.
    async fn get(&self, id: Uuid) -> Result<Option<Transfer>, StoreError>;
    /// A transfer's history and its recipients', each in order (empty when there is none).
    async fn history(&self, id: Uuid) -> Result<History, StoreError>;
    /// Moves the transfer to `to` if it is in one of `from` and the move is legal: a
    /// compare-and-set, with its history row, `update` and the events' outbox rows in the same
    /// transaction. Entering UploadStarted records `at` as the upload's start.
    async fn transition(
        &self,
        id: Uuid,
        from: &[TransferStatus],
        to: TransferStatus,
        at: DateTime<Utc>,
        update: &TransitionUpdate,
        events: &[TransferEvent],
    ) -> Result<Transitioned, StoreError> {
        let step = Step {
            from,
            to,
            at,
            update,
            events,
        };
        self.transition_steps(id, &[step]).await
    }
    /// Applies `steps` in order, each as [`FileTransferStore::transition`] would, in one
    /// transaction: all of them, or (when one is refused) none. Saves a commit per extra step
    /// where no one needs to see the status in between.
    async fn transition_steps(
        &self,
        id: Uuid,
        steps: &[Step<'_>],
    ) -> Result<Transitioned, StoreError>;
    /// Moves one recipient to `to` if it is in one of `from` and the move is legal, with its
    /// history row (naming `vendor`, the caller's consumer organisation) and the events' outbox
    /// rows in the same transaction.
    #[allow(clippy::too_many_arguments)]
    async fn set_recipient_status(
        &self,
        id: Uuid,
        recipient: OrgNumber,
        from: &[RecipientStatus],
        to: RecipientStatus,
        at: DateTime<Utc>,
        vendor: Option<OrgNumber>,
        events: &[TransferEvent],
    ) -> Result<RecipientTransitioned, StoreError>;
    /// Records that `recipient` downloads the file, as Altinn records every download: a
    /// DownloadStarted history row (naming `vendor`) and the recipient's status time moved to
    /// `at`, its status raised to DownloadStarted if it was Initialized (a confirmed one stays
    /// confirmed). With `debounce_since`, nothing is written when such a row exists since then.
    async fn record_download(
        &self,
        id: Uuid,
        recipient: OrgNumber,
        at: DateTime<Utc>,
        vendor: Option<OrgNumber>,
        debounce_since: Option<DateTime<Utc>>,
    ) -> Result<DownloadRecorded, StoreError>;
    /// Ids matching the query, ordered by creation, at most `min(limit, 100)`.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Uuid>, StoreError>;
    /// Transfers that entered UploadStarted before `before` and are still there, oldest first.
    async fn stuck_uploads(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError>;

    /// Takes up to `limit` transfers that are `due` (on PostgreSQL with `FOR UPDATE SKIP
    /// LOCKED`, so concurrent replicas take different rows; on SQLite under the write gate) and
    /// applies to each the settlement `decide` returns, as a compare-and-set with its history
    /// and outbox rows, all in one transaction. Moving to Purged or Failed marks the bytes for
    /// deletion (see [`FileTransferStore::bytes_to_delete`]). Returns the transfers it moved, as
    /// they are now.
    async fn settle_due(
        &self,
        due: Due,
        limit: u32,
        at: DateTime<Utc>,
        decide: &(dyn for<'t> Fn(&'t Transfer) -> Settlement + Send + Sync),
    ) -> Result<Vec<Transfer>, StoreError>;
    /// Transfers in Purged or Failed whose bytes may still be in storage, that got there before
    /// `before`, oldest first.
    async fn bytes_to_delete(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// Records that the bytes of `id` are gone.
    async fn bytes_deleted(&self, id: Uuid) -> Result<(), StoreError>;

    /// Extends the upload lease of `id` to `expires` if `holder` still holds it; false when it
    /// does not (the lease was taken by the lifecycle job, or released).
    async fn renew_lease(
        &self,
        id: Uuid,
        holder: &str,
        expires: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Upload leases that lapsed before `before` and whose transfer left UploadStarted without
    /// its holder releasing them (the job failed it, or the holder died after the move), with
    /// what their uploads staged; at most `limit`.
    async fn leases_to_clear(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(Uuid, Staging)>, StoreError>;
    /// Removes the upload lease of `id`, once what it staged is gone.
    async fn lease_cleared(&self, id: Uuid) -> Result<(), StoreError>;

    /// Registers a service owner; [`Inserted::AlreadyExists`] when its org number or code is
    /// taken.
    async fn register_service_owner(&self, owner: &ServiceOwner) -> Result<Inserted, StoreError>;
    /// The service owner that is this organisation.
    async fn get_service_owner(
        &self,
        org_number: OrgNumber,
    ) -> Result<Option<ServiceOwner>, StoreError>;
    /// Creates or replaces a resource's settings.
    async fn put_resource_settings(
        &self,
        settings: &ResourceSettings,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// A resource's settings.
    async fn get_resource_settings(
        &self,
        resource_id: &str,
    ) -> Result<Option<ResourceSettings>, StoreError>;

    /// The monthly statistics of the resources the query's owner has configured: one row per
    /// resource, sender, recipient and their vendors, counted over the (transfer, recipient)
    /// pairs with activity in `[from, to)` as [`crate::domain::statistics`] describes, in no
    /// particular order.
    async fn monthly_statistics(
        &self,
        query: &StatisticsQuery,
    ) -> Result<Vec<StatisticsRow>, StoreError>;

    /// Claims up to `limit` unpublished outbox rows, oldest first, leasing them for
    /// [`OUTBOX_LEASE_MILLIS`] so another relay skips them meanwhile (on PostgreSQL with
    /// `FOR UPDATE SKIP LOCKED`). A relay that dies loses its lease: publishing is at least once.
    async fn claim_unpublished_outbox(
        &self,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxRecord>, StoreError>;
    /// Marks rows as published; they are never claimed again. Returns how many were marked.
    async fn mark_outbox_published(
        &self,
        ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// How long a claim on outbox rows lasts.
pub const OUTBOX_LEASE_MILLIS: i64 = 30_000;
