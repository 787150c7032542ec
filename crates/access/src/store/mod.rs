//! Persistence of the access registry: one trait, implemented for PostgreSQL and SQLite.
//!
//! Both implementations share their SQL (see [`sql`]): times are Unix seconds, JSON is TEXT and
//! parameters are written `$n`, which both drivers accept, so the two backends cannot drift
//! apart. The store knows nothing of validation or ownership; it stores what the service has
//! already checked. Every write commits its outbox row in the same transaction, and versioned
//! writes are compare-and-swap on the version the service read ([`Written::Stale`] when another
//! writer got there first).

mod outbox;
mod sql;

pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use broker_common::identity::OrgNumber;

pub use outbox::StoreOutbox;
pub use postgres::PostgresAccessStore;
pub use sqlite::SqliteAccessStore;

use crate::domain::access_list::{ListDetails, MemberChange};
use crate::domain::decision::Snapshot;
use crate::domain::ids::{ListId, OrgCode, PartyUrn, ResourceId};
use crate::domain::policy::Policy;
use crate::domain::resource::{Resource, ServiceOwner};

/// A stored resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    /// The resource.
    pub resource: Resource,
    /// Its version, from 1.
    pub version: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A stored policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// The resource it governs.
    pub resource: ResourceId,
    /// The rules.
    pub policy: Policy,
    /// Its version, from 1.
    pub version: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A list's connection to a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// The resource.
    pub resource: ResourceId,
    /// Actions the connection admits, as the owner wrote them; empty means every action.
    pub action_filters: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub modified_at: i64,
}

/// A stored access list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessListRecord {
    /// The owner's org code.
    pub owner: OrgCode,
    /// Identifier, unique per owner.
    pub identifier: ListId,
    /// Name and description.
    pub details: ListDetails,
    /// Its version, from 1; bumped by member and connection changes too.
    pub version: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Its resource connections, by resource (only those asked for).
    pub connections: Vec<ConnectionRecord>,
}

/// A member of an access list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// The party.
    pub party: PartyUrn,
    /// Unix seconds since it has been a member.
    pub since: i64,
}

/// A party's membership of a list connected to a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceMembership {
    /// The resource the list is connected to.
    pub resource: ResourceId,
    /// Unix seconds since the party has been a member of the list.
    pub since: i64,
    /// The connection's action filters; empty means every action.
    pub action_filters: Vec<String>,
}

/// A change notice waiting for the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    /// UUIDv7, so ids sort by creation.
    pub id: String,
    /// Bus routing key.
    pub routing_key: String,
    /// JSON payload.
    pub payload: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The W3C `traceparent` of the request that caused it, when traced.
    pub traceparent: Option<String>,
}

/// Which access list a write changes, at which version it was read, and when.
#[derive(Debug, Clone, Copy)]
pub struct ListWrite<'a> {
    /// Owner.
    pub owner: &'a OrgCode,
    /// Identifier.
    pub identifier: &'a ListId,
    /// The version the service read; the write bumps it by one.
    pub expected: i64,
    /// Unix seconds.
    pub now: i64,
}

/// A store failure; never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Outcome of inserting a row with a natural key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The row is new.
    New,
    /// A row with that key already existed; nothing was changed.
    AlreadyExists,
}

/// Outcome of a versioned write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Applied, with its outbox row.
    Applied,
    /// The entity was still at the version read, but the write would change nothing (members
    /// already there, or already gone): nothing was written and the version stays, as Altinn's
    /// aggregates save no event then.
    Unchanged,
    /// The entity changed (or vanished) since it was read; nothing was changed.
    Stale,
}

/// Outcome of deleting a service owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerDeleted {
    /// Deleted.
    Deleted,
    /// There was none.
    NotFound,
    /// It still owns resources or access lists; nothing was changed.
    InUse,
}

/// What the access registry persists.
#[async_trait]
pub trait AccessStore: Send + Sync + 'static {
    /// Registers a service owner; [`Inserted::AlreadyExists`] when its org code or number is taken.
    async fn insert_service_owner(
        &self,
        owner: &ServiceOwner,
        now: i64,
    ) -> Result<Inserted, StoreError>;
    /// Service owners ordered by org code, after `after`, at most `limit`.
    async fn service_owners(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ServiceOwner>, StoreError>;
    /// The service owner with this org code.
    async fn service_owner(&self, org_code: &OrgCode) -> Result<Option<ServiceOwner>, StoreError>;
    /// The service owner that is this organisation.
    async fn service_owner_by_org(
        &self,
        org_number: OrgNumber,
    ) -> Result<Option<ServiceOwner>, StoreError>;
    /// Deletes a service owner that owns nothing.
    async fn delete_service_owner(&self, org_code: &OrgCode) -> Result<OwnerDeleted, StoreError>;

    /// One resource.
    async fn resource(&self, id: &ResourceId) -> Result<Option<ResourceRecord>, StoreError>;
    /// Resources ordered by identifier, after `after`, at most `limit`.
    async fn resources(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ResourceRecord>, StoreError>;
    /// Inserts a resource.
    async fn insert_resource(
        &self,
        record: &ResourceRecord,
        outbox: &OutboxRecord,
    ) -> Result<Inserted, StoreError>;
    /// Replaces a resource still at `expected`; `record.version` is the new version.
    async fn update_resource(
        &self,
        record: &ResourceRecord,
        expected: i64,
        outbox: &OutboxRecord,
    ) -> Result<Written, StoreError>;
    /// Deletes a resource still at `expected`, with its policy and list connections.
    async fn delete_resource(
        &self,
        id: &ResourceId,
        expected: i64,
        outbox: &OutboxRecord,
    ) -> Result<Written, StoreError>;

    /// A resource's policy.
    async fn policy(&self, id: &ResourceId) -> Result<Option<PolicyRecord>, StoreError>;
    /// Writes a policy whose current version is `expected` (`None`: it has none yet) while its
    /// resource exists; `record.version` is the new version.
    async fn put_policy(
        &self,
        record: &PolicyRecord,
        expected: Option<i64>,
        outbox: &OutboxRecord,
    ) -> Result<Written, StoreError>;

    /// One access list with its connections.
    async fn access_list(
        &self,
        owner: &OrgCode,
        id: &ListId,
    ) -> Result<Option<AccessListRecord>, StoreError>;
    /// An owner's lists ordered by identifier, after `after`, at most `limit`; each with its
    /// connection to `connected_to` (if it has one) when that is given, else with none.
    async fn access_lists(
        &self,
        owner: &OrgCode,
        after: Option<&str>,
        limit: u32,
        connected_to: Option<&ResourceId>,
    ) -> Result<Vec<AccessListRecord>, StoreError>;
    /// Inserts a list (its connections are ignored).
    async fn insert_access_list(
        &self,
        record: &AccessListRecord,
        outbox: &OutboxRecord,
    ) -> Result<Inserted, StoreError>;
    /// Changes a list's name and description.
    async fn update_access_list(
        &self,
        write: ListWrite<'_>,
        details: &ListDetails,
        outbox: &OutboxRecord,
    ) -> Result<Written, StoreError>;
    /// Deletes a list with its members and connections.
    async fn delete_access_list(
        &self,
        write: ListWrite<'_>,
        outbox: &OutboxRecord,
    ) -> Result<Written, StoreError>;
    /// A list's members ordered by party URN, after `after`, at most `limit`.
    async fn members(
        &self,
        owner: &OrgCode,
        id: &ListId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MemberRecord>, StoreError>;
    /// Adds, removes or replaces members; members that stay keep their `since`.
    /// [`Written::Unchanged`] when no member would come or go.
    async fn change_members(
        &self,
        write: ListWrite<'_>,
        change: MemberChange,
        parties: &[PartyUrn],
        outbox: &OutboxRecord,
    ) -> Result<Written, StoreError>;
    /// Connects a list to a resource that exists, or replaces the connection's action filters
    /// (keeping its `created_at`).
    async fn connect(
        &self,
        write: ListWrite<'_>,
        connection: &ConnectionRecord,
        outbox: &OutboxRecord,
    ) -> Result<Written, StoreError>;
    /// Removes a connection that exists.
    async fn disconnect(
        &self,
        write: ListWrite<'_>,
        resource: &ResourceId,
        outbox: &OutboxRecord,
    ) -> Result<Written, StoreError>;

    /// The connections of every list `party` is a member of (of any owner), only those to
    /// `resource` when given, by resource.
    async fn memberships(
        &self,
        party: &PartyUrn,
        resource: Option<&ResourceId>,
    ) -> Result<Vec<ResourceMembership>, StoreError>;

    /// Everything a decision about `resource` for `party` needs.
    async fn snapshot(
        &self,
        resource: &ResourceId,
        party: &PartyUrn,
    ) -> Result<Snapshot, StoreError>;

    /// Claims up to `limit` unpublished outbox rows, oldest first, leasing them for
    /// [`OUTBOX_LEASE_SECONDS`] so another relay skips them meanwhile (on PostgreSQL the claim
    /// is `FOR UPDATE SKIP LOCKED`, so concurrent claims never wait for or share rows). A relay
    /// that dies loses its lease and the rows are claimed again: publishing is at least once.
    async fn claim_unpublished_outbox(
        &self,
        limit: u32,
        now: i64,
    ) -> Result<Vec<OutboxRecord>, StoreError>;
    /// Marks rows as published; they are never claimed again.
    async fn mark_outbox_published(&self, ids: &[String], now: i64) -> Result<u64, StoreError>;
}

/// How long a claim on outbox rows lasts.
pub const OUTBOX_LEASE_SECONDS: i64 = 30;
