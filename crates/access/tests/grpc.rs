//! The access registry over gRPC, as the gateway and other services use it: the real server on
//! a loopback port, driven through the generated client with real signed tokens.

mod support;

use broker_access::service::{ACCESS_LIST_WRITE, RESOURCE_WRITE};
use broker_proto::access as pb;
use broker_proto::access::change_members_request::Mode;
use broker_tests::{BRREG, DIGDIR};
use support::*;

#[tokio::test]
async fn on_sqlite() {
    owners_resources_policies_lists_and_decisions(None).await;
}

#[tokio::test]
async fn on_postgres() {
    if let Some(db) = broker_tests::database::postgres().await {
        owners_resources_policies_lists_and_decisions(Some(db.url())).await;
    }
}

async fn owners_resources_policies_lists_and_decisions(database_url: Option<&str>) {
    let mut registry = Registry::start(database_url).await;
    let owner_write = [RESOURCE_WRITE, ACCESS_LIST_WRITE];

    // The admin registers Digdir as a service owner; nobody else may.
    let owner = pb::CreateServiceOwnerRequest {
        owner: Some(pb::ServiceOwner {
            org_number: DIGDIR.into(),
            org_code: "digdir".into(),
            name: "Digitaliseringsdirektoratet".into(),
        }),
    };
    assert_eq!(
        status_of(registry.client.create_service_owner(owner.clone()).await),
        401
    );
    registry
        .client
        .create_service_owner(Registry::as_admin(owner.clone()))
        .await
        .unwrap();
    assert_eq!(
        status_of(
            registry
                .client
                .create_service_owner(Registry::as_admin(owner))
                .await
        ),
        409
    );
    let lookup = |org: &str| pb::LookupServiceOwnerRequest {
        org_number: org.into(),
    };
    let found = registry.client.lookup_service_owner(lookup(DIGDIR)).await;
    assert_eq!(found.unwrap().into_inner().org_code, "digdir");
    let none = registry.client.lookup_service_owner(lookup(BRREG)).await;
    assert_eq!(none.unwrap().into_inner().org_code, "");

    // Only the owner, with the scope, creates resources.
    let create = pb::UpsertResourceRequest {
        document: broker_resource("Disabled"),
        ..pb::UpsertResourceRequest::default()
    };
    assert_eq!(
        status_of(registry.client.create_resource(create.clone()).await),
        401
    );
    let unscoped = registry.as_org(DIGDIR, &[ACCESS_LIST_WRITE], create.clone());
    assert_eq!(
        status_of(registry.client.create_resource(unscoped).await),
        403
    );
    let stranger = registry.as_org(BRREG, &owner_write, create.clone());
    assert_eq!(
        status_of(registry.client.create_resource(stranger).await),
        403
    );
    let created = registry
        .client
        .create_resource(registry.as_org(DIGDIR, &owner_write, create))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.version, 1);
    assert_eq!(
        created.status, "",
        "Altinn's status is free text, absent unless sent"
    );
    let authority = created.has_competent_authority.unwrap();
    assert_eq!(
        (authority.orgcode.as_str(), authority.organization.as_str()),
        ("digdir", DIGDIR)
    );
    let public = registry
        .client
        .get_resource(pb::GetResourceRequest {
            identifier: "broker-resource".into(),
            conditions: None,
            version_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(public.resource_type, "BrokerService");

    // Without a policy nothing is permitted.
    assert_eq!(registry.authorize(BRREG, "read", BRREG).await, "policy");

    // Anyone may read and subscribe; members of "writers" may write.
    let policy = pb::PutPolicyRequest {
        policy: Some(pb::Policy {
            resource: "broker-resource".into(),
            rules: vec![
                pb::PolicyRule {
                    subjects: vec!["any-organization".into()],
                    actions: vec!["read".into(), "subscribe".into()],
                },
                pb::PolicyRule {
                    subjects: vec!["urn:altinn:access-list:digdir:writers".into()],
                    actions: vec!["write".into()],
                },
            ],
            ..pb::Policy::default()
        }),
        ..pb::PutPolicyRequest::default()
    };
    let stranger = registry.as_org(BRREG, &owner_write, policy.clone());
    assert_eq!(status_of(registry.client.put_policy(stranger).await), 403);
    let written = registry
        .client
        .put_policy(registry.as_org(DIGDIR, &owner_write, policy))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.version, 1);

    assert_eq!(registry.authorize(BRREG, "read", BRREG).await, "permit");
    assert_eq!(registry.authorize(BRREG, "write", BRREG).await, "policy");
    assert_eq!(
        registry.authorize(DIGDIR, "read", BRREG).await,
        "not-acting-for-party"
    );

    // Joining "writers" lets Brreg write: the cached deny is flushed by the write.
    let list = registry
        .client
        .upsert_access_list(registry.as_org(DIGDIR, &owner_write, list_request("writers")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.version, 1);
    let stranger = registry.as_org(BRREG, &owner_write, list_request("writers"));
    assert_eq!(
        status_of(registry.client.upsert_access_list(stranger).await),
        403
    );
    let join = pb::ChangeMembersRequest {
        owner: "digdir".into(),
        identifier: "writers".into(),
        mode: Mode::Add.into(),
        parties: vec![urn(BRREG)],
        conditions: if_match(1),
        ..pb::ChangeMembersRequest::default()
    };
    let members = registry
        .client
        .change_members(registry.as_org(DIGDIR, &owner_write, join.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(members.members[0].party, urn(BRREG));
    assert_eq!(members.version, 2);
    assert_eq!(
        status_of(
            registry
                .client
                .change_members(registry.as_org(DIGDIR, &owner_write, join))
                .await
        ),
        412,
        "version 1 is stale"
    );
    assert_eq!(registry.authorize(BRREG, "write", BRREG).await, "permit");

    // Enabling access lists: only members of a connected list, for its filtered actions.
    let update = pb::UpsertResourceRequest {
        document: broker_resource("Enabled"),
        identifier: "broker-resource".into(),
        conditions: if_match(1),
        ..pb::UpsertResourceRequest::default()
    };
    let updated = registry
        .client
        .update_resource(registry.as_org(DIGDIR, &owner_write, update.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.version, 2);
    assert_eq!(
        status_of(
            registry
                .client
                .update_resource(registry.as_org(DIGDIR, &owner_write, update))
                .await
        ),
        412
    );
    assert_eq!(
        registry.authorize(BRREG, "read", BRREG).await,
        "not-on-access-list"
    );
    let connect = pb::ConnectResourceRequest {
        owner: "digdir".into(),
        identifier: "writers".into(),
        resource_identifier: "broker-resource".into(),
        action_filters: vec!["read".into()],
        ..pb::ConnectResourceRequest::default()
    };
    let connection = registry
        .client
        .connect_resource(registry.as_org(DIGDIR, &owner_write, connect))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(connection.list_version, 3);
    assert_eq!(registry.authorize(BRREG, "read", BRREG).await, "permit");
    assert_eq!(
        registry.authorize(BRREG, "write", BRREG).await,
        "not-on-access-list"
    );
    assert_eq!(
        registry.authorize(DIGDIR, "read", DIGDIR).await,
        "not-on-access-list"
    );

    // A batch answers in request order; a malformed question is a 400, not a deny.
    let batch = registry
        .client
        .authorize_batch(pb::AuthorizeBatchRequest {
            requests: vec![
                question(BRREG, "write", BRREG),
                question(BRREG, "read", BRREG),
                question(DIGDIR, "read", BRREG),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let reasons: Vec<_> = batch.decisions.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["not-on-access-list", "permit", "not-acting-for-party"]
    );
    let mut malformed = question(BRREG, "read", BRREG);
    malformed.party = "urn:altinn:organization:identifier-no:123".into();
    assert_eq!(status_of(registry.client.authorize(malformed).await), 400);
    assert_eq!(
        status_of(
            registry
                .client
                .authorize(question(BRREG, "Read", BRREG))
                .await
        ),
        400
    );

    // Deleting the resource denies at once.
    let delete = pb::DeleteResourceRequest {
        identifier: "broker-resource".into(),
        conditions: if_match(2),
        ..pb::DeleteResourceRequest::default()
    };
    let stranger = registry.as_org(BRREG, &owner_write, delete.clone());
    assert_eq!(
        status_of(registry.client.delete_resource(stranger).await),
        403
    );
    registry
        .client
        .delete_resource(registry.as_org(DIGDIR, &owner_write, delete))
        .await
        .unwrap();
    assert_eq!(
        registry.authorize(BRREG, "read", BRREG).await,
        "resource-not-found"
    );
    let list = registry
        .client
        .get_access_list(registry.as_org(
            DIGDIR,
            &[ACCESS_LIST_WRITE],
            pb::GetAccessListRequest {
                owner: "digdir".into(),
                identifier: "writers".into(),
                includes: Some(pb::Includes {
                    connections: true,
                    ..pb::Includes::default()
                }),
                ..pb::GetAccessListRequest::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        list.resource_connections.is_empty(),
        "connections go with the resource"
    );
}
