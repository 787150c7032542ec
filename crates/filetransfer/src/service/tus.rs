//! Resumable uploads (tus 1.0, as Altinn's `…/upload/tus/{fileTransferId}` speaks it): the
//! transfer's own upload, written PATCH by PATCH, or partial uploads concatenated by a final one.
//!
//! The transfer goes UploadStarted when its first upload is created (as Altinn's does), with an
//! upload lease held by no process ([`TUS_HOLDER`]) whose expiry slides with every request: when
//! the upload expires, the abandoned-upload job fails the transfer, and the tus job removes the
//! bytes. Everything a PATCH needs lives in the store and the storage, so any replica takes any
//! PATCH; a PATCH claims its upload at its offset, so of two racing ones exactly one writes.
//! The bytes are durable before the offset that counts them is recorded, and the transfer is
//! published (with the same events as a one-shot upload) before the last PATCH is answered.

use std::time::Duration;

use broker_common::auth::{Caller, Expired};
use broker_common::checksum::RequestDigest;
use broker_common::md5::{self, Md5};
use bytes::Bytes;
use chrono::{DateTime, TimeDelta};
use futures::{Stream, StreamExt, TryStreamExt};
use tracing::Instrument;
use uuid::Uuid;

use super::{FileTransferCore, Result, principal, write_failure};
use crate::domain::error::{FileTransferError, TusRefusal};
use crate::domain::status::TransferStatus;
use crate::domain::transfer::Transfer;
use crate::storage::{AppendError, Expected, Resumable, Written};
use crate::store::tus::{Checkpoint, Claim, Concat, Creator, TUS_HOLDER, TusRecord};
use crate::store::{Inserted, LeaseChange, TransitionUpdate, Transitioned, UploadLease};

/// How resumable uploads behave.
#[derive(Debug, Clone, Copy)]
pub struct TusSettings {
    /// An upload expires this long after its last request.
    pub expiration: TimeDelta,
    /// A token expired less than this long ago may go on with its client's upload.
    pub token_grace: Duration,
    /// A PATCH's claim on its upload lasts this long unless renewed (a third of it between
    /// renewals), so a replica killed mid-PATCH holds the upload up no longer.
    pub claim: TimeDelta,
}

impl Default for TusSettings {
    fn default() -> Self {
        Self {
            expiration: TimeDelta::seconds(crate::config::DEFAULT_TUS_EXPIRATION_SECONDS as i64),
            token_grace: Duration::from_secs(crate::config::DEFAULT_TUS_TOKEN_GRACE_SECONDS),
            claim: TimeDelta::seconds(crate::config::DEFAULT_UPLOAD_LEASE_SECONDS as i64),
        }
    }
}

/// What a new upload is (`Upload-Concat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewUpload {
    /// The transfer's own upload of `length` bytes.
    Whole {
        /// `Upload-Length`.
        length: u64,
    },
    /// A partial upload of `length` bytes.
    Partial {
        /// `Upload-Length`.
        length: u64,
    },
    /// The final upload, concatenating these partial uploads in this order.
    Final(Vec<String>),
}

/// One PATCH's request, but its bytes.
#[derive(Debug, Clone)]
pub struct Patch {
    /// The transfer.
    pub transfer: Uuid,
    /// '' for the transfer's own upload, else the partial's id.
    pub part: String,
    /// `Upload-Offset`.
    pub offset: u64,
    /// `Upload-Checksum`: the algorithm and the digest of the request's bytes.
    pub checksum: Option<(String, Vec<u8>)>,
}

impl FileTransferCore {
    /// The same service with resumable uploads behaving as `settings` say.
    pub fn with_tus(mut self, settings: TusSettings) -> Self {
        self.tus = settings;
        self
    }

    /// How long after its expiry a token may go on with its client's upload.
    pub fn tus_token_grace(&self) -> Duration {
        self.tus.token_grace
    }

    /// The largest file the transfer's resource allows, for its sender.
    pub async fn tus_max_size(&self, caller: &Caller, id: Uuid) -> Result<u64> {
        let transfer = self.tus_transfer(caller, id).await?;
        self.size_limit(&transfer).await
    }

    /// Creates a resumable upload of transfer `id` (the transfer goes UploadStarted); a final
    /// upload concatenates its partials and publishes the transfer before it is answered.
    pub async fn tus_create(
        self: &std::sync::Arc<Self>,
        caller: &Caller,
        expired: Expired,
        id: Uuid,
        upload: NewUpload,
        metadata: String,
    ) -> Result<TusRecord> {
        let transfer = self.tus_transfer(caller, id).await?;
        self.accepts_tus(&transfer).await?;
        let (part, length, concat) = match upload {
            NewUpload::Final(partials) => {
                let this = self.clone();
                let caller = caller.clone();
                // Its own task: a client that goes away cannot stop a concatenation halfway.
                let task = async move {
                    this.concatenate(&caller, expired, transfer, partials, metadata)
                        .await
                };
                return tokio::spawn(task.in_current_span())
                    .await
                    .map_err(|_| FileTransferError::UploadFailed)?;
            }
            // Only a live upload's token may come late; creating one takes a valid token.
            _ if expired.0 => return Err(FileTransferError::NoAccessToResource),
            NewUpload::Whole { length } => (String::new(), length, Concat::None),
            NewUpload::Partial { length } => {
                (Uuid::new_v4().simple().to_string(), length, Concat::Partial)
            }
        };
        if length > self.size_limit(&transfer).await? {
            return Err(FileTransferError::FileTooBig);
        }
        let staging = self
            .storage
            .resumable_stage(id, &part)
            .await
            .map_err(|error| write_failure(&id.to_string(), error).1)?;
        let now = self.clock.now();
        let record = TusRecord {
            transfer_id: id,
            part,
            length,
            offset: 0,
            md5_state: Md5::new().state().to_vec(),
            staging,
            parts: Vec::new(),
            tail: 0,
            concat,
            metadata,
            creator: creator(caller),
            expires: now + self.tus.expiration,
            writer_until: DateTime::UNIX_EPOCH,
        };
        if let Err(error) = self.insert_upload(caller, &transfer, &record).await {
            if let Err(abandon) = self.storage.abandon(&record.staging).await {
                tracing::warn!(%id, error = %abandon, "abandoning a resumable upload never created");
            }
            return Err(error);
        }
        if length == 0 {
            // Nothing to wait for: an empty upload is complete as it is created.
            self.complete(&record).await?;
        }
        Ok(record)
    }

    /// Upload `part` of transfer `id` as stored now (tus HEAD).
    pub async fn tus_get(
        self: &std::sync::Arc<Self>,
        caller: &Caller,
        expired: Expired,
        id: Uuid,
        part: &str,
    ) -> Result<TusRecord> {
        let transfer = self.tus_transfer(caller, id).await?;
        let record = self.tus_record(caller, expired, &transfer, part).await?;
        self.recover_finish(&transfer, &record).await?;
        Ok(record)
    }

    /// Appends `bytes` to an upload (tus PATCH); the upload after them. A body that breaks off
    /// keeps what reached durable storage, unless a checksum was given.
    pub async fn tus_patch<S, E>(
        self: &std::sync::Arc<Self>,
        caller: &Caller,
        expired: Expired,
        patch: Patch,
        bytes: S,
    ) -> Result<TusRecord>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let transfer = self.tus_transfer(caller, patch.transfer).await?;
        let record = self
            .tus_record(caller, expired, &transfer, &patch.part)
            .await?;
        if record.complete() && patch.offset >= record.length {
            // Altinn answers a PATCH of a complete upload with its length, not an error.
            self.recover_finish(&transfer, &record).await?;
            return Ok(record);
        }
        if transfer.status != TransferStatus::UploadStarted {
            return Err(FileTransferError::AlreadyUploaded);
        }
        let expected = match &patch.checksum {
            Some((algorithm, value)) => Some(Expected {
                digest: RequestDigest::new(algorithm).ok_or_else(|| {
                    FileTransferError::invalid(
                        "Upload-Checksum",
                        format!(
                            "Unsupported checksum algorithm. Supported algorithms are: {}",
                            broker_common::checksum::ALGORITHMS
                        ),
                    )
                })?,
                value: value.clone(),
            }),
            None => None,
        };
        let writer = Uuid::new_v4().simple().to_string();
        let now = self.clock.now();
        let claimed = self
            .store
            .tus_claim(
                patch.transfer,
                &patch.part,
                patch.offset,
                &writer,
                now + self.tus.claim,
                now,
            )
            .await?;
        let record = match claimed {
            Claim::Claimed(record) => *record,
            Claim::Offset(stored) => {
                return Err(TusRefusal::Offset {
                    stored,
                    sent: patch.offset,
                }
                .into());
            }
            Claim::Busy => return Err(TusRefusal::Busy.into()),
            Claim::Missing => return Err(FileTransferError::NotFound),
        };
        let this = self.clone();
        // Its own task: a client that goes away mid-body still gets what arrived recorded.
        let task = async move {
            this.write_claimed(transfer, record, writer, expected, bytes)
                .await
        };
        tokio::spawn(task.in_current_span())
            .await
            .map_err(|_| FileTransferError::UploadFailed)?
    }

    /// Terminates an upload (tus DELETE): its bytes go; the transfer stays UploadStarted, so a
    /// new upload may start over (as Altinn's does), until the expiry fails it.
    pub async fn tus_terminate(
        &self,
        caller: &Caller,
        expired: Expired,
        id: Uuid,
        part: &str,
    ) -> Result<()> {
        let transfer = self.tus_transfer(caller, id).await?;
        let record = self.tus_record(caller, expired, &transfer, part).await?;
        if transfer.status != TransferStatus::UploadStarted {
            return Err(FileTransferError::AlreadyUploaded);
        }
        if record.writer_until > self.clock.now() {
            return Err(TusRefusal::Busy.into());
        }
        self.discard(&record).await
    }

    /// The transfer, if the caller may send it; code 1 or 6 otherwise.
    async fn tus_transfer(&self, caller: &Caller, id: Uuid) -> Result<Transfer> {
        let transfer = self.transfer(id).await?;
        if !self.acts_as_sender(&principal(caller), &transfer).await? {
            return Err(FileTransferError::NoAccessToResource);
        }
        Ok(transfer)
    }

    /// Upload `part` of `transfer`; with an expired token, only if the token's client created
    /// it and it is still running (as Altinn, which then wants UploadStarted or
    /// UploadProcessing).
    async fn tus_record(
        &self,
        caller: &Caller,
        expired: Expired,
        transfer: &Transfer,
        part: &str,
    ) -> Result<TusRecord> {
        let record = self
            .store
            .tus_get(transfer.id, part)
            .await?
            .ok_or(FileTransferError::NotFound)?;
        if expired.0 && !running_upload_of(caller, transfer, &record) {
            return Err(FileTransferError::NoAccessToResource);
        }
        Ok(record)
    }

    /// Refuses a transfer that takes no (more) resumable uploads: past Initialized, unless
    /// its upload runs through tus.
    async fn accepts_tus(&self, transfer: &Transfer) -> Result<()> {
        let accepts = match transfer.status {
            TransferStatus::Initialized => true,
            TransferStatus::UploadStarted => {
                self.store.lease_holder(transfer.id).await?.as_deref() == Some(TUS_HOLDER)
            }
            _ => false,
        };
        if accepts {
            Ok(())
        } else {
            Err(FileTransferError::AlreadyUploaded)
        }
    }

    /// Stores `record`, moving the transfer to UploadStarted first if it is Initialized. An
    /// own upload that exists already is replaced, unless it is complete or being written.
    async fn insert_upload(
        &self,
        caller: &Caller,
        transfer: &Transfer,
        record: &TusRecord,
    ) -> Result<()> {
        if transfer.status == TransferStatus::Initialized {
            let started = TransitionUpdate {
                vendor: caller.consumer,
                lease: Some(LeaseChange::Grant(UploadLease {
                    holder: TUS_HOLDER.to_owned(),
                    expires: record.expires,
                    staging: record.staging.clone(),
                })),
                ..TransitionUpdate::default()
            };
            let moved = self
                .store
                .transition(
                    transfer.id,
                    &[TransferStatus::Initialized],
                    TransferStatus::UploadStarted,
                    self.clock.now(),
                    &started,
                    &[],
                )
                .await?;
            match moved {
                Transitioned::Applied(_) => {}
                // Another creation got there first: fine if it was a resumable one.
                Transitioned::Refused { .. } => {
                    let current = self.transfer(transfer.id).await?;
                    self.accepts_tus(&current).await?;
                }
                Transitioned::NotFound => return Err(FileTransferError::NotFound),
            }
        }
        if self.store.tus_insert(record).await? == Inserted::New {
            return Ok(());
        }
        let existing = self
            .store
            .tus_get(record.transfer_id, &record.part)
            .await?
            .ok_or(FileTransferError::AlreadyUploaded)?;
        if existing.complete() {
            return Err(FileTransferError::AlreadyUploaded);
        }
        if existing.writer_until > self.clock.now() {
            return Err(TusRefusal::Busy.into());
        }
        // A client starting over (it lost the upload's URL): the old bytes go.
        self.discard(&existing).await?;
        match self.store.tus_insert(record).await? {
            Inserted::New => Ok(()),
            Inserted::AlreadyExists => Err(TusRefusal::Busy.into()),
        }
    }

    /// Writes `bytes` into the upload `record` that `writer` claimed, renewing the claim while
    /// they come, and records how far they got.
    async fn write_claimed<S, E>(
        self: &std::sync::Arc<Self>,
        transfer: Transfer,
        record: TusRecord,
        writer: String,
        expected: Option<Expected>,
        bytes: S,
    ) -> Result<TusRecord>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let id = record.transfer_id;
        let md5 = Md5::resume(&record.md5_state).ok_or_else(|| {
            FileTransferError::Storage(format!("upload {id} has no valid MD5 state"))
        })?;
        let before = resumable(&record);
        let append = self.storage.append(&before, md5, expected, bytes);
        let appended = self.while_claimed(&record, &writer, append).await;
        let expires = self.clock.now() + self.tus.expiration;
        let part = record.part.clone();
        let release = || {
            self.store
                .tus_finish_write(id, &part, &writer, None, expires, false)
        };
        let appended = match appended {
            Some(Ok(appended)) => appended,
            // Nothing of this request counts; the upload stays where it was.
            Some(Err(error)) => {
                release().await?;
                return Err(append_refusal(id, error));
            }
            None => {
                release().await?;
                return Err(TusRefusal::Busy.into());
            }
        };
        if let Some(reason) = &appended.broke {
            tracing::info!(%id, offset = appended.offset, %reason, "a PATCH broke off; its bytes are kept");
        }
        let checkpoint = Checkpoint {
            offset: appended.offset,
            md5_state: appended.md5.state().to_vec(),
            parts: appended.parts,
            tail: appended.tail,
        };
        let publishes = record.part.is_empty() && checkpoint.offset == record.length;
        let recorded = self
            .store
            .tus_finish_write(
                id,
                &record.part,
                &writer,
                Some(&checkpoint),
                expires,
                publishes,
            )
            .await?;
        if !recorded {
            // The claim lapsed and another request took the upload over: these bytes do not count.
            return Err(TusRefusal::Busy.into());
        }
        self.storage
            .forget_old_tails(&before, checkpoint.parts.len())
            .await;
        let record = TusRecord {
            offset: checkpoint.offset,
            md5_state: checkpoint.md5_state,
            parts: checkpoint.parts,
            tail: checkpoint.tail,
            expires,
            writer_until: DateTime::UNIX_EPOCH,
            ..record
        };
        if publishes {
            // Still holding the claim, so no HEAD recovers this upload while it is published.
            let published = self.finish_own(&transfer, &record).await;
            release().await?;
            published?;
        } else if record.complete() {
            self.complete(&record).await?;
        }
        Ok(record)
    }

    /// Runs `work` while renewing the claim of `writer`; `None` (and `work` dropped) when the
    /// claim was lost first.
    async fn while_claimed<T>(
        &self,
        record: &TusRecord,
        writer: &str,
        work: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        tokio::select! {
            biased;
            done = work => Some(done),
            () = self.renew_claim(record, writer) => None,
        }
    }

    /// Renews the claim of `writer` every third of a claim; returns when it is lost.
    async fn renew_claim(&self, record: &TusRecord, writer: &str) {
        let every = (self.tus.claim / 3)
            .to_std()
            .unwrap_or(Duration::from_secs(1));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            ticks.tick().await;
            let until = self.clock.now() + self.tus.claim;
            match self
                .store
                .tus_renew_claim(record.transfer_id, &record.part, writer, until)
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(id = %record.transfer_id, %error, "renewing a PATCH's claim")
                }
            }
        }
    }

    /// Makes a complete upload's bytes its object.
    async fn complete(&self, record: &TusRecord) -> Result<()> {
        self.storage
            .complete(&resumable(record))
            .await
            .map_err(|error| write_failure(&record.transfer_id.to_string(), error).1)
    }

    /// Publishes the transfer whose own upload `record` is complete and its bytes in place:
    /// UploadProcessing, then Published (or the scan), or Failed on a checksum mismatch.
    async fn publish_own(
        self: &std::sync::Arc<Self>,
        transfer: &Transfer,
        record: &TusRecord,
    ) -> Result<()> {
        let md5 = Md5::resume(&record.md5_state).ok_or_else(|| {
            FileTransferError::Storage(format!(
                "upload {} has no valid MD5 state",
                record.transfer_id
            ))
        })?;
        let written = Written {
            size: record.length,
            md5: md5::hex(&md5.finalize()),
        };
        self.finish_upload(transfer.clone(), Some(written.size), Ok(written))
            .await
            .map(|_| ())
    }

    /// Finishes what a request that completed the own upload left undone when its process
    /// died between recording the last byte and publishing: once its claim lapsed, whoever
    /// asks next claims the upload and finishes it.
    async fn recover_finish(
        self: &std::sync::Arc<Self>,
        transfer: &Transfer,
        record: &TusRecord,
    ) -> Result<()> {
        let unfinished = record.part.is_empty()
            && record.complete()
            && record.concat == Concat::None
            && transfer.status == TransferStatus::UploadStarted;
        if !unfinished {
            return Ok(());
        }
        let writer = Uuid::new_v4().simple().to_string();
        let now = self.clock.now();
        let claimed = self
            .store
            .tus_claim(
                record.transfer_id,
                "",
                record.length,
                &writer,
                now + self.tus.claim,
                now,
            )
            .await?;
        if !matches!(claimed, Claim::Claimed(_)) {
            // Another request is finishing it.
            return Ok(());
        }
        let current = self.transfer(record.transfer_id).await?;
        let finished = if current.status == TransferStatus::UploadStarted {
            self.finish_own(&current, record).await
        } else {
            Ok(())
        };
        let expires = self.clock.now() + self.tus.expiration;
        self.store
            .tus_finish_write(record.transfer_id, "", &writer, None, expires, false)
            .await?;
        finished
    }

    /// Puts the complete own upload's bytes in place and publishes the transfer.
    async fn finish_own(
        self: &std::sync::Arc<Self>,
        transfer: &Transfer,
        record: &TusRecord,
    ) -> Result<()> {
        self.complete(record).await?;
        self.publish_own(transfer, record).await
    }

    /// Removes an upload's bytes and its row.
    async fn discard(&self, record: &TusRecord) -> Result<()> {
        self.storage
            .discard_resumable(&resumable(record))
            .await
            .map_err(|error| FileTransferError::Storage(error.to_string()))?;
        self.store
            .tus_delete(record.transfer_id, &record.part)
            .await?;
        Ok(())
    }

    /// Concatenates the complete `partials` of `transfer` into its bytes and publishes it;
    /// the final upload's record.
    async fn concatenate(
        self: &std::sync::Arc<Self>,
        caller: &Caller,
        expired: Expired,
        transfer: Transfer,
        partials: Vec<String>,
        metadata: String,
    ) -> Result<TusRecord> {
        let id = transfer.id;
        if partials.is_empty() {
            return Err(TusRefusal::NoPartials.into());
        }
        let mut records = Vec::with_capacity(partials.len());
        for partial in &partials {
            let record = self
                .store
                .tus_get(id, partial)
                .await?
                .filter(|record| record.concat == Concat::Partial)
                .ok_or_else(|| TusRefusal::ForeignPartial {
                    partial: partial.clone(),
                    transfer: id.to_string(),
                })?;
            if expired.0 && !running_upload_of(caller, &transfer, &record) {
                return Err(FileTransferError::NoAccessToResource);
            }
            if !record.complete() {
                return Err(TusRefusal::PartialNotReady(partial.clone()).into());
            }
            // Its bytes may not be in place if the request that completed it died halfway.
            self.complete(&record).await?;
            records.push(record);
        }
        let length = records.iter().map(|record| record.length).sum::<u64>();
        let limit = self.size_limit(&transfer).await?;
        if length > limit {
            return Err(FileTransferError::FileTooBig);
        }
        let staging = self
            .storage
            .stage(id)
            .await
            .map_err(|error| write_failure(&id.to_string(), error).1)?;
        let now = self.clock.now();
        let mut record = TusRecord {
            transfer_id: id,
            part: String::new(),
            length,
            offset: 0,
            md5_state: Vec::new(),
            staging: staging.clone(),
            parts: Vec::new(),
            tail: 0,
            concat: Concat::Final(partials.clone()),
            metadata,
            creator: creator(caller),
            expires: now + self.tus.expiration,
            writer_until: DateTime::UNIX_EPOCH,
        };
        if let Some(existing) = self.store.tus_get(id, "").await?
            && existing.complete()
        {
            // The concatenation was done: the same answer again.
            let _ = self.storage.abandon(&staging).await;
            return Ok(existing);
        }
        if let Err(error) = self.insert_upload(caller, &transfer, &record).await {
            let _ = self.storage.abandon(&staging).await;
            return Err(error);
        }
        let writer = Uuid::new_v4().simple().to_string();
        let claimed = self
            .store
            .tus_claim(id, "", 0, &writer, now + self.tus.claim, now)
            .await?;
        if !matches!(claimed, Claim::Claimed(_)) {
            let _ = self.storage.abandon(&staging).await;
            return Err(TusRefusal::Busy.into());
        }
        let storage = self.storage.clone();
        let bytes = futures::stream::iter(partials.clone())
            .then(move |partial| {
                let storage = storage.clone();
                async move { storage.read_partial(id, &partial).await }
            })
            .try_flatten()
            .boxed();
        let write = self.storage.write_staged(id, &staging, bytes, limit);
        let written = self.while_claimed(&record, &writer, write).await;
        let expires = self.clock.now() + self.tus.expiration;
        let written = match written {
            Some(Ok(written)) if written.size == length => written,
            outcome => {
                self.store
                    .tus_finish_write(id, "", &writer, None, expires, false)
                    .await?;
                return Err(match outcome {
                    Some(Err(error)) => write_failure(&id.to_string(), error).1,
                    _ => TusRefusal::Busy.into(),
                });
            }
        };
        let checkpoint = Checkpoint {
            offset: length,
            md5_state: Vec::new(),
            parts: Vec::new(),
            tail: 0,
        };
        self.store
            .tus_finish_write(id, "", &writer, Some(&checkpoint), expires, false)
            .await?;
        self.finish_upload(transfer, Some(written.size), Ok(written))
            .await?;
        for partial in &records {
            if let Err(error) = self.discard(partial).await {
                // The tus job removes it with the rest once the upload expires.
                tracing::warn!(%id, part = partial.part, %error, "removing a concatenated partial upload");
            }
        }
        record.offset = length;
        record.expires = expires;
        Ok(record)
    }
}

/// The creator an upload records for `caller`.
fn creator(caller: &Caller) -> Creator {
    Creator {
        org: caller.org.to_string(),
        client_id: caller.client_id.clone(),
    }
}

/// Whether `record` is an upload of `caller`'s own client whose transfer is still being
/// uploaded: all an expired token may touch.
fn running_upload_of(caller: &Caller, transfer: &Transfer, record: &TusRecord) -> bool {
    let running = matches!(
        transfer.status,
        TransferStatus::UploadStarted | TransferStatus::UploadProcessing
    );
    running && record.creator == creator(caller)
}

/// Where the bytes of `record` stand, for the storage.
pub(crate) fn resumable(record: &TusRecord) -> Resumable {
    Resumable {
        transfer: record.transfer_id,
        part: record.part.clone(),
        staging: record.staging.clone(),
        length: record.length,
        offset: record.offset,
        parts: record.parts.clone(),
        tail: record.tail,
    }
}

/// The answer to a PATCH whose bytes were not appended.
fn append_refusal(id: Uuid, error: AppendError) -> FileTransferError {
    match error {
        AppendError::TooLong => TusRefusal::TooLong.into(),
        AppendError::ChecksumMismatch | AppendError::Unverifiable(_) => {
            TusRefusal::ChecksumMismatch.into()
        }
        AppendError::Write(error) => write_failure(&id.to_string(), error).1,
    }
}
