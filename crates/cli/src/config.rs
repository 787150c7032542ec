//! Profiles: which broker to talk to, as which client, with which key.
//!
//! They live in one TOML file (`$BROKER_CLI_CONFIG`, else `~/.config/broker/config.toml`) that
//! names a default. A command runs with one resolved [`Profile`]: the chosen profile with any
//! `--url`/`--client-id`/`--org`/`--key-file` flag (or `BROKER_CLI_*` variable) laid over it, so
//! a script can run without a file at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CliError;
use crate::size::ByteSize;

/// The variable naming the configuration file.
pub const CONFIG_VAR: &str = "BROKER_CLI_CONFIG";
/// Files above this size are sent with tus, so an interrupted send can be resumed; below it one
/// request is simpler and loses little when it must be repeated.
pub const DEFAULT_TUS_THRESHOLD: ByteSize = ByteSize(64 << 20);
/// Bytes per tus PATCH: large enough that per-request costs vanish, small enough that a retried
/// request repeats little.
pub const DEFAULT_TUS_CHUNK_SIZE: ByteSize = ByteSize(32 << 20);

/// The configuration file's contents.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The profile used when `--profile` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The profiles by name.
    #[serde(default, rename = "profile")]
    pub profiles: BTreeMap<String, Profile>,
}

/// One broker and client identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The gateway's base URL.
    pub url: String,
    /// The OAuth2 client id (the assertion's `iss`).
    pub client_id: String,
    /// The organisation number the client acts for.
    pub org: String,
    /// The PEM file holding the client's private key.
    pub key_file: PathBuf,
    /// The key id registered with the key; by default its JWK thumbprint, as `keygen` prints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The scopes `token` asks for when none are given; by default the broker scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// `send` uses tus for files above this size (default [`DEFAULT_TUS_THRESHOLD`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tus_threshold: Option<ByteSize>,
    /// Bytes per tus PATCH (default [`DEFAULT_TUS_CHUNK_SIZE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tus_chunk_size: Option<ByteSize>,
}

/// Values from flags and the environment that override (or replace) a profile's.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--url` / `BROKER_CLI_URL`.
    pub url: Option<String>,
    /// `--client-id` / `BROKER_CLI_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `--org` / `BROKER_CLI_ORG`.
    pub org: Option<String>,
    /// `--key-file` / `BROKER_CLI_KEY_FILE`.
    pub key_file: Option<PathBuf>,
}

impl ConfigFile {
    /// Where the configuration file is: `$BROKER_CLI_CONFIG`, else under `$HOME/.config`.
    pub fn path() -> Result<PathBuf, CliError> {
        if let Some(path) = std::env::var_os(CONFIG_VAR).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| CliError::Config(format!("neither {CONFIG_VAR} nor HOME is set")))?;
        Ok(Path::new(&home).join(".config/broker/config.toml"))
    }

    /// Reads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text)
                .map_err(|error| CliError::Config(format!("{}: {error}", path.display()))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(CliError::io(path, error)),
        }
    }

    /// Parses the TOML text of a configuration file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|error| error.message().to_owned())?;
        if let Some(default) = &config.default
            && !config.profiles.contains_key(default)
        {
            return Err(format!("the default profile `{default}` is not defined"));
        }
        Ok(config)
    }

    /// Writes the file, creating its directory.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| CliError::io(dir, error))?;
        }
        let text = toml::to_string_pretty(self).map_err(|error| {
            CliError::Config(format!("cannot write the configuration: {error}"))
        })?;
        std::fs::write(path, text).map_err(|error| CliError::io(path, error))
    }

    /// The profile to use: `name`, else the default, else the only one; `None` when there is
    /// none to choose (the flags may still describe one).
    pub fn select(&self, name: Option<&str>) -> Result<Option<(String, Profile)>, CliError> {
        let chosen = match name {
            Some(name) => name.to_owned(),
            None => match (&self.default, self.profiles.len()) {
                (Some(default), _) => default.clone(),
                (None, 1) => self.profiles.keys().next().cloned().unwrap_or_default(),
                (None, 0) => return Ok(None),
                (None, _) => {
                    return Err(CliError::Config(
                        "several profiles and no default: pass --profile NAME".to_owned(),
                    ));
                }
            },
        };
        self.profiles
            .get(&chosen)
            .map(|profile| Some((chosen.clone(), profile.clone())))
            .ok_or_else(|| CliError::Config(format!("no profile named `{chosen}`")))
    }
}

impl Profile {
    /// `base` (which may be absent) with `overrides` laid over it; every field must end up set.
    pub fn resolve(base: Option<Profile>, overrides: &Overrides) -> Result<Profile, CliError> {
        let missing = |what: &str, flag: &str| {
            CliError::Config(format!(
                "no {what}: add a profile (`broker profile add`) or pass {flag}"
            ))
        };
        let (tus_threshold, tus_chunk_size) = base
            .as_ref()
            .map(|p| (p.tus_threshold, p.tus_chunk_size))
            .unwrap_or_default();
        let (url, client_id, org, key_file, kid, scopes) = match base {
            Some(p) => (
                Some(p.url),
                Some(p.client_id),
                Some(p.org),
                Some(p.key_file),
                p.kid,
                p.scopes,
            ),
            None => (None, None, None, None, None, None),
        };
        let profile = Profile {
            url: overrides
                .url
                .clone()
                .or(url)
                .ok_or_else(|| missing("broker URL", "--url"))?,
            client_id: overrides
                .client_id
                .clone()
                .or(client_id)
                .ok_or_else(|| missing("client id", "--client-id"))?,
            org: overrides
                .org
                .clone()
                .or(org)
                .ok_or_else(|| missing("organisation", "--org"))?,
            key_file: overrides
                .key_file
                .clone()
                .or(key_file)
                .ok_or_else(|| missing("key file", "--key-file"))?,
            kid,
            scopes,
            tus_threshold,
            tus_chunk_size,
        };
        profile.validate()?;
        Ok(profile)
    }

    /// Checks what can be checked without the network.
    pub fn validate(&self) -> Result<(), CliError> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(CliError::Config(format!(
                "the broker URL `{}` must start with http:// or https://",
                self.url
            )));
        }
        crate::party::OrgNumber::parse(&self.org)?;
        Ok(())
    }

    /// The base URL without a trailing slash, so paths can be appended.
    pub fn base_url(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    /// The size above which `send` uses tus.
    pub fn tus_threshold(&self) -> ByteSize {
        self.tus_threshold.unwrap_or(DEFAULT_TUS_THRESHOLD)
    }

    /// The bytes per tus PATCH.
    pub fn tus_chunk_size(&self) -> ByteSize {
        self.tus_chunk_size.unwrap_or(DEFAULT_TUS_CHUNK_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
default = "sender"

[profile.sender]
url = "http://127.0.0.1:8080/"
client_id = "abc"
org = "974760673"
key_file = "/keys/sender.pem"

[profile.recipient]
url = "https://broker.example"
client_id = "def"
org = "310000000"
key_file = "recipient.pem"
kid = "key-1"
scopes = ["altinn:broker.read"]
tus_threshold = "1GiB"
tus_chunk_size = 8388608
"#;

    #[test]
    fn parses_profiles_and_selects_the_default() {
        let config = ConfigFile::parse(FILE).expect("valid");
        let (name, profile) = config.select(None).expect("selects").expect("some");
        assert_eq!(name, "sender");
        assert_eq!(profile.base_url(), "http://127.0.0.1:8080");
        assert_eq!(profile.kid, None);
        let (_, recipient) = config.select(Some("recipient")).unwrap().unwrap();
        assert_eq!(recipient.kid.as_deref(), Some("key-1"));
        assert_eq!(
            recipient.scopes,
            Some(vec!["altinn:broker.read".to_owned()])
        );
        assert_eq!(recipient.tus_threshold(), ByteSize(1 << 30));
        assert_eq!(recipient.tus_chunk_size(), ByteSize(8 << 20));
        assert_eq!(profile.tus_threshold(), DEFAULT_TUS_THRESHOLD);
        assert_eq!(profile.tus_chunk_size(), DEFAULT_TUS_CHUNK_SIZE);
    }

    #[test]
    fn an_unknown_profile_is_an_error() {
        let config = ConfigFile::parse(FILE).unwrap();
        let error = config.select(Some("nobody")).unwrap_err();
        assert_eq!(error.to_string(), "no profile named `nobody`");
    }

    #[test]
    fn a_default_must_exist() {
        let error = ConfigFile::parse("default = \"x\"\n").unwrap_err();
        assert!(error.contains("`x` is not defined"), "{error}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = "[profile.a]\nurl = \"http://x\"\nclient_id = \"c\"\norg = \"974760673\"\nkey_file = \"k\"\nclientid = \"typo\"\n";
        assert!(ConfigFile::parse(text).is_err());
    }

    #[test]
    fn several_profiles_without_default_need_a_name() {
        let mut config = ConfigFile::parse(FILE).unwrap();
        config.default = None;
        assert!(config.select(None).is_err());
        config.profiles.remove("recipient");
        assert_eq!(config.select(None).unwrap().unwrap().0, "sender");
    }

    #[test]
    fn overrides_win_and_can_stand_alone() {
        let config = ConfigFile::parse(FILE).unwrap();
        let base = config.select(None).unwrap().map(|(_, p)| p);
        let overrides = Overrides {
            url: Some("http://other:1".to_owned()),
            ..Overrides::default()
        };
        let profile = Profile::resolve(base, &overrides).unwrap();
        assert_eq!(profile.url, "http://other:1");
        assert_eq!(profile.client_id, "abc");

        let error = Profile::resolve(None, &overrides).unwrap_err();
        assert!(error.to_string().contains("--client-id"), "{error}");
    }

    #[test]
    fn a_bad_url_or_org_is_refused() {
        let mut overrides = Overrides {
            url: Some("ftp://x".to_owned()),
            client_id: Some("c".to_owned()),
            org: Some("974760673".to_owned()),
            key_file: Some("k".into()),
        };
        assert!(Profile::resolve(None, &overrides).is_err());
        overrides.url = Some("http://x".to_owned());
        overrides.org = Some("12".to_owned());
        assert!(Profile::resolve(None, &overrides).is_err());
    }

    #[test]
    fn saved_files_read_back() {
        let config = ConfigFile::parse(FILE).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/config.toml");
        config.save(&path).unwrap();
        assert_eq!(ConfigFile::load(&path).unwrap(), config);
    }
}
