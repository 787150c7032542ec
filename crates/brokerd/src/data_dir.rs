//! The embedded data directory: SQLite databases, stored files (`files/`) and the marker
//! (`broker-data.json`) that says what the directory holds.
//!
//! A database file that is empty, or missing while the directory holds data, would otherwise be
//! created anew and the broker would start without its transfers, clients and signing keys and
//! say nothing; [`prepare`] refuses to start instead, unless the directory is new. [`checkpoint`]
//! empties the write-ahead logs on a clean stop, so the `.db` files alone hold every row.
//! [`backup`] copies a running broker's data (databases first, each one consistent moment, then
//! the files: a transfer in the copied database always finds its bytes, and bytes without a row
//! are harmless orphans); [`restore`] puts a backup into a new data directory.

use std::path::{Path, PathBuf};

use broker_common::config::CommonConfig;
use broker_common::db::{self, DatabaseTarget};
use serde::{Deserialize, Serialize};

use crate::mode::Mode;
use crate::service::Service;

/// The marker's file name in the data directory (and in a backup).
pub const MARKER: &str = "broker-data.json";
/// The layout version the marker records; a newer one is refused.
pub const FORMAT_VERSION: u32 = 1;
/// Ending of the names of files an upload is still writing; a backup leaves them out.
const IN_FLIGHT_SUFFIX: &str = ".upload";

/// Why the data directory cannot be used as it is.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// A database file of 0 bytes: not a database, and starting would replace its data.
    #[error(
        "{0} is empty (0 bytes) instead of a database; starting would begin with no transfers, \
         clients or signing keys. Restore it from a backup (`brokerd restore`), or empty the \
         data directory to start anew"
    )]
    EmptyDatabase(PathBuf),
    /// A database that should be there is not.
    #[error(
        "{path} is missing, but {why}; starting would begin with no transfers, clients or \
         signing keys. Restore it from a backup (`brokerd restore`), or empty the data \
         directory to start anew"
    )]
    MissingDatabase {
        /// The database file.
        path: PathBuf,
        /// What shows the directory is not new.
        why: String,
    },
    /// The marker is unreadable or from a newer version.
    #[error("{path}: {reason}")]
    Marker {
        /// The marker file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `backup`/`restore` asked of a broker that keeps no SQLite databases.
    #[error(
        "BROKER_DATABASE_URL names PostgreSQL: back up with pg_dump (or PITR) and the object \
         store's versioning, as the README's Backups section describes"
    )]
    NotEmbedded,
    /// A backup's target, or a restore's data directory, already holds files.
    #[error("{0} is not empty{1}")]
    NotEmpty(PathBuf, &'static str),
    /// What `restore` was given is not a backup.
    #[error("{0} holds no {MARKER}: it is not a `brokerd backup`")]
    NotABackup(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// SQLite refused a checkpoint or a backup.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        source: sqlx::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sqlite(path: &Path) -> impl FnOnce(sqlx::Error) -> DataDirError + '_ {
    move |source| DataDirError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

/// What the data directory holds, as the marker records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// When the directory (or the backup) was made, RFC 3339.
    pub created: String,
    /// The database files it holds, by name.
    pub databases: Vec<String>,
}

impl Marker {
    fn new(databases: Vec<String>) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            created: chrono::Utc::now().to_rfc3339(),
            databases,
        }
    }

    /// The marker in `dir`, if there is one.
    pub fn read(dir: &Path) -> Result<Option<Self>, DataDirError> {
        let path = dir.join(MARKER);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io(&path)(error)),
        };
        let marker: Self = serde_json::from_str(&text).map_err(|error| DataDirError::Marker {
            path: path.clone(),
            reason: error.to_string(),
        })?;
        if marker.format_version > FORMAT_VERSION {
            return Err(DataDirError::Marker {
                path,
                reason: format!(
                    "format version {} is newer than this brokerd's {FORMAT_VERSION}",
                    marker.format_version
                ),
            });
        }
        Ok(Some(marker))
    }

    /// Writes the marker into `dir`, whole or not at all.
    fn write(&self, dir: &Path) -> Result<(), DataDirError> {
        let path = dir.join(MARKER);
        let partial = dir.join(format!("{MARKER}.new"));
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(&partial, text + "\n").map_err(io(&partial))?;
        std::fs::rename(&partial, &path).map_err(io(&path))
    }
}

/// The SQLite files of `services` that `common` places in its data directory (none when the
/// database is PostgreSQL).
pub fn sqlite_databases(
    common: &CommonConfig,
    services: impl IntoIterator<Item = Service>,
) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for service in services.into_iter().filter(|s| s.has_database()) {
        let target = DatabaseTarget::resolve(
            common.database_url.as_deref(),
            &common.data_dir,
            service.name(),
        );
        if let DatabaseTarget::Sqlite(path) = target
            && !paths.contains(&path)
        {
            paths.push(path);
        }
    }
    paths
}

/// The SQLite files `mode` uses.
pub fn databases_of(common: &CommonConfig, mode: &Mode) -> Vec<PathBuf> {
    sqlite_databases(common, Service::ALL.into_iter().filter(|s| mode.runs(*s)))
}

/// Checks that `databases` can be opened without losing data: an empty database file is
/// refused, and so is a missing one when the marker lists it or, in a directory from before the
/// marker, when other databases or stored files exist.
pub fn check(data_dir: &Path, databases: &[PathBuf]) -> Result<(), DataDirError> {
    let marker = Marker::read(data_dir)?;
    let mut present = Vec::new();
    for path in databases {
        match std::fs::metadata(path) {
            Ok(metadata) if metadata.len() == 0 => {
                return Err(DataDirError::EmptyDatabase(path.clone()));
            }
            Ok(_) => present.push(path),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io(path)(error)),
        }
    }
    let stored_files = has_entries(&data_dir.join("files"))?;
    for path in databases.iter().filter(|path| !present.contains(path)) {
        let why = match &marker {
            Some(marker) if marker.databases.contains(&file_name(path)) => {
                format!("{} lists it", data_dir.join(MARKER).display())
            }
            Some(_) => continue,
            None if !present.is_empty() => "the other databases exist".to_owned(),
            None if stored_files => "the data directory holds stored files".to_owned(),
            None => continue,
        };
        return Err(DataDirError::MissingDatabase {
            path: path.clone(),
            why,
        });
    }
    Ok(())
}

/// Records in the marker those of `databases` that exist (once the stores made them), making
/// the marker when the directory has none.
pub fn record(data_dir: &Path, databases: &[PathBuf]) -> Result<(), DataDirError> {
    let existing = Marker::read(data_dir)?;
    let mut marker = existing.clone().unwrap_or_else(|| Marker::new(Vec::new()));
    for path in databases.iter().filter(|path| path.exists()) {
        if !marker.databases.contains(&file_name(path)) {
            marker.databases.push(file_name(path));
        }
    }
    if existing.as_ref() == Some(&marker) || marker.databases.is_empty() {
        return Ok(());
    }
    marker.write(data_dir)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether `dir` exists and holds anything.
fn has_entries(dir: &Path) -> Result<bool, DataDirError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(io(dir)(error)),
    }
}

/// Empties the write-ahead log of every database in `databases` into its file; a database
/// whose log a reader still holds is reported, not waited for.
pub async fn checkpoint(databases: &[PathBuf]) -> Result<(), DataDirError> {
    for path in databases.iter().filter(|path| path.exists()) {
        let done = db::checkpoint_sqlite(path).await.map_err(sqlite(path))?;
        if !done.complete {
            tracing::warn!(path = %path.display(), "a reader held the log; it was not emptied");
        }
    }
    Ok(())
}

/// What [`backup`] copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    /// Databases.
    pub databases: usize,
    /// Other files (stored bytes, the admin token, demo profiles).
    pub files: usize,
}

/// Copies the data of `common`'s data directory into `into` (new or empty) while the broker
/// may be running: every database with `VACUUM INTO`, then every other file except the
/// databases' logs and uploads still being written.
pub async fn backup(common: &CommonConfig, into: &Path) -> Result<Copied, DataDirError> {
    let databases = sqlite_databases(common, Service::ALL);
    if databases.is_empty() {
        return Err(DataDirError::NotEmbedded);
    }
    if has_entries(into)? {
        return Err(DataDirError::NotEmpty(into.to_owned(), ""));
    }
    std::fs::create_dir_all(into).map_err(io(into))?;
    let mut copied = Copied::default();
    let mut names = Vec::new();
    for path in databases.iter().filter(|path| path.exists()) {
        let name = path.file_name().unwrap_or_default();
        db::backup_sqlite(path, &into.join(name))
            .await
            .map_err(sqlite(path))?;
        names.push(name.to_string_lossy().into_owned());
        copied.databases += 1;
    }
    let data_dir = &common.data_dir;
    let skip = |path: &Path| {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        databases.iter().any(|db| {
            let db = db.to_string_lossy();
            let path = path.to_string_lossy();
            path == db
                || path
                    .strip_prefix(db.as_ref())
                    .is_some_and(|rest| rest.starts_with('-'))
        }) || name == MARKER
            || name.ends_with(IN_FLIGHT_SUFFIX)
    };
    copied.files = copy_tree(data_dir, into, &skip)?;
    Marker::new(names).write(into)?;
    Ok(copied)
}

/// Copies the backup `from` into the data directory `data_dir`, which must be new or empty;
/// with `force`, what it holds is removed first.
pub fn restore(from: &Path, data_dir: &Path, force: bool) -> Result<usize, DataDirError> {
    if Marker::read(from)?.is_none() {
        return Err(DataDirError::NotABackup(from.to_owned()));
    }
    if has_entries(data_dir)? {
        if !force {
            return Err(DataDirError::NotEmpty(
                data_dir.to_owned(),
                "; pass --force to replace what it holds (stop the broker first)",
            ));
        }
        for entry in std::fs::read_dir(data_dir).map_err(io(data_dir))? {
            let path = entry.map_err(io(data_dir))?.path();
            let removed = if path.is_dir() && !path.is_symlink() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(io(&path))?;
        }
    }
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    copy_tree(from, data_dir, &|_| false)
}

/// Copies the files under `from` into `to` (directories made as needed), except those `skip`
/// names, and fsyncs each; returns how many files were copied. Links are not followed.
fn copy_tree(from: &Path, to: &Path, skip: &dyn Fn(&Path) -> bool) -> Result<usize, DataDirError> {
    let mut copied = 0;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io(&path))?;
        if skip(&path) || kind.is_symlink() {
            continue;
        }
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(io(&target))?;
            copied += copy_tree(&path, &target, skip)?;
            continue;
        }
        match std::fs::copy(&path, &target) {
            Ok(_) => {}
            // Removed since it was listed (a purged file, a finished spool): nothing to copy.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(io(&path)(error)),
        }
        std::fs::File::open(&target)
            .and_then(|file| file.sync_all())
            .map_err(io(&target))?;
        copied += 1;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn databases(dir: &Path) -> Vec<PathBuf> {
        ["token.db", "access.db"]
            .iter()
            .map(|name| dir.join(name))
            .collect()
    }

    #[test]
    fn a_new_directory_passes_and_gets_a_marker_naming_its_databases() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = databases(dir.path());
        check(dir.path(), &dbs).unwrap();
        for db in &dbs {
            std::fs::write(db, b"a database").unwrap();
        }
        record(dir.path(), &dbs).unwrap();
        let marker = Marker::read(dir.path()).unwrap().unwrap();
        assert_eq!(marker.databases, ["token.db", "access.db"]);
        assert_eq!(marker.format_version, FORMAT_VERSION);
        check(dir.path(), &dbs).unwrap();
    }

    #[test]
    fn empty_or_missing_databases_of_a_used_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dbs = databases(dir.path());
        std::fs::write(&dbs[0], b"").unwrap();
        assert!(matches!(
            check(dir.path(), &dbs),
            Err(DataDirError::EmptyDatabase(path)) if path == dbs[0]
        ));
        // Before the marker existed: one database there, the other gone.
        std::fs::write(&dbs[0], b"a database").unwrap();
        assert!(matches!(
            check(dir.path(), &dbs),
            Err(DataDirError::MissingDatabase { path, .. }) if path == dbs[1]
        ));
        // Stored files and no database at all.
        std::fs::remove_file(&dbs[0]).unwrap();
        std::fs::create_dir_all(dir.path().join("files")).unwrap();
        std::fs::write(dir.path().join("files/x"), b"bytes").unwrap();
        assert!(matches!(
            check(dir.path(), &dbs),
            Err(DataDirError::MissingDatabase { .. })
        ));
        // The marker lists a database that is gone.
        std::fs::write(&dbs[0], b"a database").unwrap();
        std::fs::write(&dbs[1], b"a database").unwrap();
        record(dir.path(), &dbs).unwrap();
        std::fs::remove_file(&dbs[1]).unwrap();
        assert!(matches!(
            check(dir.path(), &dbs),
            Err(DataDirError::MissingDatabase { path, .. }) if path == dbs[1]
        ));
    }
}
