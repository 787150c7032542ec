//! The file bytes, in object storage: local disk (fsync'd) or S3-compatible, through
//! `object_store`.
//!
//! An upload is written as it arrives: each chunk is counted against the size limit and handed
//! to an MD5 hasher on a blocking thread and to a writer on another (a [`staged`] file on local
//! disk, flushed as it grows; a multipart upload on S3), so hashing and writing overlap and
//! only a few chunks or parts are ever held in memory. Nothing is visible under the object's
//! key until the whole upload succeeded (and, on local disk, was fsync'd); any failure aborts
//! the write, which deletes what was written.

mod staged;

use std::fmt::Display;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use broker_common::md5::{self, Md5};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart,
};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Parts being written to S3 at once, besides the one filling; each holds one part's bytes.
const PARTS_IN_FLIGHT: usize = 1;
/// Chunks queued for the hasher ahead of it.
const HASH_QUEUE: usize = 4;
/// Bytes per chunk read from local disk for a download.
pub const READ_CHUNK_BYTES: usize = 512 * 1024;
/// Chunks read ahead of the client during a download from local disk.
const READ_AHEAD: usize = 4;

/// A finished, durable upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Bytes stored.
    pub size: u64,
    /// Their MD5, as 32 lowercase hex characters.
    pub md5: String,
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
}

/// Where the bytes of file transfers live.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    part_bytes: usize,
    /// The directory of the files, when on local disk (uploads are written there directly).
    local_root: Option<PathBuf>,
}

impl Storage {
    /// Storage named by `url` (`s3://bucket/prefix`, with `AWS_*` variables for credentials,
    /// region and endpoint), else local disk under `local_root`.
    pub fn open(url: Option<&str>, local_root: &FsPath, part_bytes: usize) -> anyhow::Result<Self> {
        let (store, local_root): (Arc<dyn ObjectStore>, _) = match url {
            Some(url) => (s3(url)?, None),
            None => {
                std::fs::create_dir_all(local_root)
                    .with_context(|| format!("creating {}", local_root.display()))?;
                let abandoned = staged::remove_abandoned(local_root)
                    .with_context(|| format!("cleaning up {}", local_root.display()))?;
                if abandoned > 0 {
                    tracing::info!(abandoned, "removed the files of uploads whose process died");
                }
                let store = LocalFileSystem::new_with_prefix(local_root)?
                    .with_fsync(true)
                    .with_automatic_cleanup(true);
                (Arc::new(store), Some(local_root.to_owned()))
            }
        };
        Ok(Self {
            store,
            part_bytes,
            local_root,
        })
    }

    /// Writes `stream` as the bytes of `transfer`, refusing it at the first chunk past
    /// `limit` bytes; returns its size and MD5 once it is durable.
    pub async fn write<S, E>(
        &self,
        transfer: Uuid,
        mut stream: S,
        limit: u64,
    ) -> Result<Written, WriteError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Display,
    {
        let mut sink = match &self.local_root {
            Some(root) => Sink::Staged(staged::StagedFile::create(root.join(transfer.to_string()))),
            None => Sink::Multipart(WriteMultipart::new_with_chunk_size(
                self.store.put_multipart(&key(transfer)).await?,
                self.part_bytes,
            )),
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
                if let Err(abort) = sink.abort().await {
                    tracing::warn!(%transfer, error = %abort, "aborting a failed upload");
                }
                return Err(error);
            }
        };
        let digest = hasher.await.map_err(|_| WriteError::Hasher)?;
        sink.finish(&*self.store, transfer, size).await?;
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
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self.store.get_opts(&key(transfer), options).await?;
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

    /// Makes the `size` bytes written durable under the key of `transfer` in `store`.
    async fn finish(
        self,
        store: &dyn ObjectStore,
        transfer: Uuid,
        size: u64,
    ) -> Result<(), WriteError> {
        match self {
            Self::Staged(file) => file.finish().await?,
            Self::Multipart(writer) if size == 0 => {
                // S3 cannot complete a multipart upload without parts; an empty file is one put.
                writer.abort().await?;
                store.put(&key(transfer), PutPayload::default()).await?;
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

/// An S3-compatible store for `s3://bucket[/prefix]`.
fn s3(url: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let rest = url
        .strip_prefix("s3://")
        .with_context(|| format!("BROKER_STORAGE_URL must start with s3://, not {url}"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    anyhow::ensure!(!bucket.is_empty(), "BROKER_STORAGE_URL names no bucket");
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .context("configuring S3 storage")?;
    let prefix = prefix.trim_matches('/');
    Ok(if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    })
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
