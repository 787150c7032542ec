//! The SQL of [`AccessStore`](super::AccessStore), written once and instantiated for each
//! database by [`access_store_impl!`]. Every statement is plain SQL valid on both PostgreSQL and
//! SQLite, except the outbox claim, which each backend passes in (PostgreSQL locks the rows it
//! claims; SQLite has a single writer and needs no lock).

use std::fmt::Display;

use super::{
    AccessListRecord, ConnectionRecord, MemberRecord, OutboxRecord, PolicyRecord,
    ResourceMembership, ResourceRecord, StoreError,
};
use crate::domain::access_list::ListDetails;
use crate::domain::decision::{Membership, ResourceState};
use crate::domain::ids::{AccessListUrn, ListId, OrgCode, PartyUrn, ResourceId};
use crate::domain::resource::{AccessListMode, ServiceOwner, is_active};

pub(super) const INSERT_OWNER: &str =
    "INSERT INTO service_owners (org_code, org_number, name, created_at)
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
pub(super) const SELECT_OWNERS: &str = "SELECT org_code, org_number, name FROM service_owners
     WHERE org_code > $1 ORDER BY org_code LIMIT $2";
pub(super) const SELECT_OWNER_BY_CODE: &str =
    "SELECT org_code, org_number, name FROM service_owners WHERE org_code = $1";
pub(super) const SELECT_OWNER_BY_ORG: &str =
    "SELECT org_code, org_number, name FROM service_owners WHERE org_number = $1";
/// Deletes an owner only while it owns nothing.
pub(super) const DELETE_UNUSED_OWNER: &str = "DELETE FROM service_owners WHERE org_code = $1
     AND NOT EXISTS (SELECT 1 FROM resources WHERE owner_code = $1)
     AND NOT EXISTS (SELECT 1 FROM access_lists WHERE owner = $1)";
pub(super) const OWNER_EXISTS: &str = "SELECT 1 FROM service_owners WHERE org_code = $1";

pub(super) const SELECT_RESOURCE: &str =
    "SELECT document, version, created_at, updated_at FROM resources WHERE identifier = $1";
pub(super) const SELECT_RESOURCE_DOCUMENT: &str =
    "SELECT document FROM resources WHERE identifier = $1";
pub(super) const SELECT_RESOURCES: &str =
    "SELECT document, version, created_at, updated_at FROM resources
     WHERE identifier > $1 ORDER BY identifier LIMIT $2";
pub(super) const RESOURCE_EXISTS: &str = "SELECT 1 FROM resources WHERE identifier = $1";
pub(super) const INSERT_RESOURCE: &str =
    "INSERT INTO resources (identifier, owner_code, document, version, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (identifier) DO NOTHING";
pub(super) const UPDATE_RESOURCE: &str =
    "UPDATE resources SET owner_code = $2, document = $3, version = $4, updated_at = $5
     WHERE identifier = $1 AND version = $6";
pub(super) const DELETE_RESOURCE: &str =
    "DELETE FROM resources WHERE identifier = $1 AND version = $2";

pub(super) const SELECT_POLICY: &str =
    "SELECT rules, version, updated_at FROM policies WHERE resource_identifier = $1";
/// Inserts only while the resource exists: one statement, so no read lock is upgraded.
pub(super) const INSERT_POLICY: &str =
    "INSERT INTO policies (resource_identifier, rules, version, updated_at)
     SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM resources WHERE identifier = $1)
     ON CONFLICT (resource_identifier) DO NOTHING";
pub(super) const UPDATE_POLICY: &str =
    "UPDATE policies SET rules = $2, version = $3, updated_at = $4
     WHERE resource_identifier = $1 AND version = $5";

pub(super) const SELECT_LIST: &str =
    "SELECT owner, identifier, name, description, version, created_at, updated_at
     FROM access_lists WHERE owner = $1 AND identifier = $2";
pub(super) const SELECT_LISTS: &str =
    "SELECT owner, identifier, name, description, version, created_at, updated_at
     FROM access_lists WHERE owner = $1 AND identifier > $2 ORDER BY identifier LIMIT $3";
pub(super) const SELECT_LIST_CONNECTIONS: &str =
    "SELECT list_identifier, resource_identifier, action_filters, created_at, modified_at
     FROM list_connections WHERE owner = $1 AND list_identifier = $2 ORDER BY resource_identifier";
/// The connections to resource `$4` of a page of lists: identifiers in `($2, $3]`.
pub(super) const SELECT_PAGE_CONNECTIONS: &str =
    "SELECT list_identifier, resource_identifier, action_filters, created_at, modified_at
     FROM list_connections WHERE owner = $1 AND list_identifier > $2 AND list_identifier <= $3
       AND resource_identifier = $4
     ORDER BY list_identifier";
pub(super) const INSERT_LIST: &str =
    "INSERT INTO access_lists (owner, identifier, name, description, version, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (owner, identifier) DO NOTHING";
/// Every list write starts here: the version check and bump in one statement.
pub(super) const BUMP_LIST: &str = "UPDATE access_lists SET version = version + 1, updated_at = $4
     WHERE owner = $1 AND identifier = $2 AND version = $3";
pub(super) const RENAME_LIST: &str =
    "UPDATE access_lists SET name = $3, description = $4 WHERE owner = $1 AND identifier = $2";
pub(super) const DELETE_LIST: &str =
    "DELETE FROM access_lists WHERE owner = $1 AND identifier = $2";

pub(super) const SELECT_MEMBERS: &str = "SELECT party, since FROM list_members
     WHERE owner = $1 AND list_identifier = $2 AND party > $3 ORDER BY party LIMIT $4";
pub(super) const SELECT_MEMBER_PARTIES: &str =
    "SELECT party FROM list_members WHERE owner = $1 AND list_identifier = $2";
pub(super) const INSERT_MEMBER: &str =
    "INSERT INTO list_members (owner, list_identifier, party, since) VALUES ($1, $2, $3, $4)
     ON CONFLICT (owner, list_identifier, party) DO NOTHING";
pub(super) const DELETE_MEMBER: &str =
    "DELETE FROM list_members WHERE owner = $1 AND list_identifier = $2 AND party = $3";

pub(super) const UPSERT_CONNECTION: &str = "INSERT INTO list_connections
     (owner, list_identifier, resource_identifier, action_filters, created_at, modified_at)
     VALUES ($1, $2, $3, $4, $5, $5)
     ON CONFLICT (owner, list_identifier, resource_identifier)
     DO UPDATE SET action_filters = excluded.action_filters, modified_at = excluded.modified_at";
pub(super) const DELETE_CONNECTION: &str = "DELETE FROM list_connections
     WHERE owner = $1 AND list_identifier = $2 AND resource_identifier = $3";

/// The party's memberships, each with its list's connection to the resource `$2`, if any.
pub(super) const SELECT_MEMBERSHIPS: &str =
    "SELECT m.owner, m.list_identifier, c.action_filters FROM list_members m
     LEFT JOIN list_connections c ON c.owner = m.owner AND c.list_identifier = m.list_identifier
       AND c.resource_identifier = $2
     WHERE m.party = $1";

/// The party's lists' connections, to resource `$2` only unless it is empty.
pub(super) const SELECT_RESOURCE_MEMBERSHIPS: &str =
    "SELECT c.resource_identifier, m.since, c.action_filters FROM list_members m
     JOIN list_connections c ON c.owner = m.owner AND c.list_identifier = m.list_identifier
     WHERE m.party = $1 AND ($2 = '' OR c.resource_identifier = $2)
     ORDER BY c.resource_identifier, m.owner, m.list_identifier";

/// A stored value that must parse, or the row is corrupt.
fn stored<T, E: Display>(what: &str, result: Result<T, E>) -> Result<T, StoreError> {
    result.map_err(|error| StoreError::Corrupt(format!("{what}: {error}")))
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    stored("encoding JSON", serde_json::to_string(value))
}

pub(super) type OwnerRow = (String, String, String);

pub(super) fn owner_from_row(
    (org_code, org_number, name): OwnerRow,
) -> Result<ServiceOwner, StoreError> {
    Ok(ServiceOwner {
        org_number: stored("service owner org number", org_number.parse())?,
        org_code: stored("service owner org code", OrgCode::parse(&org_code))?,
        name,
    })
}

pub(super) type ResourceRow = (String, i64, i64, i64);

pub(super) fn resource_from_row(
    (document, version, created_at, updated_at): ResourceRow,
) -> Result<ResourceRecord, StoreError> {
    Ok(ResourceRecord {
        resource: stored("resource document", serde_json::from_str(&document))?,
        version,
        created_at,
        updated_at,
    })
}

pub(super) type PolicyRow = (String, i64, i64);

pub(super) fn policy_from_row(
    resource: &ResourceId,
    (rules, version, updated_at): PolicyRow,
) -> Result<PolicyRecord, StoreError> {
    Ok(PolicyRecord {
        resource: resource.clone(),
        policy: stored("policy rules", serde_json::from_str(&rules))?,
        version,
        updated_at,
    })
}

pub(super) type ListRow = (String, String, String, String, i64, i64, i64);

pub(super) fn list_from_row(
    (owner, identifier, name, description, version, created_at, updated_at): ListRow,
) -> Result<AccessListRecord, StoreError> {
    Ok(AccessListRecord {
        owner: stored("list owner", OrgCode::parse(&owner))?,
        identifier: stored("list identifier", ListId::parse(&identifier))?,
        details: ListDetails { name, description },
        version,
        created_at,
        updated_at,
        connections: Vec::new(),
    })
}

pub(super) type ConnectionRow = (String, String, String, i64, i64);

/// A connection and the identifier of its list.
pub(super) fn connection_from_row(
    (list, resource, filters, created_at, modified_at): ConnectionRow,
) -> Result<(String, ConnectionRecord), StoreError> {
    Ok((
        list,
        ConnectionRecord {
            resource: stored("connected resource", ResourceId::parse(&resource))?,
            action_filters: stored("action filters", serde_json::from_str(&filters))?,
            created_at,
            modified_at,
        },
    ))
}

/// Hands each list its connections; both come ordered by list identifier.
pub(super) fn attach_connections(
    lists: &mut [AccessListRecord],
    connections: Vec<ConnectionRow>,
) -> Result<(), StoreError> {
    for row in connections {
        let (list, connection) = connection_from_row(row)?;
        if let Some(record) = lists.iter_mut().find(|l| l.identifier.as_str() == list) {
            record.connections.push(connection);
        }
    }
    Ok(())
}

pub(super) fn member_from_row((party, since): (String, i64)) -> Result<MemberRecord, StoreError> {
    Ok(MemberRecord {
        party: stored("member party", PartyUrn::parse(&party))?,
        since,
    })
}

/// The members of a stored resource a decision reads; serde skips the rest of the document
/// without building it, which keeps a cold decision cheap however much the owner wrote.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DecisionView {
    #[serde(default)]
    status: Option<String>,
    access_list_mode: AccessListMode,
}

/// What a decision needs of the stored resource `document`.
pub(super) fn resource_state(document: &str) -> Result<ResourceState, StoreError> {
    let view: DecisionView = stored("resource document", serde_json::from_str(document))?;
    Ok(ResourceState {
        active: is_active(view.status.as_deref()),
        access_list_mode: view.access_list_mode,
    })
}

pub(super) fn membership_from_row(
    (owner, list, filters): (String, String, Option<String>),
) -> Result<Membership, StoreError> {
    let connection: Option<Vec<String>> = filters
        .map(|filters| stored("action filters", serde_json::from_str(&filters)))
        .transpose()?;
    Ok(Membership {
        list: AccessListUrn {
            owner: stored("list owner", OrgCode::parse(&owner))?,
            identifier: stored("list identifier", ListId::parse(&list))?,
        },
        connection,
    })
}

pub(super) fn resource_membership_from_row(
    (resource, since, filters): (String, i64, String),
) -> Result<ResourceMembership, StoreError> {
    Ok(ResourceMembership {
        resource: stored("connected resource", ResourceId::parse(&resource))?,
        since,
        action_filters: stored("action filters", serde_json::from_str(&filters))?,
    })
}

/// An outbox row as the claim returns it.
pub(super) type OutboxRow = (String, String, String, i64, Option<String>);

pub(super) fn outbox_from_row(
    (id, routing_key, payload, created_at, traceparent): OutboxRow,
) -> OutboxRecord {
    OutboxRecord {
        id,
        routing_key,
        payload,
        created_at,
        traceparent,
    }
}

/// Implements `AccessStore` for `$store { pool: sqlx::Pool<$db> }`, claiming outbox rows with
/// `$claim`.
macro_rules! access_store_impl {
    ($store:ty, $db:ty, $claim:expr) => {
        impl $store {
            /// Writes the change notice in the caller's transaction.
            async fn write_outbox(
                tx: &mut sqlx::Transaction<'static, $db>,
                outbox: &$crate::store::OutboxRecord,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(broker_common::outbox::sql::INSERT)
                    .bind(&outbox.id)
                    .bind(&outbox.routing_key)
                    .bind(&outbox.payload)
                    .bind(outbox.created_at)
                    .bind(&outbox.traceparent)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Checks and bumps a list's version; false when it moved on or vanished.
            async fn bump_list(
                tx: &mut sqlx::Transaction<'static, $db>,
                write: &$crate::store::ListWrite<'_>,
            ) -> Result<bool, $crate::store::StoreError> {
                let bumped = sqlx::query($crate::store::sql::BUMP_LIST)
                    .bind(write.owner.as_str())
                    .bind(write.identifier.as_str())
                    .bind(write.expected)
                    .bind(write.now)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                Ok(bumped > 0)
            }

            /// Commits a write whose change was applied, with its notice.
            async fn commit(
                mut tx: sqlx::Transaction<'static, $db>,
                outbox: &$crate::store::OutboxRecord,
            ) -> Result<$crate::store::Written, $crate::store::StoreError> {
                Self::write_outbox(&mut tx, outbox).await?;
                tx.commit().await?;
                Ok($crate::store::Written::Applied)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::AccessStore for $store {
            async fn insert_service_owner(
                &self,
                owner: &$crate::domain::resource::ServiceOwner,
                now: i64,
            ) -> Result<$crate::store::Inserted, $crate::store::StoreError> {
                let inserted = sqlx::query($crate::store::sql::INSERT_OWNER)
                    .bind(owner.org_code.as_str())
                    .bind(owner.org_number.to_string())
                    .bind(&owner.name)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(if inserted == 0 {
                    $crate::store::Inserted::AlreadyExists
                } else {
                    $crate::store::Inserted::New
                })
            }

            async fn service_owners(
                &self,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<$crate::domain::resource::ServiceOwner>, $crate::store::StoreError>
            {
                use $crate::store::sql::*;
                sqlx::query_as::<_, OwnerRow>(SELECT_OWNERS)
                    .bind(after.unwrap_or(""))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(owner_from_row)
                    .collect()
            }

            async fn service_owner(
                &self,
                org_code: &$crate::domain::ids::OrgCode,
            ) -> Result<Option<$crate::domain::resource::ServiceOwner>, $crate::store::StoreError>
            {
                use $crate::store::sql::*;
                sqlx::query_as::<_, OwnerRow>(SELECT_OWNER_BY_CODE)
                    .bind(org_code.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(owner_from_row)
                    .transpose()
            }

            async fn service_owner_by_org(
                &self,
                org_number: broker_common::identity::OrgNumber,
            ) -> Result<Option<$crate::domain::resource::ServiceOwner>, $crate::store::StoreError>
            {
                use $crate::store::sql::*;
                sqlx::query_as::<_, OwnerRow>(SELECT_OWNER_BY_ORG)
                    .bind(org_number.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(owner_from_row)
                    .transpose()
            }

            async fn delete_service_owner(
                &self,
                org_code: &$crate::domain::ids::OrgCode,
            ) -> Result<$crate::store::OwnerDeleted, $crate::store::StoreError> {
                use $crate::store::sql::*;
                let deleted = sqlx::query(DELETE_UNUSED_OWNER)
                    .bind(org_code.as_str())
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if deleted > 0 {
                    return Ok($crate::store::OwnerDeleted::Deleted);
                }
                let exists = sqlx::query(OWNER_EXISTS)
                    .bind(org_code.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .is_some();
                Ok(if exists {
                    $crate::store::OwnerDeleted::InUse
                } else {
                    $crate::store::OwnerDeleted::NotFound
                })
            }

            async fn resource(
                &self,
                id: &$crate::domain::ids::ResourceId,
            ) -> Result<Option<$crate::store::ResourceRecord>, $crate::store::StoreError> {
                use $crate::store::sql::*;
                sqlx::query_as::<_, ResourceRow>(SELECT_RESOURCE)
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(resource_from_row)
                    .transpose()
            }

            async fn resources(
                &self,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<$crate::store::ResourceRecord>, $crate::store::StoreError> {
                use $crate::store::sql::*;
                sqlx::query_as::<_, ResourceRow>(SELECT_RESOURCES)
                    .bind(after.unwrap_or(""))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(resource_from_row)
                    .collect()
            }

            async fn insert_resource(
                &self,
                record: &$crate::store::ResourceRecord,
                outbox: &$crate::store::OutboxRecord,
            ) -> Result<$crate::store::Inserted, $crate::store::StoreError> {
                use $crate::store::sql::*;
                let resource = &record.resource;
                let mut tx = self.pool.begin().await?;
                let inserted = sqlx::query(INSERT_RESOURCE)
                    .bind(resource.identifier.as_str())
                    .bind(resource.has_competent_authority.orgcode.as_str())
                    .bind(json(resource)?)
                    .bind(record.version)
                    .bind(record.created_at)
                    .bind(record.updated_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if inserted == 0 {
                    return Ok($crate::store::Inserted::AlreadyExists);
                }
                Self::commit(tx, outbox).await?;
                Ok($crate::store::Inserted::New)
            }

            async fn update_resource(
                &self,
                record: &$crate::store::ResourceRecord,
                expected: i64,
                outbox: &$crate::store::OutboxRecord,
            ) -> Result<$crate::store::Written, $crate::store::StoreError> {
                use $crate::store::sql::*;
                let resource = &record.resource;
                let mut tx = self.pool.begin().await?;
                let updated = sqlx::query(UPDATE_RESOURCE)
                    .bind(resource.identifier.as_str())
                    .bind(resource.has_competent_authority.orgcode.as_str())
                    .bind(json(resource)?)
                    .bind(record.version)
                    .bind(record.updated_at)
                    .bind(expected)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if updated == 0 {
                    return Ok($crate::store::Written::Stale);
                }
                Self::commit(tx, outbox).await
            }

            async fn delete_resource(
                &self,
                id: &$crate::domain::ids::ResourceId,
                expected: i64,
                outbox: &$crate::store::OutboxRecord,
            ) -> Result<$crate::store::Written, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                // The policy and list connections go with it (ON DELETE CASCADE).
                let deleted = sqlx::query($crate::store::sql::DELETE_RESOURCE)
                    .bind(id.as_str())
                    .bind(expected)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Ok($crate::store::Written::Stale);
                }
                Self::commit(tx, outbox).await
            }

            async fn policy(
                &self,
                id: &$crate::domain::ids::ResourceId,
            ) -> Result<Option<$crate::store::PolicyRecord>, $crate::store::StoreError> {
                use $crate::store::sql::*;
                sqlx::query_as::<_, PolicyRow>(SELECT_POLICY)
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| policy_from_row(id, row))
                    .transpose()
            }

            async fn put_policy(
                &self,
                record: &$crate::store::PolicyRecord,
                expected: Option<i64>,
                outbox: &$crate::store::OutboxRecord,
            ) -> Result<$crate::store::Written, $crate::store::StoreError> {
                use $crate::store::sql::*;
                let mut tx = self.pool.begin().await?;
                let rules = json(&record.policy)?;
                let (statement, expected) = match expected {
                    None => (INSERT_POLICY, None),
                    Some(expected) => (UPDATE_POLICY, Some(expected)),
                };
                let mut query = sqlx::query(statement)
                    .bind(record.resource.as_str())
                    .bind(rules)
                    .bind(record.version)
                    .bind(record.updated_at);
                if let Some(expected) = expected {
                    query = query.bind(expected);
                }
                let written = query.execute(&mut *tx).await?.rows_affected() > 0;
                if !written {
                    return Ok($crate::store::Written::Stale);
                }
                Self::commit(tx, outbox).await
            }

            async fn access_list(
                &self,
                owner: &$crate::domain::ids::OrgCode,
                id: &$crate::domain::ids::ListId,
            ) -> Result<Option<$crate::store::AccessListRecord>, $crate::store::StoreError> {
                use $crate::store::sql::*;
                let Some(row) = sqlx::query_as::<_, ListRow>(SELECT_LIST)
                    .bind(owner.as_str())
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let mut list = [list_from_row(row)?];
                let connections = sqlx::query_as::<_, ConnectionRow>(SELECT_LIST_CONNECTIONS)
                    .bind(owner.as_str())
                    .bind(id.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                attach_connections(&mut list, connections)?;
                let [list] = list;
                Ok(Some(list))
            }

            async fn access_lists(
                &self,
                owner: &$crate::domain::ids::OrgCode,
                after: Option<&str>,
                limit: u32,
                connected_to: Option<&$crate::domain::ids::ResourceId>,
            ) -> Result<Vec<$crate::store::AccessListRecord>, $crate::store::StoreError> {
                use $crate::store::sql::*;
                let after = after.unwrap_or("");
                let mut lists = sqlx::query_as::<_, ListRow>(SELECT_LISTS)
                    .bind(owner.as_str())
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(list_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                if let (Some(last), Some(resource)) = (lists.last(), connected_to) {
                    // One query for the whole page: the connections of lists in (after, last].
                    let connections = sqlx::query_as::<_, ConnectionRow>(SELECT_PAGE_CONNECTIONS)
                        .bind(owner.as_str())
                        .bind(after)
                        .bind(last.identifier.as_str())
                        .bind(resource.as_str())
                        .fetch_all(&self.pool)
                        .await?;
                    attach_connections(&mut lists, connections)?;
                }
                Ok(lists)
            }

            async fn insert_access_list(
                &self,
                record: &$crate::store::AccessListRecord,
                outbox: &$crate::store::OutboxRecord,
            ) -> Result<$crate::store::Inserted, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let inserted = sqlx::query($crate::store::sql::INSERT_LIST)
                    .bind(record.owner.as_str())
                    .bind(record.identifier.as_str())
                    .bind(&record.details.name)
                    .bind(&record.details.description)
                    .bind(record.version)
                    .bind(record.created_at)
                    .bind(record.updated_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if inserted == 0 {
                    return Ok($crate::store::Inserted::AlreadyExists);
                }
                Self::commit(tx, outbox).await?;
                Ok($crate::store::Inserted::New)
            }

            async fn update_access_list(
                &self,
                write: $crate::store::ListWrite<'_>,
                details: &$crate::domain::access_list::ListDetails,
                outbox: &$crate::store::OutboxRecord,
            ) -> Result<$crate::store::Written, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                if !Self::bump_list(&mut tx, &write).await? {
                    return Ok($crate::store::Written::Stale);
                }
                sqlx::query($crate::store::sql::RENAME_LIST)
                    .bind(write.owner.as_str())
                    .bind(write.identifier.as_str())
                    .bind(&details.name)
                    .bind(&details.description)
                    .execute(&mut *tx)
                    .await?;
                Self::commit(tx, outbox).await
            }

            async fn delete_access_list(
                &self,
                write: $crate::store::ListWrite<'_>,
                outbox: &$crate::store::OutboxRecord,
            ) -> Result<$crate::store::Written, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                if !Self::bump_list(&mut tx, &write).await? {
                    return Ok($crate::store::Written::Stale);
                }
                // Members and connections go with it (ON DELETE CASCADE).
                sqlx::query($crate::store::sql::DELETE_LIST)
                    .bind(write.owner.as_str())
                    .bind(write.identifier.as_str())
                    .execute(&mut *tx)
                    .await?;
                Self::commit(tx, outbox).await
            }

            async fn members(
                &self,
                owner: &$crate::domain::ids::OrgCode,
                id: &$crate::domain::ids::ListId,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<$crate::store::MemberRecord>, $crate::store::StoreError> {
                use $crate::store::sql::*;
                sqlx::query_as::<_, (String, i64)>(SELECT_MEMBERS)
                    .bind(owner.as_str())
                    .bind(id.as_str())
                    .bind(after.unwrap_or(""))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(member_from_row)
                    .collect()
            }

            async fn change_members(
                &self,
                write: $crate::store::ListWrite<'_>,
                change: $crate::domain::access_list::MemberChange,
                parties: &[$crate::domain::ids::PartyUrn],
                outbox: &$crate::store::OutboxRecord,
            ) -> Result<$crate::store::Written, $crate::store::StoreError> {
                use $crate::domain::access_list::MemberChange;
                use $crate::store::sql::*;
                let mut tx = self.pool.begin().await?;
                if !Self::bump_list(&mut tx, &write).await? {
                    return Ok($crate::store::Written::Stale);
                }
                let parties: Vec<String> = parties.iter().map(ToString::to_string).collect();
                let (add, remove): (Vec<String>, Vec<String>) = match change {
                    MemberChange::Add => (parties, Vec::new()),
                    MemberChange::Remove => (Vec::new(), parties),
                    MemberChange::Replace => {
                        // Only the difference is written, so members that stay keep `since`.
                        let current: Vec<String> = sqlx::query_scalar(SELECT_MEMBER_PARTIES)
                            .bind(write.owner.as_str())
                            .bind(write.identifier.as_str())
                            .fetch_all(&mut *tx)
                            .await?;
                        let remove = current
                            .iter()
                            .filter(|party| !parties.contains(party))
                            .cloned()
                            .collect();
                        (parties, remove)
                    }
                };
                let mut changed = 0;
                for party in &remove {
                    changed += sqlx::query(DELETE_MEMBER)
                        .bind(write.owner.as_str())
                        .bind(write.identifier.as_str())
                        .bind(party)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                for party in &add {
                    changed += sqlx::query(INSERT_MEMBER)
                        .bind(write.owner.as_str())
                        .bind(write.identifier.as_str())
                        .bind(party)
                        .bind(write.now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                if changed == 0 {
                    // Dropping the transaction rolls the version bump back.
                    return Ok($crate::store::Written::Unchanged);
                }
                Self::commit(tx, outbox).await
            }

            async fn connect(
                &self,
                write: $crate::store::ListWrite<'_>,
                connection: &$crate::store::ConnectionRecord,
                outbox: &$crate::store::OutboxRecord,
            ) -> Result<$crate::store::Written, $crate::store::StoreError> {
                use $crate::store::sql::*;
                let mut tx = self.pool.begin().await?;
                if !Self::bump_list(&mut tx, &write).await? {
                    return Ok($crate::store::Written::Stale);
                }
                let resource_exists = sqlx::query(RESOURCE_EXISTS)
                    .bind(connection.resource.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                if !resource_exists {
                    return Ok($crate::store::Written::Stale);
                }
                sqlx::query(UPSERT_CONNECTION)
                    .bind(write.owner.as_str())
                    .bind(write.identifier.as_str())
                    .bind(connection.resource.as_str())
                    .bind(json(&connection.action_filters)?)
                    .bind(connection.modified_at)
                    .execute(&mut *tx)
                    .await?;
                Self::commit(tx, outbox).await
            }

            async fn disconnect(
                &self,
                write: $crate::store::ListWrite<'_>,
                resource: &$crate::domain::ids::ResourceId,
                outbox: &$crate::store::OutboxRecord,
            ) -> Result<$crate::store::Written, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                if !Self::bump_list(&mut tx, &write).await? {
                    return Ok($crate::store::Written::Stale);
                }
                let deleted = sqlx::query($crate::store::sql::DELETE_CONNECTION)
                    .bind(write.owner.as_str())
                    .bind(write.identifier.as_str())
                    .bind(resource.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Ok($crate::store::Written::Stale);
                }
                Self::commit(tx, outbox).await
            }

            async fn memberships(
                &self,
                party: &$crate::domain::ids::PartyUrn,
                resource: Option<&$crate::domain::ids::ResourceId>,
            ) -> Result<Vec<$crate::store::ResourceMembership>, $crate::store::StoreError> {
                use $crate::store::sql::*;
                sqlx::query_as::<_, (String, i64, String)>(SELECT_RESOURCE_MEMBERSHIPS)
                    .bind(party.to_string())
                    .bind(resource.map_or("", |resource| resource.as_str()))
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(resource_membership_from_row)
                    .collect()
            }

            async fn snapshot(
                &self,
                resource: &$crate::domain::ids::ResourceId,
                party: &$crate::domain::ids::PartyUrn,
            ) -> Result<$crate::domain::decision::Snapshot, $crate::store::StoreError> {
                use $crate::domain::decision::Snapshot;
                use $crate::store::sql::*;
                let Some(document) = sqlx::query_scalar::<_, String>(SELECT_RESOURCE_DOCUMENT)
                    .bind(resource.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(Snapshot::default());
                };
                let policy = self.policy(resource).await?.map(|record| record.policy);
                let memberships =
                    sqlx::query_as::<_, (String, String, Option<String>)>(SELECT_MEMBERSHIPS)
                        .bind(party.to_string())
                        .bind(resource.as_str())
                        .fetch_all(&self.pool)
                        .await?
                        .into_iter()
                        .map(membership_from_row)
                        .collect::<Result<Vec<_>, _>>()?;
                Ok(Snapshot {
                    resource: Some(resource_state(&document)?),
                    policy,
                    memberships,
                })
            }

            async fn claim_unpublished_outbox(
                &self,
                limit: u32,
                now: i64,
            ) -> Result<Vec<$crate::store::OutboxRecord>, $crate::store::StoreError> {
                use $crate::store::sql::*;
                let mut claimed: Vec<$crate::store::OutboxRecord> =
                    sqlx::query_as::<_, OutboxRow>($claim)
                        .bind(now)
                        .bind(i64::from(limit))
                        .bind(now + $crate::store::OUTBOX_LEASE_SECONDS)
                        .fetch_all(&self.pool)
                        .await?
                        .into_iter()
                        .map(outbox_from_row)
                        .collect();
                // RETURNING does not promise an order; ids are UUIDv7, so this is creation order.
                claimed.sort_by(|a, b| a.id.cmp(&b.id));
                Ok(claimed)
            }

            async fn mark_outbox_published(
                &self,
                ids: &[String],
                now: i64,
            ) -> Result<u64, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let mut marked = 0;
                for id in ids {
                    marked += sqlx::query(broker_common::outbox::sql::MARK_PUBLISHED)
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(marked)
            }
        }
    };
}

pub(super) use access_store_impl;
