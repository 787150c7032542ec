//! What the file-transfer gRPC tests share: a real access registry and a real file-transfer
//! service on loopback ports, tokens signed with a test key both trust, and a resource that
//! Digdir owns, configured for the broker, which any organisation may send and receive on.

#![allow(dead_code)] // Each test binary uses its own subset of these helpers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use broker_access::service::RESOURCE_WRITE;
use broker_common::admin::AdminToken;
use broker_common::auth::{JwkSet, JwksSource, TokenVerifier};
use broker_common::config::CommonConfig;
use broker_common::grpc::Channel;
use broker_common::grpc::with_bearer;
use broker_common::{Problem, Shutdown};
use broker_filetransfer::FileTransferConfig;
use broker_proto::access as access_pb;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::filetransfer as pb;
use broker_proto::filetransfer::file_transfer_service_client::FileTransferServiceClient;
use broker_proto::filetransfer::{download_message, upload_message};
use broker_tests::{BRREG, ClientKeys, DIGDIR};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::json;
use tonic::{Request, Status};

pub const ADMIN: &str = "test-admin-token";
pub const RESOURCE: &str = "broker-resource";
pub const SENDER: &str = DIGDIR;
pub const RECIPIENT: &str = BRREG;
/// Neither sender, recipient nor service owner.
pub const STRANGER: &str = "910753614";
/// Bytes per upload message, as the gateway sends them.
pub const CHUNK: usize = 512 * 1024;

/// The token service's keys, as a test key source: one RSA key the tests sign with.
pub struct TestKeys(pub ClientKeys);

#[async_trait::async_trait]
impl JwksSource for TestKeys {
    async fn fetch(&self) -> Result<JwkSet, Problem> {
        Ok(serde_json::from_value(self.0.jwks()).expect("a JWK set"))
    }
}

/// Clients of both services and the key their tokens are signed with; cheap to clone.
#[derive(Clone)]
pub struct Api {
    pub access: AccessRegistryClient<Channel>,
    pub files: FileTransferServiceClient<Channel>,
    keys: ClientKeys,
    issuer: String,
    /// Where the file-transfer service listens.
    pub files_addr: std::net::SocketAddr,
}

/// A running access registry and file-transfer service, stopped when dropped.
pub struct Env {
    api: Api,
    shutdown: Shutdown,
    pub dir: PathBuf,
}

impl std::ops::Deref for Env {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl std::ops::DerefMut for Env {
    fn deref_mut(&mut self) -> &mut Api {
        &mut self.api
    }
}

impl Env {
    /// Both services on `database_url` (or SQLite in a fresh directory), the resource
    /// configured with `max_size` (the service's default limit when `None`).
    pub async fn start(database_url: Option<&str>, max_size: Option<u64>) -> Self {
        Self::start_with(database_url, max_size, FileTransferConfig::default()).await
    }

    /// [`Env::start`] with the file-transfer service configured by `config`.
    pub async fn start_with(
        database_url: Option<&str>,
        max_size: Option<u64>,
        config: FileTransferConfig,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("broker-ft-grpc-{}", uuid::Uuid::new_v4()));
        let common = CommonConfig {
            data_dir: dir.clone(),
            database_url: database_url.map(str::to_owned),
            ..CommonConfig::default()
        };
        let keys = ClientKeys::generate();
        let verifier = Arc::new(TokenVerifier::new(
            common.issuer(),
            common.platform_issuer(),
            Arc::new(TestKeys(keys.clone())),
        ));
        let bus: Arc<dyn broker_bus::Bus> = Arc::new(broker_bus::InProcessBus::new());
        let shutdown = Shutdown::new();

        let access = broker_access::build(
            &common,
            AdminToken::new(ADMIN),
            verifier.clone(),
            bus.clone(),
        )
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let access_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(access.serve(listener, shutdown.clone()));
        let access_channel = broker_common::grpc::channel(&access_url).unwrap();

        let files = broker_filetransfer::build(
            &common,
            &config,
            verifier,
            bus,
            AccessRegistryClient::new(access_channel.clone()),
        )
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let files_addr = listener.local_addr().unwrap();
        let files_url = format!("http://{files_addr}");
        tokio::spawn(files.serve(listener, shutdown.clone()));

        let mut env = Self {
            api: Api {
                access: AccessRegistryClient::new(access_channel),
                files: FileTransferServiceClient::new(
                    broker_common::grpc::channel(&files_url).unwrap(),
                ),
                keys,
                issuer: common.issuer(),
                files_addr,
            },
            shutdown,
            dir,
        };
        env.given_configured_resource(max_size).await;
        env
    }

    /// Another handle on the same services, for calls made side by side.
    pub fn clone_clients(&self) -> Api {
        self.api.clone()
    }

    /// A handle whose file-transfer calls go through a proxy of one connection; aborting the
    /// returned task cuts that connection as a client that vanishes would.
    pub async fn through_cuttable_connection(&self) -> (Api, tokio::task::JoinHandle<()>) {
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", proxy.local_addr().unwrap());
        let target = self.files_addr;
        let task = tokio::spawn(async move {
            let (mut client, _) = proxy.accept().await.unwrap();
            let mut server = tokio::net::TcpStream::connect(target).await.unwrap();
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
        let mut api = self.api.clone();
        api.files = FileTransferServiceClient::new(broker_common::grpc::channel(&url).unwrap());
        (api, task)
    }

    /// Files (not directories) in the service's storage directory.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        files_under(&self.dir.join("files"))
    }
}

impl Api {
    /// A token of `org` with every broker scope; `org_code` makes it a service owner's.
    pub fn token(&self, org: &str, org_code: Option<&str>) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "iss": self.issuer,
            "consumer": {"authority": "iso6523-actorid-upis", "ID": format!("0192:{org}")},
            "scope": format!("altinn:broker.write altinn:broker.read altinn:serviceowner {RESOURCE_WRITE}"),
            "client_id": format!("client-{org}"),
            "iat": now,
            "exp": now + 600,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(code) = org_code {
            claims["urn:altinn:org"] = json!(code);
        }
        self.keys.sign(&claims)
    }

    /// `message` sent as `org`.
    pub fn as_org<T>(&self, org: &str, message: T) -> Request<T> {
        with_bearer(Request::new(message), &self.token(org, None))
    }

    /// `message` sent as Digdir, the resource's service owner.
    pub fn as_owner<T>(&self, message: T) -> Request<T> {
        with_bearer(Request::new(message), &self.token(DIGDIR, Some("digdir")))
    }

    /// Digdir registered in the access registry and with the broker, owning [`RESOURCE`],
    /// which any organisation may send (`write`) and receive (`read`) on.
    async fn given_configured_resource(&mut self, max_size: Option<u64>) {
        let owner = access_pb::CreateServiceOwnerRequest {
            owner: Some(access_pb::ServiceOwner {
                org_number: DIGDIR.into(),
                org_code: "digdir".into(),
                name: "Digitaliseringsdirektoratet".into(),
            }),
        };
        self.access
            .create_service_owner(with_bearer(Request::new(owner), ADMIN))
            .await
            .unwrap();
        let texts = serde_json::json!({"nb": "Formidling", "nn": "Formidling", "en": "Broker"});
        let resource = access_pb::UpsertResourceRequest {
            document: serde_json::json!({
                "identifier": RESOURCE,
                "title": texts,
                "description": texts,
                "delegable": false,
                "hasCompetentAuthority": {"organization": DIGDIR},
                "resourceType": "BrokerService",
                "accessListMode": "Disabled",
            })
            .to_string(),
            ..access_pb::UpsertResourceRequest::default()
        };
        self.access
            .create_resource(self.as_org(DIGDIR, resource))
            .await
            .unwrap();
        let policy = access_pb::PutPolicyRequest {
            policy: Some(access_pb::Policy {
                resource: RESOURCE.into(),
                rules: vec![access_pb::PolicyRule {
                    subjects: vec!["any-organization".into()],
                    actions: vec!["read".into(), "write".into()],
                }],
                ..access_pb::Policy::default()
            }),
            ..access_pb::PutPolicyRequest::default()
        };
        self.access
            .put_policy(self.as_org(DIGDIR, policy))
            .await
            .unwrap();
        let register = pb::RegisterServiceOwnerRequest {
            name: "Digitaliseringsdirektoratet".into(),
            ..pb::RegisterServiceOwnerRequest::default()
        };
        self.files
            .register_service_owner(self.as_owner(register))
            .await
            .unwrap();
        let settings = pb::PutResourceSettingsRequest {
            settings: Some(pb::ResourceSettings {
                resource_id: RESOURCE.into(),
                max_file_transfer_size: max_size,
                ..pb::ResourceSettings::default()
            }),
            present_fields: max_size
                .map(|_| vec!["maxFileTransferSize".to_owned()])
                .unwrap_or_default(),
            ..pb::PutResourceSettingsRequest::default()
        };
        self.files
            .put_resource_settings(self.as_owner(settings))
            .await
            .unwrap();
    }

    /// A new transfer from [`SENDER`] to [`RECIPIENT`], expecting `checksum` when given.
    pub async fn initialize(&mut self, checksum: Option<&str>) -> String {
        let request = pb::InitializeRequest {
            checksum: Some(checksum.unwrap_or_default().to_owned()),
            ..self.initialize_request()
        };
        self.files
            .initialize(self.as_org(SENDER, request))
            .await
            .unwrap()
            .into_inner()
            .file_transfer_id
    }

    /// Uploads `chunks` to transfer `id` as the sender.
    pub async fn upload(
        &mut self,
        id: &str,
        declared_length: Option<u64>,
        chunks: impl Stream<Item = Bytes> + Send + 'static,
    ) -> Result<String, Status> {
        let request = self.as_org(SENDER, upload_stream(id, declared_length, chunks));
        Ok(self
            .files
            .upload(request)
            .await?
            .into_inner()
            .file_transfer_id)
    }

    /// Sends a spooled upload of `chunks` followed by `after` as the sender.
    pub async fn upload_spooled(
        &mut self,
        chunks: impl Stream<Item = Bytes> + Send + 'static,
        after: Vec<upload_message::Message>,
    ) -> Result<String, Status> {
        let request = self.as_org(SENDER, spool_stream(chunks, after));
        Ok(self
            .files
            .upload(request)
            .await?
            .into_inner()
            .file_transfer_id)
    }

    /// What [`Env::initialize`] sends: a transfer from [`SENDER`] to [`RECIPIENT`].
    pub fn initialize_request(&self) -> pb::InitializeRequest {
        pb::InitializeRequest {
            resource_id: Some(RESOURCE.into()),
            file_name: Some("report.bin".into()),
            senders_file_transfer_reference: Some("ref".into()),
            sender: Some(format!("0192:{SENDER}")),
            recipients: vec![format!("0192:{RECIPIENT}")],
            ..pb::InitializeRequest::default()
        }
    }

    /// A request about transfer `id` as `org`.
    pub fn about(&self, org: &str, id: &str) -> Request<pb::GetFileTransferRequest> {
        let request = pb::GetFileTransferRequest {
            file_transfer_id: id.into(),
            ..pb::GetFileTransferRequest::default()
        };
        self.as_org(org, request)
    }

    /// The transfer as `org` sees it.
    pub async fn overview_as(
        &mut self,
        org: &str,
        id: &str,
    ) -> Result<pb::FileTransferOverview, Status> {
        let request = self.about(org, id);
        Ok(self.files.get_overview(request).await?.into_inner())
    }

    /// The transfer as its sender sees it.
    pub async fn overview(&mut self, id: &str) -> pb::FileTransferOverview {
        self.overview_as(SENDER, id).await.unwrap()
    }

    /// The transfer with its history as `org` sees it.
    pub async fn details(
        &mut self,
        org: &str,
        id: &str,
    ) -> Result<pb::FileTransferStatusDetails, Status> {
        let request = self.about(org, id);
        Ok(self.files.get_details(request).await?.into_inner())
    }

    /// Confirms the download as `org`.
    pub async fn confirm(&mut self, org: &str, id: &str) -> Result<(), Status> {
        let request = self.about(org, id);
        self.files.confirm_download(request).await?;
        Ok(())
    }

    /// Waits until the transfer reaches `status`.
    pub async fn wait_for_status(&mut self, id: &str, status: &str) -> pb::FileTransferOverview {
        for _ in 0..200 {
            let overview = self.overview(id).await;
            if overview.file_transfer_status == status {
                return overview;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("transfer {id} never reached {status}");
    }

    /// Downloads the whole file as `org`, counting its bytes without keeping them.
    pub async fn download_counting(&mut self, org: &str, id: &str) -> u64 {
        let request = pb::DownloadRequest {
            file_transfer_id: id.into(),
            ..pb::DownloadRequest::default()
        };
        let mut stream = self
            .files
            .download(self.as_org(org, request))
            .await
            .unwrap()
            .into_inner();
        let mut count = 0;
        while let Some(message) = stream.message().await.unwrap() {
            if let Some(download_message::Message::Chunk(chunk)) = message.message {
                count += chunk.len() as u64;
            }
        }
        count
    }

    /// Downloads as `org` with the raw `range` header; the header and the bytes.
    pub async fn download(
        &mut self,
        org: &str,
        id: &str,
        range: &str,
    ) -> Result<(pb::DownloadHeader, Vec<u8>), Status> {
        let request = pb::DownloadRequest {
            file_transfer_id: id.into(),
            range: range.into(),
            ..pb::DownloadRequest::default()
        };
        let mut stream = self
            .files
            .download(self.as_org(org, request))
            .await?
            .into_inner();
        let header = match stream.message().await?.and_then(|m| m.message) {
            Some(download_message::Message::Header(header)) => *header,
            other => panic!("expected a header first, got {other:?}"),
        };
        let mut bytes = Vec::new();
        while let Some(message) = stream.message().await? {
            match message.message {
                Some(download_message::Message::Chunk(chunk)) => bytes.extend_from_slice(&chunk),
                other => panic!("expected a chunk, got {other:?}"),
            }
        }
        Ok((header, bytes))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.trigger();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// An upload's messages: the start, then `chunks`, then the end with their count.
pub fn upload_stream(
    id: &str,
    declared_length: Option<u64>,
    chunks: impl Stream<Item = Bytes> + Send + 'static,
) -> impl Stream<Item = pb::UploadMessage> + Send + 'static {
    let start = pb::UploadMessage {
        message: Some(upload_message::Message::Start(Box::new(pb::UploadStart {
            file_transfer_id: id.to_owned(),
            declared_length,
            ..pb::UploadStart::default()
        }))),
    };
    let total = Arc::new(AtomicU64::new(0));
    let counted = total.clone();
    let body = chunks.map(move |chunk| {
        counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        pb::UploadMessage {
            message: Some(upload_message::Message::Chunk(chunk)),
        }
    });
    let end = futures::stream::once(async move {
        pb::UploadMessage {
            message: Some(upload_message::Message::End(pb::UploadEnd {
                total_bytes: total.load(Ordering::Relaxed),
            })),
        }
    });
    futures::stream::once(async { start })
        .chain(body)
        .chain(end)
}

/// A spooled upload's messages: the start with `spool`, then `chunks`, the end with their
/// count, and then `after` (the `initialize` a well-behaved client sends, or anything else).
pub fn spool_stream(
    chunks: impl Stream<Item = Bytes> + Send + 'static,
    after: Vec<upload_message::Message>,
) -> impl Stream<Item = pb::UploadMessage> + Send + 'static {
    let start = pb::UploadMessage {
        message: Some(upload_message::Message::Start(Box::new(pb::UploadStart {
            spool: true,
            ..pb::UploadStart::default()
        }))),
    };
    let body = upload_stream("", None, chunks).skip(1);
    let after = after.into_iter().map(|message| pb::UploadMessage {
        message: Some(message),
    });
    futures::stream::once(async { start })
        .chain(body)
        .chain(futures::stream::iter(after))
}

/// `length` bytes of a fixed pseudo-random sequence.
pub fn content(length: usize) -> Vec<u8> {
    let mut state: u32 = 0x2545_f491;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// `bytes` as upload chunks of [`CHUNK`] bytes.
pub fn chunked(bytes: &[u8]) -> impl Stream<Item = Bytes> + Send + 'static {
    let chunks: Vec<Bytes> = bytes.chunks(CHUNK).map(Bytes::copy_from_slice).collect();
    futures::stream::iter(chunks)
}

/// `count` chunks of [`CHUNK`] bytes, all sharing one buffer (no memory per chunk).
pub fn repeated(count: usize) -> impl Stream<Item = Bytes> + Send + 'static {
    let chunk = Bytes::from(content(CHUNK));
    futures::stream::iter((0..count).map(move |_| chunk.clone()))
}

/// MD5 as lowercase hex.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The broker error code of a failed call.
pub fn code_of<T: std::fmt::Debug>(result: Result<T, Status>) -> (u16, Option<u16>) {
    let problem = Problem::from(result.expect_err("expected a problem"));
    (problem.status, problem.code)
}

/// A process memory figure from `/proc/self/status` (`VmRSS`, `VmHWM`) in KiB.
pub fn memory_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}
