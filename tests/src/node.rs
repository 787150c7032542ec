//! The Node.js packages some tests drive (tus-js-client in `tests/clients/js`): each folder of
//! `tests/clients/` with a `package-lock.json` pins its packages, and the first test that needs
//! them installs them with `npm ci` into a directory of their own under `target/js-clients/`,
//! named after the hash of the folder's files, so a changed lockfile or script gets a fresh
//! install and a finished one is never rewritten. Without `node` and `npm` the tests skip with a
//! line saying so; in CI they fail instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::process::Command;
use tokio::sync::Mutex;

use crate::database::in_ci;
use crate::python::run;

/// The Node.js interpreter.
pub const NODE: &str = "node";
/// The package manager that installs the pinned clients.
pub const NPM: &str = "npm";

/// `tests/clients/<folder>`: its `package.json`, `package-lock.json` and scripts.
pub fn client_dir(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("clients")
        .join(folder)
}

/// An installed folder: a copy of `tests/clients/<folder>` with its `node_modules`.
#[derive(Debug, Clone)]
pub struct NodePackage {
    dir: PathBuf,
}

impl NodePackage {
    /// `node <script>` for one of the folder's scripts, run inside the installed copy so its
    /// imports find `node_modules`.
    pub fn script(&self, script: &str) -> Command {
        let mut command = Command::new(NODE);
        command.arg(self.dir.join(script)).current_dir(&self.dir);
        command
    }
}

/// `tests/clients/<folder>` installed on first use (once per test process); `None`, after
/// printing why, when `node` or `npm` is missing outside CI. Panics in CI when they are missing,
/// and whenever the install fails.
pub async fn package(folder: &str) -> Option<NodePackage> {
    static INSTALLED: Mutex<Option<HashMap<String, Option<NodePackage>>>> = Mutex::const_new(None);
    // Held across the install, so tests of one process wait for the first one's `npm ci`.
    let mut installed = INSTALLED.lock().await;
    let installed = installed.get_or_insert_with(HashMap::new);
    if let Some(package) = installed.get(folder) {
        return package.clone();
    }
    let package = install(folder).await;
    installed.insert(folder.to_owned(), package.clone());
    package
}

async fn install(folder: &str) -> Option<NodePackage> {
    for tool in [NODE, NPM] {
        if let Err(why) = Command::new(tool).arg("--version").output().await {
            assert!(
                !in_ci(),
                "{tool} must be installed in CI for the Node.js client tests: {why}"
            );
            println!("skipping: {tool} is missing ({why})");
            return None;
        }
    }
    let files = source_files(&client_dir(folder));
    let mut hash = Sha256::new();
    for file in &files {
        hash.update(file.file_name().unwrap_or_default().as_encoded_bytes());
        hash.update(std::fs::read(file).expect("reading the package's files"));
    }
    let digest: String = hash.finalize()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let dir = install_root().join(format!("{folder}-{digest}"));
    if !dir.join("node_modules").is_dir() {
        // Installed beside the final directory and renamed into place, so a test binary running
        // at the same time never sees half an install.
        let staging = install_root().join(format!("staging-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&staging).expect("creating the install directory");
        for file in &files {
            std::fs::copy(file, staging.join(file.file_name().unwrap_or_default()))
                .expect("copying the package's files");
        }
        run(
            "npm ci",
            Command::new(NPM)
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&staging),
        )
        .await;
        if std::fs::rename(&staging, &dir).is_err() {
            // Another process finished first; its install is the same.
            let _ = std::fs::remove_dir_all(&staging);
        }
    }
    Some(NodePackage { dir })
}

/// The regular files of `source` (not the `node_modules` of a local install), sorted.
fn source_files(source: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(source)
        .unwrap_or_else(|error| panic!("reading {}: {error}", source.display()))
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// `target/js-clients`: in the workspace's target directory (`CARGO_TARGET_DIR` when set),
/// wherever the test or bench executable was copied to.
fn install_root() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("js-clients")
}
