//! `download`: the file into `<output>.part`, moved to `<output>` once its size (and MD5,
//! when the broker knows it) check out. A `.part` left by an interrupted run is resumed with
//! `Range: bytes=<its length>-` rather than downloaded again.
//!
//! The sender chooses the file name, so it is made harmless before use ([`safe_file_name`]):
//! one plain name in the current directory, never a path, a dot-file or control characters.
//! An existing `<output>` is never replaced without `--force`, and a symbolic link there or at
//! the `.part` is never followed, even with it: the bytes go only into files this command made.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::{Context, READ};
use crate::api::{Api, Download};
use crate::error::CliError;
use crate::progress;

/// Bytes buffered before writing to disk.
const WRITE_BUFFER: usize = 256 * 1024;

/// Where a download starts, given the partial file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Download from this offset (0: from the start, truncating any partial file).
    From(u64),
    /// The partial file is already whole; only the checks remain.
    Complete,
}

/// Where to start with `part_len` bytes on disk of a `total`-byte file. A partial file longer
/// than the file cannot be a prefix of it, so it is discarded.
pub fn start(part_len: u64, total: u64) -> Start {
    if part_len == total {
        Start::Complete
    } else if part_len > total {
        Start::From(0)
    } else {
        Start::From(part_len)
    }
}

/// The first byte's offset in a `Content-Range: bytes <first>-<last>/<total>` value.
pub fn content_range_start(value: &str) -> Option<u64> {
    let range = value.trim().strip_prefix("bytes ")?;
    let (first, _) = range.split_once('-')?;
    first.trim().parse().ok()
}

/// `<output>.part`.
fn part_path(output: &Path) -> PathBuf {
    let mut name = OsString::from(output.as_os_str());
    name.push(".part");
    PathBuf::from(name)
}

/// Downloads transfer `id` to `output` (default: its file name here); an existing `output`
/// is replaced only with `force`.
pub async fn run(
    ctx: &Context,
    id: &str,
    output: Option<PathBuf>,
    force: bool,
) -> Result<(), CliError> {
    let (api, _) = ctx.api(&[READ]).await?;
    let overview = api.transfer(id, false).await?;
    let total = overview["fileTransferSize"].as_u64().unwrap_or_default();
    let output = output.unwrap_or_else(|| {
        PathBuf::from(safe_file_name(
            overview["fileName"].as_str().unwrap_or_default(),
            id,
        ))
    });
    check_target(&output, force)?;
    let part = part_path(&output);
    let on_disk = match tokio::fs::symlink_metadata(&part).await {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
        Err(error) => return Err(CliError::io(&part, error)),
    };
    let visible = progress::wanted(ctx.json);
    let resumed_from = match start(on_disk, total) {
        Start::Complete => on_disk,
        Start::From(offset) => fetch(&api, id, &part, offset, total, visible).await?,
    };

    let length = tokio::fs::metadata(&part)
        .await
        .map_err(|error| CliError::io(&part, error))?
        .len();
    if length != total {
        return Err(CliError::Integrity(format!(
            "got {length} of {total} bytes; run the command again to resume"
        )));
    }
    let checksum = overview["checksum"].as_str().filter(|c| !c.is_empty());
    if let Some(expected) = checksum {
        let actual = super::send::md5_of(&part, total, "verify", visible).await?;
        if !actual.eq_ignore_ascii_case(expected) {
            // A corrupt partial file would only be resumed into another corrupt file.
            let _ = tokio::fs::remove_file(&part).await;
            return Err(CliError::Integrity(format!(
                "the file's MD5 is {actual}, the broker's is {expected}; discarded it"
            )));
        }
    }
    place(&part, &output, force)?;
    ctx.print(
        &json!({
            "fileTransferId": id,
            "file": output,
            "size": total,
            "resumedFrom": resumed_from,
            "checksumVerified": checksum.is_some(),
        }),
        || format!("saved {} ({total} bytes)", output.display()),
    );
    Ok(())
}

/// The sender's `name` as a file name that stays in the current directory and is no surprise:
/// its last path component (either separator), without control characters and leading dots or
/// blanks; `fallback` (the transfer id) when nothing is left.
pub fn safe_file_name(name: &str, fallback: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let printable: String = last.chars().filter(|c| !c.is_control()).collect();
    let trimmed = printable
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end();
    if trimmed.is_empty() {
        fallback.to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Refuses an `output` that is a symbolic link or a directory, or an existing file unless
/// `force`.
fn check_target(output: &Path, force: bool) -> Result<(), CliError> {
    match std::fs::symlink_metadata(output) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(CliError::io(output, error)),
        Ok(metadata) if metadata.file_type().is_symlink() => Err(CliError::Target(format!(
            "{} is a symbolic link; not writing through it (remove it, or choose another -o)",
            output.display()
        ))),
        Ok(metadata) if metadata.is_dir() => Err(CliError::Target(format!(
            "{} is a directory; name a file with -o",
            output.display()
        ))),
        Ok(_) if force => Ok(()),
        Ok(_) => Err(CliError::Target(format!(
            "{} exists; pass --force to replace it",
            output.display()
        ))),
    }
}

/// Moves the verified `part` to `output`. Without `force` a hard link makes the move fail if
/// `output` appeared meanwhile, instead of replacing it; with it, a rename replaces the
/// directory entry, so even a link put there since the check is replaced, not written through.
fn place(part: &Path, output: &Path, force: bool) -> Result<(), CliError> {
    if force {
        check_target(output, true)?;
        return std::fs::rename(part, output).map_err(|error| CliError::io(output, error));
    }
    match std::fs::hard_link(part, output) {
        Ok(()) => std::fs::remove_file(part).map_err(|error| CliError::io(part, error)),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            check_target(output, false)
        }
        // A file system without hard links: check once more, then rename.
        Err(_) => {
            check_target(output, false)?;
            std::fs::rename(part, output).map_err(|error| CliError::io(output, error))
        }
    }
}

/// Writes the file from `offset` on into `part`; returns the offset actually resumed from (0
/// when the broker sent the whole file after all).
async fn fetch(
    api: &Api,
    id: &str,
    part: &Path,
    offset: u64,
    total: u64,
    visible: bool,
) -> Result<u64, CliError> {
    let (response, from) = match api.download(id, offset).await? {
        Download::Partial(response, from) if from == offset => (response, from),
        Download::Partial(_, from) => {
            return Err(CliError::Integrity(format!(
                "asked for bytes from {offset}, the broker sent them from {from}"
            )));
        }
        Download::Whole(response) => (response, 0),
        // The file shrank under us or the partial file is not this file's: start over.
        Download::PastEnd => match api.download(id, 0).await? {
            Download::Whole(response) => (response, 0),
            _ => {
                return Err(CliError::Integrity(
                    "the broker refused to send the whole file".to_owned(),
                ));
            }
        },
    };
    let mut options = tokio::fs::OpenOptions::new();
    options.create(true);
    // A link planted at the `.part` name must not make us write into its target.
    #[cfg(unix)]
    options.custom_flags(libc::O_NOFOLLOW);
    if from == 0 {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    let file = options
        .open(part)
        .await
        .map_err(|error| CliError::io(part, error))?;
    let mut writer = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let bar = progress::bar(total, "download", visible);
    bar.set_position(from);
    let mut body = response.bytes_stream();
    let written: Result<(), CliError> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            writer
                .write_all(&chunk)
                .await
                .map_err(|error| CliError::io(part, error))?;
            bar.inc(chunk.len() as u64);
        }
        Ok(())
    }
    .await;
    bar.finish_and_clear();
    // What did arrive is kept (flushed and synced) even on failure: the next run resumes it.
    writer
        .flush()
        .await
        .map_err(|error| CliError::io(part, error))?;
    writer
        .get_ref()
        .sync_all()
        .await
        .map_err(|error| CliError::io(part, error))?;
    written.map(|()| from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_partial_file_starts_at_zero() {
        assert_eq!(start(0, 100), Start::From(0));
    }

    #[test]
    fn a_partial_file_resumes_at_its_length() {
        assert_eq!(start(40, 100), Start::From(40));
        assert_eq!(start(99, 100), Start::From(99));
    }

    #[test]
    fn a_whole_partial_file_needs_no_request() {
        assert_eq!(start(100, 100), Start::Complete);
        assert_eq!(start(0, 0), Start::Complete);
    }

    #[test]
    fn a_partial_file_longer_than_the_file_is_discarded() {
        assert_eq!(start(101, 100), Start::From(0));
    }

    #[test]
    fn content_range_gives_the_first_byte() {
        assert_eq!(content_range_start("bytes 40-99/100"), Some(40));
        assert_eq!(content_range_start("bytes 0-0/1"), Some(0));
        assert_eq!(content_range_start("bytes */100"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }

    #[test]
    fn sender_file_names_stay_plain_names_here() {
        assert_eq!(safe_file_name("report.xml", "id"), "report.xml");
        assert_eq!(safe_file_name("../x", "id"), "x");
        assert_eq!(safe_file_name("/etc/passwd", "id"), "passwd");
        assert_eq!(safe_file_name("..\\..\\win.ini", "id"), "win.ini");
        assert_eq!(safe_file_name(".bashrc", "id"), "bashrc");
        assert_eq!(safe_file_name("a\u{1b}[31mb\n.txt", "id"), "a[31mb.txt");
        for nothing in ["", "..", ".", "dir/", " . ", "\u{7}"] {
            assert_eq!(safe_file_name(nothing, "id"), "id", "{nothing:?}");
        }
    }

    #[test]
    fn the_partial_file_sits_beside_the_output() {
        assert_eq!(
            part_path(Path::new("dir/report.xml")),
            PathBuf::from("dir/report.xml.part")
        );
    }
}
