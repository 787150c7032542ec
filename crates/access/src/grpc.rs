//! The tonic service: translates gRPC messages to [`AccessCore`] calls and back.
//!
//! Requests are parsed into domain types here: a resource arrives as the gateway's canonical
//! JSON document and leaves as the registry's. Identifiers are any text, as in Altinn, so the
//! service answers one nobody has as not found. Service-owner calls check the admin credential; resource, policy and access-list calls
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
use broker_proto::common::PageInfo;
use tonic::{Request, Response, Status};

use crate::cache::DecisionKey;
use crate::domain::access_list::{self, Includes, MemberChange};
use crate::domain::conditions::{Conditions, Entity, Tags};
use crate::domain::decision::{Decision, Principal};
use crate::domain::error::{AccessError, FieldErrors};
use crate::domain::ids::{Action, IdError, OrgCode, PartyUrn, ResourceId};
use crate::domain::policy::Policy;
use crate::domain::resource::{ResourceInput, ServiceOwner};
use crate::service::{AccessCore, ListPage, Page, PageRequest, Read};
use crate::store::{
    AccessListRecord, ConnectionRecord, MemberRecord, PolicyRecord, ResourceRecord, StoreError,
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
    page.map_or(PageRequest::FIRST, |page| PageRequest {
        token: &page.token,
        size: page.size,
    })
}

fn page_info<T>(page: &Page<T>) -> Option<PageInfo> {
    Some(PageInfo {
        next_token: page.next.clone().unwrap_or_default(),
    })
}

/// Versions start at 1 and only grow, so they are never negative.
fn version(version: i64) -> u64 {
    version.unsigned_abs()
}

/// The request's conditions; versions beyond `i64` name no entity, so they stay unmatched.
fn conditions(conditions: Option<pb::Conditions>) -> Conditions {
    let conditions = conditions.unwrap_or_default();
    let tags = |any: bool, versions: Vec<u64>| {
        if any {
            Some(Tags::Any)
        } else if versions.is_empty() {
            None
        } else {
            Some(Tags::Versions(
                versions
                    .into_iter()
                    .map(|v| i64::try_from(v).unwrap_or(-1))
                    .collect(),
            ))
        }
    };
    Conditions {
        if_match: tags(conditions.if_match_any, conditions.if_match),
        if_none_match: tags(conditions.if_none_match_any, conditions.if_none_match),
        if_modified_since: conditions.if_modified_since,
        if_unmodified_since: conditions.if_unmodified_since,
        read: conditions.read,
    }
}

fn includes(includes: Option<pb::Includes>) -> Includes {
    let includes = includes.unwrap_or_default();
    Includes {
        connections: includes.connections,
        actions: includes.actions,
        members: includes.members,
    }
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

fn resource_to_pb(record: &ResourceRecord) -> Result<pb::Resource, AccessError> {
    let document = serde_json::to_string(&record.resource)
        .map_err(|error| AccessError::Store(StoreError::Corrupt(error.to_string())))?;
    let resource = &record.resource;
    let authority = &resource.has_competent_authority;
    Ok(pb::Resource {
        document,
        version: version(record.version),
        updated_at: record.updated_at,
        not_modified: false,
        identifier: resource.identifier.to_string(),
        resource_type: resource.resource_type.as_str().to_owned(),
        access_list_mode: resource.access_list_mode.as_str().to_owned(),
        status: resource.status.clone().unwrap_or_default(),
        has_competent_authority: Some(pb::CompetentAuthority {
            organization: authority.organization.to_string(),
            orgcode: authority.orgcode.to_string(),
        }),
    })
}

/// The answer to a read the client's copy satisfies (304).
fn unchanged(entity: Entity) -> (u64, i64) {
    (version(entity.version), entity.updated_at)
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
        updated_at: record.updated_at,
    }
}

fn connection_to_pb(
    connection: ConnectionRecord,
    list_version: i64,
    list_updated_at: i64,
) -> pb::ResourceConnection {
    pb::ResourceConnection {
        resource_identifier: connection.resource.into(),
        action_filters: connection.action_filters,
        created_at: connection.created_at,
        updated_at: connection.modified_at,
        list_version: version(list_version),
        list_updated_at,
    }
}

fn list_to_pb(list: AccessListRecord, connections_included: bool) -> pb::AccessList {
    let (list_version, updated_at) = (list.version, list.updated_at);
    pb::AccessList {
        owner: list.owner.into(),
        identifier: list.identifier.into(),
        name: list.details.name,
        description: list.details.description,
        version: version(list.version),
        created_at: list.created_at,
        updated_at: list.updated_at,
        resource_connections: list
            .connections
            .into_iter()
            .map(|connection| connection_to_pb(connection, list_version, updated_at))
            .collect(),
        connections_included,
        not_modified: false,
    }
}

fn members_to_pb(read: Read<ListPage<MemberRecord>>) -> pb::ListMembersResponse {
    match read {
        Read::NotModified(entity) => {
            let (version, updated_at) = unchanged(entity);
            pb::ListMembersResponse {
                version,
                updated_at,
                not_modified: true,
                ..pb::ListMembersResponse::default()
            }
        }
        Read::Current((page, list)) => pb::ListMembersResponse {
            page: page_info(&page),
            members: page
                .items
                .into_iter()
                .map(|member| pb::Member {
                    party: member.party.to_string(),
                    since: member.since,
                })
                .collect(),
            version: version(list.version),
            updated_at: list.updated_at,
            not_modified: false,
        },
    }
}

fn change_mode(mode: Mode) -> Result<MemberChange, AccessError> {
    match mode {
        Mode::Replace => Ok(MemberChange::Replace),
        Mode::Add => Ok(MemberChange::Add),
        Mode::Remove => Ok(MemberChange::Remove),
        Mode::Unspecified => Err(AccessError::invalid("mode", "replace, add or remove")),
    }
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
        let request = request.into_inner();
        let conditions = conditions(request.conditions);
        let read = self
            .core
            .resource(&request.identifier, request.version_id, &conditions)
            .await?;
        let answer = match read {
            Read::Current(record) => resource_to_pb(&record)?,
            Read::NotModified(entity) => {
                let (version, updated_at) = unchanged(entity);
                pb::Resource {
                    version,
                    updated_at,
                    not_modified: true,
                    ..pb::Resource::default()
                }
            }
        };
        Ok(Response::new(answer))
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
        let resources = page
            .items
            .iter()
            .map(resource_to_pb)
            .collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListResourcesResponse {
            page: page_info(&page),
            resources,
        }))
    }

    async fn create_resource(
        &self,
        request: Request<pb::UpsertResourceRequest>,
    ) -> Result<Response<pb::Resource>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let input = ResourceInput::from_document(&request.document)?;
        let record = self
            .core
            .create_resource(&caller, input, &conditions(request.conditions))
            .await?;
        Ok(Response::new(resource_to_pb(&record)?))
    }

    async fn update_resource(
        &self,
        request: Request<pb::UpsertResourceRequest>,
    ) -> Result<Response<pb::Resource>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let input = ResourceInput::from_document(&request.document)?;
        let record = self
            .core
            .update_resource(
                &caller,
                &request.identifier,
                input,
                &conditions(request.conditions),
            )
            .await?;
        Ok(Response::new(resource_to_pb(&record)?))
    }

    async fn delete_resource(
        &self,
        request: Request<pb::DeleteResourceRequest>,
    ) -> Result<Response<pb::DeleteResourceResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        self.core
            .delete_resource(
                &caller,
                &request.identifier,
                &conditions(request.conditions),
            )
            .await?;
        Ok(Response::new(pb::DeleteResourceResponse {}))
    }

    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::Policy>, Status> {
        let record = self.core.policy(&request.into_inner().resource).await?;
        Ok(Response::new(policy_to_pb(record)))
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
        let rules = Policy::parse(
            policy
                .rules
                .iter()
                .map(|rule| (rule.subjects.as_slice(), rule.actions.as_slice())),
        )?;
        let record = self
            .core
            .put_policy(
                &caller,
                &policy.resource,
                rules,
                &conditions(request.conditions),
            )
            .await?;
        Ok(Response::new(policy_to_pb(record)))
    }

    async fn list_access_lists(
        &self,
        request: Request<pb::ListAccessListsRequest>,
    ) -> Result<Response<pb::ListAccessListsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let includes = includes(request.includes);
        let (owner, page) = self
            .core
            .list_access_lists(
                &caller,
                &request.owner,
                &request.resource,
                includes,
                page_request(request.page.as_ref()),
            )
            .await?;
        Ok(Response::new(pb::ListAccessListsResponse {
            page: page_info(&page),
            lists: page
                .items
                .into_iter()
                .map(|list| list_to_pb(list, includes.any_connections()))
                .collect(),
            owner: owner.into(),
        }))
    }

    async fn get_access_list(
        &self,
        request: Request<pb::GetAccessListRequest>,
    ) -> Result<Response<pb::AccessList>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let includes = includes(request.includes);
        let read = self
            .core
            .access_list(
                &caller,
                &request.owner,
                &request.identifier,
                includes,
                &conditions(request.conditions),
            )
            .await?;
        let answer = match read {
            Read::Current(list) => list_to_pb(list, includes.any_connections()),
            Read::NotModified(entity) => {
                let (version, updated_at) = unchanged(entity);
                pb::AccessList {
                    version,
                    updated_at,
                    not_modified: true,
                    ..pb::AccessList::default()
                }
            }
        };
        Ok(Response::new(answer))
    }

    async fn upsert_access_list(
        &self,
        request: Request<pb::UpsertAccessListRequest>,
    ) -> Result<Response<pb::AccessList>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        // The contract has no null: an empty name is an absent one.
        let list = self
            .core
            .upsert_access_list(
                &caller,
                &request.owner,
                &request.identifier,
                (Some(&request.name), Some(&request.description)),
                &conditions(request.conditions),
            )
            .await?;
        Ok(Response::new(list_to_pb(list, false)))
    }

    async fn delete_access_list(
        &self,
        request: Request<pb::DeleteAccessListRequest>,
    ) -> Result<Response<pb::AccessList>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let list = self
            .core
            .delete_access_list(
                &caller,
                &request.owner,
                &request.identifier,
                &conditions(request.conditions),
            )
            .await?;
        Ok(Response::new(list_to_pb(list, false)))
    }

    async fn resolve_owner(
        &self,
        request: Request<pb::ResolveOwnerRequest>,
    ) -> Result<Response<pb::ResolveOwnerResponse>, Status> {
        let caller = self.caller(&request).await?;
        let owner = self
            .core
            .resolve_owner(&caller, &request.into_inner().owner)
            .await?;
        Ok(Response::new(pb::ResolveOwnerResponse {
            owner: owner.into(),
        }))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let read = self
            .core
            .members(
                &caller,
                &request.owner,
                &request.identifier,
                page_request(request.page.as_ref()),
                &conditions(request.conditions),
            )
            .await?;
        Ok(Response::new(members_to_pb(read)))
    }

    async fn change_members(
        &self,
        request: Request<pb::ChangeMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let change = change_mode(request.mode())?;
        let page = self
            .core
            .change_members(
                &caller,
                &request.owner,
                &request.identifier,
                change,
                &request.parties,
                &conditions(request.conditions),
            )
            .await?;
        Ok(Response::new(members_to_pb(Read::Current(page))))
    }

    async fn list_connections(
        &self,
        request: Request<pb::ListConnectionsRequest>,
    ) -> Result<Response<pb::ListConnectionsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let read = self
            .core
            .connections(
                &caller,
                &request.owner,
                &request.identifier,
                page_request(request.page.as_ref()),
                &conditions(request.conditions),
            )
            .await?;
        let answer = match read {
            Read::NotModified(entity) => {
                let (version, updated_at) = unchanged(entity);
                pb::ListConnectionsResponse {
                    version,
                    updated_at,
                    not_modified: true,
                    ..pb::ListConnectionsResponse::default()
                }
            }
            Read::Current((page, list)) => pb::ListConnectionsResponse {
                page: page_info(&page),
                connections: page
                    .items
                    .into_iter()
                    .map(|c| connection_to_pb(c, list.version, list.updated_at))
                    .collect(),
                version: version(list.version),
                updated_at: list.updated_at,
                not_modified: false,
            },
        };
        Ok(Response::new(answer))
    }

    async fn connect_resource(
        &self,
        request: Request<pb::ConnectResourceRequest>,
    ) -> Result<Response<pb::ResourceConnection>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let (connection, list_version, updated_at) = self
            .core
            .connect(
                &caller,
                &request.owner,
                &request.identifier,
                &request.resource_identifier,
                access_list::action_filters(request.action_filters),
                &conditions(request.conditions),
            )
            .await?;
        Ok(Response::new(connection_to_pb(
            connection,
            list_version,
            updated_at,
        )))
    }

    async fn list_memberships(
        &self,
        request: Request<pb::ListMembershipsRequest>,
    ) -> Result<Response<pb::ListMembershipsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let (party, memberships) = self
            .core
            .memberships(&caller, &request.parties, &request.resources)
            .await?;
        Ok(Response::new(pb::ListMembershipsResponse {
            memberships: memberships
                .into_iter()
                .map(|membership| pb::ResourceMembership {
                    party: party.to_string(),
                    resource: membership.resource.into(),
                    since: membership.since,
                    action_filters: membership.action_filters,
                })
                .collect(),
        }))
    }

    async fn disconnect_resource(
        &self,
        request: Request<pb::DisconnectResourceRequest>,
    ) -> Result<Response<pb::DisconnectResourceResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let removed = self
            .core
            .disconnect(
                &caller,
                &request.owner,
                &request.identifier,
                &request.resource_identifier,
                &conditions(request.conditions),
            )
            .await?;
        Ok(Response::new(pb::DisconnectResourceResponse {
            connection: removed.map(|(connection, list_version, updated_at)| {
                connection_to_pb(connection, list_version, updated_at)
            }),
        }))
    }
}
