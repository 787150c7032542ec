//! The tonic service: translates gRPC messages to [`AccessCore`] calls and back.
//!
//! Requests are parsed into domain types here, so a malformed identifier is a 400 before any
//! work. Service-owner calls check the admin credential; resource, policy and access-list calls
//! verify the forwarded bearer token and act for the caller it names, ignoring the request's
//! `principal` field. `Authorize` and `LookupServiceOwner` are internal and unauthenticated.

use std::sync::Arc;

use broker_common::Problem;
use broker_common::admin::AdminToken;
use broker_common::auth::{Caller, TokenVerifier};
use broker_common::identity::OrgNumber;
use broker_proto::access as pb;
use broker_proto::access::access_registry_server::AccessRegistry;
use broker_proto::access::change_members_request::Mode;
use broker_proto::common::{LocalizedText as PbText, PageInfo};
use tonic::{Request, Response, Status};

use crate::cache::DecisionKey;
use crate::domain::access_list::{self, ListDetails, MemberChange};
use crate::domain::decision::{Decision, Principal};
use crate::domain::error::{AccessError, FieldErrors};
use crate::domain::ids::{Action, IdError, ListId, OrgCode, PartyUrn, ResourceId};
use crate::domain::policy::Policy;
use crate::domain::resource::{LocalizedText, ResourceDraft, ResourceInput, ServiceOwner};
use crate::service::{AccessCore, Page, PageRequest};
use crate::store::{
    AccessListRecord, ConnectionRecord, MemberRecord, PolicyRecord, ResourceRecord,
};

/// Most questions in one `AuthorizeBatch`.
pub const MAX_BATCH: usize = 1000;

/// The gRPC face of the access registry.
pub struct AccessGrpc {
    core: Arc<AccessCore>,
    admin: AdminToken,
    verifier: Arc<TokenVerifier>,
}

impl AccessGrpc {
    /// Serves `core`, guarding the service-owner registry with `admin` and everything else
    /// callers write with tokens checked by `verifier`.
    pub fn new(core: Arc<AccessCore>, admin: AdminToken, verifier: Arc<TokenVerifier>) -> Self {
        Self {
            core,
            admin,
            verifier,
        }
    }

    fn require_admin<T>(&self, request: &Request<T>) -> Result<(), AccessError> {
        match broker_common::grpc::bearer(request) {
            Some(token) if self.admin.matches(token) => Ok(()),
            _ => Err(AccessError::NotAdmin),
        }
    }

    /// The caller named by the forwarded token.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, AccessError> {
        let token = broker_common::grpc::bearer(request).ok_or_else(|| {
            AccessError::Unauthenticated(Problem::unauthorized("a bearer token is required"))
        })?;
        self.verifier
            .verify(token)
            .await
            .map_err(AccessError::Unauthenticated)
    }
}

fn parse<T>(field: &str, result: Result<T, IdError>) -> Result<T, AccessError> {
    result.map_err(|error| AccessError::invalid(field, error))
}

fn page_request(page: Option<&broker_proto::common::PageRequest>) -> PageRequest<'_> {
    page.map_or(PageRequest { token: "", size: 0 }, |page| PageRequest {
        token: &page.token,
        size: page.size,
    })
}

fn page_info<T>(page: &Page<T>) -> Option<PageInfo> {
    Some(PageInfo {
        next_token: page.next.clone().unwrap_or_default(),
    })
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Versions start at 1 and only grow, so they are never negative.
fn version(version: i64) -> u64 {
    version.unsigned_abs()
}

fn text_from_pb(text: Option<PbText>) -> LocalizedText {
    let text = text.unwrap_or_default();
    LocalizedText {
        nb: text.nb,
        nn: text.nn,
        en: text.en,
    }
}

fn text_to_pb(text: LocalizedText) -> Option<PbText> {
    Some(PbText {
        nb: text.nb,
        nn: text.nn,
        en: text.en,
    })
}

/// One authorization question, its fields reported under `prefix`.
fn question(request: pb::AuthorizeRequest, prefix: &str) -> Result<DecisionKey, AccessError> {
    let mut errors = FieldErrors::default();
    let principal = request.principal.unwrap_or_default();
    let org = errors.check(
        format!("{prefix}principal.orgNumber"),
        OrgNumber::parse(&principal.org_number),
    );
    let action = errors.check(format!("{prefix}action"), Action::parse(&request.action));
    let resource = errors.check(
        format!("{prefix}resource"),
        ResourceId::parse(&request.resource),
    );
    let party = errors.check(format!("{prefix}party"), PartyUrn::parse(&request.party));
    errors.finish(|| {
        Some(DecisionKey {
            principal: Principal {
                org: org?,
                system_user_id: Some(principal.system_user_id).filter(|id| !id.is_empty()),
            },
            action: action?,
            resource: resource?,
            party: party?,
        })
    })
}

fn decision_to_pb(decision: Decision) -> pb::Decision {
    pb::Decision {
        permit: decision.is_permit(),
        reason: decision.reason().to_owned(),
    }
}

fn owner_to_pb(owner: ServiceOwner) -> pb::ServiceOwner {
    pb::ServiceOwner {
        org_number: owner.org_number.to_string(),
        org_code: owner.org_code.to_string(),
        name: owner.name,
    }
}

fn resource_draft(resource: Option<pb::Resource>) -> Result<ResourceDraft, AccessError> {
    let resource = resource.ok_or_else(|| AccessError::invalid("resource", "required"))?;
    let authority = resource.has_competent_authority.unwrap_or_default();
    ResourceDraft::parse(ResourceInput {
        identifier: resource.identifier,
        title: text_from_pb(resource.title),
        description: text_from_pb(resource.description),
        authority_organization: authority.organization,
        authority_orgcode: authority.orgcode,
        authority_name: text_from_pb(authority.name),
        resource_type: resource.resource_type,
        access_list_mode: resource.access_list_mode,
        status: resource.status,
        delegable: resource.delegable,
        visible: resource.visible,
    })
}

fn resource_to_pb(record: ResourceRecord) -> pb::Resource {
    let resource = record.resource;
    let authority = resource.has_competent_authority;
    pb::Resource {
        identifier: resource.identifier.into(),
        title: text_to_pb(resource.title),
        description: text_to_pb(resource.description),
        has_competent_authority: Some(pb::CompetentAuthority {
            organization: authority.organization.to_string(),
            orgcode: authority.orgcode.into(),
            name: text_to_pb(authority.name),
        }),
        resource_type: resource.resource_type.as_str().to_owned(),
        access_list_mode: resource.access_list_mode.as_str().to_owned(),
        status: resource.status,
        version: version(record.version),
        delegable: resource.delegable,
        visible: resource.visible,
    }
}

fn policy_to_pb(record: PolicyRecord) -> pb::Policy {
    pb::Policy {
        resource: record.resource.into(),
        rules: record
            .policy
            .rules
            .into_iter()
            .map(|rule| pb::PolicyRule {
                subjects: rule.subjects.iter().map(ToString::to_string).collect(),
                actions: rule.actions.into_iter().map(Into::into).collect(),
            })
            .collect(),
        version: version(record.version),
    }
}

fn connection_to_pb(connection: ConnectionRecord, list_version: i64) -> pb::ResourceConnection {
    pb::ResourceConnection {
        resource_identifier: connection.resource.into(),
        action_filters: connection
            .action_filters
            .into_iter()
            .map(Into::into)
            .collect(),
        created: rfc3339(connection.created_at),
        modified: rfc3339(connection.modified_at),
        list_version: version(list_version),
    }
}

fn list_to_pb(list: AccessListRecord) -> pb::AccessList {
    pb::AccessList {
        owner: list.owner.into(),
        identifier: list.identifier.into(),
        name: list.details.name,
        description: list.details.description,
        version: version(list.version),
        created: rfc3339(list.created_at),
        updated: rfc3339(list.updated_at),
        resource_connections: list
            .connections
            .into_iter()
            .map(|connection| connection_to_pb(connection, list.version))
            .collect(),
    }
}

fn members_to_pb((page, list_version): (Page<MemberRecord>, i64)) -> pb::ListMembersResponse {
    pb::ListMembersResponse {
        page: page_info(&page),
        members: page
            .items
            .into_iter()
            .map(|member| pb::Member {
                party: member.party.to_string(),
                since: rfc3339(member.since),
            })
            .collect(),
        version: version(list_version),
    }
}

/// The `{owner}/{identifier}` of an access-list request.
fn list_path(owner: &str, identifier: &str) -> Result<(OrgCode, ListId), AccessError> {
    Ok((
        parse("owner", OrgCode::parse(owner))?,
        parse("identifier", ListId::parse(identifier))?,
    ))
}

#[tonic::async_trait]
impl AccessRegistry for AccessGrpc {
    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        let key = question(request.into_inner(), "")?;
        let decision = self.core.authorize(key).await?;
        Ok(Response::new(decision_to_pb(decision)))
    }

    async fn authorize_batch(
        &self,
        request: Request<pb::AuthorizeBatchRequest>,
    ) -> Result<Response<pb::AuthorizeBatchResponse>, Status> {
        let requests = request.into_inner().requests;
        if requests.len() > MAX_BATCH {
            return Err(
                AccessError::invalid("requests", format!("at most {MAX_BATCH} requests")).into(),
            );
        }
        // Validate everything first, so a bad entry answers 400 without half the work done.
        let keys = requests
            .into_iter()
            .enumerate()
            .map(|(index, request)| question(request, &format!("requests[{index}].")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut decisions = Vec::with_capacity(keys.len());
        for key in keys {
            decisions.push(decision_to_pb(self.core.authorize(key).await?));
        }
        Ok(Response::new(pb::AuthorizeBatchResponse { decisions }))
    }

    async fn create_service_owner(
        &self,
        request: Request<pb::CreateServiceOwnerRequest>,
    ) -> Result<Response<pb::ServiceOwner>, Status> {
        self.require_admin(&request)?;
        let owner = request.into_inner().owner.unwrap_or_default();
        let owner = ServiceOwner::parse(&owner.org_number, &owner.org_code, &owner.name)?;
        let owner = self.core.create_service_owner(owner).await?;
        Ok(Response::new(owner_to_pb(owner)))
    }

    async fn list_service_owners(
        &self,
        request: Request<pb::ListServiceOwnersRequest>,
    ) -> Result<Response<pb::ListServiceOwnersResponse>, Status> {
        self.require_admin(&request)?;
        let request = request.into_inner();
        let page = self
            .core
            .list_service_owners(page_request(request.page.as_ref()))
            .await?;
        Ok(Response::new(pb::ListServiceOwnersResponse {
            page: page_info(&page),
            owners: page.items.into_iter().map(owner_to_pb).collect(),
        }))
    }

    async fn delete_service_owner(
        &self,
        request: Request<pb::DeleteServiceOwnerRequest>,
    ) -> Result<Response<pb::DeleteServiceOwnerResponse>, Status> {
        self.require_admin(&request)?;
        let code = parse("orgCode", OrgCode::parse(&request.into_inner().org_code))?;
        self.core.delete_service_owner(&code).await?;
        Ok(Response::new(pb::DeleteServiceOwnerResponse {}))
    }

    async fn lookup_service_owner(
        &self,
        request: Request<pb::LookupServiceOwnerRequest>,
    ) -> Result<Response<pb::LookupServiceOwnerResponse>, Status> {
        let org = OrgNumber::parse(&request.into_inner().org_number)
            .map_err(|error| AccessError::invalid("orgNumber", error))?;
        let code = self.core.lookup_service_owner(org).await?;
        Ok(Response::new(pb::LookupServiceOwnerResponse {
            org_code: code.map(String::from).unwrap_or_default(),
        }))
    }

    async fn get_resource(
        &self,
        request: Request<pb::GetResourceRequest>,
    ) -> Result<Response<pb::Resource>, Status> {
        let id = parse(
            "identifier",
            ResourceId::parse(&request.into_inner().identifier),
        )?;
        Ok(Response::new(resource_to_pb(
            self.core.resource(&id).await?,
        )))
    }

    async fn list_resources(
        &self,
        request: Request<pb::ListResourcesRequest>,
    ) -> Result<Response<pb::ListResourcesResponse>, Status> {
        let request = request.into_inner();
        let page = self
            .core
            .list_resources(page_request(request.page.as_ref()))
            .await?;
        Ok(Response::new(pb::ListResourcesResponse {
            page: page_info(&page),
            resources: page.items.into_iter().map(resource_to_pb).collect(),
        }))
    }

    async fn create_resource(
        &self,
        request: Request<pb::UpsertResourceRequest>,
    ) -> Result<Response<pb::Resource>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let draft = resource_draft(request.resource)?;
        let record = self
            .core
            .create_resource(&caller, draft, request.if_match)
            .await?;
        Ok(Response::new(resource_to_pb(record)))
    }

    async fn update_resource(
        &self,
        request: Request<pb::UpsertResourceRequest>,
    ) -> Result<Response<pb::Resource>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let draft = resource_draft(request.resource)?;
        let record = self
            .core
            .update_resource(&caller, draft, request.if_match)
            .await?;
        Ok(Response::new(resource_to_pb(record)))
    }

    async fn delete_resource(
        &self,
        request: Request<pb::DeleteResourceRequest>,
    ) -> Result<Response<pb::DeleteResourceResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let id = parse("identifier", ResourceId::parse(&request.identifier))?;
        self.core
            .delete_resource(&caller, &id, request.if_match)
            .await?;
        Ok(Response::new(pb::DeleteResourceResponse {}))
    }

    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::Policy>, Status> {
        let id = parse(
            "resource",
            ResourceId::parse(&request.into_inner().resource),
        )?;
        Ok(Response::new(policy_to_pb(self.core.policy(&id).await?)))
    }

    async fn put_policy(
        &self,
        request: Request<pb::PutPolicyRequest>,
    ) -> Result<Response<pb::Policy>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let policy = request
            .policy
            .ok_or_else(|| AccessError::invalid("policy", "required"))?;
        let id = parse("resource", ResourceId::parse(&policy.resource))?;
        let rules = Policy::parse(
            policy
                .rules
                .iter()
                .map(|rule| (rule.subjects.as_slice(), rule.actions.as_slice())),
        )?;
        let record = self
            .core
            .put_policy(&caller, &id, rules, request.if_match)
            .await?;
        Ok(Response::new(policy_to_pb(record)))
    }

    async fn list_access_lists(
        &self,
        request: Request<pb::ListAccessListsRequest>,
    ) -> Result<Response<pb::ListAccessListsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let owner = parse("owner", OrgCode::parse(&request.owner))?;
        let resource = match request.resource.as_str() {
            "" => None,
            text => Some(parse("resource", ResourceId::parse(text))?),
        };
        let page = self
            .core
            .list_access_lists(
                &caller,
                &owner,
                resource.as_ref(),
                request.include_resource_connections,
                page_request(request.page.as_ref()),
            )
            .await?;
        Ok(Response::new(pb::ListAccessListsResponse {
            page: page_info(&page),
            lists: page.items.into_iter().map(list_to_pb).collect(),
        }))
    }

    async fn get_access_list(
        &self,
        request: Request<pb::GetAccessListRequest>,
    ) -> Result<Response<pb::AccessList>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let (owner, id) = list_path(&request.owner, &request.identifier)?;
        let list = self.core.access_list(&caller, &owner, &id).await?;
        Ok(Response::new(list_to_pb(list)))
    }

    async fn upsert_access_list(
        &self,
        request: Request<pb::UpsertAccessListRequest>,
    ) -> Result<Response<pb::AccessList>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let (owner, id) = list_path(&request.owner, &request.identifier)?;
        let details = ListDetails::parse(&request.name, &request.description)?;
        let list = self
            .core
            .upsert_access_list(&caller, &owner, &id, details, request.if_match)
            .await?;
        Ok(Response::new(list_to_pb(list)))
    }

    async fn delete_access_list(
        &self,
        request: Request<pb::DeleteAccessListRequest>,
    ) -> Result<Response<pb::AccessList>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let (owner, id) = list_path(&request.owner, &request.identifier)?;
        let list = self
            .core
            .delete_access_list(&caller, &owner, &id, request.if_match)
            .await?;
        Ok(Response::new(list_to_pb(list)))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let (owner, id) = list_path(&request.owner, &request.identifier)?;
        let members = self
            .core
            .members(&caller, &owner, &id, page_request(request.page.as_ref()))
            .await?;
        Ok(Response::new(members_to_pb(members)))
    }

    async fn change_members(
        &self,
        request: Request<pb::ChangeMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let (owner, id) = list_path(&request.owner, &request.identifier)?;
        let change = match request.mode() {
            Mode::Replace => MemberChange::Replace,
            Mode::Add => MemberChange::Add,
            Mode::Remove => MemberChange::Remove,
            Mode::Unspecified => {
                return Err(AccessError::invalid("mode", "replace, add or remove").into());
            }
        };
        let parties = access_list::parse_parties(&request.parties)?;
        let members = self
            .core
            .change_members(&caller, &owner, &id, change, &parties, request.if_match)
            .await?;
        Ok(Response::new(members_to_pb(members)))
    }

    async fn connect_resource(
        &self,
        request: Request<pb::ConnectResourceRequest>,
    ) -> Result<Response<pb::ResourceConnection>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let (owner, id) = list_path(&request.owner, &request.identifier)?;
        let resource = parse(
            "resourceIdentifier",
            ResourceId::parse(&request.resource_identifier),
        )?;
        let filters = access_list::parse_action_filters(&request.action_filters)?;
        let (connection, list_version) = self
            .core
            .connect(&caller, &owner, &id, &resource, filters, request.if_match)
            .await?;
        Ok(Response::new(connection_to_pb(connection, list_version)))
    }

    async fn disconnect_resource(
        &self,
        request: Request<pb::DisconnectResourceRequest>,
    ) -> Result<Response<pb::ResourceConnection>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let (owner, id) = list_path(&request.owner, &request.identifier)?;
        let resource = parse(
            "resourceIdentifier",
            ResourceId::parse(&request.resource_identifier),
        )?;
        let (connection, list_version) = self
            .core
            .disconnect(&caller, &owner, &id, &resource, request.if_match)
            .await?;
        Ok(Response::new(connection_to_pb(connection, list_version)))
    }
}
