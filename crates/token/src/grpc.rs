//! The tonic service: translates gRPC messages to [`TokenCore`] calls and back. Client-registry
//! calls check the admin credential here again, whatever the gateway already checked.

use std::sync::Arc;

use broker_common::admin::AdminToken;
use broker_proto::common::PageInfo;
use broker_proto::token as pb;
use broker_proto::token::token_service_server::TokenService;
use tonic::{Request, Response, Status};

use crate::domain::client::Registration;
use crate::domain::error::TokenError;
use crate::service::TokenCore;
use crate::store::ClientRecord;

/// The gRPC face of the token service.
pub struct TokenGrpc {
    core: Arc<TokenCore>,
    admin: AdminToken,
}

impl TokenGrpc {
    /// Serves `core`, guarding the registry with `admin`.
    pub fn new(core: Arc<TokenCore>, admin: AdminToken) -> Self {
        Self { core, admin }
    }

    fn require_admin<T>(&self, request: &Request<T>) -> Result<(), Status> {
        match broker_common::grpc::bearer(request) {
            Some(token) if self.admin.matches(token) => Ok(()),
            _ => Err(TokenError::NotAdmin.into()),
        }
    }
}

fn to_pb(client: ClientRecord) -> pb::Client {
    let keys: Vec<serde_json::Value> = client
        .keys
        .iter()
        .filter_map(|key| serde_json::from_str(&key.jwk).ok())
        .collect();
    pb::Client {
        client_id: client.client_id,
        org_number: client.org_number,
        name: client.name,
        scopes: client.scopes,
        jwks_json: serde_json::json!({ "keys": keys }).to_string(),
        created: chrono::DateTime::from_timestamp(client.created_at, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

#[tonic::async_trait]
impl TokenService for TokenGrpc {
    async fn issue_token(
        &self,
        request: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let request = request.into_inner();
        let issued = self
            .core
            .issue(&request.grant_type, &request.assertion)
            .await?;
        Ok(Response::new(pb::IssueTokenResponse {
            access_token: issued.access_token,
            token_type: "Bearer".into(),
            expires_in: issued.expires_in,
            scope: issued.scope,
        }))
    }

    async fn exchange_maskinporten(
        &self,
        request: Request<pb::ExchangeRequest>,
    ) -> Result<Response<pb::ExchangeResponse>, Status> {
        let (token, expires_in) = self.core.exchange(&request.into_inner().token).await?;
        Ok(Response::new(pb::ExchangeResponse { token, expires_in }))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::Jwks>, Status> {
        let json =
            serde_json::to_string(&self.core.jwks().await).map_err(|_| Status::internal("jwks"))?;
        Ok(Response::new(pb::Jwks { json }))
    }

    async fn get_metadata(
        &self,
        _request: Request<pb::GetMetadataRequest>,
    ) -> Result<Response<pb::Metadata>, Status> {
        Ok(Response::new(pb::Metadata {
            json: self.core.metadata().to_string(),
        }))
    }

    async fn create_client(
        &self,
        request: Request<pb::CreateClientRequest>,
    ) -> Result<Response<pb::Client>, Status> {
        self.require_admin(&request)?;
        let request = request.into_inner();
        let client = self
            .core
            .create_client(Registration {
                org_number: request.org_number,
                scopes: request.scopes,
                jwks_json: request.jwks_json,
                name: request.name,
                client_id: request.client_id,
            })
            .await?;
        Ok(Response::new(to_pb(client)))
    }

    async fn list_clients(
        &self,
        request: Request<pb::ListClientsRequest>,
    ) -> Result<Response<pb::ListClientsResponse>, Status> {
        self.require_admin(&request)?;
        let page = request.into_inner().page.unwrap_or_default();
        let (clients, next) = self.core.list_clients(&page.token, page.size).await?;
        Ok(Response::new(pb::ListClientsResponse {
            clients: clients.into_iter().map(to_pb).collect(),
            page: Some(PageInfo {
                next_token: next.unwrap_or_default(),
            }),
        }))
    }

    async fn get_client(
        &self,
        request: Request<pb::GetClientRequest>,
    ) -> Result<Response<pb::Client>, Status> {
        self.require_admin(&request)?;
        let client = self.core.client(&request.into_inner().client_id).await?;
        Ok(Response::new(to_pb(client)))
    }

    async fn delete_client(
        &self,
        request: Request<pb::DeleteClientRequest>,
    ) -> Result<Response<pb::DeleteClientResponse>, Status> {
        self.require_admin(&request)?;
        self.core
            .delete_client(&request.into_inner().client_id)
            .await?;
        Ok(Response::new(pb::DeleteClientResponse {}))
    }

    async fn add_client_key(
        &self,
        request: Request<pb::AddClientKeyRequest>,
    ) -> Result<Response<pb::Client>, Status> {
        self.require_admin(&request)?;
        let request = request.into_inner();
        let client = self
            .core
            .add_client_key(&request.client_id, &request.jwk_json)
            .await?;
        Ok(Response::new(to_pb(client)))
    }

    async fn remove_client_key(
        &self,
        request: Request<pb::RemoveClientKeyRequest>,
    ) -> Result<Response<pb::Client>, Status> {
        self.require_admin(&request)?;
        let request = request.into_inner();
        let client = self
            .core
            .remove_client_key(&request.client_id, &request.kid)
            .await?;
        Ok(Response::new(to_pb(client)))
    }
}
