//! A broker set up for file transfers, the way an Altinn service owner prepares one: the
//! operator registers Digdir as a service owner, Digdir publishes a broker resource with its
//! policy (and optionally an access list), registers with the broker and configures the
//! resource's settings; a sender, two recipients and a stranger each get a client and tokens.
//!
//! Tests then read like the scenario they prove: `scenario.published(b"bytes").await`,
//! `scenario.download(&scenario.recipient.read, &id, Some("bytes=0-0"))`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::broker::{Broker, BrokerOptions, Database};
use crate::reply::Reply;
use crate::{BRREG, DIGDIR, READ, SUBSCRIBE, WRITE};

/// The broker resource every scenario publishes.
pub const RESOURCE: &str = "broker-e2e";
/// The sending organisation (Brønnøysundregistrene).
pub const SENDER: &str = BRREG;
/// The first recipient.
pub const RECIPIENT: &str = "310000000";
/// The second recipient.
pub const OTHER_RECIPIENT: &str = "310000019";
/// An organisation the policy lets read and write the resource, but party to no transfer.
pub const STRANGER: &str = "310000027";
/// The scope of service-owner calls (`/broker/api/v1/serviceowner`, resource settings).
pub const SERVICE_OWNER: &str = "altinn:serviceowner";
/// The default `maxFileTransferSize` of the scenario's resource: 2 GiB.
pub const MAX_SIZE: u64 = 2 << 30;

const RESOURCE_WRITE: &str = "altinn:resourceregistry/resource.write";
const LIST_WRITE: &str = "altinn:resourceregistry/accesslist.write";
const REGISTRY: &str = "/resourceregistry/api/v1/resource";
/// How long a test waits for a transfer to reach a status.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Token lifetime asked of the broker, so long runs never see a token expire.
const TOKEN_LIFETIME_SECONDS: u32 = 3600;

/// `0192:<orgnr>`, the organisation identifier form of the file-transfer API.
pub fn party(org: &str) -> String {
    format!("0192:{org}")
}

/// `urn:altinn:organization:identifier-no:<orgnr>`, the registry's party form.
pub fn urn(org: &str) -> String {
    format!("urn:altinn:organization:identifier-no:{org}")
}

/// Digdir's broker resource `id` as Altinn's registry takes it: every text its rules require
/// (title, description and right description in `en`, `nb` and `nn`), Digdir as the competent
/// authority, type `BrokerService`, access lists `mode` (`Enabled` or `Disabled`).
pub fn service_resource(id: &str, mode: &str) -> Value {
    let texts = json!({"nb": "Formidling", "nn": "Formidling", "en": "Broker"});
    json!({
        "identifier": id,
        "title": texts,
        "description": texts,
        "rightDescription": texts,
        "contactPoints": [{"category": "Support", "email": "support@digdir.no"}],
        "hasCompetentAuthority": {"organization": DIGDIR, "orgcode": "digdir"},
        "resourceType": "BrokerService",
        "accessListMode": mode,
    })
}

/// MD5 of `bytes` as 32 lowercase hex characters, as `checksum` is written.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `len` bytes of a repeatable, non-trivial pattern (so ranges and corruption show).
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

/// An organisation taking part, with one token per scope set.
#[derive(Debug, Clone)]
pub struct Party {
    /// The organisation number.
    pub org: String,
    /// A token with `altinn:broker.read` only.
    pub read: String,
    /// A token with `altinn:broker.write` only.
    pub write: String,
    /// A token with both broker scopes.
    pub both: String,
    /// A token with `altinn:events.subscribe` only.
    pub events: String,
}

/// Who may use the scenario's resource besides what the policy says.
#[derive(Debug, Clone, Default)]
pub enum AccessList {
    /// `accessListMode` Disabled: the policy alone decides.
    #[default]
    Disabled,
    /// `accessListMode` Enabled, with one connected list holding these organisations.
    Members(Vec<String>),
}

/// A running broker with a configured broker resource and its parties.
pub struct Scenario {
    /// The broker.
    pub broker: Broker,
    /// Digdir's platform token: resource registry, access lists, `altinn:serviceowner` and
    /// `altinn:events.subscribe`.
    pub owner: String,
    /// The sender.
    pub sender: Party,
    /// The first recipient.
    pub recipient: Party,
    /// The second recipient.
    pub other_recipient: Party,
    /// A party to nothing.
    pub stranger: Party,
}

impl std::ops::Deref for Scenario {
    type Target = Broker;

    fn deref(&self) -> &Broker {
        &self.broker
    }
}

impl Scenario {
    /// Options every scenario's broker starts with: long-lived tokens on `database`, and
    /// RabbitMQ (a fresh exchange) when on PostgreSQL and `BROKER_TEST_AMQP_URL` is set.
    pub fn options(database: Database) -> BrokerOptions {
        let on_postgres = matches!(database, Database::Postgres(_));
        let mut options = BrokerOptions::new()
            .database(database)
            .env("BROKER_TOKEN_LIFETIME_SECONDS", TOKEN_LIFETIME_SECONDS)
            // Test webhooks listen on loopback.
            .env("BROKER_EVENTS_ALLOW_PRIVATE_ENDPOINTS", "true");
        if let Ok(url) = std::env::var(crate::amqp::SERVER_VAR)
            && on_postgres
            && !url.is_empty()
        {
            options = options.env("BROKER_AMQP_URL", url).env(
                "BROKER_AMQP_EXCHANGE",
                format!("broker-test-{}", uuid::Uuid::new_v4().simple()),
            );
        }
        options
    }

    /// A broker on `database` with the resource set up, access lists disabled.
    pub async fn start(database: Database) -> Self {
        Self::start_with(Self::options(database), AccessList::Disabled).await
    }

    /// A broker started with `options`, the resource set up with `access`.
    pub async fn start_with(options: BrokerOptions, access: AccessList) -> Self {
        Self::on(Broker::start(options).await, access).await
    }

    /// The scenario on a running `broker`, the resource set up with `access`.
    pub async fn on(broker: Broker, access: AccessList) -> Self {
        register_service_owner(&broker).await;
        // Service owners call the broker with a platform token: the exchange names the
        // owner's org code in it (`urn:altinn:org`), which the broker's owner calls need.
        let owner_scopes = [RESOURCE_WRITE, LIST_WRITE, SERVICE_OWNER, SUBSCRIBE];
        let maskinporten = broker
            .register_client(DIGDIR, &owner_scopes)
            .await
            .token(&owner_scopes)
            .await;
        let owner = broker.platform_token(&maskinporten).await;
        let (sender, recipient, other_recipient, stranger) = tokio::join!(
            Party::register(&broker, SENDER),
            Party::register(&broker, RECIPIENT),
            Party::register(&broker, OTHER_RECIPIENT),
            Party::register(&broker, STRANGER),
        );
        let scenario = Self {
            broker,
            owner,
            sender,
            recipient,
            other_recipient,
            stranger,
        };
        scenario.publish_resource(RESOURCE, &access).await;
        scenario
            .call(
                &scenario.owner,
                Method::POST,
                "/broker/api/v1/serviceowner",
                Some(json!({"name": "Digitaliseringsdirektoratet"})),
            )
            .await
            .expect_status(200);
        scenario
            .put_settings(RESOURCE, json!({"maxFileTransferSize": MAX_SIZE}))
            .await
            .expect_status(204);
        scenario
    }

    /// Publishes the broker resource `id` in the registry: any organisation may read and write
    /// it, subject to `access`. Broker settings are left to the caller
    /// ([`Self::put_settings`]).
    pub async fn publish_resource(&self, id: &str, access: &AccessList) {
        let mode = match access {
            AccessList::Disabled => "Disabled",
            AccessList::Members(_) => "Enabled",
        };
        self.call(
            &self.owner,
            Method::POST,
            REGISTRY,
            Some(service_resource(id, mode)),
        )
        .await
        .expect_status(201);
        let policy = json!({"rules": [
            {"subjects": ["any-organization"], "actions": ["read", "write", "subscribe"]},
        ]});
        self.call(
            &self.owner,
            Method::PUT,
            &format!("{REGISTRY}/{id}/policy"),
            Some(policy),
        )
        .await
        .expect_status(200);
        if let AccessList::Members(members) = access {
            let list = format!("/resourceregistry/api/v1/access-lists/digdir/{id}-parties");
            self.call(
                &self.owner,
                Method::PUT,
                &list,
                Some(json!({"name": format!("Parties of {id}")})),
            )
            .await
            .ok_json();
            let members: Vec<String> = members.iter().map(|org| urn(org)).collect();
            self.call(
                &self.owner,
                Method::POST,
                &format!("{list}/members"),
                Some(json!({"data": members})),
            )
            .await
            .expect_status(200);
            self.call(
                &self.owner,
                Method::PUT,
                &format!("{list}/resource-connections/{id}"),
                Some(json!({"actionFilters": []})),
            )
            .await
            .expect_status(200);
        }
    }

    /// `PUT /broker/api/v1/resource/{id}` with the owner's token.
    pub async fn put_settings(&self, id: &str, settings: Value) -> Reply {
        self.call(
            &self.owner,
            Method::PUT,
            &format!("/broker/api/v1/resource/{id}"),
            Some(settings),
        )
        .await
    }

    /// A JSON call with a bearer token.
    pub async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.request(method, path).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    /// A valid `FileTransferInitialize` from the sender to the first recipient.
    pub fn initialize_body(&self) -> Value {
        json!({
            "resourceId": RESOURCE,
            "fileName": "report.pdf",
            "sendersFileTransferReference": "ref-1",
            "sender": party(SENDER),
            "recipients": [party(RECIPIENT)],
            "propertyList": {"case": "42"},
        })
    }

    /// `POST /broker/api/v1/filetransfer` with `body`.
    pub async fn initialize(&self, token: &str, body: Value) -> Reply {
        self.call(
            token,
            Method::POST,
            "/broker/api/v1/filetransfer",
            Some(body),
        )
        .await
    }

    /// Initializes `body` as the sender; panics unless that succeeds; returns the id.
    pub async fn initialized(&self, body: Value) -> String {
        let created = self.initialize(&self.sender.write, body).await.ok_json();
        created["fileTransferId"]
            .as_str()
            .unwrap_or_else(|| panic!("no fileTransferId in {created}"))
            .to_owned()
    }

    /// `POST /broker/api/v1/filetransfer/{id}/upload` with `bytes` as `application/octet-stream`.
    pub async fn upload(&self, token: &str, id: &str, bytes: impl Into<reqwest::Body>) -> Reply {
        let request = self
            .request(
                Method::POST,
                &format!("/broker/api/v1/filetransfer/{id}/upload"),
            )
            .bearer_auth(token)
            .header("content-type", "application/octet-stream")
            .body(bytes);
        self.send(request).await
    }

    /// `POST /broker/api/v1/filetransfer/upload`: multipart/form-data with `metadata` (the
    /// initialize fields) as the JSON part `Metadata` and `bytes` as the file part `FileTransfer`.
    pub async fn initialize_and_upload(
        &self,
        token: &str,
        metadata: &Value,
        bytes: &[u8],
    ) -> Reply {
        self.initialize_and_upload_form(token, &[("Metadata", metadata.to_string())], bytes)
            .await
    }

    /// `POST /broker/api/v1/filetransfer/upload` with the text parts `fields` (e.g. ASP.NET
    /// form keys like `Metadata.ResourceId`) and `bytes` as the file part `FileTransfer`.
    pub async fn initialize_and_upload_form(
        &self,
        token: &str,
        fields: &[(&str, String)],
        bytes: &[u8],
    ) -> Reply {
        self.send_form(token, fields, bytes, FilePart::Last).await
    }

    /// [`Scenario::initialize_and_upload_form`] with the file part first, before `fields`, as
    /// some HTTP clients order a form.
    pub async fn initialize_and_upload_file_first(
        &self,
        token: &str,
        fields: &[(&str, String)],
        bytes: &[u8],
    ) -> Reply {
        self.send_form(token, fields, bytes, FilePart::First).await
    }

    async fn send_form(
        &self,
        token: &str,
        fields: &[(&str, String)],
        bytes: &[u8],
        file: FilePart,
    ) -> Reply {
        let boundary = format!("broker-test-{}", uuid::Uuid::new_v4().simple());
        let mut text = Vec::new();
        for (name, value) in fields {
            text.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        let mut file_part = file_part_head(&boundary).into_bytes();
        file_part.extend_from_slice(bytes);
        file_part.extend_from_slice(b"\r\n");
        let mut body = match file {
            FilePart::First => [file_part, text].concat(),
            FilePart::Last => [text, file_part].concat(),
        };
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let request = self
            .request(Method::POST, "/broker/api/v1/filetransfer/upload")
            .bearer_auth(token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        self.send(request).await
    }

    /// Initializes `body`, uploads `bytes` as the sender and waits until Published.
    pub async fn published_with(&self, body: Value, bytes: &[u8]) -> String {
        let id = self.initialized(body).await;
        self.upload(&self.sender.write, &id, bytes.to_vec())
            .await
            .ok_json();
        self.wait_for_status(&self.sender.write, &id, "Published")
            .await;
        id
    }

    /// A Published transfer of `bytes` from the sender to the first recipient.
    pub async fn published(&self, bytes: &[u8]) -> String {
        self.published_with(self.initialize_body(), bytes).await
    }

    /// `GET /broker/api/v1/filetransfer/{id}`.
    pub async fn overview(&self, token: &str, id: &str) -> Reply {
        self.get_as(token, &format!("/broker/api/v1/filetransfer/{id}"))
            .await
    }

    /// `GET /broker/api/v1/filetransfer/{id}/details`.
    pub async fn details(&self, token: &str, id: &str) -> Reply {
        self.get_as(token, &format!("/broker/api/v1/filetransfer/{id}/details"))
            .await
    }

    /// `GET /broker/api/v1/filetransfer?<query>` (the query without `?`).
    pub async fn search(&self, token: &str, query: &str) -> Reply {
        self.get_as(token, &format!("/broker/api/v1/filetransfer?{query}"))
            .await
    }

    /// `GET /broker/api/v1/filetransfer/{id}/download`, with a `Range` header when given.
    pub async fn download(&self, token: &str, id: &str, range: Option<&str>) -> Reply {
        let mut request = self
            .request(
                Method::GET,
                &format!("/broker/api/v1/filetransfer/{id}/download"),
            )
            .bearer_auth(token);
        if let Some(range) = range {
            request = request.header("range", range);
        }
        self.send(request).await
    }

    /// `POST /broker/api/v1/filetransfer/{id}/confirmdownload`.
    pub async fn confirm(&self, token: &str, id: &str) -> Reply {
        let path = format!("/broker/api/v1/filetransfer/{id}/confirmdownload");
        self.send(self.request(Method::POST, &path).bearer_auth(token))
            .await
    }

    /// Polls the overview until `fileTransferStatus` is `status`; panics after a minute or when
    /// the transfer settles elsewhere (Failed, Cancelled); returns the overview.
    pub async fn wait_for_status(&self, token: &str, id: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            let overview = self.overview(token, id).await.ok_json();
            let now = overview["fileTransferStatus"].as_str().unwrap_or_default();
            if now == status {
                return overview;
            }
            assert!(
                !matches!(now, "Failed" | "Cancelled") || status == "Failed",
                "transfer {id} became {now} while waiting for {status}: {overview}"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "transfer {id} still {now} after {SETTLE_TIMEOUT:?}, waiting for {status}: {overview}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every regular file under the data directory's `files/` (the stored bytes).
    pub fn stored_files(&self) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        let mut pending = vec![self.data_dir().join("files")];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    found.push(path);
                }
            }
        }
        found
    }
}

/// Where a form puts its file part.
#[derive(Debug, Clone, Copy)]
enum FilePart {
    /// Before the metadata parts.
    First,
    /// After them.
    Last,
}

/// The head of a form's `FileTransfer` part, after which its bytes follow.
pub fn file_part_head(boundary: &str) -> String {
    format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"FileTransfer\"; \
         filename=\"report.pdf\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
}

/// The operator registers Digdir as a service owner in the access registry.
async fn register_service_owner(broker: &Broker) {
    let owner = json!({"orgNumber": DIGDIR, "orgCode": "digdir", "name": "Digdir"});
    broker
        .admin_post("/admin/v1/service-owners", &owner)
        .await
        .expect_status(201);
}

impl Party {
    /// Registers a client of `org` with both broker scopes and takes its three tokens.
    pub async fn register(broker: &Broker, org: &str) -> Self {
        let client = broker.register_client(org, &[READ, WRITE, SUBSCRIBE]).await;
        Self {
            org: org.to_owned(),
            read: client.token(&[READ]).await,
            write: client.token(&[WRITE]).await,
            both: client.token(&[READ, WRITE]).await,
            events: client.token(&[SUBSCRIBE]).await,
        }
    }
}
