//! Resumable (tus) uploads' bytes: written request by request at the offset the last request
//! left, durable before the offset is recorded, on whichever replica takes the request.
//!
//! On local disk the bytes go to a staging file: each request cuts it back to the recorded
//! offset (dropping what a request that never recorded its end left behind), appends, and
//! flushes before answering. On S3 they go to a multipart upload whose parts must be at least
//! 5 MiB but the last: whole parts are uploaded as they fill, and what is left after the last
//! whole part (the tail) is kept in an object of its own until the next request prepends it.
//!
//! The MD5 of the whole file is carried from request to request as its state
//! ([`Md5::state`]), so no byte is hashed twice and none is ever read back for it.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

use broker_common::checksum::RequestDigest;
use broker_common::md5::Md5;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{HASH_QUEUE, Staging, Storage, WriteError, key, staged};

/// The folder of partial uploads' objects and of S3 tails.
const TUS: &str = "tus";

/// Where a resumable upload stands, as its row keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumable {
    /// The transfer.
    pub transfer: Uuid,
    /// '' for the transfer's own upload, else the partial's id.
    pub part: String,
    /// Where the bytes go.
    pub staging: Staging,
    /// Bytes the upload will have.
    pub length: u64,
    /// Bytes durable.
    pub offset: u64,
    /// The finished S3 parts' ids.
    pub parts: Vec<String>,
    /// Bytes in the S3 tail object.
    pub tail: u64,
}

/// What one request appended, durable.
pub struct Appended {
    /// Bytes durable now.
    pub offset: u64,
    /// The MD5 state after them.
    pub md5: Md5,
    /// The finished S3 parts' ids.
    pub parts: Vec<String>,
    /// Bytes in the S3 tail object.
    pub tail: u64,
    /// Why the request's body ended early, when it did (what arrived is kept all the same).
    pub broke: Option<String>,
}

/// Why a request's bytes were not appended; nothing of them counts.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The body was longer than the upload's remaining length.
    #[error("the request body is longer than the upload's remaining length")]
    TooLong,
    /// The request's digest (`Upload-Checksum`) differs from its bytes'.
    #[error("the request's bytes do not match its checksum")]
    ChecksumMismatch,
    /// The body broke off before its end, and a checksum was given: it cannot be checked.
    #[error("the request body broke off before its checksum could be checked: {0}")]
    Unverifiable(String),
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// The request's expected digest (`Upload-Checksum`).
pub struct Expected {
    /// The digest being computed.
    pub digest: RequestDigest,
    /// What it must come to.
    pub value: Vec<u8>,
}

impl Storage {
    /// Names where the bytes of upload `part` of `transfer` will be (a staging file; on S3 a
    /// multipart upload, started here).
    pub async fn resumable_stage(&self, transfer: Uuid, part: &str) -> Result<Staging, WriteError> {
        self.stage_key(&resumable_key(transfer, part)).await
    }

    /// Appends `stream` to `upload` at its offset, hashing on from `md5`; the new state once
    /// the bytes are durable. A stream that breaks off keeps what arrived, unless `expected`
    /// says what the whole request must hash to.
    pub async fn append<S, E>(
        &self,
        upload: &Resumable,
        md5: Md5,
        expected: Option<Expected>,
        mut stream: S,
    ) -> Result<Appended, AppendError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (digest, value) = match expected {
            Some(Expected { digest, value }) => (Some(digest), Some(value)),
            None => (None, None),
        };
        // The request's digest has a thread of its own: hashing twice on one would halve the
        // speed of a request that carries a checksum.
        let (to_md5, md5) = feed_on_thread(md5, Md5::update);
        let (to_digest, digest) =
            match digest.map(|digest| feed_on_thread(digest, RequestDigest::update)) {
                Some((sender, thread)) => (Some(sender), Some(thread)),
                None => (None, None),
            };
        let mut sink = match &self.local_root {
            Some(root) => Appender::File(FileAppender::open(
                local_path(root, &upload.staging.key),
                upload.offset,
            )),
            None => Appender::Parts(Box::new(PartsAppender::resume(self, upload).await?)),
        };
        let remaining = upload.length - upload.offset;
        let mut received = 0u64;
        let mut broke = None;
        let copied: Result<(), AppendError> = async {
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(error) => {
                        broke = Some(error.to_string());
                        break;
                    }
                };
                received += chunk.len() as u64;
                if received > remaining {
                    return Err(AppendError::TooLong);
                }
                to_md5
                    .send(chunk.clone())
                    .await
                    .map_err(|_| WriteError::Hasher)?;
                if let Some(to_digest) = &to_digest {
                    to_digest
                        .send(chunk.clone())
                        .await
                        .map_err(|_| WriteError::Hasher)?;
                }
                sink.put(chunk).await?;
            }
            Ok(())
        }
        .await;
        drop((to_md5, to_digest));
        if let Err(error) = copied {
            sink.abandon().await;
            return Err(error);
        }
        let md5 = md5.await.map_err(|_| WriteError::Hasher)?;
        let digest = match digest {
            Some(thread) => Some(thread.await.map_err(|_| WriteError::Hasher)?.finalize()),
            None => None,
        };
        if let Some(value) = value {
            // Bytes that do not check out count for nothing: what they left behind past the
            // recorded offset is cut off (a file) or overwritten (parts) by the next request.
            let verdict = match (broke, digest) {
                (Some(reason), _) => Some(AppendError::Unverifiable(reason)),
                (None, Some(digest)) if digest == value => None,
                (None, _) => Some(AppendError::ChecksumMismatch),
            };
            if let Some(error) = verdict {
                sink.abandon().await;
                return Err(error);
            }
            broke = None;
        }
        let offset = upload.offset + received;
        let (parts, tail) = sink.finish(offset == upload.length).await?;
        Ok(Appended {
            offset,
            md5,
            parts,
            tail,
            broke,
        })
    }

    /// Makes the complete `upload` its object (the transfer's bytes, or a partial's): renames
    /// the staging file, or completes the multipart upload. Done again, it changes nothing.
    pub async fn complete(&self, upload: &Resumable) -> Result<(), WriteError> {
        let destination = resumable_key(upload.transfer, &upload.part);
        if let Some(root) = &self.local_root {
            let from = local_path(root, &upload.staging.key);
            let to = local_path(root, destination.as_ref());
            tokio::task::spawn_blocking(move || rename_durably(&from, &to))
                .await
                .map_err(|_| WriteError::Hasher)??;
            return Ok(());
        }
        let (Some(multiparts), Some(id)) = (&self.multipart, &upload.staging.multipart_id) else {
            return Err(WriteError::Storage(object_store::Error::NotSupported {
                source: format!("staging {:?} does not fit this storage", upload.staging).into(),
            }));
        };
        let completed = if upload.length == 0 {
            // S3 completes no upload without parts: an empty file is one put.
            let _ = multiparts.abort(&destination, id).await;
            self.store
                .put(&destination, PutPayload::default())
                .await
                .map(|_| ())
        } else {
            multiparts
                .complete(&destination, id, &upload.parts)
                .await
                .map(|_| ())
        };
        if let Err(error) = completed {
            // A completion that went through before this process could record it leaves the
            // object in place and the multipart upload gone.
            match self.store.head(&destination).await {
                Ok(meta) if meta.size == upload.length => {}
                _ => return Err(error.into()),
            }
        }
        self.delete_tails(upload, None).await;
        Ok(())
    }

    /// Deletes the tails of `upload` but the one after `keep` parts.
    async fn delete_tails(&self, upload: &Resumable, keep: Option<usize>) {
        let folder = Path::from_iter([TUS.to_owned(), upload.transfer.to_string()]);
        let prefix = format!("{}.", tail_name(&upload.part));
        let kept = keep.map(|parts| tail_key(upload.transfer, &upload.part, parts));
        let mut objects = self.store.list(Some(&folder));
        while let Some(object) = objects.next().await {
            let key = match object {
                Ok(object) => object.location,
                Err(error) => {
                    tracing::warn!(%folder, %error, "listing a resumable upload's tails");
                    return;
                }
            };
            let name = key.filename().unwrap_or_default();
            if name.starts_with(&prefix) && name.ends_with(".tail") && Some(&key) != kept.as_ref() {
                self.delete_quietly(&key).await;
            }
        }
    }

    /// Deletes the tails `upload` no longer needs once it is recorded with `parts` parts.
    pub async fn forget_old_tails(&self, upload: &Resumable, parts: usize) {
        if self.local_root.is_none() && parts != upload.parts.len() {
            self.delete_tails(upload, Some(parts)).await;
        }
    }

    /// Removes whatever `upload` holds (its staging, tail and, for a partial, its object), as
    /// for an upload terminated, expired or of a failed transfer; never the transfer's bytes.
    pub async fn discard_resumable(&self, upload: &Resumable) -> Result<(), object_store::Error> {
        self.abandon(&upload.staging).await?;
        if self.local_root.is_none() {
            self.delete_tails(upload, None).await;
        }
        if !upload.part.is_empty() {
            match self
                .store
                .delete(&resumable_key(upload.transfer, &upload.part))
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
            if let Some(root) = &self.local_root {
                // The transfer's folder of partials goes with its last one (local disk keeps
                // empty folders); while others remain, removing it fails, as it should.
                let folder = root.join(TUS).join(upload.transfer.to_string());
                let _ = std::fs::remove_dir(folder);
            }
        }
        Ok(())
    }

    /// The bytes of the complete partial upload `part` of `transfer`.
    pub async fn read_partial(
        &self,
        transfer: Uuid,
        part: &str,
    ) -> Result<
        futures::stream::BoxStream<'static, Result<Bytes, object_store::Error>>,
        object_store::Error,
    > {
        self.read_key(&resumable_key(transfer, part), None).await
    }

    async fn delete_quietly(&self, key: &Path) {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => tracing::warn!(%key, %error, "deleting a resumable upload's leftover"),
        }
    }
}

/// Feeds the chunks sent to it into `state` with `update` on a blocking thread of its own; the
/// state once the sender is dropped.
fn feed_on_thread<T: Send + 'static>(
    mut state: T,
    update: fn(&mut T, &[u8]),
) -> (mpsc::Sender<Bytes>, tokio::task::JoinHandle<T>) {
    let (sender, mut chunks) = mpsc::channel::<Bytes>(HASH_QUEUE);
    let thread = tokio::task::spawn_blocking(move || {
        while let Some(chunk) = chunks.blocking_recv() {
            update(&mut state, &chunk);
        }
        state
    });
    (sender, thread)
}

/// Renames `from` to `to` and makes that durable; when `from` is gone and `to` is there, the
/// rename happened already. A missing `from` where nothing was ever written (an empty upload)
/// becomes an empty `to`.
fn rename_durably(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    let directory = to.parent().map(std::path::Path::to_owned);
    if let Some(directory) = &directory {
        std::fs::create_dir_all(directory)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if !to.exists() {
                File::create(to)?.sync_all()?;
            }
        }
        Err(error) => return Err(error),
    }
    match directory {
        Some(directory) => File::open(directory)?.sync_all(),
        None => Ok(()),
    }
}

/// Where one request's bytes go.
enum Appender {
    /// The staging file on local disk.
    File(FileAppender),
    /// A multipart upload on S3.
    Parts(Box<PartsAppender>),
}

impl Appender {
    async fn put(&mut self, chunk: Bytes) -> Result<(), WriteError> {
        match self {
            Self::File(file) => file.put(chunk).await,
            Self::Parts(parts) => parts.put(chunk).await,
        }
    }

    /// Makes what was put durable; the finished parts and the tail then (for a `complete`
    /// upload, its last part instead of a tail).
    async fn finish(self, complete: bool) -> Result<(Vec<String>, u64), WriteError> {
        match self {
            Self::File(file) => {
                file.finish().await?;
                Ok((Vec::new(), 0))
            }
            Self::Parts(parts) => parts.finish(complete).await,
        }
    }

    /// Stops without making anything durable.
    async fn abandon(self) {
        match self {
            Self::File(file) => {
                let _ = file.finish().await;
            }
            Self::Parts(parts) => parts.abandon().await,
        }
    }
}

/// Appends to a staging file from a blocking thread, so the disk and the hasher work side by
/// side.
struct FileAppender {
    chunks: mpsc::Sender<Bytes>,
    writer: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl FileAppender {
    /// Writes to `path` from `offset` on, cutting off what lies beyond it.
    fn open(path: PathBuf, offset: u64) -> Self {
        let (chunks, mut received) = mpsc::channel::<Bytes>(staged::WRITE_QUEUE);
        let writer = tokio::task::spawn_blocking(move || {
            let new = offset == 0;
            if new && let Some(directory) = path.parent() {
                std::fs::create_dir_all(directory)?;
            }
            let mut file = File::options().write(true).create(new).open(&path)?;
            file.set_len(offset)?;
            file.seek(SeekFrom::Start(offset))?;
            let (mut flushed, mut written) = (offset, offset);
            while let Some(chunk) = received.blocking_recv() {
                file.write_all(&chunk)?;
                written += chunk.len() as u64;
                if written - flushed >= staged::FLUSH_BYTES {
                    staged::start_writeback(&file, flushed..written)?;
                    flushed = written;
                }
            }
            file.sync_data()?;
            if new {
                // The file's name must survive a crash as much as its bytes.
                if let Some(directory) = path.parent() {
                    File::open(directory)?.sync_all()?;
                }
            }
            Ok(())
        });
        Self { chunks, writer }
    }

    async fn put(&mut self, chunk: Bytes) -> Result<(), WriteError> {
        if self.chunks.send(chunk).await.is_err() {
            // The writer stopped on an error of its own: that is the cause.
            return Err(self.stopped().await);
        }
        Ok(())
    }

    /// Why the writer stopped early.
    async fn stopped(&mut self) -> WriteError {
        match (&mut self.writer).await {
            Ok(Err(error)) => WriteError::Disk(error),
            _ => WriteError::Hasher,
        }
    }

    /// Waits until everything put is on disk.
    async fn finish(self) -> Result<(), WriteError> {
        drop(self.chunks);
        self.writer.await.map_err(|_| WriteError::Hasher)??;
        Ok(())
    }
}

/// Uploads a resumable upload's whole parts to S3 as they fill, one in flight while the next
/// fills; what is left over becomes the tail (or, at the end, the last part).
struct PartsAppender {
    multiparts: super::multipart::Multiparts,
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    key: Path,
    id: String,
    transfer: Uuid,
    part: String,
    /// The tail the request started from, and how many parts it followed.
    tail_key: Path,
    resumed_parts: usize,
    part_bytes: usize,
    buffer: BytesMut,
    parts: Vec<String>,
    in_flight: Option<tokio::task::JoinHandle<object_store::Result<String>>>,
}

impl PartsAppender {
    /// Goes on with `upload`'s multipart upload, its tail read back into the buffer.
    async fn resume(storage: &Storage, upload: &Resumable) -> Result<Self, WriteError> {
        let (Some(multiparts), Some(id)) = (&storage.multipart, &upload.staging.multipart_id)
        else {
            return Err(WriteError::Storage(object_store::Error::NotSupported {
                source: format!("staging {:?} does not fit this storage", upload.staging).into(),
            }));
        };
        let tail_key = tail_key(upload.transfer, &upload.part, upload.parts.len());
        let mut buffer = BytesMut::with_capacity(storage.part_bytes);
        if upload.tail > 0 {
            let tail = storage.store.get(&tail_key).await?.bytes().await?;
            let Some(recorded) = usize::try_from(upload.tail)
                .ok()
                .and_then(|length| tail.get(..length))
            else {
                return Err(WriteError::SpoolChanged(format!(
                    "the tail of upload {} holds {} bytes, not {}",
                    upload.transfer,
                    tail.len(),
                    upload.tail
                )));
            };
            buffer.extend_from_slice(recorded);
        }
        Ok(Self {
            multiparts: multiparts.clone(),
            store: storage.store.clone(),
            key: resumable_key(upload.transfer, &upload.part),
            id: id.clone(),
            transfer: upload.transfer,
            part: upload.part.clone(),
            tail_key,
            resumed_parts: upload.parts.len(),
            part_bytes: storage.part_bytes,
            buffer,
            parts: upload.parts.clone(),
            in_flight: None,
        })
    }

    async fn put(&mut self, chunk: Bytes) -> Result<(), WriteError> {
        self.buffer.extend_from_slice(&chunk);
        while self.buffer.len() >= self.part_bytes {
            let part = self.buffer.split_to(self.part_bytes).freeze();
            self.send(part).await?;
        }
        Ok(())
    }

    /// Uploads `part` after the parts before it, once the one in flight is done.
    async fn send(&mut self, part: Bytes) -> Result<(), WriteError> {
        self.settle().await?;
        let index = self.parts.len();
        let (multiparts, key, id) = (self.multiparts.clone(), self.key.clone(), self.id.clone());
        self.in_flight = Some(tokio::spawn(async move {
            multiparts.put_part(&key, &id, index, part.into()).await
        }));
        Ok(())
    }

    /// Waits for the part in flight and records its id.
    async fn settle(&mut self) -> Result<(), WriteError> {
        if let Some(in_flight) = self.in_flight.take() {
            let part = in_flight.await.map_err(|_| WriteError::Hasher)??;
            self.parts.push(part);
        }
        Ok(())
    }

    async fn finish(mut self, complete: bool) -> Result<(Vec<String>, u64), WriteError> {
        if complete {
            if !self.buffer.is_empty() {
                let last = self.buffer.split().freeze();
                self.send(last).await?;
            }
            self.settle().await?;
            return Ok((self.parts, 0));
        }
        self.settle().await?;
        let tail = self.buffer.len() as u64;
        if tail > 0 {
            let key = if self.parts.len() == self.resumed_parts {
                self.tail_key
            } else {
                tail_key(self.transfer, &self.part, self.parts.len())
            };
            self.store
                .put(&key, PutPayload::from(self.buffer.freeze()))
                .await?;
        }
        Ok((self.parts, tail))
    }

    async fn abandon(mut self) {
        // A part in flight may land; unrecorded, it is overwritten or aborted with the upload.
        let _ = self.settle().await;
    }
}

/// The key of upload `part` of `transfer` once complete: the transfer's own bytes, or a
/// partial's object.
fn resumable_key(transfer: Uuid, part: &str) -> Path {
    if part.is_empty() {
        key(transfer)
    } else {
        Path::from_iter([TUS.to_owned(), transfer.to_string(), part.to_owned()])
    }
}

/// The key of the S3 tail object of upload `part` of `transfer` after `parts` whole parts.
///
/// A request that writes no whole part only adds to the tail, so the recorded tail stays a
/// prefix of the object even when the request never recorded its end; one that writes parts
/// starts a tail under a new key, so the recorded one is never overwritten.
fn tail_key(transfer: Uuid, part: &str, parts: usize) -> Path {
    Path::from_iter([
        TUS.to_owned(),
        transfer.to_string(),
        format!("{}.{parts}.tail", tail_name(part)),
    ])
}

/// The name every tail of upload `part` starts with.
fn tail_name(part: &str) -> &str {
    if part.is_empty() { "own" } else { part }
}

/// The local file of `key` under `root`.
fn local_path(root: &std::path::Path, key: &str) -> PathBuf {
    Path::from(key)
        .parts()
        .fold(root.to_owned(), |path, part| path.join(part.as_ref()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use broker_common::md5::{hex, hex_digest};
    use futures::TryStreamExt;
    use object_store::ObjectStore;
    use object_store::memory::InMemory;

    use super::*;

    /// A body of `bytes` in pieces of 300, broken off at its end when `breaks`.
    fn body(bytes: &[u8], breaks: bool) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        let mut pieces: Vec<Result<Bytes, String>> = bytes
            .chunks(300)
            .map(|piece| Ok(Bytes::copy_from_slice(piece)))
            .collect();
        if breaks {
            pieces.push(Err("the client went away".to_owned()));
        }
        futures::stream::iter(pieces)
    }

    fn md5_of(bytes: &[u8]) -> Expected {
        let mut digest = RequestDigest::new("md5").unwrap();
        digest.update(bytes);
        Expected {
            digest: RequestDigest::new("md5").unwrap(),
            value: digest.finalize(),
        }
    }

    /// Five requests against one upload: one broken off (kept), one with a wrong checksum and
    /// one too long (neither counts), then the rest; the file and its MD5 come out whole.
    async fn resumes_across_requests(storage: Storage) {
        let transfer = Uuid::new_v4();
        let bytes: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
        let staging = storage.resumable_stage(transfer, "").await.unwrap();
        let mut upload = Resumable {
            transfer,
            part: String::new(),
            staging,
            length: 3000,
            offset: 0,
            parts: Vec::new(),
            tail: 0,
        };
        let mut state = Md5::new().state();
        let record = |upload: &mut Resumable, appended: Appended| {
            upload.offset = appended.offset;
            upload.parts = appended.parts;
            upload.tail = appended.tail;
            appended.md5.state()
        };
        let resume = |state: &[u8]| Md5::resume(state).unwrap();

        let broken = storage
            .append(&upload, resume(&state), None, body(&bytes[..1000], true))
            .await
            .unwrap();
        assert_eq!(broken.offset, 1000);
        assert!(broken.broke.is_some());
        state = record(&mut upload, broken);

        let mut wrong = md5_of(&bytes[1000..2000]);
        wrong.value[0] ^= 1;
        let refused = storage
            .append(
                &upload,
                resume(&state),
                Some(wrong),
                body(&bytes[1000..2000], false),
            )
            .await;
        assert!(matches!(refused, Err(AppendError::ChecksumMismatch)));
        let unverifiable = storage
            .append(
                &upload,
                resume(&state),
                Some(md5_of(&bytes[1000..2000])),
                body(&bytes[1000..1500], true),
            )
            .await;
        assert!(matches!(unverifiable, Err(AppendError::Unverifiable(_))));
        let checked = storage
            .append(
                &upload,
                resume(&state),
                Some(md5_of(&bytes[1000..2000])),
                body(&bytes[1000..2000], false),
            )
            .await
            .unwrap();
        assert_eq!(checked.offset, 2000);
        state = record(&mut upload, checked);

        let mut too_long = bytes[2000..].to_vec();
        too_long.push(0);
        let refused = storage
            .append(&upload, resume(&state), None, body(&too_long, false))
            .await;
        assert!(matches!(refused, Err(AppendError::TooLong)));
        let last = storage
            .append(&upload, resume(&state), None, body(&bytes[2000..], false))
            .await
            .unwrap();
        assert_eq!(last.offset, 3000);
        state = record(&mut upload, last);

        storage.complete(&upload).await.unwrap();
        storage.complete(&upload).await.unwrap();
        let stored: Vec<u8> = storage
            .read(transfer, None)
            .await
            .unwrap()
            .try_collect::<Vec<Bytes>>()
            .await
            .unwrap()
            .concat();
        assert_eq!(stored, bytes);
        assert_eq!(hex(&resume(&state).finalize()), hex_digest(&bytes));
    }

    #[tokio::test]
    async fn a_resumable_upload_resumes_on_local_disk() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(None, dir.path(), 5 * 1024 * 1024).unwrap();
        resumes_across_requests(storage).await;
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name != "spool")
            .collect();
        assert_eq!(
            left.len(),
            1,
            "only the transfer's bytes are left: {left:?}"
        );
    }

    #[tokio::test]
    async fn a_resumable_upload_resumes_in_parts_and_tails_on_object_storage() {
        let store = Arc::new(InMemory::new());
        let storage = Storage {
            multipart: Some(super::super::multipart::Multiparts::new(store.clone(), "")),
            store: store.clone(),
            // Parts smaller than S3 allows, so a few requests cross several of them.
            part_bytes: 700,
            local_root: None,
            copy_limit: super::super::S3_COPY_LIMIT,
        };
        resumes_across_requests(storage).await;
        let keys: Vec<String> = store
            .list(None)
            .map(|object| object.unwrap().location.to_string())
            .collect()
            .await;
        assert_eq!(keys.len(), 1, "no tail is left: {keys:?}");
    }
}
