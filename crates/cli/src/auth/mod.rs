//! Access tokens: sign an assertion with the profile's key, trade it at `POST /token`, and keep
//! the token on disk (per profile, client and scopes) until shortly before it expires, so a
//! script running many commands asks the token service once.

pub mod assertion;
pub mod keys;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::api::Http;
use crate::config::Profile;
use crate::error::CliError;
use keys::ClientKey;

/// The grant type of RFC 7523.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// A cached token is not used in its last seconds, so it cannot expire in flight.
const EXPIRY_MARGIN_SECONDS: i64 = 60;

/// An access token and when it expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessToken {
    /// The bearer token.
    pub access_token: String,
    /// The scopes it carries, space-separated.
    pub scope: String,
    /// When it expires (seconds since the epoch).
    pub expires_at: i64,
    /// The file it is cached in, to forget it when the broker refuses it.
    #[serde(skip)]
    pub cache_file: Option<PathBuf>,
}

impl AccessToken {
    /// Whether the token may still be sent at `now` (seconds since the epoch).
    pub fn usable(&self, now: i64) -> bool {
        self.expires_at - EXPIRY_MARGIN_SECONDS > now
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
}

/// Gets tokens for one profile.
pub struct Tokens<'a> {
    /// The resolved profile.
    pub profile: &'a Profile,
    /// Where tokens are cached; `None` keeps them only for the command.
    pub cache_dir: Option<PathBuf>,
    /// The profile's name, to name its cache files.
    pub profile_name: &'a str,
}

impl Tokens<'_> {
    /// A token for `scopes`: from the cache while it lasts, else a new one.
    pub async fn get(&self, http: &Http, scopes: &[String]) -> Result<AccessToken, CliError> {
        let scope = scopes.join(" ");
        let cache = self
            .cache_dir
            .as_ref()
            .map(|dir| dir.join(self.cache_file(&scope)));
        let now = now();
        if let Some(token) = cache.as_deref().and_then(read_cached)
            && token.usable(now)
        {
            return Ok(AccessToken {
                cache_file: cache,
                ..token
            });
        }
        let token = self.request(http, &scope, now).await?;
        if let Some(path) = &cache {
            write_cached(path, &token)?;
        }
        Ok(AccessToken {
            cache_file: cache,
            ..token
        })
    }

    async fn request(&self, http: &Http, scope: &str, now: i64) -> Result<AccessToken, CliError> {
        let key = ClientKey::load(&self.profile.key_file, self.profile.kid.clone())?;
        // The audience is the issuer exactly as the token service names itself, which behind a
        // proxy may differ from the URL the client uses; the metadata says.
        let metadata: Metadata = http
            .get_json("/.well-known/oauth-authorization-server", None)
            .await?;
        let assertion =
            assertion::sign(&key, &self.profile.client_id, &metadata.issuer, scope, now)?;
        let answer: TokenAnswer = http
            .post_form(
                "/token",
                &[("grant_type", JWT_BEARER), ("assertion", &assertion)],
            )
            .await?;
        Ok(AccessToken {
            access_token: answer.access_token,
            scope: answer.scope.unwrap_or_else(|| scope.to_owned()),
            expires_at: now + answer.expires_in,
            cache_file: None,
        })
    }

    /// `<profile>-<hash>.json`: the hash covers everything that makes a token differ, so a
    /// flag that points the profile elsewhere never picks up the wrong token.
    fn cache_file(&self, scope: &str) -> String {
        let identity = format!(
            "{}\n{}\n{}\n{}",
            self.profile.base_url(),
            self.profile.client_id,
            self.profile.key_file.display(),
            scope
        );
        let hash = sha2::Sha256::digest(identity.as_bytes());
        let short: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
        let name: String = self
            .profile_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{name}-{short}.json")
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A cached token; a missing or unreadable cache is simply a miss.
fn read_cached(path: &Path) -> Option<AccessToken> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Forgets a cached token the broker refused (revoked, or signed with a key it dropped), so
/// the next command asks for a new one instead of failing until it expires.
pub fn forget(token: &AccessToken) {
    if let Some(path) = &token.cache_file {
        // Nothing to do if it is already gone; any other failure shows on the next use.
        let _ = std::fs::remove_file(path);
    }
}

/// Writes the token readable by the owner only: it is a credential.
fn write_cached(path: &Path, token: &AccessToken) -> Result<(), CliError> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|error| CliError::io(dir, error))?;
    }
    let text = serde_json::to_vec(token).map_err(|error| CliError::Config(error.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|error| CliError::io(path, error))?;
    file.write_all(&text)
        .map_err(|error| CliError::io(path, error))
}
