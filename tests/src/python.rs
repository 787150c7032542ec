//! The Python tools some end-to-end tests drive (the generated client, schemathesis): whether
//! they are installed, and running them. They are pinned in `tests/clients/python/` and `.ci/run`
//! installs them, so in CI a missing tool fails the test instead of skipping it.

use std::path::{Path, PathBuf};
use std::process::Output;

use tokio::process::Command;

use crate::database::in_ci;

/// The interpreter the requirements are installed for.
pub const PYTHON: &str = "python3";

/// `tests/clients/python`: the requirements and the scripts that use them.
pub fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python")
}

/// Whether every one of `modules` imports; outside CI, prints why the test skips when not.
/// Panics in CI, where they must be there.
pub async fn tools_present(modules: &[&str]) -> bool {
    let requirements = client_dir().join("requirements.txt");
    let found = Command::new(PYTHON)
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .output()
        .await;
    let why = match found {
        Ok(output) if output.status.success() => return true,
        // A failed import's last line names the module; without one, the exit status says more.
        Ok(output) => String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .map_or_else(|| output.status.to_string(), str::to_owned),
        Err(error) => format!("{PYTHON}: {error}"),
    };
    assert!(
        !in_ci(),
        "the Python tools must be installed in CI ({why}); `{PYTHON} -m pip install -r {}`",
        requirements.display()
    );
    println!(
        "skipping: the Python tools are missing ({why}); `{PYTHON} -m pip install -r {}`",
        requirements.display()
    );
    false
}

/// Runs `command`; panics with its output unless it succeeds.
pub async fn run(what: &str, command: &mut Command) -> Output {
    let output = command
        .output()
        .await
        .unwrap_or_else(|error| panic!("{what} did not start: {error}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    output
}
