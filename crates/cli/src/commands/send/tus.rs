//! The resumable way of `send` (tus 1.0): ask the broker where its copy of the upload ends
//! (HEAD; create the upload when it has none), then PATCH the rest of the file in chunks. After a
//! failed request the broker is asked again where its copy ends and the send goes on from there,
//! up to [`MAX_FAILURES`] times in a row with growing pauses; what cannot be helped by trying
//! again stops the send at once.
//!
//! Memory stays flat whatever the file size: a chunk is streamed from disk as it is sent, never
//! held whole. With [`Settings::checksums`] each PATCH carries its chunk's MD5 as
//! `Upload-Checksum`, from an earlier read of the same region. It is off by default: it took a
//! 1 GiB send on loopback from about 15 s to about 30 s (the client's extra MD5 pass is 2 s of
//! that; the rest is the broker verifying each chunk), while the whole file's MD5, declared at
//! initialize, is checked anyway.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use md5::Digest;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::api::Api;
use crate::api::tus::checksum_header;
use crate::commands::{Context, WRITE};
use crate::error::CliError;
use crate::progress;

/// Failed requests in a row before the send stops (the pauses between add up to 31 s).
const MAX_FAILURES: u32 = 5;
/// The pause after the first failure; it doubles after each further one.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause.
const LONGEST_PAUSE: Duration = Duration::from_secs(16);
/// Altinn stores each PATCH as one block of a blob of at most this many blocks, so a larger
/// file's chunks grow to fit.
const MAX_CHUNKS: u64 = 50_000;
/// Bytes read from disk at a time, for sending and for checksums.
const READ_SIZE: usize = 256 * 1024;

/// The file being sent and the transfer it goes to.
pub struct Target<'a> {
    /// The file transfer id.
    pub id: &'a str,
    /// The file.
    pub path: &'a Path,
    /// The file's length.
    pub length: u64,
}

/// How the file is cut into PATCHes.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The bytes per PATCH (grown for files too large for [`MAX_CHUNKS`] of them).
    pub chunk_size: u64,
    /// Whether each PATCH carries its chunk's MD5 (`Upload-Checksum`).
    pub checksums: bool,
}

/// One PATCH's region of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chunk {
    offset: u64,
    length: u64,
}

/// What to do after a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// Ask the broker where its copy ends, and go on from there at once.
    Resync,
    /// Pause, then resync: the broker or the network may recover.
    Pause,
    /// Get a new token, then resync.
    Renew,
    /// Give up: trying again cannot help.
    Stop,
}

/// Uploads `target` from where the broker's copy ends, as `settings` say; returns the API
/// client (whose token may have been renewed on the way) and the offset the upload started from.
pub async fn upload(
    ctx: &Context,
    api: Api,
    target: &Target<'_>,
    settings: Settings,
    visible: bool,
) -> Result<(Api, u64), CliError> {
    let mut upload = Upload {
        ctx,
        api,
        target,
        chunk_size: chunk_size_for(settings.chunk_size, target.length),
        checksums: settings.checksums,
        bar: progress::bar(target.length, "upload", visible),
        failures: 0,
        renewed: false,
        offset: 0,
    };
    let result = upload.run().await;
    upload.bar.finish_and_clear();
    let started = result?;
    Ok((upload.api, started))
}

/// One resumable upload under way.
struct Upload<'a> {
    ctx: &'a Context,
    api: Api,
    target: &'a Target<'a>,
    chunk_size: u64,
    checksums: bool,
    bar: indicatif::ProgressBar,
    /// Failed requests since the last that succeeded.
    failures: u32,
    /// Whether the token was renewed since the last request that succeeded.
    renewed: bool,
    /// The broker's offset as last heard.
    offset: u64,
}

impl Upload<'_> {
    /// Sends every chunk the broker lacks; returns the offset it lacked them from.
    async fn run(&mut self) -> Result<u64, CliError> {
        let mut first = None;
        // `None`: where the broker's copy ends is unknown (at the start, after a failure).
        let mut known: Option<u64> = None;
        loop {
            let offset = match known {
                Some(offset) => offset,
                None => match self.locate().await {
                    Ok(offset) => offset,
                    Err(error) => {
                        self.recover(error).await?;
                        continue;
                    }
                },
            };
            self.offset = offset;
            let started = *first.get_or_insert(offset);
            if offset >= self.target.length {
                return Ok(started);
            }
            if self.api.token_expiring() {
                self.api = self.ctx.api(&[WRITE]).await?.0;
            }
            let chunk = chunk_at(offset, self.target.length, self.chunk_size);
            known = match self.send(chunk).await {
                Ok(next) => {
                    self.failures = 0;
                    self.renewed = false;
                    Some(next)
                }
                Err(error) => {
                    self.recover(error).await?;
                    None
                }
            };
        }
    }

    /// Where the broker's copy ends (HEAD), creating the upload when there is none.
    async fn locate(&mut self) -> Result<u64, CliError> {
        let Target { id, path, length } = *self.target;
        let offset = match self.api.tus_head(id).await? {
            Some(upload) if upload.length != length => {
                return Err(CliError::Integrity(format!(
                    "{} has {length} bytes, but the upload of {id} is {} bytes long",
                    path.display(),
                    upload.length
                )));
            }
            Some(upload) => upload.offset,
            None => {
                self.api.tus_create(id, length).await?;
                0
            }
        };
        self.bar.set_position(offset);
        Ok(offset)
    }

    /// PATCHes `chunk`; returns the broker's new offset, which must be past the chunk's start.
    async fn send(&self, chunk: Chunk) -> Result<u64, CliError> {
        let Target { id, path, length } = *self.target;
        let checksum = if self.checksums {
            Some(checksum_header(&md5_of_region(path, chunk).await?))
        } else {
            None
        };
        let body = region_body(path, chunk, &self.bar).await?;
        let next = self
            .api
            .tus_patch(id, chunk.offset, body, chunk.length, checksum.as_deref())
            .await?;
        if next <= chunk.offset || next > length {
            return Err(CliError::Unexpected {
                status: StatusCode::NO_CONTENT,
                body: format!(
                    "a PATCH at byte {} answered with Upload-Offset {next}",
                    chunk.offset
                ),
            });
        }
        Ok(next)
    }

    /// Prepares the next try after `error`, or gives up with it.
    async fn recover(&mut self, error: CliError) -> Result<(), CliError> {
        self.failures += 1;
        let recovery = match recovery(&error) {
            // A new token refused too: the broker refuses this client, not its token.
            Recovery::Renew if self.renewed => Recovery::Stop,
            recovery => recovery,
        };
        if recovery == Recovery::Stop {
            return Err(error);
        }
        if self.failures > MAX_FAILURES {
            return Err(CliError::Interrupted {
                id: self.target.id.to_owned(),
                file: self.target.path.to_owned(),
                offset: self.offset,
                length: self.target.length,
                cause: Box::new(error),
            });
        }
        match recovery {
            Recovery::Stop | Recovery::Resync => {}
            Recovery::Pause => tokio::time::sleep(pause(self.failures)).await,
            Recovery::Renew => {
                // The refused token was dropped from the cache, so this asks for a new one.
                self.api = self.ctx.api(&[WRITE]).await?.0;
                self.renewed = true;
            }
        }
        Ok(())
    }
}

/// What to do after `error`: where the broker's copy ends is asked again after any failure that
/// may have moved it, and only a refusal that the same request would meet again stops.
fn recovery(error: &CliError) -> Recovery {
    match error {
        CliError::Connection(_) => Recovery::Pause,
        CliError::Refused { status, .. } if *status == StatusCode::UNAUTHORIZED => Recovery::Renew,
        CliError::Problem(problem) if problem.status == 401 => Recovery::Renew,
        CliError::Problem(problem) if problem.status >= 500 => Recovery::Pause,
        CliError::Unexpected { status, .. } if status.is_server_error() => Recovery::Pause,
        CliError::Tus { status, message } => match *status {
            StatusCode::UNAUTHORIZED => Recovery::Renew,
            // The broker has another offset than this client thought (a request that failed
            // on the way may have written part of its bytes).
            StatusCode::CONFLICT if message.starts_with("Offset does not match") => {
                Recovery::Resync
            }
            // Bytes damaged on the way: the broker dropped them, so they are sent again.
            status if status.as_u16() == 460 => Recovery::Resync,
            // A request of this upload cut off on the way may still be running at the broker.
            StatusCode::LOCKED | StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                Recovery::Pause
            }
            status if status.is_server_error() => Recovery::Pause,
            _ => Recovery::Stop,
        },
        _ => Recovery::Stop,
    }
}

/// The pause after the `failures`th failure in a row: 1 s, doubling, at most 16 s.
fn pause(failures: u32) -> Duration {
    FIRST_PAUSE
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(LONGEST_PAUSE)
}

/// The bytes per PATCH for a `length`-byte file: `configured`, grown so the file fits in
/// [`MAX_CHUNKS`] requests.
fn chunk_size_for(configured: u64, length: u64) -> u64 {
    configured.max(length.div_ceil(MAX_CHUNKS)).max(1)
}

/// The chunk sent from `offset` of a `length`-byte file.
fn chunk_at(offset: u64, length: u64, chunk_size: u64) -> Chunk {
    Chunk {
        offset,
        length: chunk_size.min(length.saturating_sub(offset)),
    }
}

/// `chunk` of the file at `path` as a request body, counted on `bar` as it is read.
async fn region_body(
    path: &Path,
    chunk: Chunk,
    bar: &indicatif::ProgressBar,
) -> Result<reqwest::Body, CliError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|error| CliError::io(path, error))?;
    file.seek(SeekFrom::Start(chunk.offset))
        .await
        .map_err(|error| CliError::io(path, error))?;
    let region = ReaderStream::with_capacity(file.take(chunk.length), READ_SIZE);
    Ok(reqwest::Body::wrap_stream(progress::counted(
        region,
        bar.clone(),
    )))
}

/// The MD5 of `chunk` of the file at `path`, read on a blocking thread.
async fn md5_of_region(path: &Path, chunk: Chunk) -> Result<[u8; 16], CliError> {
    let owned = path.to_owned();
    let digest = tokio::task::spawn_blocking(move || -> std::io::Result<[u8; 16]> {
        let mut file = std::fs::File::open(&owned)?;
        file.seek(SeekFrom::Start(chunk.offset))?;
        let mut region = file.take(chunk.length);
        let mut hasher = md5::Md5::new();
        let mut buffer = vec![0; READ_SIZE];
        let mut read_total = 0;
        loop {
            let read = region.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            read_total += read as u64;
        }
        if read_total != chunk.length {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file became shorter while it was being sent",
            ));
        }
        Ok(hasher.finalize().into())
    })
    .await
    .map_err(|error| CliError::io(path, std::io::Error::other(error)))?;
    digest.map_err(|error| CliError::io(path, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_file_and_the_last_is_short() {
        let mut offset = 0;
        let mut chunks = Vec::new();
        while offset < 10 {
            let chunk = chunk_at(offset, 10, 4);
            chunks.push(chunk.length);
            offset += chunk.length;
        }
        assert_eq!(chunks, [4, 4, 2]);
        assert_eq!(
            chunk_at(7, 10, 32).length,
            3,
            "a resumed send's first chunk"
        );
    }

    #[test]
    fn chunks_grow_so_a_file_fits_in_altinns_block_limit() {
        assert_eq!(chunk_size_for(32 << 20, 1 << 30), 32 << 20);
        let huge = 5 * (1u64 << 40);
        let size = chunk_size_for(32 << 20, huge);
        assert!(huge.div_ceil(size) <= MAX_CHUNKS, "{size}");
        assert_eq!(chunk_size_for(0, 0), 1);
    }

    #[test]
    fn pauses_double_up_to_a_limit() {
        let pauses: Vec<u64> = (1..=7).map(|n| pause(n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 16, 16]);
        assert_eq!(pause(u32::MAX), LONGEST_PAUSE);
    }

    fn tus(status: u16, message: &str) -> CliError {
        CliError::Tus {
            status: StatusCode::from_u16(status).expect("a status"),
            message: message.to_owned(),
        }
    }

    #[test]
    fn each_refusal_has_its_recovery() {
        let offset = "Offset does not match file. File offset: 5. Request offset: 0";
        assert_eq!(recovery(&tus(409, offset)), Recovery::Resync);
        assert_eq!(
            recovery(&tus(
                409,
                "A file transfer has already been, or attempted to be, created."
            )),
            Recovery::Stop
        );
        assert_eq!(recovery(&tus(460, "checksum")), Recovery::Resync);
        assert_eq!(recovery(&tus(423, "being written")), Recovery::Pause);
        assert_eq!(recovery(&tus(503, "down")), Recovery::Pause);
        assert_eq!(recovery(&tus(401, "not the sender")), Recovery::Renew);
        let bare = CliError::Refused {
            status: StatusCode::UNAUTHORIZED,
            reason: None,
        };
        assert_eq!(recovery(&bare), Recovery::Renew);
        assert_eq!(
            recovery(&tus(400, "File size exceeds maximum")),
            Recovery::Stop
        );
        assert_eq!(recovery(&tus(413, "too large")), Recovery::Stop);
        assert_eq!(recovery(&tus(404, "Not Found")), Recovery::Stop);
        assert_eq!(
            recovery(&CliError::Connection("reset".to_owned())),
            Recovery::Pause
        );
        let local = CliError::io("f", std::io::Error::other("gone"));
        assert_eq!(recovery(&local), Recovery::Stop);
    }

    #[tokio::test]
    async fn a_regions_checksum_is_that_of_its_bytes() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("file");
        let bytes: Vec<u8> = (0..=255).cycle().take(700_000).collect();
        std::fs::write(&path, &bytes).expect("writing");
        let chunk = Chunk {
            offset: 100_000,
            length: 500_000,
        };
        let digest = md5_of_region(&path, chunk).await.expect("a digest");
        let expected: [u8; 16] = md5::Md5::digest(&bytes[100_000..600_000]).into();
        assert_eq!(digest, expected);
        let past_end = Chunk {
            offset: 600_000,
            length: 200_000,
        };
        assert!(md5_of_region(&path, past_end).await.is_err());
    }
}
