//! The operator's admin credential: configured, or generated once into the data directory so a
//! fresh embedded broker is usable without setup but never open.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::config::CommonConfig;

/// The admin bearer token. Its `Debug` output is redacted so it never reaches logs.
#[derive(Clone)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Where a generated admin token came from, so start-up can tell the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminTokenSource {
    /// `BROKER_ADMIN_TOKEN`.
    Configured,
    /// A file in the data directory (existing or just written).
    File(PathBuf),
}

impl AdminToken {
    /// A token from a known value (tests and configuration).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The configured token, else the one stored in the data directory, else a new one written
    /// there with owner-only permissions.
    pub fn resolve(config: &CommonConfig) -> std::io::Result<(Self, AdminTokenSource)> {
        if let Some(token) = config.admin_token.as_deref().filter(|t| !t.is_empty()) {
            return Ok((Self::new(token), AdminTokenSource::Configured));
        }
        let path = config.data_dir.join("admin-token");
        let token = read_or_create(&path)?;
        Ok((Self(token), AdminTokenSource::File(path)))
    }

    /// The token's text, for sending it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a presented bearer token.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

fn read_or_create(path: &Path) -> std::io::Result<String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(token.as_bytes())?;
            file.sync_all()?;
            Ok(token)
        }
        // Another process of this data directory won the race, or an earlier start wrote it.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path)?.trim().to_owned())
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses() {
        let dir = std::env::temp_dir().join(format!("broker-admin-{}", uuid::Uuid::new_v4()));
        let config = CommonConfig {
            data_dir: dir.clone(),
            ..CommonConfig::default()
        };
        let (first, source) = AdminToken::resolve(&config).unwrap();
        let (second, _) = AdminToken::resolve(&config).unwrap();
        assert_eq!(source, AdminTokenSource::File(dir.join("admin-token")));
        assert!(first.matches(second.expose()));
        assert!(!first.matches("guess"));
        assert_eq!(format!("{first:?}"), "AdminToken(<redacted>)");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
