//! Starting a [`Mode`]'s services: every listener is bound first, then each service is built
//! against its neighbours' addresses and spawned; [`Running`] reports where they listen and
//! stops them all when the first one stops.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use broker_common::Shutdown;
use broker_common::admin::{AdminToken, AdminTokenSource};
use broker_common::auth::{GrpcJwks, TokenVerifier};
use broker_common::config::{CommonConfig, ServiceUrls};
use broker_common::grpc;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::token::token_service_client::TokenServiceClient;
use broker_token::exchange::GrpcServiceOwners;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::mode::Mode;
use crate::service::Service;

/// The services of one [`start`], serving.
pub struct Running {
    listening: Vec<(Service, SocketAddr)>,
    metrics_addr: Option<SocketAddr>,
    admin: AdminToken,
    admin_source: AdminTokenSource,
    public_url: String,
    shutdown: Shutdown,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Running {
    /// Where each service listens, in the order `brokerd` announces them.
    pub fn listening(&self) -> &[(Service, SocketAddr)] {
        &self.listening
    }

    /// Where `service` listens, when this process runs it.
    pub fn addr(&self, service: Service) -> Option<SocketAddr> {
        self.listening
            .iter()
            .find(|(running, _)| *running == service)
            .map(|(_, addr)| *addr)
    }

    /// Where Prometheus metrics are served (`GET /metrics`), unless switched off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The admin credential the services accept.
    pub fn admin_token(&self) -> &AdminToken {
        &self.admin
    }

    /// Where the admin credential came from, to tell the operator.
    pub fn admin_token_source(&self) -> &AdminTokenSource {
        &self.admin_source
    }

    /// The gateway's external base URL (without a trailing slash), with an ephemeral
    /// `BROKER_HTTP_ADDR` port resolved.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Runs until a service stops (by error or shutdown), then stops the others and returns
    /// the first error.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut outcome = Ok(());
        while let Some(result) = self.tasks.join_next().await {
            self.shutdown.trigger();
            let result = result.context("a service panicked").and_then(|r| r);
            if let Err(error) = result
                && outcome.is_ok()
            {
                outcome = Err(error);
            }
        }
        outcome
    }
}

/// Binds, builds and spawns the services of `mode`, and the metrics listener. `config.urls`
/// locates the services this process does not run; those it runs are reached on the addresses
/// bound here. `shutdown` stops them.
pub async fn start(mode: &Mode, config: Config, shutdown: Shutdown) -> anyhow::Result<Running> {
    let Config {
        mut common,
        mut urls,
        token: token_config,
        filetransfer: filetransfer_config,
        events: events_config,
        gateway: gateway_config,
    } = config;
    let (admin, admin_source) =
        AdminToken::resolve(&common).context("resolving the admin token")?;
    if !mode.is_embedded() && common.amqp_url.is_none() && mode.runs(Service::Access) {
        tracing::warn!("BROKER_AMQP_URL is unset: other processes will not hear of access changes");
    }
    let bus = broker_common::bus::connect(&common).await?;

    // Every listener is bound before any service is built: an ephemeral gateway port fixes the
    // public URL (and so the issuer), and embedded services learn each other's addresses.
    let gateway = if mode.runs(Service::Gateway) {
        let listener = TcpListener::bind(common.http_addr)
            .await
            .with_context(|| format!("binding the gateway to {}", common.http_addr))?;
        common.http_addr = listener.local_addr()?;
        Some(listener)
    } else {
        None
    };
    let token = bind_grpc(mode, &common, Service::Token, &mut urls.token_url).await?;
    let access = bind_grpc(mode, &common, Service::Access, &mut urls.access_url).await?;
    let filetransfer = bind_grpc(
        mode,
        &common,
        Service::FileTransfer,
        &mut urls.filetransfer_url,
    )
    .await?;
    let events = bind_grpc(mode, &common, Service::Events, &mut urls.events_url).await?;
    let metrics = match common.metrics_addr()? {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the metrics listener to {addr}"))?,
        ),
        None => None,
    };

    let mut tasks = JoinSet::new();
    let metrics_addr = match metrics {
        Some(listener) => {
            let addr = listener.local_addr()?;
            let shutdown = shutdown.clone();
            tasks.spawn(reported("metrics", async move {
                axum::serve(listener, broker_common::metrics::router())
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await
                    .context("serving metrics")
            }));
            Some(addr)
        }
        None => None,
    };
    let mut listening = Vec::new();

    if let Some(listener) = token {
        listening.push((Service::Token, listener.local_addr()?));
        let owners = GrpcServiceOwners(AccessRegistryClient::new(grpc::channel(&urls.access_url)?));
        let token =
            broker_token::build(&common, &token_config, admin.clone(), Arc::new(owners)).await?;
        tasks.spawn(reported("token", token.serve(listener, shutdown.clone())));
    }

    if let Some(listener) = access {
        listening.push((Service::Access, listener.local_addr()?));
        let verifier = verifier(&common, &urls)?;
        let access = broker_access::build(&common, admin.clone(), verifier, bus.clone()).await?;
        tasks.spawn(reported("access", access.serve(listener, shutdown.clone())));
    }

    if let Some(listener) = filetransfer {
        listening.push((Service::FileTransfer, listener.local_addr()?));
        let access = AccessRegistryClient::new(grpc::channel(&urls.access_url)?);
        let filetransfer = broker_filetransfer::build(
            &common,
            &filetransfer_config,
            verifier(&common, &urls)?,
            bus.clone(),
            access,
        )
        .await?;
        tasks.spawn(reported(
            "filetransfer",
            filetransfer.serve(listener, shutdown.clone()),
        ));
    }

    if let Some(listener) = events {
        listening.push((Service::Events, listener.local_addr()?));
        let access = AccessRegistryClient::new(grpc::channel(&urls.access_url)?);
        let events = broker_events::build(
            &common,
            &events_config,
            admin.clone(),
            verifier(&common, &urls)?,
            bus.clone(),
            access,
        )
        .await?;
        tasks.spawn(reported("events", events.serve(listener, shutdown.clone())));
    }

    if let Some(listener) = gateway {
        listening.push((Service::Gateway, listener.local_addr()?));
        let gateway_urls = urls.clone();
        let (common, admin, shutdown) = (common.clone(), admin.clone(), shutdown.clone());
        tasks.spawn(reported("gateway", async move {
            broker_gateway::serve(
                &common,
                gateway_urls,
                &gateway_config,
                admin,
                listener,
                shutdown,
            )
            .await
        }));
    }

    Ok(Running {
        listening,
        metrics_addr,
        admin,
        admin_source,
        public_url: common.public_url(),
        shutdown,
        tasks,
    })
}

/// Runs `task`, the whole of one part of the process, and logs when it has stopped: a stop
/// that hangs shows in the log as the part that never said so.
async fn reported<F>(part: &'static str, task: F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let outcome = task.await;
    match &outcome {
        Ok(()) => tracing::info!(part, "stopped"),
        Err(error) => tracing::error!(part, error = format!("{error:#}"), "stopped on an error"),
    }
    outcome
}

/// Binds `service`'s gRPC listener when `mode` runs it, and points `url` at it: on
/// `BROKER_GRPC_ADDR` (or the service's default port) when it runs alone, else on an ephemeral
/// loopback port (its neighbours in this process learn it through `url`).
async fn bind_grpc(
    mode: &Mode,
    common: &CommonConfig,
    service: Service,
    url: &mut String,
) -> anyhow::Result<Option<TcpListener>> {
    let Some(port) = service.default_grpc_port().filter(|_| mode.runs(service)) else {
        return Ok(None);
    };
    let addr = if mode.is_alone() {
        common.grpc_addr_or(port)
    } else {
        SocketAddr::from(([127, 0, 0, 1], 0))
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding gRPC to {addr}"))?;
    *url = grpc::loopback_url(listener.local_addr()?);
    Ok(Some(listener))
}

/// A verifier of the Broker tokens callers forward, with keys fetched from the token service.
fn verifier(common: &CommonConfig, urls: &ServiceUrls) -> anyhow::Result<Arc<TokenVerifier>> {
    let jwks = GrpcJwks(TokenServiceClient::new(grpc::channel(&urls.token_url)?));
    Ok(Arc::new(TokenVerifier::new(
        common.issuer(),
        common.platform_issuer(),
        Arc::new(jwks),
    )))
}
