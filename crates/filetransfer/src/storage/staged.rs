//! An upload to local disk: a staging file beside its final name, written on a blocking thread
//! and flushed to the disk as it grows, renamed into place only when complete and durable.
//!
//! Starting the disk's writes as it goes is what makes the final fsync cheap: the kernel would
//! otherwise keep a whole upload dirty in the page cache (its background writeback starts at a
//! tenth of memory) and write all of it after the last byte arrived, while the uploader waits.
//! On Linux the writes are started without waiting for them (`sync_file_range`), so the writer
//! never stalls and its queue stays short; elsewhere it waits for each flush (`fdatasync`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use object_store::path::{Path as ObjectPath, PathPart};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::ABANDONED_AFTER;

/// Chunks queued for the writer thread ahead of it.
pub(super) const WRITE_QUEUE: usize = 4;
/// Bytes written between flushes to the disk.
pub(super) const FLUSH_BYTES: u64 = 4 * 1024 * 1024;
/// Ending of staging files' names; nothing is read under such a name.
const STAGING_SUFFIX: &str = ".upload";

/// What the writer thread is told.
enum Command {
    Write(Bytes),
    /// Everything was sent: make it durable under its final name.
    Commit,
}

/// An upload being written to a staging file.
pub(super) struct StagedFile {
    commands: mpsc::Sender<Command>,
    writer: JoinHandle<std::io::Result<()>>,
}

impl StagedFile {
    /// Starts writing `staging`, which will become `destination`.
    pub(super) fn create(staging: PathBuf, destination: PathBuf) -> Self {
        let (commands, received) = mpsc::channel(WRITE_QUEUE);
        let writer = tokio::task::spawn_blocking(move || write(&staging, &destination, received));
        Self { commands, writer }
    }

    /// Queues `chunk`, waiting while the writer is [`WRITE_QUEUE`] chunks behind.
    pub(super) async fn put(&self, chunk: Bytes) -> std::io::Result<()> {
        self.commands
            .send(Command::Write(chunk))
            .await
            // The writer stopped early; `finish` returns its error.
            .map_err(|_| std::io::Error::other("the upload's writer stopped"))
    }

    /// Waits until every byte is on the disk under the final name.
    pub(super) async fn finish(self) -> std::io::Result<()> {
        let _ = self.commands.send(Command::Commit).await;
        drop(self.commands);
        joined(self.writer.await)
    }

    /// Stops writing and deletes the staging file; the writer's own error, if it had failed
    /// (a full disk, say), so the cause is not lost behind a stopped queue.
    pub(super) async fn abort(self) -> std::io::Result<()> {
        drop(self.commands);
        joined(self.writer.await)
    }
}

fn joined(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    result.unwrap_or_else(|error| Err(std::io::Error::other(error)))
}

/// The writer thread: staging file, flushes, and the rename on commit; the staging file is
/// removed on every other way out.
fn write(
    staging: &Path,
    destination: &Path,
    mut commands: mpsc::Receiver<Command>,
) -> std::io::Result<()> {
    let result = (|| {
        let mut file = File::create_new(staging)?;
        let (mut written, mut flushed) = (0u64, 0u64);
        while let Some(command) = commands.blocking_recv() {
            match command {
                Command::Write(chunk) => {
                    file.write_all(&chunk)?;
                    written += chunk.len() as u64;
                    if written - flushed >= FLUSH_BYTES {
                        start_writeback(&file, flushed..written)?;
                        flushed = written;
                    }
                }
                Command::Commit => {
                    file.sync_all()?;
                    drop(file);
                    std::fs::rename(staging, destination)?;
                    return sync_directory(destination).map(|()| true);
                }
            }
        }
        // Abandoned: no error of the writer's; the file goes below.
        Ok(false)
    })();
    if !matches!(result, Ok(true)) {
        match std::fs::remove_file(staging) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %staging.display(), %error, "removing a failed upload's file");
            }
        }
    }
    result.map(|_| ())
}

/// Has the disk start writing `range` of `file`, without waiting for it.
#[cfg(target_os = "linux")]
pub(super) fn start_writeback(file: &File, range: std::ops::Range<u64>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(length)) = (
        libc::off64_t::try_from(range.start),
        libc::off64_t::try_from(range.end - range.start),
    ) else {
        return file.sync_data();
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed; the call only starts
    // writeback of the file's own pages.
    let started = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset,
            length,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if started == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Flushes what was written so far (no way to start writeback alone here).
#[cfg(not(target_os = "linux"))]
pub(super) fn start_writeback(file: &File, _range: std::ops::Range<u64>) -> std::io::Result<()> {
    file.sync_data()
}

/// A staging key beside `destination`'s, unique to this upload.
pub(super) fn staging_key(destination: &ObjectPath) -> ObjectPath {
    let mut parts: Vec<PathPart<'_>> = destination.parts().collect();
    let name = parts
        .pop()
        .map(|name| name.as_ref().to_owned())
        .unwrap_or_default();
    parts.push(PathPart::from(format!(
        "{name}.{}{STAGING_SUFFIX}",
        Uuid::new_v4().simple()
    )));
    parts.into_iter().collect()
}

/// Makes a rename into `path`'s directory durable.
fn sync_directory(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(directory) => File::open(directory)?.sync_all(),
        None => Ok(()),
    }
}

/// Whether `name` is a staging file's.
pub(super) fn is_staging(name: &str) -> bool {
    name.ends_with(STAGING_SUFFIX)
}

/// Deletes the files directly in `dir` whose names `candidate` accepts and that were untouched
/// for [`ABANDONED_AFTER`] (left by uploads whose process died); returns how many. A missing
/// `dir` has none.
pub(super) fn remove_abandoned(
    dir: &Path,
    candidate: impl Fn(&str) -> bool,
) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let metadata = entry.metadata()?;
        let is_candidate = metadata.is_file() && entry.file_name().to_str().is_some_and(&candidate);
        let idle = metadata
            .modified()
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok());
        if is_candidate && idle.is_some_and(|idle| idle >= ABANDONED_AFTER) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn commit_renames_the_whole_file_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("bytes");
        let staged = StagedFile::create(dir.path().join("bytes.1.upload"), destination.clone());
        let chunk = Bytes::from(vec![7u8; 3 * 1024 * 1024 + 5]);
        for _ in 0..4 {
            staged.put(chunk.clone()).await.unwrap();
        }
        staged.finish().await.unwrap();
        assert_eq!(files(dir.path()), ["bytes"]);
        assert_eq!(std::fs::read(&destination).unwrap().len(), 4 * chunk.len());
    }

    #[tokio::test]
    async fn abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let staged = StagedFile::create(dir.path().join("b.1.upload"), dir.path().join("b"));
        staged.put(Bytes::from_static(b"partial")).await.unwrap();
        staged.abort().await.unwrap();
        assert!(files(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn a_dropped_upload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let staged = StagedFile::create(dir.path().join("b.1.upload"), dir.path().join("b"));
        staged.put(Bytes::from_static(b"partial")).await.unwrap();
        let StagedFile { commands, writer } = staged;
        drop(commands);
        writer.await.unwrap().unwrap();
        assert!(files(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn a_failing_disk_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let staged = StagedFile::create(missing.join("b.1.upload"), missing.join("b"));
        // The writer cannot create its file; whether or not a put got in before it stopped,
        // the finish reports why.
        let _ = staged.put(Bytes::from_static(b"x")).await;
        let error = staged.finish().await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
        let staged = StagedFile::create(missing.join("b.1.upload"), missing.join("b"));
        let _ = staged.put(Bytes::from_static(b"x")).await;
        let error = staged.abort().await.unwrap_err();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::NotFound,
            "abort hid the cause"
        );
    }

    #[test]
    fn only_old_staging_files_count_as_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(format!("a.1{STAGING_SUFFIX}"));
        let fresh = dir.path().join(format!("b.2{STAGING_SUFFIX}"));
        let stored = dir.path().join("c");
        for path in [&old, &fresh, &stored] {
            std::fs::write(path, b"x").unwrap();
        }
        let long_ago = SystemTime::now() - ABANDONED_AFTER - std::time::Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        File::options()
            .write(true)
            .open(&stored)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        assert_eq!(remove_abandoned(dir.path(), is_staging).unwrap(), 1);
        assert_eq!(
            files(dir.path()),
            [format!("b.2{STAGING_SUFFIX}"), "c".to_owned()]
        );
    }
}
