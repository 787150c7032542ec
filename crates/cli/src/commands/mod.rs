//! One module per command (or family of commands), and the [`Context`] they share: the chosen
//! profile, an authenticated API client, and the one way of printing results.

pub mod download;
pub mod events;
pub mod keygen;
pub mod profile;
pub mod send;
pub mod token;
pub mod transfers;

use std::path::PathBuf;

use serde_json::Value;

use crate::api::{Api, Http};
use crate::auth::{AccessToken, Tokens};
use crate::config::{ConfigFile, Overrides, Profile};
use crate::error::CliError;

/// Sending files.
pub const WRITE: &str = "altinn:broker.write";
/// Receiving and reading files.
pub const READ: &str = "altinn:broker.read";
/// Subscribing to and pulling events.
pub const SUBSCRIBE: &str = "altinn:events.subscribe";
/// The name token caches use when no profile file is involved.
const UNNAMED: &str = "flags";

/// What every command runs with.
pub struct Context {
    /// Print JSON rather than text.
    pub json: bool,
    /// The configuration file.
    pub config_path: PathBuf,
    /// `--profile`.
    pub profile_name: Option<String>,
    /// Flags and variables over the profile.
    pub overrides: Overrides,
}

impl Context {
    /// The configuration file's contents.
    pub fn config(&self) -> Result<ConfigFile, CliError> {
        ConfigFile::load(&self.config_path)
    }

    /// The profile to act as, with its name.
    pub fn profile(&self) -> Result<(String, Profile), CliError> {
        let selected = self.config()?.select(self.profile_name.as_deref())?;
        let name = selected
            .as_ref()
            .map_or_else(|| UNNAMED.to_owned(), |(name, _)| name.clone());
        let profile = Profile::resolve(selected.map(|(_, profile)| profile), &self.overrides)?;
        Ok((name, profile))
    }

    /// A token for `scopes`, or for the profile's own scopes when it lists them (so one cached
    /// token serves every command).
    pub async fn token(
        &self,
        profile: &(String, Profile),
        scopes: &[&str],
    ) -> Result<AccessToken, CliError> {
        let (name, profile) = profile;
        let scopes: Vec<String> = match &profile.scopes {
            Some(listed) if !listed.is_empty() => listed.clone(),
            _ => scopes.iter().map(|s| (*s).to_owned()).collect(),
        };
        let tokens = Tokens {
            profile,
            profile_name: name,
            cache_dir: self.config_path.parent().map(|dir| dir.join("tokens")),
        };
        tokens.get(&Http::new(profile.base_url())?, &scopes).await
    }

    /// The API as the profile's client with a token carrying `scopes`, and the profile.
    pub async fn api(&self, scopes: &[&str]) -> Result<(Api, Profile), CliError> {
        let profile = self.profile()?;
        let token = self.token(&profile, scopes).await?;
        let api = Api::new(Http::new(profile.1.base_url())?, token);
        Ok((api, profile.1))
    }

    /// Prints `value` as one line of JSON with `--json`, else `text`.
    pub fn print(&self, value: &Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            let text = text();
            if !text.is_empty() {
                println!("{text}");
            }
        }
    }
}
