//! The access registry's operations, independent of transport: decisions (through the cache),
//! the service-owner registry, resources with their policies, and access lists.
//!
//! Who may do what is decided here: scopes and ownership are checked against the caller the
//! gRPC layer verified from the forwarded token, never against fields of the request. Checks run
//! in the order Altinn's Resource Registry runs them, so the first failing one is the answer
//! Altinn would give. Every committed write flushes the decision cache and leaves an outbox row
//! for other replicas.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use broker_common::auth::Caller;
use broker_common::clock::Clock;
use broker_common::identity::OrgNumber;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::cache::{DecisionCache, DecisionKey};
use crate::domain::access_list::{self, Includes, ListDetails, MemberChange};
use crate::domain::change::{Change, ListChange, ResourceChange};
use crate::domain::conditions::{Conditions, Entity, Outcome};
use crate::domain::decision::{self, Decision};
use crate::domain::error::{AccessError, RegistryProblem, RegistryValidation};
use crate::domain::ids::{ListId, OrgCode, PartyUrn, ResourceId};
use crate::domain::policy::Policy;
use crate::domain::resource::{ResourceDraft, ResourceInput, ServiceOwner, Write};
use crate::store::{
    AccessListRecord, AccessStore, ConnectionRecord, Inserted, ListWrite, MemberRecord,
    OutboxRecord, OwnerDeleted, PolicyRecord, ResourceMembership, ResourceRecord, Written,
};

/// Scope for writing resources and their policies.
pub const RESOURCE_WRITE: &str = "altinn:resourceregistry/resource.write";
/// Scope of the registry's administrators: every resource and list, whoever owns it.
pub const RESOURCE_ADMIN: &str = "altinn:resourceregistry/resource.admin";
/// Scope for reading access lists.
pub const ACCESS_LIST_READ: &str = "altinn:resourceregistry/accesslist.read";
/// Scope for writing access lists.
pub const ACCESS_LIST_WRITE: &str = "altinn:resourceregistry/accesslist.write";
/// Scope of a policy decision point reading any owner's access lists.
pub const ACCESS_LIST_PDP_READ: &str = "altinn:resourceregistry/pdp:accesslist.read";
/// Altinn's `ScopeResourceRegistryWrite` policy.
const RESOURCE_WRITERS: &[&str] = &[RESOURCE_ADMIN, RESOURCE_WRITE];
/// Altinn's `AccessListRead` policy.
const LIST_READERS: &[&str] = &[
    RESOURCE_ADMIN,
    ACCESS_LIST_READ,
    ACCESS_LIST_WRITE,
    ACCESS_LIST_PDP_READ,
];
/// Altinn's `AccessListWrite` policy.
const LIST_WRITERS: &[&str] = &[RESOURCE_ADMIN, ACCESS_LIST_WRITE];
/// Scopes that need not own what they reach (Altinn's `ResourceOwnerExcemptScopesHandler`).
const OWNER_EXEMPT: &[&str] = &[RESOURCE_ADMIN, ACCESS_LIST_PDP_READ];

/// Page sizes, as Altinn's `AccessListService` has them; a client may ask for another (an
/// extension), up to [`MAX_PAGE_SIZE`].
pub mod page_size {
    /// Access lists of an owner.
    pub const LISTS: u32 = 20;
    /// Members, and resource connections, of a list.
    pub const ITEMS: u32 = 100;
    /// Resources, when a client pages them (an extension) and service owners.
    pub const RESOURCES: u32 = 100;
}
/// Largest page.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The continuation token when more follow.
    pub next: Option<String>,
}

/// A page request: the previous page's token (empty for the first) and a size (0 = default).
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    /// Continuation token.
    pub token: &'a str,
    /// Page size.
    pub size: u32,
}

impl PageRequest<'_> {
    /// The first page, at the default size.
    pub const FIRST: PageRequest<'static> = PageRequest { token: "", size: 0 };

    fn size(&self, default: u32) -> u32 {
        match self.size {
            0 => default,
            size => size.min(MAX_PAGE_SIZE),
        }
    }

    /// The continuation a token carries, as [`Continuation::token`] wrote it: the version of the
    /// list it pages (none for a listing of lists or resources) and the last key seen.
    fn continuation(&self) -> Result<Option<Continuation>, AccessError> {
        if self.token.is_empty() {
            return Ok(None);
        }
        URL_SAFE_NO_PAD
            .decode(self.token.trim_end_matches('='))
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .map(Some)
            .ok_or_else(|| invalid_token(self.token))
    }
}

/// Where a listing goes on: Altinn's opaque tokens are base64url JSON, and so are these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum Continuation {
    /// Of a versioned list's items: `{"Version": n, "ContinueFrom": key}`.
    Versioned {
        #[serde(rename = "Version")]
        version: i64,
        #[serde(rename = "ContinueFrom")]
        after: String,
    },
    /// Of an unversioned listing: the key as a JSON string.
    Key(String),
}

impl Continuation {
    fn token(&self) -> String {
        // Serialising these two shapes cannot fail.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn after(&self) -> &str {
        match self {
            Self::Versioned { after, .. } | Self::Key(after) => after,
        }
    }
}

/// Trims `items`, fetched with a limit of one more than `size`, into a page whose token names
/// the last item's key (with `version`, for a list's items).
fn page<T>(
    mut items: Vec<T>,
    size: u32,
    version: Option<i64>,
    key: impl Fn(&T) -> String,
) -> Page<T> {
    let size = size as usize;
    let next = (items.len() > size).then(|| {
        items.truncate(size);
        items.last().map(|last| {
            let after = key(last);
            match version {
                Some(version) => Continuation::Versioned { version, after },
                None => Continuation::Key(after),
            }
            .token()
        })
    });
    Page {
        items,
        next: next.flatten(),
    }
}

/// A read that may find the entity unchanged since the client's copy (304).
#[derive(Debug, Clone)]
pub enum Read<T> {
    /// The entity as it is.
    Current(T),
    /// The client's copy is current: only its version and last change are answered.
    NotModified(Entity),
}

/// A page of a list's items, with the list as it is (for its version and last change).
pub type ListPage<T> = (Page<T>, AccessListRecord);

/// A connection as written or removed, with the list's version and last change after it.
pub type ConnectionWrite = (ConnectionRecord, i64, i64);

/// The access registry.
pub struct AccessCore {
    store: Arc<dyn AccessStore>,
    cache: Arc<DecisionCache>,
    clock: Arc<dyn Clock>,
}

impl AccessCore {
    /// Assembles the service from its parts.
    pub fn new(
        store: Arc<dyn AccessStore>,
        cache: Arc<DecisionCache>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            cache,
            clock,
        }
    }

    // --- decisions ---

    /// Decides one request, from the cache when it can.
    pub async fn authorize(&self, key: DecisionKey) -> Result<Decision, AccessError> {
        let generation = match self.cache.get(&key) {
            Ok(decision) => return Ok(decision),
            Err(generation) => generation,
        };
        let snapshot = self.store.snapshot(&key.resource, &key.party).await?;
        let decision = decision::decide(&snapshot, &key.principal, &key.action, &key.party);
        self.cache.insert(key, decision, generation);
        Ok(decision)
    }

    // --- service owners (the gRPC layer checks the admin credential) ---

    /// Registers a service owner.
    pub async fn create_service_owner(
        &self,
        owner: ServiceOwner,
    ) -> Result<ServiceOwner, AccessError> {
        match self
            .store
            .insert_service_owner(&owner, self.clock.unix())
            .await?
        {
            Inserted::New => {
                self.cache.invalidate_all();
                tracing::info!(org_code = %owner.org_code, org = %owner.org_number, "service owner registered");
                Ok(owner)
            }
            Inserted::AlreadyExists => Err(AccessError::Conflict(format!(
                "org code {} or organisation {} is already a service owner",
                owner.org_code, owner.org_number
            ))),
        }
    }

    /// One page of service owners, by org code.
    pub async fn list_service_owners(
        &self,
        request: PageRequest<'_>,
    ) -> Result<Page<ServiceOwner>, AccessError> {
        let size = request.size(page_size::RESOURCES);
        let after = request.continuation()?;
        let owners = self
            .store
            .service_owners(after.as_ref().map(Continuation::after), size + 1)
            .await?;
        Ok(page(owners, size, None, |owner| owner.org_code.to_string()))
    }

    /// Deletes a service owner that no longer owns resources or access lists.
    pub async fn delete_service_owner(&self, org_code: &OrgCode) -> Result<(), AccessError> {
        match self.store.delete_service_owner(org_code).await? {
            OwnerDeleted::Deleted => {
                self.cache.invalidate_all();
                tracing::info!(%org_code, "service owner deleted");
                Ok(())
            }
            OwnerDeleted::NotFound => Err(AccessError::NotFound(format!(
                "no service owner {org_code}"
            ))),
            OwnerDeleted::InUse => Err(AccessError::Conflict(format!(
                "service owner {org_code} still owns resources or access lists"
            ))),
        }
    }

    /// The org code of the service owner that is `org`, if any.
    pub async fn lookup_service_owner(
        &self,
        org: OrgNumber,
    ) -> Result<Option<OrgCode>, AccessError> {
        Ok(self
            .store
            .service_owner_by_org(org)
            .await?
            .map(|owner| owner.org_code))
    }

    // --- resources (reads are public) ---

    /// One resource, by any identifier (one no resource has is not found), at `version` when
    /// one is named (only the current one is kept, so another is not found), unless the
    /// request's `conditions` find the client's copy current.
    pub async fn resource(
        &self,
        identifier: &str,
        version: Option<i64>,
        conditions: &Conditions,
    ) -> Result<Read<ResourceRecord>, AccessError> {
        let record = self
            .find_resource(identifier)
            .await?
            .filter(|record| version.is_none_or(|version| version == record.version))
            .ok_or(AccessError::Absent)?;
        let entity = Entity {
            version: record.version,
            updated_at: record.updated_at,
        };
        match conditions.evaluate(Some(entity)) {
            Outcome::Proceed => Ok(Read::Current(record)),
            Outcome::NotModified => Ok(Read::NotModified(entity)),
            Outcome::Failed => Err(AccessError::Stale),
        }
    }

    /// One page of resources, by identifier.
    pub async fn list_resources(
        &self,
        request: PageRequest<'_>,
    ) -> Result<Page<ResourceRecord>, AccessError> {
        let size = request.size(page_size::RESOURCES);
        let after = request.continuation()?;
        let resources = self
            .store
            .resources(after.as_ref().map(Continuation::after), size + 1)
            .await?;
        Ok(page(resources, size, None, |record| {
            record.resource.identifier.to_string()
        }))
    }

    /// Creates a resource, checked as Altinn's `POST` checks it: scope, the resource's rules,
    /// ownership (403), then a taken identifier (409 with Altinn's text).
    pub async fn create_resource(
        &self,
        caller: &Caller,
        input: ResourceInput,
        conditions: &Conditions,
    ) -> Result<ResourceRecord, AccessError> {
        require_scope(caller, RESOURCE_WRITERS)?;
        let draft = ResourceDraft::parse(input, Write::Create)?;
        let owner = self.resource_writer(caller, &draft).await?;
        let resource = draft.owned_by(&owner)?;
        if conditions.evaluate(None) == Outcome::Failed {
            return Err(AccessError::Stale);
        }
        let now = self.clock.unix();
        let record = ResourceRecord {
            resource,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let id = record.resource.identifier.clone();
        let notice = notice(resource_change(&id, ResourceChange::Created), now);
        match self.store.insert_resource(&record, &notice).await? {
            Inserted::New => {
                // Decisions cached as resource-not-found must go.
                self.cache.invalidate_all();
                tracing::info!(resource = %id, owner = %owner.org_code, "resource created");
                Ok(record)
            }
            Inserted::AlreadyExists => Err(AccessError::json_text(
                StatusCode::CONFLICT,
                format!("The Resource already exist: {id}"),
            )),
        }
    }

    /// Replaces the resource at `identifier`, checked as Altinn's `PUT` checks it: scope, 404,
    /// the body naming another resource, the `[Required]` members and the resource's rules,
    /// then ownership of the resource as it is and as it will be.
    pub async fn update_resource(
        &self,
        caller: &Caller,
        identifier: &str,
        input: ResourceInput,
        conditions: &Conditions,
    ) -> Result<ResourceRecord, AccessError> {
        require_scope(caller, RESOURCE_WRITERS)?;
        let current = self
            .find_resource(identifier)
            .await?
            .ok_or(AccessError::Absent)?;
        if input.identifier.as_deref() != Some(identifier) {
            return Err(AccessError::json_text(
                StatusCode::BAD_REQUEST,
                "Id in path does not match ID in resource",
            ));
        }
        let draft = ResourceDraft::parse(input, Write::Replace)?;
        let owner = self.resource_writer(caller, &draft).await?;
        if !exempt(caller) && owner.org_code != current.resource.has_competent_authority.orgcode {
            return Err(AccessError::Forbidden(format!(
                "resource {identifier} belongs to another service owner"
            )));
        }
        let resource = draft.owned_by(&owner)?;
        check(conditions, &current)?;
        let now = self.clock.unix();
        let record = ResourceRecord {
            resource,
            version: current.version + 1,
            created_at: current.created_at,
            updated_at: now,
        };
        let id = &record.resource.identifier;
        let notice = notice(resource_change(id, ResourceChange::Updated), now);
        let written = self
            .store
            .update_resource(&record, current.version, &notice)
            .await?;
        self.applied(written, conditions)?;
        Ok(record)
    }

    /// Deletes a resource the caller owns, with its policy and list connections.
    pub async fn delete_resource(
        &self,
        caller: &Caller,
        identifier: &str,
        conditions: &Conditions,
    ) -> Result<(), AccessError> {
        require_scope(caller, RESOURCE_WRITERS)?;
        let current = self
            .find_resource(identifier)
            .await?
            .ok_or(AccessError::Absent)?;
        self.require_resource_owner(caller, &current).await?;
        check(conditions, &current)?;
        let id = &current.resource.identifier;
        let notice = notice(
            resource_change(id, ResourceChange::Deleted),
            self.clock.unix(),
        );
        let written = self
            .store
            .delete_resource(id, current.version, &notice)
            .await?;
        self.applied(written, conditions)?;
        tracing::info!(resource = %id, "resource deleted");
        Ok(())
    }

    /// A resource's policy (public, like the resource); Altinn's texts when there is none.
    pub async fn policy(&self, identifier: &str) -> Result<PolicyRecord, AccessError> {
        let not_found = |text: &str| {
            AccessError::Text(
                StatusCode::NOT_FOUND,
                broker_common::Plain::Text,
                text.to_owned(),
            )
        };
        let resource = self
            .find_resource(identifier)
            .await?
            .ok_or_else(|| not_found("Unable to find resource"))?;
        self.store
            .policy(&resource.resource.identifier)
            .await?
            .ok_or_else(|| not_found("Unable to find requested policy"))
    }

    /// Writes the policy of a resource the caller owns.
    pub async fn put_policy(
        &self,
        caller: &Caller,
        identifier: &str,
        policy: Policy,
        conditions: &Conditions,
    ) -> Result<PolicyRecord, AccessError> {
        require_scope(caller, RESOURCE_WRITERS)?;
        let resource = self
            .find_resource(identifier)
            .await?
            .ok_or(AccessError::Absent)?;
        self.require_resource_owner(caller, &resource).await?;
        let id = resource.resource.identifier;
        let current = self.store.policy(&id).await?;
        let entity = current.as_ref().map(|record| Entity {
            version: record.version,
            updated_at: record.updated_at,
        });
        if conditions.evaluate(entity) != Outcome::Proceed {
            return Err(AccessError::Stale);
        }
        let now = self.clock.unix();
        let expected = current.map(|record| record.version);
        let record = PolicyRecord {
            resource: id.clone(),
            policy,
            version: expected.unwrap_or(0) + 1,
            updated_at: now,
        };
        let notice = notice(resource_change(&id, ResourceChange::Policy), now);
        let written = self.store.put_policy(&record, expected, &notice).await?;
        self.applied(written, conditions)?;
        Ok(record)
    }

    // --- access lists (owner only) ---

    /// The owner `owner` names, when the caller may read its lists (for calls that only need
    /// that answered).
    pub async fn resolve_owner(
        &self,
        caller: &Caller,
        owner: &str,
    ) -> Result<OrgCode, AccessError> {
        self.list_owner(caller, owner, LIST_WRITERS).await
    }

    /// One page of the owner's lists, by identifier, each with its connection to `resource`
    /// when `includes` asks for connections (Altinn then requires a resource: the connection
    /// to it is the one included).
    pub async fn list_access_lists(
        &self,
        caller: &Caller,
        owner: &str,
        resource: &str,
        includes: Includes,
        request: PageRequest<'_>,
    ) -> Result<(OrgCode, Page<AccessListRecord>), AccessError> {
        let owner = self.list_owner(caller, owner, LIST_READERS).await?;
        if includes.members {
            return Err(AccessError::Registry(
                RegistryProblem::IncludeMembersNotImplemented,
            ));
        }
        if includes.any_connections() && resource.trim().is_empty() {
            return Err(AccessError::RegistryInvalid(vec![
                RegistryValidation::ConnectionsNeedResource,
            ]));
        }
        let size = request.size(page_size::LISTS);
        let after = request.continuation()?;
        // An identifier no resource can have is connected to no list.
        let connected_to = ResourceId::parse(resource)
            .ok()
            .filter(|_| includes.any_connections());
        let mut lists = self
            .store
            .access_lists(
                &owner,
                after.as_ref().map(Continuation::after),
                size + 1,
                connected_to.as_ref(),
            )
            .await?;
        for list in &mut lists {
            keep_included(list, includes);
        }
        let page = page(lists, size, None, |list| list.identifier.to_string());
        Ok((owner, page))
    }

    /// One list, with the connections `includes` asks for.
    pub async fn access_list(
        &self,
        caller: &Caller,
        owner: &str,
        id: &str,
        includes: Includes,
        conditions: &Conditions,
    ) -> Result<Read<AccessListRecord>, AccessError> {
        let owner = self.list_owner(caller, owner, LIST_READERS).await?;
        let mut list = self.load_list(&owner, id).await?;
        if let Some(unchanged) = read_check(conditions, &list)? {
            return Ok(Read::NotModified(unchanged));
        }
        keep_included(&mut list, includes);
        Ok(Read::Current(list))
    }

    /// Creates a list, or changes its name and description (a list already so is left at its
    /// version, as Altinn does); the name is checked after the owner, as ASP.NET validates the
    /// body after Altinn's owner filter.
    pub async fn upsert_access_list(
        &self,
        caller: &Caller,
        owner: &str,
        id: &str,
        (name, description): (Option<&str>, Option<&str>),
        conditions: &Conditions,
    ) -> Result<AccessListRecord, AccessError> {
        let owner = self.list_owner(caller, owner, LIST_WRITERS).await?;
        let details = ListDetails::parse(name, description)?;
        let id = ListId::parse(id).map_err(|error| AccessError::invalid("identifier", error))?;
        let current = self.store.access_list(&owner, &id).await?;
        let now = self.clock.unix();
        let notice = notice(list_change(&owner, &id, ListChange::Upserted), now);
        let Some(current) = current else {
            if !conditions.allow_create() {
                return Err(AccessError::Stale);
            }
            let record = AccessListRecord {
                owner: owner.clone(),
                identifier: id.clone(),
                details,
                version: 1,
                created_at: now,
                updated_at: now,
                connections: Vec::new(),
            };
            return match self.store.insert_access_list(&record, &notice).await? {
                Inserted::New => {
                    self.cache.invalidate_all();
                    Ok(record)
                }
                Inserted::AlreadyExists => Err(concurrent()),
            };
        };
        check_list(conditions, &current)?;
        if current.details == details {
            return Ok(without_connections(current));
        }
        let written = self
            .store
            .update_access_list(list_write(&current, now), &details, &notice)
            .await?;
        self.applied(written, conditions)?;
        Ok(AccessListRecord {
            details,
            version: current.version + 1,
            updated_at: now,
            ..without_connections(current)
        })
    }

    /// Deletes a list with its members and connections; answers the list as it was (Altinn
    /// answers a missing list with 204: the gateway's part, from [`AccessError::Absent`]).
    pub async fn delete_access_list(
        &self,
        caller: &Caller,
        owner: &str,
        id: &str,
        conditions: &Conditions,
    ) -> Result<AccessListRecord, AccessError> {
        let (current, now) = self.list_for_write(caller, owner, id, conditions).await?;
        let notice = notice(
            list_change(&current.owner, &current.identifier, ListChange::Deleted),
            now,
        );
        let written = self
            .store
            .delete_access_list(list_write(&current, now), &notice)
            .await?;
        self.applied(written, conditions)?;
        Ok(without_connections(current))
    }

    /// One page of a list's members (100 by default), by party. A token carries the list's
    /// version: a list changed while paging fails the request (412), as in Altinn.
    pub async fn members(
        &self,
        caller: &Caller,
        owner: &str,
        id: &str,
        request: PageRequest<'_>,
        conditions: &Conditions,
    ) -> Result<Read<ListPage<MemberRecord>>, AccessError> {
        let owner = self.list_owner(caller, owner, LIST_READERS).await?;
        let list = self.load_list(&owner, id).await?;
        let after = continue_list(&request, &list)?;
        if let Some(unchanged) = read_check(conditions, &list)? {
            return Ok(Read::NotModified(unchanged));
        }
        Ok(Read::Current(
            self.members_page(list, after.as_deref(), &request).await?,
        ))
    }

    /// Adds, removes or replaces members, checked in Altinn's order: the owner, the parties'
    /// form and number, the list's 404 and conditions, then `RR-00001` for parties Broker
    /// cannot resolve; answers the first page of members after the change. A change that
    /// changes nothing leaves the list at its version.
    pub async fn change_members(
        &self,
        caller: &Caller,
        owner: &str,
        id: &str,
        change: MemberChange,
        parties: &[String],
        conditions: &Conditions,
    ) -> Result<ListPage<MemberRecord>, AccessError> {
        let owner = self.list_owner(caller, owner, LIST_WRITERS).await?;
        let parties = access_list::parse_parties(parties, change)?;
        let current = self.load_list(&owner, id).await?;
        check_list(conditions, &current)?;
        let now = self.clock.unix();
        let parties = access_list::resolve_parties(&parties)?;
        let notice = notice(
            list_change(&current.owner, &current.identifier, ListChange::Members),
            now,
        );
        let written = self
            .store
            .change_members(list_write(&current, now), change, &parties, &notice)
            .await?;
        let list = match self.applied(written, conditions)? {
            Written::Applied => AccessListRecord {
                version: current.version + 1,
                updated_at: now,
                ..current
            },
            Written::Unchanged | Written::Stale => current,
        };
        self.members_page(list, None, &PageRequest::FIRST).await
    }

    /// One page of a list's resource connections (100 by default), by resource, with their
    /// actions; paged as [`Self::members`].
    pub async fn connections(
        &self,
        caller: &Caller,
        owner: &str,
        id: &str,
        request: PageRequest<'_>,
        conditions: &Conditions,
    ) -> Result<Read<ListPage<ConnectionRecord>>, AccessError> {
        let owner = self.list_owner(caller, owner, LIST_READERS).await?;
        let mut list = self.load_list(&owner, id).await?;
        let after = continue_list(&request, &list)?;
        if let Some(unchanged) = read_check(conditions, &list)? {
            return Ok(Read::NotModified(unchanged));
        }
        let size = request.size(page_size::ITEMS);
        let connections: Vec<ConnectionRecord> = std::mem::take(&mut list.connections)
            .into_iter()
            .filter(|c| {
                after
                    .as_deref()
                    .is_none_or(|after| c.resource.as_str() > after)
            })
            .take(size as usize + 1)
            .collect();
        let page = page(connections, size, Some(list.version), |c| {
            c.resource.to_string()
        });
        Ok(Read::Current((page, list)))
    }

    /// Connects a list to a resource, or replaces the connection's actions, checked in
    /// Altinn's order: the resource exists (`RR-00002`), is the caller's (`RR-00004`), the list
    /// exists, the conditions hold. Identical actions leave the list at its version.
    pub async fn connect(
        &self,
        caller: &Caller,
        owner: &str,
        id: &str,
        resource: &str,
        action_filters: Vec<String>,
        conditions: &Conditions,
    ) -> Result<ConnectionWrite, AccessError> {
        let owner = self.list_owner(caller, owner, LIST_WRITERS).await?;
        let target = self
            .find_resource(resource)
            .await?
            .ok_or(AccessError::Registry(RegistryProblem::ResourceNotFound))?;
        if !exempt(caller) && target.resource.has_competent_authority.orgcode != owner {
            return Err(AccessError::Registry(RegistryProblem::OtherOwnersResource));
        }
        let current = self.load_list(&owner, id).await?;
        check_list(conditions, &current)?;
        let now = self.clock.unix();
        let resource = target.resource.identifier;
        let existing = current.connections.iter().find(|c| c.resource == resource);
        if let Some(existing) = existing.filter(|c| c.action_filters == action_filters) {
            return Ok((existing.clone(), current.version, current.updated_at));
        }
        let connection = ConnectionRecord {
            resource: resource.clone(),
            action_filters,
            created_at: existing.map_or(now, |c| c.created_at),
            modified_at: now,
        };
        let notice = notice(
            list_change(&owner, &current.identifier, ListChange::Connected(resource)),
            now,
        );
        let written = self
            .store
            .connect(list_write(&current, now), &connection, &notice)
            .await?;
        self.applied(written, conditions)?;
        Ok((connection, current.version + 1, now))
    }

    /// Removes a list's connection to a resource; answers the connection as it was, or `None`
    /// when there was none (Altinn's 204).
    pub async fn disconnect(
        &self,
        caller: &Caller,
        owner: &str,
        id: &str,
        resource: &str,
        conditions: &Conditions,
    ) -> Result<Option<ConnectionWrite>, AccessError> {
        let (current, now) = self.list_for_write(caller, owner, id, conditions).await?;
        let Some(connection) = current
            .connections
            .iter()
            .find(|c| c.resource.as_str() == resource)
            .cloned()
        else {
            return Ok(None);
        };
        let notice = notice(
            list_change(
                &current.owner,
                &current.identifier,
                ListChange::Disconnected(connection.resource.clone()),
            ),
            now,
        );
        let written = self
            .store
            .disconnect(list_write(&current, now), &connection.resource, &notice)
            .await?;
        self.applied(written, conditions)?;
        Ok(Some((connection, current.version + 1, now)))
    }

    /// The resources `parties` (one party) reach through its lists, for `resources` (at most
    /// one): Altinn's memberships, for its internal callers (`resource.admin`; Broker issues no
    /// platform access tokens).
    pub async fn memberships(
        &self,
        caller: &Caller,
        parties: &[String],
        resources: &[String],
    ) -> Result<(PartyUrn, Vec<ResourceMembership>), AccessError> {
        require_scope(caller, &[RESOURCE_ADMIN])?;
        let (party, resource) = access_list::membership_query(parties, resources)?;
        let [party] = access_list::resolve_parties(&[party])?[..] else {
            return Err(AccessError::Registry(RegistryProblem::PartyNotFound));
        };
        let memberships = self.store.memberships(&party, resource.as_ref()).await?;
        Ok((party, memberships))
    }

    // --- helpers ---

    /// Flushes the cache after an applied write; a stale one is a failed precondition when the
    /// caller set conditions, else a conflict with a concurrent writer.
    fn applied(&self, written: Written, conditions: &Conditions) -> Result<Written, AccessError> {
        match written {
            Written::Applied => {
                self.cache.invalidate_all();
                Ok(written)
            }
            Written::Unchanged => Ok(written),
            Written::Stale if !conditions.is_empty() => Err(AccessError::Stale),
            Written::Stale => Err(concurrent()),
        }
    }

    /// A resource by any identifier; one no resource can have is none.
    async fn find_resource(&self, identifier: &str) -> Result<Option<ResourceRecord>, AccessError> {
        match ResourceId::parse(identifier) {
            Ok(id) => Ok(self.store.resource(&id).await?),
            Err(_) => Ok(None),
        }
    }

    /// The service owner the caller is; 403 when it is none.
    async fn service_owner_of(&self, caller: &Caller) -> Result<ServiceOwner, AccessError> {
        self.store
            .service_owner_by_org(caller.org)
            .await?
            .ok_or_else(|| {
                AccessError::Forbidden(format!(
                    "organisation {} is not a registered service owner",
                    caller.org
                ))
            })
    }

    /// The service owner a resource write is for: the caller's own, or for an administrator
    /// the registered owner the resource names (Broker's resources always have one).
    async fn resource_writer(
        &self,
        caller: &Caller,
        draft: &ResourceDraft,
    ) -> Result<ServiceOwner, AccessError> {
        if !caller.has_scope(RESOURCE_ADMIN) {
            return self.service_owner_of(caller).await;
        }
        let named = draft
            .organization()
            .and_then(|organization| OrgNumber::parse(organization.trim()).ok());
        let owner = match named {
            Some(org) => self.store.service_owner_by_org(org).await?,
            None => None,
        };
        owner.ok_or_else(|| {
            AccessError::Forbidden("the resource names no registered service owner".into())
        })
    }

    /// 403 unless the caller owns `resource` (or is exempt).
    async fn require_resource_owner(
        &self,
        caller: &Caller,
        resource: &ResourceRecord,
    ) -> Result<(), AccessError> {
        if exempt(caller) {
            return Ok(());
        }
        let own = self.service_owner_of(caller).await?;
        if own.org_code != resource.resource.has_competent_authority.orgcode {
            return Err(AccessError::Forbidden(format!(
                "resource {} belongs to another service owner",
                resource.resource.identifier
            )));
        }
        Ok(())
    }

    /// The owner of an access-list route, as Altinn decides it: the scope (`scopes`), then
    /// `UserOwnsResource` (403: the caller's org code in any case, or its organisation number;
    /// administrators are exempt), then `OwnerMustBeOrgcode` (`RR-00010` unless `owner` is a
    /// registered org code, answered canonical).
    async fn list_owner(
        &self,
        caller: &Caller,
        owner: &str,
        scopes: &'static [&'static str],
    ) -> Result<OrgCode, AccessError> {
        require_scope(caller, scopes)?;
        if !exempt(caller) {
            let own = self.service_owner_of(caller).await?;
            if owner.eq_ignore_ascii_case(own.org_code.as_str()) {
                return Ok(own.org_code);
            }
            if owner != caller.org.to_string() {
                return Err(AccessError::Forbidden(format!(
                    "only service owner {owner} may do this"
                )));
            }
        }
        let registered = match OrgCode::parse_any_case(owner) {
            Ok(code) => self.store.service_owner(&code).await?,
            Err(_) => None,
        };
        registered
            .map(|owner| owner.org_code)
            .ok_or(AccessError::RegistryInvalid(vec![
                RegistryValidation::OwnerMustBeOrgCode,
            ]))
    }

    async fn load_list(&self, owner: &OrgCode, id: &str) -> Result<AccessListRecord, AccessError> {
        let Ok(id) = ListId::parse(id) else {
            return Err(AccessError::Absent);
        };
        self.store
            .access_list(owner, &id)
            .await?
            .ok_or(AccessError::Absent)
    }

    /// The checks of every write to an existing list: scope, owner, existence, conditions.
    async fn list_for_write(
        &self,
        caller: &Caller,
        owner: &str,
        id: &str,
        conditions: &Conditions,
    ) -> Result<(AccessListRecord, i64), AccessError> {
        let owner = self.list_owner(caller, owner, LIST_WRITERS).await?;
        let current = self.load_list(&owner, id).await?;
        check_list(conditions, &current)?;
        Ok((current, self.clock.unix()))
    }

    /// The page of `list`'s members after `after`.
    async fn members_page(
        &self,
        list: AccessListRecord,
        after: Option<&str>,
        request: &PageRequest<'_>,
    ) -> Result<ListPage<MemberRecord>, AccessError> {
        let size = request.size(page_size::ITEMS);
        let members = self
            .store
            .members(&list.owner, &list.identifier, after, size + 1)
            .await?;
        let page = page(members, size, Some(list.version), |member| {
            member.party.to_string()
        });
        Ok((page, list))
    }
}

/// Whether the caller's scope exempts it from owning what it reaches.
fn exempt(caller: &Caller) -> bool {
    OWNER_EXEMPT.iter().any(|scope| caller.has_scope(scope))
}

/// 403 unless the caller has one of `scopes` (the first is named in the log).
fn require_scope(caller: &Caller, scopes: &[&'static str]) -> Result<(), AccessError> {
    if scopes.iter().any(|scope| caller.has_scope(scope)) {
        return Ok(());
    }
    Err(AccessError::InsufficientScope(scopes[0]))
}

/// 412 unless `conditions` hold for the resource as it is (a write's conditions).
fn check(conditions: &Conditions, resource: &ResourceRecord) -> Result<(), AccessError> {
    let entity = Entity {
        version: resource.version,
        updated_at: resource.updated_at,
    };
    match conditions.evaluate(Some(entity)) {
        Outcome::Proceed => Ok(()),
        Outcome::NotModified | Outcome::Failed => Err(AccessError::Stale),
    }
}

fn entity(list: &AccessListRecord) -> Entity {
    Entity {
        version: list.version,
        updated_at: list.updated_at,
    }
}

/// 412 unless `conditions` hold for the list as it is (a write's conditions).
fn check_list(conditions: &Conditions, list: &AccessListRecord) -> Result<(), AccessError> {
    match conditions.evaluate(Some(entity(list))) {
        Outcome::Proceed => Ok(()),
        Outcome::NotModified | Outcome::Failed => Err(AccessError::Stale),
    }
}

/// A read's conditions: 412 when they fail, the list's version when the client's copy is
/// current.
fn read_check(
    conditions: &Conditions,
    list: &AccessListRecord,
) -> Result<Option<Entity>, AccessError> {
    match conditions.evaluate(Some(entity(list))) {
        Outcome::Proceed => Ok(None),
        Outcome::NotModified => Ok(Some(entity(list))),
        Outcome::Failed => Err(AccessError::Stale),
    }
}

/// Where a page of `list`'s items starts: a token from another version of the list fails the
/// request (Altinn adds the token's version as `If-Match`).
fn continue_list(
    request: &PageRequest<'_>,
    list: &AccessListRecord,
) -> Result<Option<String>, AccessError> {
    match request.continuation()? {
        None => Ok(None),
        Some(Continuation::Versioned { version, after }) if version == list.version => {
            Ok(Some(after))
        }
        Some(Continuation::Versioned { .. }) => Err(AccessError::Stale),
        Some(Continuation::Key(_)) => Err(invalid_token(request.token)),
    }
}

/// ASP.NET's words for a `token` its binder cannot parse.
fn invalid_token(token: &str) -> AccessError {
    AccessError::invalid("token", format!("The value '{token}' is not valid."))
}

/// Keeps the connections `includes` asks for, with their actions only when it asks for them.
fn keep_included(list: &mut AccessListRecord, includes: Includes) {
    if !includes.any_connections() {
        list.connections.clear();
    } else if !includes.actions {
        for connection in &mut list.connections {
            connection.action_filters.clear();
        }
    }
}

/// The list as Altinn answers a write of it: without its connections.
fn without_connections(list: AccessListRecord) -> AccessListRecord {
    AccessListRecord {
        connections: Vec::new(),
        ..list
    }
}

fn concurrent() -> AccessError {
    AccessError::Conflict("changed by another request meanwhile; try again".into())
}

fn list_write(list: &AccessListRecord, now: i64) -> ListWrite<'_> {
    ListWrite {
        owner: &list.owner,
        identifier: &list.identifier,
        expected: list.version,
        now,
    }
}

fn resource_change(id: &ResourceId, change: ResourceChange) -> Change {
    Change::Resource {
        identifier: id.clone(),
        change,
    }
}

fn list_change(owner: &OrgCode, id: &ListId, change: ListChange) -> Change {
    Change::List {
        owner: owner.clone(),
        identifier: id.clone(),
        change,
    }
}

/// The outbox row announcing `change`.
fn notice(change: Change, now: i64) -> OutboxRecord {
    OutboxRecord {
        id: uuid::Uuid::now_v7().to_string(),
        routing_key: change.routing_key(),
        payload: change.payload().to_string(),
        created_at: now,
        traceparent: broker_common::telemetry::propagation::current_traceparent(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_end_with_a_token_naming_the_last_key_and_version() {
        let full = page(vec![1, 2, 3], 2, Some(7), ToString::to_string);
        assert_eq!(full.items, [1, 2]);
        let token = full.next.unwrap();
        // Altinn's opaque form: base64url JSON without padding.
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&token).unwrap(),
            br#"{"Version":7,"ContinueFrom":"2"}"#
        );
        let request = PageRequest {
            token: &token,
            size: 0,
        };
        assert_eq!(
            request.continuation().unwrap(),
            Some(Continuation::Versioned {
                version: 7,
                after: "2".into()
            })
        );
        let last = page(vec![1, 2], 2, None, ToString::to_string);
        assert_eq!((last.items, last.next), (vec![1, 2], None));
        assert_eq!(PageRequest::FIRST.size(page_size::LISTS), 20);
        let huge = PageRequest {
            token: "",
            size: 5000,
        };
        assert_eq!(huge.size(page_size::LISTS), MAX_PAGE_SIZE);
    }

    #[test]
    fn a_token_that_is_not_one_is_refused_in_asp_net_words() {
        let request = PageRequest {
            token: "not*a*token",
            size: 0,
        };
        let Err(AccessError::Invalid(errors)) = request.continuation() else {
            panic!("expected a validation error");
        };
        assert_eq!(errors["token"], ["The value 'not*a*token' is not valid."]);
    }
}
