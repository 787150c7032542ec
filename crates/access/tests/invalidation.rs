//! A change must reach every cached decision within a second: a member removed through one
//! replica is denied by a caller whose permit was cached, while the caller asks another
//! replica that had cached it too. The notice travels replica → outbox → bus → both caches.
//! The same holds for the caller's cached definition of the resource (its access-list mode).
//! Runs on the in-process bus and SQLite, and on RabbitMQ and PostgreSQL (required in CI).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_access::service::{ACCESS_LIST_WRITE, RESOURCE_WRITE};
use broker_bus::{Bus, InProcessBus, RabbitBus};
use broker_common::Shutdown;
use broker_common::authz::Authorizer;
use broker_proto::access as pb;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::access::change_members_request::Mode;
use broker_proto::common::Principal;
use broker_tests::{BRREG, ClientKeys, DIGDIR};
use support::*;

const OWNER_SCOPES: [&str; 2] = [RESOURCE_WRITE, ACCESS_LIST_WRITE];

/// Digdir's resource that only members of its list "readers" may read; Brreg is a member.
async fn given_brreg_may_read(registry: &mut Registry) {
    let owner = pb::CreateServiceOwnerRequest {
        owner: Some(pb::ServiceOwner {
            org_number: DIGDIR.into(),
            org_code: "digdir".into(),
            name: "Digitaliseringsdirektoratet".into(),
        }),
    };
    registry
        .client
        .create_service_owner(Registry::as_admin(owner))
        .await
        .unwrap();
    let resource = pb::UpsertResourceRequest {
        document: broker_resource("Enabled"),
        ..pb::UpsertResourceRequest::default()
    };
    let request = registry.as_org(DIGDIR, &OWNER_SCOPES, resource);
    registry.client.create_resource(request).await.unwrap();
    let policy = pb::PutPolicyRequest {
        policy: Some(pb::Policy {
            resource: "broker-resource".into(),
            rules: vec![pb::PolicyRule {
                subjects: vec!["any-organization".into()],
                actions: vec!["read".into()],
            }],
            ..pb::Policy::default()
        }),
        ..pb::PutPolicyRequest::default()
    };
    let request = registry.as_org(DIGDIR, &OWNER_SCOPES, policy);
    registry.client.put_policy(request).await.unwrap();
    let request = registry.as_org(DIGDIR, &OWNER_SCOPES, list_request("readers"));
    registry.client.upsert_access_list(request).await.unwrap();
    let join = members_change(Mode::Add);
    let request = registry.as_org(DIGDIR, &OWNER_SCOPES, join);
    registry.client.change_members(request).await.unwrap();
    let connect = pb::ConnectResourceRequest {
        owner: "digdir".into(),
        identifier: "readers".into(),
        resource_identifier: "broker-resource".into(),
        ..pb::ConnectResourceRequest::default()
    };
    let request = registry.as_org(DIGDIR, &OWNER_SCOPES, connect);
    registry.client.connect_resource(request).await.unwrap();
}

fn members_change(mode: Mode) -> pb::ChangeMembersRequest {
    pb::ChangeMembersRequest {
        owner: "digdir".into(),
        identifier: "readers".into(),
        mode: mode.into(),
        parties: vec![urn(BRREG)],
        ..pb::ChangeMembersRequest::default()
    }
}

async fn brreg_reads(caller: &Authorizer) -> String {
    let principal = Principal {
        org_number: BRREG.into(),
        ..Principal::default()
    };
    let decision = caller
        .authorize(&principal, "read", "broker-resource", &urn(BRREG), "")
        .await
        .unwrap();
    decision.reason
}

/// Polls `current` until it reads `after` instead of `before`, failing if that takes a second
/// from `since`.
async fn changes_within_a_second<F, Fut>(
    what: &str,
    since: Instant,
    [before, after]: [&str; 2],
    mut current: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    loop {
        let value = current().await;
        if value == after {
            break;
        }
        assert_eq!(value, before);
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "the cached {what} outlived its change by a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "the {what}'s change reached the caller in {:?}",
        since.elapsed()
    );
}

/// Replica A takes the write; replica B and the caller had cached a permit.
async fn removed_member_is_denied_within_a_second(
    database_url: Option<&str>,
    buses: [Arc<dyn Bus>; 3],
) {
    let [bus_a, bus_b, bus_caller] = buses;
    let dir = std::env::temp_dir().join(format!("broker-access-inval-{}", uuid::Uuid::new_v4()));
    let keys = ClientKeys::generate();
    let mut a = Registry::start_with(database_url, dir.clone(), keys.clone(), bus_a).await;
    let b = Registry::start_with(database_url, dir, keys, bus_b).await;
    given_brreg_may_read(&mut a).await;

    // A long time to live: only a notice can make the caller forget its permit in time.
    let caller = Authorizer::new(
        AccessRegistryClient::new(broker_common::grpc::channel(&b.url).unwrap()),
        Duration::from_secs(600),
    );
    let shutdown = Shutdown::new();
    caller.listen(bus_caller, shutdown.clone());
    // Let the caller's subscription settle before caching; its first subscription flushes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(brreg_reads(&caller).await, "permit");
    assert_eq!(
        brreg_reads(&caller).await,
        "permit",
        "now cached by the caller and by B"
    );

    let removed = Instant::now();
    let request = a.as_org(DIGDIR, &OWNER_SCOPES, members_change(Mode::Remove));
    a.client.change_members(request).await.unwrap();
    let reasons = ["permit", "not-on-access-list"];
    changes_within_a_second("permit", removed, reasons, || brreg_reads(&caller)).await;

    let mode = |resource: pb::Resource| resource.access_list_mode;
    assert_eq!(
        mode(caller.resource("broker-resource").await.unwrap()),
        "Enabled"
    );
    assert_eq!(
        caller
            .resource("missing-resource")
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );
    let update = pb::UpsertResourceRequest {
        document: broker_resource("Disabled"),
        identifier: "broker-resource".into(),
        ..pb::UpsertResourceRequest::default()
    };
    let changed = Instant::now();
    let request = a.as_org(DIGDIR, &OWNER_SCOPES, update);
    a.client.update_resource(request).await.unwrap();
    changes_within_a_second("resource", changed, ["Enabled", "Disabled"], || async {
        mode(caller.resource("broker-resource").await.unwrap())
    })
    .await;
    shutdown.trigger();
}

#[tokio::test]
async fn on_the_in_process_bus_and_sqlite() {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    removed_member_is_denied_within_a_second(None, [bus.clone(), bus.clone(), bus]).await;
}

#[tokio::test]
async fn on_rabbitmq_and_postgres() {
    let Some(amqp) = broker_tests::amqp_url() else {
        return;
    };
    let Some(db) = broker_tests::database::postgres().await else {
        return;
    };
    // Three connections, as three processes would have; a fresh exchange keeps runs apart.
    let exchange = format!("broker-test-{}", uuid::Uuid::new_v4().simple());
    let mut buses: Vec<Arc<dyn Bus>> = Vec::new();
    for _ in 0..3 {
        buses.push(Arc::new(
            RabbitBus::connect(&amqp, &exchange)
                .await
                .expect("RabbitMQ answers"),
        ));
    }
    let buses: [Arc<dyn Bus>; 3] = buses.try_into().unwrap_or_else(|_| unreachable!());
    removed_member_is_denied_within_a_second(Some(db.url()), buses).await;
}
