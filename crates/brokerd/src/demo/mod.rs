//! `brokerd --demo`: seeds the embedded broker it runs with everything a first file transfer
//! needs, and says how to make one with the `broker` command line.
//!
//! Once the services listen it acts as the operator and a service owner would, over the
//! gateway's HTTP API (see [`gateway`]): registers Digdir as a service owner, registers clients
//! for the owner, a sender and a recipient with their public keys, creates a broker resource
//! whose access lists let the sender write and the recipient read, and configures it for file
//! transfers. Under `<data dir>/demo/` it keeps the clients' keys (0600), a `broker` CLI
//! configuration with the profiles `sender` and `recipient`, and a small file to send.
//!
//! Every step creates what is missing and accepts what exists, so a second `--demo` on the same
//! data directory reuses the first one's clients, keys and resource.

mod gateway;
mod keys;

use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use self::gateway::Gateway;
use self::keys::ClientKey;
use crate::service::Service;
use crate::start::Running;

/// The broker resource the demo's transfers use.
pub const RESOURCE: &str = "demo-broker";
/// The demo's directory under the data directory.
const DIR: &str = "demo";
/// The `broker` CLI configuration the printed commands use.
const CONFIG_FILE: &str = "broker.toml";
/// The file the printed commands send.
const SAMPLE_FILE: &str = "hello.txt";
/// How the line before the commands begins; the demo's test looks for it.
const COMMANDS_HEADER: &str = "demo: send it and receive it";
/// Where the printed commands save the received file.
const RECEIVED_FILE: &str = "received.txt";
const SAMPLE: &str = "Hello from Broker! This file travelled from the sender to the recipient.\n";

/// The service owner: Digdir, as Altinn's broker resources are owned.
const OWNER: Client = Client {
    profile: "owner",
    org: "991825827",
    scopes: &[
        "altinn:resourceregistry/resource.write",
        "altinn:resourceregistry/accesslist.write",
        "altinn:serviceowner",
    ],
};
const OWNER_CODE: &str = "digdir";
/// The sending organisation.
const SENDER: Client = Client {
    profile: "sender",
    org: "974760673",
    scopes: PARTY_SCOPES,
};
/// The receiving organisation.
const RECIPIENT: Client = Client {
    profile: "recipient",
    org: "310000000",
    scopes: PARTY_SCOPES,
};
const PARTY_SCOPES: &[&str] = &[
    "altinn:broker.write",
    "altinn:broker.read",
    "altinn:events.subscribe",
];
/// The largest file the demo resource takes: 1 GiB.
const MAX_FILE_TRANSFER_SIZE: u64 = 1 << 30;

/// Why the demo could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The broker seeded runs no gateway to call.
    #[error("the demo needs the gateway")]
    NoGateway,
    /// A file under the demo directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A client key that cannot be made, read or used.
    #[error("demo key: {0}")]
    Key(String),
    /// The broker could not be reached.
    #[error("{what}: {source}")]
    Http {
        /// The step.
        what: String,
        /// What went wrong.
        source: reqwest::Error,
    },
    /// The broker refused a step.
    #[error("{what}: the broker answered {status}: {body}")]
    Refused {
        /// The step.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The answer (a problem document).
        body: String,
    },
    /// The broker's answer lacked what the step needs.
    #[error("{what}: unexpected answer: {body}")]
    Unexpected {
        /// The step.
        what: String,
        /// The answer.
        body: String,
    },
}

/// One organisation's client: its profile (and key file) name, organisation and scopes.
struct Client {
    profile: &'static str,
    org: &'static str,
    scopes: &'static [&'static str],
}

impl Client {
    fn client_id(&self) -> String {
        format!("demo-{}", self.profile)
    }

    fn key_file(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.pem", self.profile))
    }
}

/// What the demo set up: where its files are.
#[derive(Debug, Clone)]
pub struct Demo {
    dir: PathBuf,
}

impl Demo {
    /// The `broker` CLI configuration with the `sender` and `recipient` profiles.
    pub fn config_file(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// The file to send.
    pub fn sample_file(&self) -> PathBuf {
        self.dir.join(SAMPLE_FILE)
    }

    /// What was created and the `broker` commands that send and receive a first file, one per
    /// indented line, ready to paste into a shell.
    pub fn instructions(&self) -> String {
        let dir = self.dir.display();
        let commands = [
            format!("export BROKER_CLI_CONFIG={}", quoted(&self.config_file())),
            format!(
                "ID=$(broker --profile sender send --resource {RESOURCE} --recipient 0192:{} --wait {})",
                RECIPIENT.org,
                quoted(&self.sample_file())
            ),
            format!("broker --profile recipient inbox --resource {RESOURCE}"),
            format!(
                "broker --profile recipient download \"$ID\" -o {} --force",
                quoted(&self.dir.join(RECEIVED_FILE))
            ),
            "broker --profile recipient confirm \"$ID\"".to_owned(),
            "broker --profile recipient show \"$ID\"".to_owned(),
        ];
        let mut text = format!(
            "demo: set up in {dir}:\n\
             \x20 service owner {owner} ({OWNER_CODE}) with the broker resource {RESOURCE}, whose access lists\n\
             \x20   let the sender {sender} write and the recipient {recipient} read\n\
             \x20 clients demo-owner, demo-sender and demo-recipient, keys owner.pem, sender.pem, recipient.pem\n\
             \x20 {CONFIG_FILE}: `broker` profiles `sender` and `recipient`; {SAMPLE_FILE}: a file to send\n\
             {COMMANDS_HEADER} with the `broker` command line (send prints the transfer id; ID keeps it):\n\n",
            owner = OWNER.org,
            sender = SENDER.org,
            recipient = RECIPIENT.org,
        );
        for command in commands {
            text.push_str("    ");
            text.push_str(&command);
            text.push('\n');
        }
        text
    }
}

/// `path` in double quotes for a POSIX shell, so a directory with spaces pastes as one word.
fn quoted(path: &Path) -> String {
    let mut word = String::from('"');
    for c in path.display().to_string().chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            word.push('\\');
        }
        word.push(c);
    }
    word.push('"');
    word
}

/// Seeds the `running` broker (which must run the gateway), keeping the demo's files under
/// `data_dir/demo`.
pub async fn seed(running: &Running, data_dir: &Path) -> Result<Demo, DemoError> {
    let gateway = running.addr(Service::Gateway).ok_or(DemoError::NoGateway)?;
    let dir = data_dir.join(DIR);
    std::fs::create_dir_all(&dir).map_err(|source| DemoError::Io {
        path: dir.clone(),
        source,
    })?;
    // Absolute paths in the configuration and the commands, so they work from any directory.
    let dir = std::fs::canonicalize(&dir).map_err(|source| DemoError::Io {
        path: dir.clone(),
        source,
    })?;
    let gateway = Gateway::new(format!("http://{gateway}"))?;
    let admin = running.admin_token().expose();

    gateway
        .call(
            "registering the service owner",
            Method::POST,
            "/admin/v1/service-owners",
            admin,
            Some(&json!({"orgNumber": OWNER.org, "orgCode": OWNER_CODE, "name": "Digdir"})),
            &[StatusCode::CREATED, StatusCode::CONFLICT],
        )
        .await?;
    let owner_key = register(&gateway, admin, &OWNER, &dir).await?;
    for party in [&SENDER, &RECIPIENT] {
        register(&gateway, admin, party, &dir).await?;
    }

    let token = gateway
        .token(&OWNER.client_id(), &owner_key, OWNER.scopes)
        .await?;
    let owner = gateway.platform_token(&token).await?;
    publish_resource(&gateway, &owner).await?;

    write_config(&dir, running.public_url())?;
    let sample = dir.join(SAMPLE_FILE);
    if !sample.exists() {
        std::fs::write(&sample, SAMPLE).map_err(|source| DemoError::Io {
            path: sample.clone(),
            source,
        })?;
    }
    Ok(Demo { dir })
}

/// Registers `client` with its key (made on first use), or adds the key to the client a
/// previous demo registered when the key file was made anew since.
async fn register(
    gateway: &Gateway,
    admin: &str,
    client: &Client,
    dir: &Path,
) -> Result<ClientKey, DemoError> {
    let key = ClientKey::load_or_create(&client.key_file(dir))?;
    let client_id = client.client_id();
    let body = json!({
        "clientId": client_id,
        "orgNumber": client.org,
        "scopes": client.scopes,
        "jwks": {"keys": [key.jwk()]},
        "name": format!("Broker demo {}", client.profile),
    });
    let what = format!("registering the client {client_id}");
    let (status, _) = gateway
        .call(
            &what,
            Method::POST,
            "/admin/v1/clients",
            admin,
            Some(&body),
            &[StatusCode::CREATED, StatusCode::CONFLICT],
        )
        .await?;
    if status == StatusCode::CONFLICT {
        let path = format!("/admin/v1/clients/{client_id}");
        let (_, registered) = gateway
            .call(&what, Method::GET, &path, admin, None, &[StatusCode::OK])
            .await?;
        let registered: Value =
            serde_json::from_str(&registered).map_err(|_| DemoError::Unexpected {
                what: what.clone(),
                body: registered.clone(),
            })?;
        let has_key = registered["jwks"]["keys"]
            .as_array()
            .is_some_and(|keys| keys.iter().any(|jwk| jwk["kid"] == key.kid()));
        if !has_key {
            let path = format!("{path}/keys");
            gateway
                .call(
                    &what,
                    Method::POST,
                    &path,
                    admin,
                    Some(&key.jwk()),
                    &[StatusCode::OK],
                )
                .await?;
        }
    }
    Ok(key)
}

/// Creates the broker resource with its access lists and policy, registers the owner with the
/// broker and configures the resource for file transfers; `owner` is the owner's platform token.
async fn publish_resource(gateway: &Gateway, owner: &str) -> Result<(), DemoError> {
    const REGISTRY: &str = "/resourceregistry/api/v1/resource";
    const ACCEPTED: &[StatusCode] = &[StatusCode::OK, StatusCode::CREATED, StatusCode::NO_CONTENT];
    // Every text Altinn's registry requires, and the owner as the competent authority.
    let texts = json!({"nb": "Demo", "nn": "Demo", "en": "Broker demo"});
    let resource = json!({
        "identifier": RESOURCE,
        "title": texts,
        "description": texts,
        "rightDescription": texts,
        "hasCompetentAuthority": {"organization": OWNER.org, "orgcode": OWNER_CODE},
        "resourceType": "BrokerService",
        "accessListMode": "Enabled",
    });
    gateway
        .call(
            "creating the resource",
            Method::POST,
            REGISTRY,
            owner,
            Some(&resource),
            &[StatusCode::CREATED, StatusCode::CONFLICT],
        )
        .await?;

    let mut rules = Vec::new();
    for (list, party, actions) in [
        ("demo-senders", &SENDER, json!(["write"])),
        ("demo-recipients", &RECIPIENT, json!(["read", "subscribe"])),
    ] {
        let path = format!("/resourceregistry/api/v1/access-lists/{OWNER_CODE}/{list}");
        let what = format!("setting up the access list {list}");
        let members =
            json!({"data": [format!("urn:altinn:organization:identifier-no:{}", party.org)]});
        let connection = json!({"actionFilters": actions});
        gateway
            .call(
                &what,
                Method::PUT,
                &path,
                owner,
                Some(&json!({"name": list})),
                ACCEPTED,
            )
            .await?;
        // Replacing (not adding) members keeps a second demo from failing on existing ones.
        let members_path = format!("{path}/members");
        gateway
            .call(
                &what,
                Method::PUT,
                &members_path,
                owner,
                Some(&members),
                ACCEPTED,
            )
            .await?;
        let connect = format!("{path}/resource-connections/{RESOURCE}");
        gateway
            .call(
                &what,
                Method::PUT,
                &connect,
                owner,
                Some(&connection),
                ACCEPTED,
            )
            .await?;
        rules.push(json!({
            "subjects": [format!("urn:altinn:access-list:{OWNER_CODE}:{list}")],
            "actions": actions,
        }));
    }
    let policy: Value = json!({ "rules": rules });
    gateway
        .call(
            "setting the resource's policy",
            Method::PUT,
            &format!("{REGISTRY}/{RESOURCE}/policy"),
            owner,
            Some(&policy),
            ACCEPTED,
        )
        .await?;

    gateway
        .call(
            "registering the service owner with the broker",
            Method::POST,
            "/broker/api/v1/serviceowner",
            owner,
            Some(&json!({"name": "Digdir"})),
            &[StatusCode::OK, StatusCode::CREATED, StatusCode::CONFLICT],
        )
        .await?;
    gateway
        .call(
            "configuring the resource for file transfers",
            Method::PUT,
            &format!("/broker/api/v1/resource/{RESOURCE}"),
            owner,
            Some(&json!({"maxFileTransferSize": MAX_FILE_TRANSFER_SIZE})),
            ACCEPTED,
        )
        .await?;
    Ok(())
}

/// Writes the `broker` CLI configuration: the `sender` (default) and `recipient` profiles at
/// `url`. Rewritten on every start, as the gateway's address may have changed.
fn write_config(dir: &Path, url: &str) -> Result<(), DemoError> {
    let mut profiles = toml::Table::new();
    for party in [&SENDER, &RECIPIENT] {
        let mut profile = toml::Table::new();
        profile.insert("url".into(), url.into());
        profile.insert("client_id".into(), party.client_id().into());
        profile.insert("org".into(), party.org.into());
        let key_file = party.key_file(dir).display().to_string();
        profile.insert("key_file".into(), key_file.into());
        profiles.insert(party.profile.into(), profile.into());
    }
    let mut config = toml::Table::new();
    config.insert("default".into(), SENDER.profile.into());
    config.insert("profile".into(), profiles.into());
    let path = dir.join(CONFIG_FILE);
    std::fs::write(&path, config.to_string()).map_err(|source| DemoError::Io { path, source })
}
