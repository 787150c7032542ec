//! One conformance suite for every `AccessStore` implementation: the same scenarios run on
//! SQLite and on PostgreSQL (a fresh database per run; see `broker_tests::database`).

use std::collections::HashSet;
use std::sync::Arc;

use broker_access::domain::access_list::{ListDetails, MemberChange};
use broker_access::domain::decision::{Membership, ResourceState};
use broker_access::domain::ids::{AccessListUrn, Action, ListId, OrgCode, PartyUrn, ResourceId};
use broker_access::domain::policy::{Policy, Rule, Subject};
use broker_access::domain::resource::{
    AccessListMode, CompetentAuthority, Resource, ResourceType, ServiceOwner, Texts,
};
use broker_access::store::{
    AccessListRecord, AccessStore, ConnectionRecord, Inserted, ListWrite, OUTBOX_LEASE_SECONDS,
    OutboxRecord, OwnerDeleted, PolicyRecord, PostgresAccessStore, ResourceMembership,
    ResourceRecord, SqliteAccessStore, Written,
};
use broker_common::identity::OrgNumber;
use broker_tests::database::{self, TestDatabase};

const DIGDIR: &str = "991825827";
const BRREG: &str = "974760673";
const NOW: i64 = 1_700_000_000;

fn code(text: &str) -> OrgCode {
    OrgCode::parse(text).unwrap()
}

fn rid(text: &str) -> ResourceId {
    ResourceId::parse(text).unwrap()
}

fn lid(text: &str) -> ListId {
    ListId::parse(text).unwrap()
}

fn org(text: &str) -> OrgNumber {
    OrgNumber::parse(text).unwrap()
}

fn party(text: &str) -> PartyUrn {
    PartyUrn::organization(org(text))
}

fn actions(names: &[&str]) -> Vec<Action> {
    names
        .iter()
        .map(|name| Action::parse(name).unwrap())
        .collect()
}

/// A connection's action filters: texts, as Altinn keeps them.
fn filters(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn texts(text: &str) -> Texts {
    ["en", "nb", "nn"]
        .into_iter()
        .map(|language| (language.to_owned(), text.to_owned()))
        .collect()
}

fn owner(org_number: &str, org_code: &str) -> ServiceOwner {
    ServiceOwner {
        org_number: org(org_number),
        org_code: code(org_code),
        name: format!("owner {org_code}"),
    }
}

fn resource(id: &str, version: i64) -> ResourceRecord {
    let mut other = serde_json::Map::new();
    other.insert(
        "keywords".into(),
        serde_json::json!([{"word": "post", "language": "nb"}]),
    );
    ResourceRecord {
        resource: Resource {
            identifier: rid(id),
            version: Some("1.0".into()),
            title: texts(id),
            description: texts("a resource"),
            right_description: None,
            status: None,
            delegable: true,
            visible: false,
            has_competent_authority: CompetentAuthority {
                organization: org(DIGDIR),
                orgcode: code("digdir"),
                name: texts("Digdir"),
            },
            resource_references: None,
            resource_type: ResourceType::BrokerService,
            access_list_mode: AccessListMode::Enabled,
            other,
        },
        version,
        created_at: NOW,
        updated_at: NOW + version,
    }
}

fn list(id: &str) -> AccessListRecord {
    AccessListRecord {
        owner: code("digdir"),
        identifier: lid(id),
        details: ListDetails {
            name: format!("list {id}"),
            description: String::new(),
        },
        version: 1,
        created_at: NOW,
        updated_at: NOW,
        connections: Vec::new(),
    }
}

/// A fresh outbox row; `key` ends up as its routing key.
fn notice(key: &str) -> OutboxRecord {
    OutboxRecord {
        id: uuid::Uuid::now_v7().to_string(),
        routing_key: key.to_owned(),
        payload: r#"{"change":"test"}"#.to_owned(),
        created_at: NOW,
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
    }
}

fn write<'a>(owner: &'a OrgCode, id: &'a ListId, expected: i64) -> ListWrite<'a> {
    ListWrite {
        owner,
        identifier: id,
        expected,
        now: NOW + expected,
    }
}

/// Claims everything unpublished and marks it published, answering the routing keys.
async fn drain_outbox(store: &dyn AccessStore) -> Vec<String> {
    let claimed = store.claim_unpublished_outbox(1000, NOW).await.unwrap();
    let ids: Vec<String> = claimed.iter().map(|r| r.id.clone()).collect();
    store.mark_outbox_published(&ids, NOW).await.unwrap();
    claimed.into_iter().map(|r| r.routing_key).collect()
}

async fn service_owners(store: &dyn AccessStore) {
    let digdir = owner(DIGDIR, "digdir");
    assert_eq!(
        store.insert_service_owner(&digdir, NOW).await.unwrap(),
        Inserted::New
    );
    assert_eq!(
        store
            .insert_service_owner(&owner(BRREG, "digdir"), NOW)
            .await
            .unwrap(),
        Inserted::AlreadyExists,
        "org codes are unique"
    );
    assert_eq!(
        store
            .insert_service_owner(&owner(DIGDIR, "other"), NOW)
            .await
            .unwrap(),
        Inserted::AlreadyExists,
        "org numbers are unique"
    );
    store
        .insert_service_owner(&owner(BRREG, "brreg"), NOW)
        .await
        .unwrap();
    assert_eq!(
        store.service_owner_by_org(org(DIGDIR)).await.unwrap(),
        Some(digdir.clone())
    );
    assert_eq!(
        store.service_owner(&code("digdir")).await.unwrap(),
        Some(digdir)
    );
    assert_eq!(store.service_owner(&code("nobody")).await.unwrap(), None);
    let codes = |owners: Vec<ServiceOwner>| {
        owners
            .into_iter()
            .map(|o| o.org_code.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        codes(store.service_owners(None, 1).await.unwrap()),
        ["brreg"]
    );
    assert_eq!(
        codes(store.service_owners(Some("brreg"), 10).await.unwrap()),
        ["digdir"]
    );
    assert_eq!(
        store.delete_service_owner(&code("brreg")).await.unwrap(),
        OwnerDeleted::Deleted
    );
    assert_eq!(
        store.delete_service_owner(&code("brreg")).await.unwrap(),
        OwnerDeleted::NotFound
    );
    assert_eq!(store.service_owner_by_org(org(BRREG)).await.unwrap(), None);
}

async fn resources_are_versioned(store: &dyn AccessStore) {
    let alpha = resource("alpha", 1);
    assert_eq!(
        store
            .insert_resource(&alpha, &notice("created.alpha"))
            .await
            .unwrap(),
        Inserted::New
    );
    assert_eq!(
        store
            .insert_resource(&resource("alpha", 7), &notice("again.alpha"))
            .await
            .unwrap(),
        Inserted::AlreadyExists
    );
    assert_eq!(store.resource(&rid("alpha")).await.unwrap(), Some(alpha));
    assert_eq!(
        store.delete_service_owner(&code("digdir")).await.unwrap(),
        OwnerDeleted::InUse,
        "an owner of resources stays"
    );

    let mut beta = resource("beta", 2);
    beta.resource.status = Some("Deprecated".into());
    assert_eq!(
        store
            .update_resource(&beta, 1, &notice("lost.beta"))
            .await
            .unwrap(),
        Written::Stale,
        "no such resource"
    );
    store
        .insert_resource(&resource("beta", 1), &notice("created.beta"))
        .await
        .unwrap();
    assert_eq!(
        store
            .update_resource(&beta, 1, &notice("updated.beta"))
            .await
            .unwrap(),
        Written::Applied
    );
    assert_eq!(
        store
            .update_resource(&resource("beta", 3), 1, &notice("stale.beta"))
            .await
            .unwrap(),
        Written::Stale,
        "version 1 is gone"
    );
    assert_eq!(store.resource(&rid("beta")).await.unwrap(), Some(beta));

    store
        .insert_resource(&resource("gamma", 1), &notice("created.gamma"))
        .await
        .unwrap();
    let ids = |records: Vec<ResourceRecord>| {
        records
            .into_iter()
            .map(|r| r.resource.identifier.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.resources(None, 2).await.unwrap()),
        ["alpha", "beta"]
    );
    assert_eq!(
        ids(store.resources(Some("beta"), 2).await.unwrap()),
        ["gamma"]
    );

    assert_eq!(
        store
            .delete_resource(&rid("gamma"), 2, &notice("stale.gamma"))
            .await
            .unwrap(),
        Written::Stale
    );
    assert_eq!(
        store
            .delete_resource(&rid("gamma"), 1, &notice("deleted.gamma"))
            .await
            .unwrap(),
        Written::Applied
    );
    assert_eq!(store.resource(&rid("gamma")).await.unwrap(), None);

    // Only applied writes left a notice, in order.
    assert_eq!(
        drain_outbox(store).await,
        [
            "created.alpha",
            "created.beta",
            "updated.beta",
            "created.gamma",
            "deleted.gamma"
        ]
    );
}

fn policy_record(id: &str, version: i64, subjects: Vec<Subject>) -> PolicyRecord {
    PolicyRecord {
        resource: rid(id),
        policy: Policy {
            rules: vec![Rule {
                subjects,
                actions: actions(&["read", "write"]),
            }],
        },
        version,
        updated_at: NOW + version,
    }
}

async fn policies_are_versioned(store: &dyn AccessStore) {
    let first = policy_record("alpha", 1, vec![Subject::AnyOrganization]);
    assert_eq!(
        store
            .put_policy(
                &policy_record("missing", 1, vec![]),
                None,
                &notice("lost.policy")
            )
            .await
            .unwrap(),
        Written::Stale,
        "a policy needs its resource"
    );
    assert_eq!(store.policy(&rid("alpha")).await.unwrap(), None);
    assert_eq!(
        store
            .put_policy(&first, None, &notice("policy.alpha"))
            .await
            .unwrap(),
        Written::Applied
    );
    assert_eq!(
        store
            .put_policy(&first, None, &notice("lost.policy"))
            .await
            .unwrap(),
        Written::Stale,
        "someone else created it first"
    );
    let second = policy_record(
        "alpha",
        2,
        vec![
            Subject::Party(party(BRREG)),
            Subject::AccessList(AccessListUrn {
                owner: code("digdir"),
                identifier: lid("partners"),
            }),
        ],
    );
    assert_eq!(
        store
            .put_policy(&second, Some(1), &notice("policy.alpha"))
            .await
            .unwrap(),
        Written::Applied
    );
    assert_eq!(
        store
            .put_policy(&second, Some(1), &notice("lost.policy"))
            .await
            .unwrap(),
        Written::Stale
    );
    assert_eq!(store.policy(&rid("alpha")).await.unwrap(), Some(second));
    assert_eq!(drain_outbox(store).await, ["policy.alpha", "policy.alpha"]);
}

async fn access_lists_members_and_connections(store: &dyn AccessStore) {
    let (digdir, partners) = (code("digdir"), lid("partners"));
    assert_eq!(
        store
            .insert_access_list(&list("partners"), &notice("list.created"))
            .await
            .unwrap(),
        Inserted::New
    );
    assert_eq!(
        store
            .insert_access_list(&list("partners"), &notice("lost"))
            .await
            .unwrap(),
        Inserted::AlreadyExists
    );
    let renamed = ListDetails {
        name: "Partners".into(),
        description: "who we trust".into(),
    };
    assert_eq!(
        store
            .update_access_list(
                write(&digdir, &partners, 1),
                &renamed,
                &notice("list.renamed")
            )
            .await
            .unwrap(),
        Written::Applied
    );
    assert_eq!(
        store
            .update_access_list(write(&digdir, &partners, 1), &renamed, &notice("lost"))
            .await
            .unwrap(),
        Written::Stale
    );

    // Members: add, replace (members that stay keep `since`), remove.
    assert_eq!(
        store
            .change_members(
                write(&digdir, &partners, 2),
                MemberChange::Add,
                &[party(DIGDIR)],
                &notice("list.members")
            )
            .await
            .unwrap(),
        Written::Applied
    );
    store
        .change_members(
            write(&digdir, &partners, 3),
            MemberChange::Replace,
            &[party(DIGDIR), party(BRREG)],
            &notice("list.members"),
        )
        .await
        .unwrap();
    let members = store.members(&digdir, &partners, None, 10).await.unwrap();
    let since: Vec<(String, i64)> = members
        .iter()
        .map(|m| (m.party.to_string(), m.since))
        .collect();
    assert_eq!(
        since,
        [
            (party(BRREG).to_string(), NOW + 3),
            (party(DIGDIR).to_string(), NOW + 2)
        ]
    );
    let after = party(BRREG).to_string();
    assert_eq!(
        store
            .members(&digdir, &partners, Some(&after), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    store
        .change_members(
            write(&digdir, &partners, 4),
            MemberChange::Remove,
            &[party(BRREG)],
            &notice("list.members"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.members(&digdir, &partners, None, 10).await.unwrap()[0].party,
        party(DIGDIR)
    );
    assert_eq!(
        store
            .change_members(
                write(&digdir, &partners, 4),
                MemberChange::Add,
                &[party(BRREG)],
                &notice("lost")
            )
            .await
            .unwrap(),
        Written::Stale
    );
    // Mirrors Altinn's `IsIdempotent`: a change that changes nothing keeps the version.
    for (change, parties) in [
        (MemberChange::Add, vec![party(DIGDIR)]),
        (MemberChange::Remove, vec![party(BRREG)]),
        (MemberChange::Replace, vec![party(DIGDIR)]),
    ] {
        assert_eq!(
            store
                .change_members(
                    write(&digdir, &partners, 5),
                    change,
                    &parties,
                    &notice("lost")
                )
                .await
                .unwrap(),
            Written::Unchanged,
            "{change:?}"
        );
    }
    assert_eq!(
        store
            .access_list(&digdir, &partners)
            .await
            .unwrap()
            .unwrap()
            .version,
        5
    );

    // Connections: upsert keeps created_at; a missing resource or connection is stale.
    let connection = |names: &[&str], at: i64| ConnectionRecord {
        resource: rid("alpha"),
        action_filters: filters(names),
        created_at: at,
        modified_at: at,
    };
    assert_eq!(
        store
            .connect(
                write(&digdir, &partners, 5),
                &connection(&["read"], NOW),
                &notice("list.connected")
            )
            .await
            .unwrap(),
        Written::Applied
    );
    store
        .connect(
            write(&digdir, &partners, 6),
            &connection(&["read", "write"], NOW + 60),
            &notice("list.connected"),
        )
        .await
        .unwrap();
    let missing = ConnectionRecord {
        resource: rid("missing"),
        ..connection(&[], NOW)
    };
    assert_eq!(
        store
            .connect(write(&digdir, &partners, 7), &missing, &notice("lost"))
            .await
            .unwrap(),
        Written::Stale
    );
    let stored = store
        .access_list(&digdir, &partners)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.version, 7);
    assert_eq!(stored.details, renamed);
    assert_eq!(
        stored.connections,
        [ConnectionRecord {
            resource: rid("alpha"),
            action_filters: filters(&["read", "write"]),
            created_at: NOW,
            modified_at: NOW + 60,
        }]
    );

    // Listing: by resource, with or without connections, paginated.
    store
        .insert_access_list(&list("others"), &notice("list.created"))
        .await
        .unwrap();
    let identifiers = |lists: &[AccessListRecord]| {
        lists
            .iter()
            .map(|l| l.identifier.to_string())
            .collect::<Vec<_>>()
    };
    let all = store.access_lists(&digdir, None, 10, None).await.unwrap();
    assert_eq!(identifiers(&all), ["others", "partners"]);
    assert!(all[1].connections.is_empty(), "not asked for");
    // A resource picks the connection each list includes; it does not filter the lists.
    let with_alpha = store
        .access_lists(&digdir, None, 10, Some(&rid("alpha")))
        .await
        .unwrap();
    assert_eq!(identifiers(&with_alpha), ["others", "partners"]);
    assert!(with_alpha[0].connections.is_empty());
    assert_eq!(with_alpha[1].connections.len(), 1);
    let with_beta = store
        .access_lists(&digdir, None, 10, Some(&rid("beta")))
        .await
        .unwrap();
    assert!(with_beta.iter().all(|list| list.connections.is_empty()));
    let second_page = store
        .access_lists(&digdir, Some("others"), 1, Some(&rid("alpha")))
        .await
        .unwrap();
    assert_eq!(identifiers(&second_page), ["partners"]);
    assert_eq!(second_page[0].connections.len(), 1);
    assert!(
        store
            .access_lists(&code("skd"), None, 10, None)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        store
            .disconnect(write(&digdir, &partners, 7), &rid("beta"), &notice("lost"))
            .await
            .unwrap(),
        Written::Stale,
        "not connected"
    );
    assert_eq!(
        drain_outbox(store).await,
        [
            "list.created",
            "list.renamed",
            "list.members",
            "list.members",
            "list.members",
            "list.connected",
            "list.connected",
            "list.created"
        ]
    );
}

async fn snapshots_gather_a_decision(store: &dyn AccessStore) {
    let (digdir, partners) = (code("digdir"), lid("partners"));
    let snapshot = store.snapshot(&rid("alpha"), &party(DIGDIR)).await.unwrap();
    assert_eq!(
        snapshot.resource,
        Some(ResourceState {
            active: true,
            access_list_mode: AccessListMode::Enabled
        })
    );
    assert_eq!(snapshot.policy.unwrap().rules[0].subjects.len(), 2);
    // A member of "partners" (connected to alpha) and of "others" (not connected).
    store
        .change_members(
            write(&digdir, &lid("others"), 1),
            MemberChange::Add,
            &[party(DIGDIR)],
            &notice("list.members"),
        )
        .await
        .unwrap();
    let mut memberships = store
        .snapshot(&rid("alpha"), &party(DIGDIR))
        .await
        .unwrap()
        .memberships;
    memberships.sort_by(|a, b| a.list.cmp(&b.list));
    let urn = |id: &str| AccessListUrn {
        owner: digdir.clone(),
        identifier: lid(id),
    };
    assert_eq!(
        memberships,
        [
            Membership {
                list: urn("others"),
                connection: None
            },
            Membership {
                list: urn("partners"),
                connection: Some(filters(&["read", "write"]))
            },
        ]
    );
    // Altinn's memberships: the connections of the party's lists, per resource.
    let reached = store.memberships(&party(DIGDIR), None).await.unwrap();
    assert_eq!(
        reached,
        [ResourceMembership {
            resource: rid("alpha"),
            since: NOW + 2,
            action_filters: filters(&["read", "write"]),
        }]
    );
    assert_eq!(
        store
            .memberships(&party(DIGDIR), Some(&rid("alpha")))
            .await
            .unwrap(),
        reached
    );
    assert!(
        store
            .memberships(&party(DIGDIR), Some(&rid("beta")))
            .await
            .unwrap()
            .is_empty()
    );
    let stranger = store.snapshot(&rid("alpha"), &party(BRREG)).await.unwrap();
    assert!(stranger.memberships.is_empty());
    let inactive = store.snapshot(&rid("beta"), &party(DIGDIR)).await.unwrap();
    assert!(!inactive.resource.unwrap().active, "beta is deprecated");
    assert_eq!(inactive.policy, None);
    let missing = store
        .snapshot(&rid("missing"), &party(DIGDIR))
        .await
        .unwrap();
    assert_eq!(missing.resource, None);

    // Deleting the resource takes its policy and connections along.
    let alpha = store.resource(&rid("alpha")).await.unwrap().unwrap();
    store
        .delete_resource(&rid("alpha"), alpha.version, &notice("deleted.alpha"))
        .await
        .unwrap();
    assert_eq!(store.policy(&rid("alpha")).await.unwrap(), None);
    let partners_list = store
        .access_list(&digdir, &partners)
        .await
        .unwrap()
        .unwrap();
    assert!(partners_list.connections.is_empty());

    // Deleting a list takes its members along.
    assert_eq!(
        store
            .delete_access_list(write(&digdir, &partners, 1), &notice("lost"))
            .await
            .unwrap(),
        Written::Stale
    );
    store
        .delete_access_list(
            write(&digdir, &partners, partners_list.version),
            &notice("list.deleted"),
        )
        .await
        .unwrap();
    assert_eq!(store.access_list(&digdir, &partners).await.unwrap(), None);
    assert!(
        store
            .members(&digdir, &partners, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    drain_outbox(store).await;
}

async fn outbox_claims_are_leased(store: Arc<dyn AccessStore>) {
    for index in 0..6 {
        store
            .insert_access_list(
                &list(&format!("outbox-{index}")),
                &notice(&format!("k{index}")),
            )
            .await
            .unwrap();
    }
    let first = store.claim_unpublished_outbox(2, NOW).await.unwrap();
    let keys = |records: &[OutboxRecord]| {
        records
            .iter()
            .map(|r| r.routing_key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&first), ["k0", "k1"], "oldest first");
    assert_eq!(
        first[0].traceparent,
        notice("k").traceparent,
        "the trace context is kept with the row"
    );

    // Concurrent relays never share a row.
    let claims = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.claim_unpublished_outbox(2, NOW).await.unwrap() })
    });
    let mut seen = HashSet::new();
    for claim in futures::future::join_all(claims).await {
        for record in claim.unwrap() {
            assert!(seen.insert(record.routing_key), "claimed twice");
        }
    }
    assert_eq!(seen.len(), 4, "the four rows not yet claimed");
    assert!(
        store
            .claim_unpublished_outbox(10, NOW)
            .await
            .unwrap()
            .is_empty(),
        "everything is leased"
    );

    // The first relay publishes; the others' leases run out and their rows come back.
    let ids: Vec<String> = first.iter().map(|r| r.id.clone()).collect();
    assert_eq!(store.mark_outbox_published(&ids, NOW).await.unwrap(), 2);
    assert_eq!(store.mark_outbox_published(&ids, NOW).await.unwrap(), 0);
    let later = NOW + OUTBOX_LEASE_SECONDS;
    let again = store.claim_unpublished_outbox(10, later).await.unwrap();
    assert_eq!(keys(&again), ["k2", "k3", "k4", "k5"]);
}

async fn conformance(store: Arc<dyn AccessStore>) {
    service_owners(store.as_ref()).await;
    resources_are_versioned(store.as_ref()).await;
    policies_are_versioned(store.as_ref()).await;
    access_lists_members_and_connections(store.as_ref()).await;
    snapshots_gather_a_decision(store.as_ref()).await;
    outbox_claims_are_leased(store).await;
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = std::env::temp_dir().join(format!("broker-access-store-{}", uuid::Uuid::new_v4()));
    let store = SqliteAccessStore::open(&dir.join("access.db"))
        .await
        .unwrap();
    conformance(Arc::new(store)).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn postgres_store_conforms() {
    let Some(db): Option<TestDatabase> = database::postgres().await else {
        return;
    };
    let store = PostgresAccessStore::connect(db.url()).await.unwrap();
    conformance(Arc::new(store)).await;
}
