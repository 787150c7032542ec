//! The access registry's operations, independent of transport: decisions (through the cache),
//! the service-owner registry, resources with their policies, and access lists.
//!
//! Who may do what is decided here: scopes and ownership are checked against the caller the
//! gRPC layer verified from the forwarded token, never against fields of the request. Every
//! committed write flushes the decision cache and leaves an outbox row for other replicas.

use std::sync::Arc;

use broker_common::auth::Caller;
use broker_common::clock::Clock;
use broker_common::identity::OrgNumber;

use crate::cache::{DecisionCache, DecisionKey};
use crate::domain::access_list::{ListDetails, MemberChange};
use crate::domain::change::{Change, ListChange, ResourceChange};
use crate::domain::decision::{self, Decision};
use crate::domain::error::AccessError;
use crate::domain::ids::{Action, ListId, OrgCode, PartyUrn, ResourceId};
use crate::domain::policy::Policy;
use crate::domain::resource::{ResourceDraft, ServiceOwner};
use crate::store::{
    AccessListRecord, AccessStore, ConnectionRecord, Inserted, ListWrite, MemberRecord,
    OutboxRecord, OwnerDeleted, PolicyRecord, ResourceRecord, Written,
};

/// Scope for writing resources and their policies.
pub const RESOURCE_WRITE: &str = "altinn:resourceregistry/resource.write";
/// Scope for reading access lists.
pub const ACCESS_LIST_READ: &str = "altinn:resourceregistry/accesslist.read";
/// Scope for writing access lists.
pub const ACCESS_LIST_WRITE: &str = "altinn:resourceregistry/accesslist.write";
/// Page size when the request names none.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest page.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The continuation token (the last item's key) when more follow.
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
    fn after(&self) -> Option<&str> {
        (!self.token.is_empty()).then_some(self.token)
    }

    fn size(&self) -> u32 {
        match self.size {
            0 => DEFAULT_PAGE_SIZE,
            size => size.min(MAX_PAGE_SIZE),
        }
    }

    /// Trims `items`, fetched with a limit of one more than [`Self::size`], into a page.
    fn page<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> String) -> Page<T> {
        let size = self.size() as usize;
        let next = (items.len() > size).then(|| {
            items.truncate(size);
            items.last().map(&key)
        });
        Page {
            items,
            next: next.flatten(),
        }
    }
}

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
        page: PageRequest<'_>,
    ) -> Result<Page<ServiceOwner>, AccessError> {
        let owners = self
            .store
            .service_owners(page.after(), page.size() + 1)
            .await?;
        Ok(page.page(owners, |owner| owner.org_code.to_string()))
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

    /// One resource.
    pub async fn resource(&self, id: &ResourceId) -> Result<ResourceRecord, AccessError> {
        self.store
            .resource(id)
            .await?
            .ok_or_else(|| no_resource(id))
    }

    /// One page of resources, by identifier.
    pub async fn list_resources(
        &self,
        page: PageRequest<'_>,
    ) -> Result<Page<ResourceRecord>, AccessError> {
        let resources = self.store.resources(page.after(), page.size() + 1).await?;
        Ok(page.page(resources, |record| record.resource.identifier.to_string()))
    }

    /// Creates a resource owned by the caller's service owner.
    pub async fn create_resource(
        &self,
        caller: &Caller,
        draft: ResourceDraft,
        if_match: u64,
    ) -> Result<ResourceRecord, AccessError> {
        require_scope(caller, &[RESOURCE_WRITE])?;
        let owner = self.service_owner_of(caller).await?;
        check_if_match(if_match, None)?;
        let now = self.clock.unix();
        let record = ResourceRecord {
            resource: draft.owned_by(&owner)?,
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
            Inserted::AlreadyExists => Err(AccessError::Conflict(format!(
                "a resource {id} already exists"
            ))),
        }
    }

    /// Replaces a resource the caller owns.
    pub async fn update_resource(
        &self,
        caller: &Caller,
        draft: ResourceDraft,
        if_match: u64,
    ) -> Result<ResourceRecord, AccessError> {
        require_scope(caller, &[RESOURCE_WRITE])?;
        let current = self.resource(draft.identifier()).await?;
        let owner = self
            .require_owner(caller, &current.resource.has_competent_authority.orgcode)
            .await?;
        check_if_match(if_match, Some(current.version))?;
        let now = self.clock.unix();
        let record = ResourceRecord {
            resource: draft.owned_by(&owner)?,
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
        self.applied(written, if_match)?;
        Ok(record)
    }

    /// Deletes a resource the caller owns, with its policy and list connections.
    pub async fn delete_resource(
        &self,
        caller: &Caller,
        id: &ResourceId,
        if_match: u64,
    ) -> Result<(), AccessError> {
        require_scope(caller, &[RESOURCE_WRITE])?;
        let current = self.resource(id).await?;
        self.require_owner(caller, &current.resource.has_competent_authority.orgcode)
            .await?;
        check_if_match(if_match, Some(current.version))?;
        let notice = notice(
            resource_change(id, ResourceChange::Deleted),
            self.clock.unix(),
        );
        let written = self
            .store
            .delete_resource(id, current.version, &notice)
            .await?;
        self.applied(written, if_match)?;
        tracing::info!(resource = %id, "resource deleted");
        Ok(())
    }

    /// A resource's policy (public, like the resource).
    pub async fn policy(&self, id: &ResourceId) -> Result<PolicyRecord, AccessError> {
        self.resource(id).await?;
        self.store
            .policy(id)
            .await?
            .ok_or_else(|| AccessError::NotFound(format!("resource {id} has no policy")))
    }

    /// Writes the policy of a resource the caller owns.
    pub async fn put_policy(
        &self,
        caller: &Caller,
        id: &ResourceId,
        policy: Policy,
        if_match: u64,
    ) -> Result<PolicyRecord, AccessError> {
        require_scope(caller, &[RESOURCE_WRITE])?;
        let resource = self.resource(id).await?;
        self.require_owner(caller, &resource.resource.has_competent_authority.orgcode)
            .await?;
        let current = self.store.policy(id).await?.map(|record| record.version);
        check_if_match(if_match, current)?;
        let now = self.clock.unix();
        let record = PolicyRecord {
            resource: id.clone(),
            policy,
            version: current.unwrap_or(0) + 1,
            updated_at: now,
        };
        let notice = notice(resource_change(id, ResourceChange::Policy), now);
        let written = self.store.put_policy(&record, current, &notice).await?;
        self.applied(written, if_match)?;
        Ok(record)
    }

    // --- access lists (owner only) ---

    /// One page of the owner's lists, optionally only those connected to `resource`.
    pub async fn list_access_lists(
        &self,
        caller: &Caller,
        owner: &OrgCode,
        resource: Option<&ResourceId>,
        with_connections: bool,
        page: PageRequest<'_>,
    ) -> Result<Page<AccessListRecord>, AccessError> {
        self.require_list_reader(caller, owner).await?;
        let lists = self
            .store
            .access_lists(
                owner,
                resource,
                page.after(),
                page.size() + 1,
                with_connections,
            )
            .await?;
        Ok(page.page(lists, |list| list.identifier.to_string()))
    }

    /// One list with its connections.
    pub async fn access_list(
        &self,
        caller: &Caller,
        owner: &OrgCode,
        id: &ListId,
    ) -> Result<AccessListRecord, AccessError> {
        self.require_list_reader(caller, owner).await?;
        self.load_list(owner, id).await
    }

    /// Creates a list, or changes its name and description.
    pub async fn upsert_access_list(
        &self,
        caller: &Caller,
        owner: &OrgCode,
        id: &ListId,
        details: ListDetails,
        if_match: u64,
    ) -> Result<AccessListRecord, AccessError> {
        require_scope(caller, &[ACCESS_LIST_WRITE])?;
        self.require_owner(caller, owner).await?;
        let current = self.store.access_list(owner, id).await?;
        check_if_match(if_match, current.as_ref().map(|list| list.version))?;
        let now = self.clock.unix();
        let notice = notice(list_change(owner, id, ListChange::Upserted), now);
        match current {
            None => {
                let record = AccessListRecord {
                    owner: owner.clone(),
                    identifier: id.clone(),
                    details,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                    connections: Vec::new(),
                };
                match self.store.insert_access_list(&record, &notice).await? {
                    Inserted::New => self.cache.invalidate_all(),
                    Inserted::AlreadyExists => return Err(concurrent()),
                }
            }
            Some(current) => {
                let write = list_write(&current, now);
                let written = self
                    .store
                    .update_access_list(write, &details, &notice)
                    .await?;
                self.applied(written, if_match)?;
            }
        }
        self.load_list(owner, id).await
    }

    /// Deletes a list with its members and connections; answers the list as it was.
    pub async fn delete_access_list(
        &self,
        caller: &Caller,
        owner: &OrgCode,
        id: &ListId,
        if_match: u64,
    ) -> Result<AccessListRecord, AccessError> {
        let (current, now) = self.list_for_write(caller, owner, id, if_match).await?;
        let notice = notice(list_change(owner, id, ListChange::Deleted), now);
        let written = self
            .store
            .delete_access_list(list_write(&current, now), &notice)
            .await?;
        self.applied(written, if_match)?;
        Ok(current)
    }

    /// One page of a list's members, with the list's version.
    pub async fn members(
        &self,
        caller: &Caller,
        owner: &OrgCode,
        id: &ListId,
        page: PageRequest<'_>,
    ) -> Result<(Page<MemberRecord>, i64), AccessError> {
        self.require_list_reader(caller, owner).await?;
        let list = self.load_list(owner, id).await?;
        let members = self
            .store
            .members(owner, id, page.after(), page.size() + 1)
            .await?;
        Ok((
            page.page(members, |member| member.party.to_string()),
            list.version,
        ))
    }

    /// Adds, removes or replaces members; answers the first page of members after the change.
    pub async fn change_members(
        &self,
        caller: &Caller,
        owner: &OrgCode,
        id: &ListId,
        change: MemberChange,
        parties: &[PartyUrn],
        if_match: u64,
    ) -> Result<(Page<MemberRecord>, i64), AccessError> {
        let (current, now) = self.list_for_write(caller, owner, id, if_match).await?;
        let notice = notice(list_change(owner, id, ListChange::Members), now);
        let written = self
            .store
            .change_members(list_write(&current, now), change, parties, &notice)
            .await?;
        self.applied(written, if_match)?;
        self.members(caller, owner, id, PageRequest { token: "", size: 0 })
            .await
    }

    /// Connects a list to a resource (both the caller's), or replaces its action filters.
    pub async fn connect(
        &self,
        caller: &Caller,
        owner: &OrgCode,
        id: &ListId,
        resource: &ResourceId,
        action_filters: Vec<Action>,
        if_match: u64,
    ) -> Result<(ConnectionRecord, i64), AccessError> {
        let (current, now) = self.list_for_write(caller, owner, id, if_match).await?;
        let target = self.resource(resource).await?;
        if target.resource.has_competent_authority.orgcode != *owner {
            return Err(AccessError::Forbidden(format!(
                "resource {resource} belongs to another service owner"
            )));
        }
        let created_at = current
            .connections
            .iter()
            .find(|c| c.resource == *resource)
            .map_or(now, |c| c.created_at);
        let connection = ConnectionRecord {
            resource: resource.clone(),
            action_filters,
            created_at,
            modified_at: now,
        };
        let notice = notice(
            list_change(owner, id, ListChange::Connected(resource.clone())),
            now,
        );
        let written = self
            .store
            .connect(list_write(&current, now), &connection, &notice)
            .await?;
        self.applied(written, if_match)?;
        Ok((connection, current.version + 1))
    }

    /// Removes a list's connection to a resource; answers the connection as it was.
    pub async fn disconnect(
        &self,
        caller: &Caller,
        owner: &OrgCode,
        id: &ListId,
        resource: &ResourceId,
        if_match: u64,
    ) -> Result<(ConnectionRecord, i64), AccessError> {
        let (current, now) = self.list_for_write(caller, owner, id, if_match).await?;
        let connection = current
            .connections
            .iter()
            .find(|c| c.resource == *resource)
            .cloned()
            .ok_or_else(|| {
                AccessError::NotFound(format!(
                    "access list {owner}/{id} is not connected to resource {resource}"
                ))
            })?;
        let notice = notice(
            list_change(owner, id, ListChange::Disconnected(resource.clone())),
            now,
        );
        let written = self
            .store
            .disconnect(list_write(&current, now), resource, &notice)
            .await?;
        self.applied(written, if_match)?;
        Ok((connection, current.version + 1))
    }

    // --- helpers ---

    /// Flushes the cache after an applied write; a stale one is a failed precondition when the
    /// caller gave one, else a conflict with a concurrent writer.
    fn applied(&self, written: Written, if_match: u64) -> Result<(), AccessError> {
        match written {
            Written::Applied => {
                self.cache.invalidate_all();
                Ok(())
            }
            Written::Stale if if_match != 0 => Err(AccessError::Stale),
            Written::Stale => Err(concurrent()),
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

    /// The caller's service owner, when it is `owner`; 403 otherwise.
    async fn require_owner(
        &self,
        caller: &Caller,
        owner: &OrgCode,
    ) -> Result<ServiceOwner, AccessError> {
        let own = self.service_owner_of(caller).await?;
        if own.org_code != *owner {
            return Err(AccessError::Forbidden(format!(
                "only service owner {owner} may do this"
            )));
        }
        Ok(own)
    }

    async fn require_list_reader(
        &self,
        caller: &Caller,
        owner: &OrgCode,
    ) -> Result<(), AccessError> {
        require_scope(caller, &[ACCESS_LIST_READ, ACCESS_LIST_WRITE])?;
        self.require_owner(caller, owner).await.map(drop)
    }

    async fn load_list(
        &self,
        owner: &OrgCode,
        id: &ListId,
    ) -> Result<AccessListRecord, AccessError> {
        self.store
            .access_list(owner, id)
            .await?
            .ok_or_else(|| AccessError::NotFound(format!("no access list {owner}/{id}")))
    }

    /// The checks of every write to an existing list: scope, owner, existence, `If-Match`.
    async fn list_for_write(
        &self,
        caller: &Caller,
        owner: &OrgCode,
        id: &ListId,
        if_match: u64,
    ) -> Result<(AccessListRecord, i64), AccessError> {
        require_scope(caller, &[ACCESS_LIST_WRITE])?;
        self.require_owner(caller, owner).await?;
        let current = self.load_list(owner, id).await?;
        check_if_match(if_match, Some(current.version))?;
        Ok((current, self.clock.unix()))
    }
}

/// 403 unless the caller has one of `scopes` (the first is named in the answer).
fn require_scope(caller: &Caller, scopes: &[&'static str]) -> Result<(), AccessError> {
    if scopes.iter().any(|scope| caller.has_scope(scope)) {
        return Ok(());
    }
    Err(AccessError::InsufficientScope(scopes[0]))
}

/// `If-Match` (0 = none) must name the current version; nothing matches an absent entity.
fn check_if_match(if_match: u64, current: Option<i64>) -> Result<(), AccessError> {
    let matches = current.and_then(|v| u64::try_from(v).ok()) == Some(if_match);
    if if_match != 0 && !matches {
        return Err(AccessError::Stale);
    }
    Ok(())
}

fn concurrent() -> AccessError {
    AccessError::Conflict("changed by another request meanwhile; try again".into())
}

fn no_resource(id: &ResourceId) -> AccessError {
    AccessError::NotFound(format!("no resource {id}"))
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
    fn if_match() {
        assert!(check_if_match(0, None).is_ok());
        assert!(check_if_match(0, Some(4)).is_ok());
        assert!(check_if_match(4, Some(4)).is_ok());
        assert!(matches!(
            check_if_match(3, Some(4)),
            Err(AccessError::Stale)
        ));
        assert!(matches!(check_if_match(1, None), Err(AccessError::Stale)));
    }

    #[test]
    fn pages() {
        let page = PageRequest { token: "", size: 2 };
        let full = page.page(vec![1, 2, 3], ToString::to_string);
        assert_eq!((full.items, full.next), (vec![1, 2], Some("2".into())));
        let last = page.page(vec![1, 2], ToString::to_string);
        assert_eq!((last.items, last.next), (vec![1, 2], None));
        assert_eq!(PageRequest { token: "", size: 0 }.size(), DEFAULT_PAGE_SIZE);
        assert_eq!(
            PageRequest {
                token: "",
                size: 5000
            }
            .size(),
            MAX_PAGE_SIZE
        );
    }
}
