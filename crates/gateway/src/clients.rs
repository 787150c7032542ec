//! The gRPC clients the gateway forwards to, the one way a call's answer becomes either its
//! message or the [`Problem`] the service sent, and the one way an authenticated caller's
//! request is sent on ([`forward`]).
//!
//! Channels connect lazily, so the gateway starts while a service is still down; calls then fail
//! as 503 problems and `/health/ready` reports the backend as unhealthy.

use std::collections::BTreeMap;
use std::time::Duration;

use broker_common::Problem;
use broker_common::auth::Caller;
use broker_common::grpc::Channel;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::access::access_registry_server;
use broker_proto::common::Principal;
use broker_proto::events::event_service_client::EventServiceClient;
use broker_proto::events::event_service_server;
use broker_proto::filetransfer::file_transfer_service_client::FileTransferServiceClient;
use broker_proto::filetransfer::file_transfer_service_server;
use broker_proto::token::token_service_client::TokenServiceClient;
use broker_proto::token::token_service_server;
use serde::Serialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use utoipa::ToSchema;

use crate::auth::Authenticated;
use broker_common::config::ServiceUrls;

/// How long a readiness probe waits for a backend's health answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a forwarded unary call may take before the client gets a 504 instead of waiting on.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The result of one backend's readiness check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum Health {
    /// The backend answers and reports its service as serving.
    Healthy,
    /// The backend is unreachable, too slow, or reports its service as not serving.
    Unhealthy,
}

/// A backend the readiness probe checks with the standard `grpc.health.v1.Health` service.
#[derive(Clone)]
struct Backend {
    /// The name the readiness answer uses.
    name: &'static str,
    /// The gRPC service whose serving status counts.
    service: &'static str,
    health: HealthClient<Channel>,
}

/// Clients of every service the gateway forwards to; cheap to clone (channels are shared).
#[derive(Clone)]
pub struct Clients {
    token: TokenServiceClient<Channel>,
    access: AccessRegistryClient<Channel>,
    filetransfer: FileTransferServiceClient<Channel>,
    events: EventServiceClient<Channel>,
    backends: Vec<Backend>,
}

impl Clients {
    /// Lazily connecting clients for the services `config` names.
    pub fn connect(config: &ServiceUrls) -> Result<Self, tonic::transport::Error> {
        let token = broker_common::grpc::channel(&config.token_url)?;
        let access = broker_common::grpc::channel(&config.access_url)?;
        let filetransfer = broker_common::grpc::channel(&config.filetransfer_url)?;
        let events = broker_common::grpc::channel(&config.events_url)?;
        Ok(Self {
            token: TokenServiceClient::new(token.clone()),
            access: AccessRegistryClient::new(access.clone()),
            filetransfer: FileTransferServiceClient::new(filetransfer.clone()),
            events: EventServiceClient::new(events.clone()),
            backends: vec![
                Backend {
                    name: "token",
                    service: token_service_server::SERVICE_NAME,
                    health: HealthClient::new(token),
                },
                Backend {
                    name: "access",
                    service: access_registry_server::SERVICE_NAME,
                    health: HealthClient::new(access),
                },
                Backend {
                    name: "filetransfer",
                    service: file_transfer_service_server::SERVICE_NAME,
                    health: HealthClient::new(filetransfer),
                },
                Backend {
                    name: "events",
                    service: event_service_server::SERVICE_NAME,
                    health: HealthClient::new(events),
                },
            ],
        })
    }

    /// A client of the token service (tonic clients take `&mut self`, so each call gets a clone).
    pub fn token(&self) -> TokenServiceClient<Channel> {
        self.token.clone()
    }

    /// A client of the access registry.
    pub fn access(&self) -> AccessRegistryClient<Channel> {
        self.access.clone()
    }

    /// A client of the file-transfer service.
    pub fn filetransfer(&self) -> FileTransferServiceClient<Channel> {
        self.filetransfer.clone()
    }

    /// A client of the event service.
    pub fn events(&self) -> EventServiceClient<Channel> {
        self.events.clone()
    }

    /// Asks every backend for its health, concurrently.
    pub async fn readiness(&self) -> BTreeMap<&'static str, Health> {
        let checks = self
            .backends
            .iter()
            .map(|backend| async move { (backend.name, backend.check().await) });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .collect()
    }
}

impl Backend {
    /// Whether the backend answers, in time, that its service is serving.
    async fn check(&self) -> Health {
        let request = HealthCheckRequest {
            service: self.service.to_owned(),
        };
        let mut health = self.health.clone();
        match tokio::time::timeout(HEALTH_TIMEOUT, health.check(request)).await {
            Ok(Ok(answer)) if answer.get_ref().status() == ServingStatus::Serving => {
                return Health::Healthy;
            }
            Ok(Ok(answer)) => {
                let status = answer.get_ref().status();
                tracing::warn!(backend = self.name, ?status, "backend is not serving");
            }
            Ok(Err(status)) => {
                let code = status.code();
                tracing::warn!(backend = self.name, ?code, "backend is unreachable");
            }
            Err(_) => tracing::warn!(backend = self.name, "backend health check timed out"),
        }
        Health::Unhealthy
    }
}

/// Awaits a unary call: its message, or the service's problem (a transport failure maps to 503,
/// a call slower than [`CALL_TIMEOUT`] to 504; dropping it cancels the call at the service).
pub async fn call<T>(
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, Problem> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(answer) => answer
            .map(tonic::Response::into_inner)
            .map_err(Problem::from),
        Err(_) => Err(Problem::from(tonic::Status::deadline_exceeded(
            "the service did not answer in time",
        ))),
    }
}

/// Sends an authenticated caller's request: requires one of `scopes` (else 403), builds the
/// message for the caller as principal, sends it through `rpc` with the caller's token in the
/// `authorization` metadata (the service verifies it again and decides ownership), and awaits
/// the answer as [`call`] does.
pub async fn forward<M, R, F>(
    caller: &Authenticated,
    scopes: &[&str],
    message: impl FnOnce(Principal) -> M,
    rpc: impl FnOnce(tonic::Request<M>) -> F,
) -> Result<R, Problem>
where
    F: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let request = authorized_request(caller, scopes, message)?;
    call(rpc(request)).await
}

/// The gRPC request [`forward`] sends, for calls it cannot await itself (byte streams, which
/// must not time out as a whole): requires one of `scopes`, builds the message for the caller
/// as principal and puts the caller's token in the `authorization` metadata.
pub fn authorized_request<M>(
    caller: &Authenticated,
    scopes: &[&str],
    message: impl FnOnce(Principal) -> M,
) -> Result<tonic::Request<M>, Problem> {
    let caller = caller.require_any_scope(scopes)?;
    let request = tonic::Request::new(message(principal(caller)));
    Ok(broker_common::grpc::with_bearer(request, &caller.token))
}

/// The caller as the contracts' `principal` field describes it (informational: services trust
/// only the forwarded token).
fn principal(caller: &Caller) -> Principal {
    Principal {
        org_number: caller.org.to_string(),
        client_id: caller.client_id.clone(),
        scopes: caller.scopes.clone(),
        org_code: caller.org_code.clone().unwrap_or_default(),
        system_user_id: caller.system_user_id.clone().unwrap_or_default(),
    }
}
