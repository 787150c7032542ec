//! The file bytes, in object storage: local disk (fsync'd) or S3-compatible, through
//! `object_store`.
//!
//! An upload is written as it arrives: each chunk is counted against the size limit and handed
//! to an MD5 hasher on a blocking thread and to a writer on another (a [`staged`] file on local
//! disk, flushed as it grows; a multipart upload on S3), so hashing and writing overlap and
//! only a few chunks or parts are ever held in memory. Nothing is visible under the object's
//! key until the whole upload succeeded (and, on local disk, was fsync'd); any failure aborts
//! the write, which deletes what was written.
//!
//! A file that arrives before its transfer is declared (a form whose file part comes before its
//! metadata) is written the same way under a [`Spool`] key of its own (`spool/<uuid>`, never a
//! transfer's), then [adopted](Storage::adopt) as the transfer's bytes or
//! [discarded](Storage::discard). Adopting does not pass the bytes through this process where
//! storage allows it: on local disk it is a rename of the durable file; on S3 a server-side
//! copy (then the spool is deleted), except above [`S3_COPY_LIMIT`], where S3's single copy
//! request stops and `object_store` offers no multipart copy, so the bytes are streamed from
//! the spool into a new upload.
//!
//! Where an upload's bytes are while they arrive is named up front by [`Storage::stage`] (a
//! staging file's key on local disk, the multipart upload's id on S3), so that the upload's
//! lease can record it and the lifecycle job can [abandon](Storage::abandon) it from any
//! process once the one writing it died. What else a process that died left behind (spools) is
//! removed by [`Storage::remove_abandoned`] at start-up.

mod multipart;
mod resumable;
mod staged;

use std::fmt::Display;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use broker_common::md5::{self, Md5};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart,
};
use tokio::sync::mpsc;
use uuid::Uuid;

pub use resumable::{AppendError, Appended, Expected, Resumable};

/// Parts being written to S3 at once, besides the one filling; each holds one part's bytes.
const PARTS_IN_FLIGHT: usize = 1;
/// Chunks queued for the hasher ahead of it.
const HASH_QUEUE: usize = 4;
/// Bytes per chunk read from local disk for a download.
pub const READ_CHUNK_BYTES: usize = 512 * 1024;
/// Chunks read ahead of the client during a download from local disk.
const READ_AHEAD: usize = 4;
/// The folder (key prefix) of spooled files; transfers' keys are UUIDs, never this.
const SPOOL: &str = "spool";
/// Largest object S3 copies in one request (CopyObject); larger spools are streamed instead.
const S3_COPY_LIMIT: u64 = 5 * 1024 * 1024 * 1024;
/// A staging file or spool untouched this long belongs to an upload whose process died.
const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A finished, durable upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Bytes stored.
    pub size: u64,
    /// Their MD5, as 32 lowercase hex characters.
    pub md5: String,
}

/// Where an upload's bytes are while they arrive: what has to go when it is abandoned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staging {
    /// The key of the staging file (local disk) or spool, or of the object a multipart upload
    /// writes.
    pub key: String,
    /// The S3 multipart upload, when the bytes go to one.
    pub multipart_id: Option<String>,
}

impl Staging {
    /// A file or object of its own, deleted when the upload is abandoned.
    fn object(key: &Path) -> Self {
        Self {
            key: key.to_string(),
            multipart_id: None,
        }
    }
}

/// Why an upload was not stored; in every case nothing is left in storage.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// More bytes arrived than the limit allows.
    #[error("the file is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The client's stream failed or was abandoned.
    #[error("the upload stream broke off: {0}")]
    Source(String),
    /// Storage refused a write.
    #[error("storage failed: {0}")]
    Storage(#[from] object_store::Error),
    /// Writing to local disk failed.
    #[error("writing to disk failed: {0}")]
    Disk(#[from] std::io::Error),
    /// The hasher thread died.
    #[error("hashing failed")]
    Hasher,
    /// Bytes streamed from a spool into their transfer came out other than they went in.
    #[error("the spooled file changed while it was moved: {0}")]
    SpoolChanged(String),
}

/// Whether `error` says the disk is full (or a quota is used up): the upload cannot be stored
/// until an operator frees space, so retrying at once is useless.
pub fn is_storage_full(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// A file written before its transfer was declared: durable under a key of its own until
/// [`Storage::adopt`] makes it a transfer's bytes or [`Storage::discard`] deletes it.
#[derive(Debug)]
#[must_use = "a spool left alone stays in storage until the next start-up"]
pub struct Spool {
    id: Uuid,
    written: Written,
}

impl Spool {
    /// The spooled bytes' size and MD5.
    pub fn written(&self) -> &Written {
        &self.written
    }

    /// The spool as an upload's staging: abandoning it deletes the spool.
    pub fn staging(&self) -> Staging {
        Staging::object(&spool_key(self.id))
    }
}

/// How a spool becomes a transfer's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Adoption {
    /// Renamed in place (local disk).
    Rename,
    /// Copied by the store itself, then deleted.
    Copy,
    /// Streamed through this process into a new upload, then deleted.
    Restream,
}

/// How a spool of `size` bytes is adopted: on local disk by a rename, on S3 by a server-side
/// copy up to `copy_limit`, above it by streaming.
fn adoption(local: bool, size: u64, copy_limit: u64) -> Adoption {
    if local {
        Adoption::Rename
    } else if size <= copy_limit {
        Adoption::Copy
    } else {
        Adoption::Restream
    }
}

/// Where the bytes of file transfers live.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// The same store's multipart uploads by id (S3), so that one can be aborted by another
    /// process than the one that started it.
    multipart: Option<multipart::Multiparts>,
    part_bytes: usize,
    /// The directory of the files, when on local disk (uploads are written there directly).
    local_root: Option<PathBuf>,
    /// Largest spool adopted by a server-side copy rather than streamed ([`S3_COPY_LIMIT`]).
    copy_limit: u64,
}

impl Storage {
    /// Storage named by `url` (`s3://bucket/prefix`, with `AWS_*` variables for credentials,
    /// region and endpoint), else local disk under `local_root`.
    pub fn open(url: Option<&str>, local_root: &FsPath, part_bytes: usize) -> anyhow::Result<Self> {
        let (store, multipart, local_root): (Arc<dyn ObjectStore>, _, _) = match url {
            Some(url) => {
                let (store, multipart) = s3(url)?;
                (store, Some(multipart), None)
            }
            None => {
                let spool = local_root.join(SPOOL);
                std::fs::create_dir_all(&spool)
                    .with_context(|| format!("creating {}", spool.display()))?;
                // No automatic removal of emptied folders: it would take the spool folder with
                // its last spool, and the next spool would have nowhere to go.
                let store = LocalFileSystem::new_with_prefix(local_root)?.with_fsync(true);
                (Arc::new(store), None, Some(local_root.to_owned()))
            }
        };
        Ok(Self {
            store,
            multipart,
            part_bytes,
            local_root,
            copy_limit: S3_COPY_LIMIT,
        })
    }

    /// Deletes what uploads of processes that died left behind (untouched for a day): staging
    /// files on local disk, and spools on either storage. Returns how many. (Leased uploads are
    /// abandoned by the lifecycle job within a minute; this catches the rest, such as files
    /// from before leases.)
    pub async fn remove_abandoned(&self) -> anyhow::Result<usize> {
        if let Some(root) = self.local_root.clone() {
            let removed = tokio::task::spawn_blocking(move || {
                let staging = staged::remove_abandoned(&root, staged::is_staging)?;
                let spools = staged::remove_abandoned(&root.join(SPOOL), |_| true)?;
                anyhow::Ok(staging + spools)
            })
            .await??;
            return Ok(removed);
        }
        let Some(before) = SystemTime::now().checked_sub(ABANDONED_AFTER) else {
            return Ok(0);
        };
        let before = chrono::DateTime::<chrono::Utc>::from(before);
        let mut spools = self.store.list(Some(&Path::from(SPOOL)));
        let mut removed = 0;
        while let Some(object) = spools.next().await {
            let object = object?;
            if object.last_modified < before {
                self.store.delete(&object.location).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Names where the bytes of `transfer` will be while they arrive (a staging file on local
    /// disk; on S3 a multipart upload, started here), for [`write`](Self::write). Abandon it
    /// should the upload not be written after all.
    pub async fn stage(&self, transfer: Uuid) -> Result<Staging, WriteError> {
        self.stage_key(&key(transfer)).await
    }

    /// [`stage`](Self::stage) for the object at `key`.
    async fn stage_key(&self, key: &Path) -> Result<Staging, WriteError> {
        match &self.multipart {
            Some(multiparts) => Ok(Staging {
                key: key.to_string(),
                multipart_id: Some(multiparts.create(key).await?),
            }),
            None => Ok(Staging::object(&staged::staging_key(key))),
        }
    }

    /// Removes what `staging` holds of an upload that will never finish: deletes its staging
    /// file or spool, or aborts its multipart upload. What is already gone is no error, so a
    /// finished upload's staging (renamed, completed) is left alone.
    pub async fn abandon(&self, staging: &Staging) -> Result<(), object_store::Error> {
        let key = Path::from(staging.key.as_str());
        let removed = match (&staging.multipart_id, &self.multipart) {
            (Some(id), Some(multiparts)) => multiparts.abort(&key, id).await,
            (Some(_), None) => Err(object_store::Error::NotSupported {
                source: "a multipart upload's staging on storage without multipart uploads".into(),
            }),
            (None, _) => self.store.delete(&key).await,
        };
        match removed {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Writes `stream` as the bytes of `transfer`, refusing it at the first chunk past
    /// `limit` bytes; returns its size and MD5 once it is durable.
    pub async fn write<S, E>(
        &self,
        transfer: Uuid,
        stream: S,
        limit: u64,
    ) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Display,
    {
        let staging = self.stage(transfer).await?;
        self.write_staged(transfer, &staging, stream, limit).await
    }

    /// [`write`](Self::write) through `staging`, from [`stage`](Self::stage); on failure the
    /// staging is abandoned.
    pub async fn write_staged<S, E>(
        &self,
        transfer: Uuid,
        staging: &Staging,
        stream: S,
        limit: u64,
    ) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Display,
    {
        self.write_object(&key(transfer), staging, stream, limit)
            .await
    }

    /// Writes `stream` as a [`Spool`], as [`write`](Self::write) writes a transfer's bytes.
    pub async fn spool<S, E>(&self, stream: S, limit: u64) -> Result<Spool, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Display,
    {
        let id = Uuid::new_v4();
        let key = spool_key(id);
        let staging = self.stage_key(&key).await?;
        let written = self.write_object(&key, &staging, stream, limit).await?;
        Ok(Spool { id, written })
    }

    /// Makes `spool` the bytes of `transfer` (see the module docs for how); their size and
    /// MD5. Whatever happens, the spool is gone afterwards, and on failure nothing is left
    /// under the transfer's key.
    pub async fn adopt(&self, spool: Spool, transfer: Uuid) -> Result<Written, WriteError> {
        let from = spool_key(spool.id);
        let to = key(transfer);
        let how = adoption(
            self.local_root.is_some(),
            spool.written.size,
            self.copy_limit,
        );
        let moved = match how {
            Adoption::Rename => self.store.rename(&from, &to).await.map_err(Into::into),
            Adoption::Copy => self.store.copy(&from, &to).await.map_err(Into::into),
            Adoption::Restream => self.restream(&from, transfer, &spool.written).await,
        };
        if how != Adoption::Rename || moved.is_err() {
            let written = spool.written.clone();
            self.discard(spool).await;
            return moved.map(|()| written);
        }
        Ok(spool.written)
    }

    /// Streams the object at `from` into the bytes of `transfer`, checking they arrive as
    /// `expected`.
    async fn restream(
        &self,
        from: &Path,
        transfer: Uuid,
        expected: &Written,
    ) -> Result<(), WriteError> {
        let bytes = self.store.get(from).await?.into_stream();
        let written = self.write(transfer, bytes, expected.size).await?;
        if written != *expected {
            if let Err(error) = self.delete(transfer).await {
                tracing::warn!(%transfer, %error, "deleting a spool's bad copy");
            }
            return Err(WriteError::SpoolChanged(format!(
                "{} bytes with MD5 {} became {} with {}",
                expected.size, expected.md5, written.size, written.md5
            )));
        }
        Ok(())
    }

    /// Deletes `spool`; should that fail, the start-up sweep removes it later.
    pub async fn discard(&self, spool: Spool) {
        let key = spool_key(spool.id);
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => tracing::warn!(%key, %error, "deleting a spooled file"),
        }
    }

    /// Writes `stream` under `key` through `staging`, refusing it at the first chunk past
    /// `limit` bytes; returns its size and MD5 once it is durable.
    async fn write_object<S, E>(
        &self,
        key: &Path,
        staging: &Staging,
        mut stream: S,
        limit: u64,
    ) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Display,
    {
        let mut sink = match (&self.local_root, &self.multipart, &staging.multipart_id) {
            (Some(root), _, None) => {
                let local = |key: &Path| {
                    key.parts()
                        .fold(root.clone(), |path, part| path.join(part.as_ref()))
                };
                Sink::Staged(staged::StagedFile::create(
                    local(&Path::from(staging.key.as_str())),
                    local(key),
                ))
            }
            (None, Some(multiparts), Some(id)) => Sink::Multipart(
                WriteMultipart::new_with_chunk_size(multiparts.resume(key, id), self.part_bytes),
            ),
            _ => {
                return Err(WriteError::Storage(object_store::Error::NotSupported {
                    source: format!("staging {staging:?} does not fit this storage").into(),
                }));
            }
        };
        let (to_hasher, mut chunks) = mpsc::channel::<Bytes>(HASH_QUEUE);
        let hasher = tokio::task::spawn_blocking(move || {
            let mut hasher = Md5::new();
            while let Some(chunk) = chunks.blocking_recv() {
                hasher.update(&chunk);
            }
            hasher.finalize()
        });
        let copied = async {
            let mut size = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|error| WriteError::Source(error.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(WriteError::TooLarge { limit });
                }
                to_hasher
                    .send(chunk.clone())
                    .await
                    .map_err(|_| WriteError::Hasher)?;
                sink.put(chunk).await?;
            }
            Ok(size)
        }
        .await;
        drop(to_hasher);
        let size = match copied {
            Ok(size) => size,
            Err(error) => {
                hasher.abort();
                return Err(match (error, sink.abort().await) {
                    // The disk writer stopped on an error of its own (a full disk, say): that is
                    // the cause, not the closed queue the loop saw.
                    (WriteError::Disk(_), Err(cause)) => cause,
                    (error, Err(abort)) => {
                        tracing::warn!(%key, error = %abort, "aborting a failed upload");
                        error
                    }
                    (error, Ok(())) => error,
                });
            }
        };
        let digest = hasher.await.map_err(|_| WriteError::Hasher)?;
        sink.finish(&*self.store, key, size).await?;
        Ok(Written {
            size,
            md5: md5::hex(&digest),
        })
    }

    /// Streams `range` (the whole object when `None`) of the bytes of `transfer`.
    pub async fn read(
        &self,
        transfer: Uuid,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, object_store::Error>>, object_store::Error> {
        self.read_key(&key(transfer), range).await
    }

    /// Streams `range` (the whole object when `None`) of the object at `key`.
    async fn read_key(
        &self,
        key: &Path,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, object_store::Error>>, object_store::Error> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self.store.get_opts(key, options).await?;
        Ok(match result.payload {
            // object_store reads local files 8 KiB at a time; larger reads ahead are much faster.
            GetResultPayload::File(file, _) => read_file(file, result.range),
            GetResultPayload::Stream(stream) => stream,
        })
    }

    /// Deletes the bytes of `transfer`; deleting what is not there is no error.
    pub async fn delete(&self, transfer: Uuid) -> Result<(), object_store::Error> {
        match self.store.delete(&key(transfer)).await {
            Err(object_store::Error::NotFound { .. }) | Ok(()) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// The object key of a transfer's bytes.
fn key(transfer: Uuid) -> Path {
    Path::from(transfer.to_string())
}

/// The object key of a spool.
fn spool_key(spool: Uuid) -> Path {
    Path::from_iter([SPOOL.to_owned(), spool.to_string()])
}

/// Where an upload's bytes go while they arrive.
enum Sink {
    /// A staging file on local disk.
    Staged(staged::StagedFile),
    /// An object storage multipart upload.
    Multipart(WriteMultipart),
}

impl Sink {
    async fn put(&mut self, chunk: Bytes) -> Result<(), WriteError> {
        match self {
            Self::Staged(file) => file.put(chunk).await?,
            Self::Multipart(writer) => {
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                writer.put(chunk);
            }
        }
        Ok(())
    }

    /// Makes the `size` bytes written durable under `key` in `store`.
    async fn finish(
        self,
        store: &dyn ObjectStore,
        key: &Path,
        size: u64,
    ) -> Result<(), WriteError> {
        match self {
            Self::Staged(file) => file.finish().await?,
            Self::Multipart(writer) if size == 0 => {
                // S3 cannot complete a multipart upload without parts; an empty file is one put.
                writer.abort().await?;
                store.put(key, PutPayload::default()).await?;
            }
            Self::Multipart(writer) => {
                writer.finish().await?;
            }
        }
        Ok(())
    }

    async fn abort(self) -> Result<(), WriteError> {
        match self {
            Self::Staged(file) => file.abort().await?,
            Self::Multipart(writer) => writer.abort().await?,
        }
        Ok(())
    }
}

/// An S3-compatible store for `s3://bucket[/prefix]`, and its multipart uploads by id.
fn s3(url: &str) -> anyhow::Result<(Arc<dyn ObjectStore>, multipart::Multiparts)> {
    let rest = url
        .strip_prefix("s3://")
        .with_context(|| format!("BROKER_STORAGE_URL must start with s3://, not {url}"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    anyhow::ensure!(!bucket.is_empty(), "BROKER_STORAGE_URL names no bucket");
    let store = Arc::new(
        AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .context("configuring S3 storage")?,
    );
    let prefix = prefix.trim_matches('/');
    let multiparts = multipart::Multiparts::new(store.clone() as Arc<dyn MultipartStore>, prefix);
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    };
    Ok((store, multiparts))
}

/// Reads `range` of `file` on a blocking thread, a few chunks ahead of the consumer.
fn read_file(
    mut file: std::fs::File,
    range: Range<u64>,
) -> BoxStream<'static, Result<Bytes, object_store::Error>> {
    let (sender, receiver) = mpsc::channel(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut read = || -> std::io::Result<()> {
            file.seek(SeekFrom::Start(range.start))?;
            let mut remaining = range.end - range.start;
            while remaining > 0 {
                let want = usize::try_from(remaining)
                    .unwrap_or(READ_CHUNK_BYTES)
                    .min(READ_CHUNK_BYTES);
                // Read into fresh capacity: zeroing each chunk first would cost a pass over
                // every byte served.
                let mut chunk = Vec::with_capacity(want);
                (&mut file).take(want as u64).read_to_end(&mut chunk)?;
                if chunk.len() < want {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                remaining -= want as u64;
                if sender.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                    // The consumer went away: stop reading.
                    return Ok(());
                }
            }
            Ok(())
        };
        if let Err(error) = read() {
            let error = object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(error),
            };
            let _ = sender.blocking_send(Err(error));
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver).boxed()
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    fn chunks(bytes: &'static [u8]) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        futures::stream::iter(
            bytes
                .chunks(3)
                .map(|chunk| Ok(Bytes::from_static(chunk)))
                .collect::<Vec<_>>(),
        )
    }

    /// Object storage in memory (as S3 would be) adopting by copy up to `copy_limit` bytes.
    fn in_memory(copy_limit: u64) -> Storage {
        let store = Arc::new(InMemory::new());
        Storage {
            multipart: Some(multipart::Multiparts::new(store.clone(), "")),
            store,
            part_bytes: 5 * 1024 * 1024,
            local_root: None,
            copy_limit,
        }
    }

    /// Storage on local disk in a fresh directory (removed when the directory is dropped).
    fn on_disk() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(None, dir.path(), 5 * 1024 * 1024).unwrap();
        (dir, storage)
    }

    async fn keys(storage: &Storage) -> Vec<String> {
        let mut keys: Vec<String> = storage
            .store
            .list(None)
            .map(|meta| meta.unwrap().location.to_string())
            .collect()
            .await;
        keys.sort();
        keys
    }

    async fn read_all(storage: &Storage, transfer: Uuid) -> Vec<u8> {
        let parts: Vec<Bytes> = storage
            .read(transfer, None)
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        parts.concat()
    }

    #[test]
    fn local_spools_are_renamed_and_s3_copies_up_to_its_limit() {
        assert_eq!(adoption(true, u64::MAX, S3_COPY_LIMIT), Adoption::Rename);
        assert_eq!(
            adoption(false, S3_COPY_LIMIT, S3_COPY_LIMIT),
            Adoption::Copy
        );
        assert_eq!(
            adoption(false, S3_COPY_LIMIT + 1, S3_COPY_LIMIT),
            Adoption::Restream
        );
    }

    #[tokio::test]
    async fn a_spool_is_written_under_its_own_key_with_size_and_md5() {
        let storage = in_memory(S3_COPY_LIMIT);
        let spool = storage.spool(chunks(b"spooled bytes"), 100).await.unwrap();
        assert_eq!(spool.written().size, 13);
        assert_eq!(spool.written().md5, md5::hex_digest(b"spooled bytes"));
        assert_eq!(keys(&storage).await, [format!("spool/{}", spool.id)]);
        storage.discard(spool).await;
        assert!(keys(&storage).await.is_empty());
    }

    #[tokio::test]
    async fn a_multipart_upload_is_aborted_by_the_id_its_staging_records() {
        let storage = in_memory(S3_COPY_LIMIT);
        let transfer = Uuid::new_v4();
        let staging = storage.stage(transfer).await.unwrap();
        assert_eq!(staging.key, transfer.to_string());
        assert!(staging.multipart_id.is_some());
        // Another process aborts it from what the lease recorded; the writer then fails.
        storage.abandon(&staging).await.unwrap();
        let late = storage
            .write_staged(transfer, &staging, chunks(b"late bytes"), 100)
            .await;
        assert!(late.is_err(), "{late:?}");
        assert!(keys(&storage).await.is_empty());
    }

    #[tokio::test]
    async fn an_abandoned_staging_file_is_deleted_and_a_finished_one_left_alone() {
        let (dir, storage) = on_disk();
        let transfer = Uuid::new_v4();
        let staging = storage.stage(transfer).await.unwrap();
        assert!(staging.multipart_id.is_none());
        assert!(staged::is_staging(&staging.key), "{staging:?}");
        // What a writer killed mid-upload leaves.
        let left = dir.path().join(&staging.key);
        std::fs::write(&left, b"half an upload").unwrap();
        storage.abandon(&staging).await.unwrap();
        assert!(!left.exists());
        // A finished upload's staging file was renamed into place: abandoning it keeps the bytes.
        let staging = storage.stage(transfer).await.unwrap();
        storage
            .write_staged(transfer, &staging, chunks(b"whole file"), 100)
            .await
            .unwrap();
        storage.abandon(&staging).await.unwrap();
        assert_eq!(read_all(&storage, transfer).await, b"whole file");
    }

    #[tokio::test]
    async fn a_spool_past_its_limit_leaves_nothing() {
        let storage = in_memory(S3_COPY_LIMIT);
        let error = storage.spool(chunks(b"too long"), 5).await.unwrap_err();
        assert!(
            matches!(error, WriteError::TooLarge { limit: 5 }),
            "{error}"
        );
        assert!(keys(&storage).await.is_empty());
    }

    #[tokio::test]
    async fn adopting_copies_or_streams_the_spool_and_removes_it() {
        for copy_limit in [S3_COPY_LIMIT, 0] {
            let storage = in_memory(copy_limit);
            let transfer = Uuid::new_v4();
            let spool = storage.spool(chunks(b"the file"), 100).await.unwrap();
            let expected = spool.written().clone();
            assert_eq!(storage.adopt(spool, transfer).await.unwrap(), expected);
            assert_eq!(keys(&storage).await, [transfer.to_string()]);
            assert_eq!(read_all(&storage, transfer).await, b"the file");
        }
    }

    #[tokio::test]
    async fn a_failed_adoption_leaves_neither_spool_nor_bytes() {
        let storage = in_memory(S3_COPY_LIMIT);
        let spool = storage.spool(chunks(b"the file"), 100).await.unwrap();
        // The spool vanished (a sweep, an operator): the copy fails, and nothing is left.
        storage.store.delete(&spool_key(spool.id)).await.unwrap();
        assert!(storage.adopt(spool, Uuid::new_v4()).await.is_err());
        assert!(keys(&storage).await.is_empty());
    }

    #[tokio::test]
    async fn on_local_disk_a_spool_is_renamed_into_place() {
        let (dir, storage) = on_disk();
        let transfer = Uuid::new_v4();
        let spool = storage.spool(chunks(b"the file"), 100).await.unwrap();
        let spooled = dir.path().join(SPOOL).join(spool.id.to_string());
        assert!(spooled.is_file(), "the spool is durable under its own name");
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&spooled).unwrap());
        storage.adopt(spool, transfer).await.unwrap();
        let adopted = std::fs::metadata(dir.path().join(transfer.to_string())).unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::ino(&adopted),
            inode,
            "not a copy"
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join(SPOOL)).unwrap().count(),
            0
        );
        // The emptied spool folder stays for the next spool.
        let spool = storage.spool(chunks(b"next"), 100).await.unwrap();
        storage.discard(spool).await;
        assert_eq!(
            std::fs::read_dir(dir.path().join(SPOOL)).unwrap().count(),
            0
        );
    }

    #[tokio::test]
    async fn spools_of_a_process_that_died_are_removed_at_start() {
        let (dir, storage) = on_disk();
        let old = dir.path().join(SPOOL).join("left-by-a-dead-process");
        let staging = dir.path().join(SPOOL).join("x.1.upload");
        let fresh = dir.path().join(SPOOL).join("being-written");
        for path in [&old, &staging, &fresh] {
            std::fs::write(path, b"x").unwrap();
        }
        let long_ago = SystemTime::now() - ABANDONED_AFTER - Duration::from_secs(60);
        for path in [&old, &staging] {
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        assert_eq!(storage.remove_abandoned().await.unwrap(), 2);
        assert!(fresh.exists() && !old.exists() && !staging.exists());
    }
}
