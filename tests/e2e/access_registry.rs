//! The access registry through the gateway, as a service owner's system uses it: the operator
//! registers the owner; the owner publishes a resource, its policy and an access list; decisions
//! (asked over gRPC, as the other services ask) follow every change; strangers, stale versions
//! and bad input get the documented problems.

use std::time::{Duration, Instant};

use broker_proto::access::AuthorizeRequest;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::common::Principal;
use broker_tests::{BRREG, Broker, BrokerOptions, DIGDIR, Database, Reply, on_each_database};
use reqwest::Method;
use serde_json::{Value, json};

const RESOURCE_WRITE: &str = "altinn:resourceregistry/resource.write";
const LIST_READ: &str = "altinn:resourceregistry/accesslist.read";
const LIST_WRITE: &str = "altinn:resourceregistry/accesslist.write";
const SERVICE_OWNER: &str = "altinn:serviceowner";
const RESOURCE: &str = "/resourceregistry/api/v1/resource";
const LISTS: &str = "/resourceregistry/api/v1/access-lists/digdir";

fn urn(org: &str) -> String {
    format!("urn:altinn:organization:identifier-no:{org}")
}

fn resource_body(mode: &str) -> Value {
    json!({
        "identifier": "e2e-resource",
        "title": {"nb": "Formidling", "nn": "Formidling", "en": "Broker"},
        "resourceType": "BrokerService",
        "accessListMode": mode,
    })
}

/// A JSON call with a bearer token and optional `If-Match`.
async fn call(
    broker: &Broker,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> Reply {
    let mut request = broker.request(method, path);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(version) = if_match {
        request = request.header("If-Match", version);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    broker.send(request).await
}

async fn decision(broker: &Broker, action: &str, party: &str) -> String {
    let mut registry = AccessRegistryClient::connect(broker.listening("access").to_owned())
        .await
        .expect("the access registry answers");
    let question = AuthorizeRequest {
        principal: Some(Principal {
            org_number: party.to_owned(),
            ..Principal::default()
        }),
        action: action.to_owned(),
        resource: "e2e-resource".to_owned(),
        party: urn(party),
        instance: String::new(),
    };
    registry
        .authorize(question)
        .await
        .expect("a decision")
        .into_inner()
        .reason
}

on_each_database! {
    /// The whole life of a resource and its access list, with the decisions it implies.
    async fn an_owner_publishes_a_resource_and_decisions_follow_every_change(db: Database) {
        let broker = Broker::start(BrokerOptions::new().database(db)).await;

        // The operator registers Digdir as a service owner.
        let owner = json!({"orgNumber": DIGDIR, "orgCode": "digdir", "name": "Digdir"});
        assert_eq!(broker.admin_post("/admin/v1/service-owners", &owner).await.expect_status(201).json()["orgCode"], "digdir");
        broker.admin_post("/admin/v1/service-owners", &owner).await.assert_problem(409);
        let bad = json!({"orgNumber": "991825828", "orgCode": "bad", "name": "Bad"});
        broker.admin_post("/admin/v1/service-owners", &bad).await.assert_problem(400);
        broker.admin_call(None, Method::POST, "/admin/v1/service-owners", Some(&owner)).await.assert_problem(401);
        let owners = broker.admin_get("/admin/v1/service-owners").await.expect_status(200).json();
        assert_eq!(owners["serviceOwners"][0]["orgCode"], "digdir");

        let scopes = [RESOURCE_WRITE, LIST_READ, LIST_WRITE, SERVICE_OWNER];
        let digdir = broker.register_client(DIGDIR, &scopes).await.token(&scopes).await;
        let brreg = broker.register_client(BRREG, &scopes).await.token(&scopes).await;
        let unscoped = broker.register_client(DIGDIR, &["altinn:broker.read"]).await.token(&["altinn:broker.read"]).await;

        // Only the owner, with the scope, creates the resource; reading it is public.
        call(&broker, None, Method::POST, RESOURCE, Some(resource_body("Enabled")), None).await.assert_problem(401);
        call(&broker, Some(&unscoped), Method::POST, RESOURCE, Some(resource_body("Enabled")), None).await.assert_problem(403);
        call(&broker, Some(&brreg), Method::POST, RESOURCE, Some(resource_body("Enabled")), None).await.assert_problem(403);
        let created = call(&broker, Some(&digdir), Method::POST, RESOURCE, Some(resource_body("Enabled")), None).await.expect_status(201);
        assert_eq!(created.header("etag"), Some("\"1\""));
        let public = broker.get(&format!("{RESOURCE}/e2e-resource")).await.expect_status(200).json();
        assert_eq!(public["hasCompetentAuthority"]["orgcode"], "digdir");
        assert_eq!(public["accessListMode"], "Enabled");
        broker.get(&format!("{RESOURCE}/no-such-resource")).await.assert_problem(404);
        let listed = broker.get(&format!("{RESOURCE}/resourcelist")).await.expect_status(200).json();
        assert!(listed.to_string().contains("e2e-resource"));

        // Writes honour If-Match; a stale version is 412 and changes nothing.
        let path = format!("{RESOURCE}/e2e-resource");
        let mut update = resource_body("Enabled");
        update["description"] = json!({"nb": "Oppdatert", "nn": "Oppdatert", "en": "Updated"});
        call(&broker, Some(&digdir), Method::PUT, &path, Some(update.clone()), Some("\"7\"")).await.assert_problem(412);
        call(&broker, Some(&digdir), Method::PUT, &path, Some(update.clone()), Some("not-a-version")).await.assert_problem(400);
        call(&broker, Some(&brreg), Method::PUT, &path, Some(update.clone()), Some("\"1\"")).await.assert_problem(403);
        let updated = call(&broker, Some(&digdir), Method::PUT, &path, Some(update), Some("\"1\"")).await.expect_status(200);
        assert_eq!(updated.header("etag"), Some("\"2\""));

        // No policy yet: nothing is permitted.
        assert_eq!(decision(&broker, "read", BRREG).await, "policy");
        let policy = json!({"rules": [{"subjects": ["any-organization"], "actions": ["read"]}]});
        let policy_path = format!("{path}/policy");
        call(&broker, Some(&brreg), Method::PUT, &policy_path, Some(policy.clone()), None).await.assert_problem(403);
        let bad_policy = json!({"rules": [{"subjects": ["urn:altinn:organization:identifier-no:123"], "actions": ["read"]}]});
        call(&broker, Some(&digdir), Method::PUT, &policy_path, Some(bad_policy), None).await.assert_problem(400);
        call(&broker, Some(&digdir), Method::PUT, &policy_path, Some(policy), None).await.expect_status(200);
        assert_eq!(broker.get(&policy_path).await.expect_status(200).json()["rules"][0]["actions"][0], "read");

        // Access lists are on: Brreg is denied until it is a member of a connected list.
        assert_eq!(decision(&broker, "read", BRREG).await, "not-on-access-list");
        let list_path = format!("{LISTS}/readers");
        call(&broker, Some(&brreg), Method::PUT, &list_path, Some(json!({"name": "Readers"})), None).await.assert_problem(403);
        let list = call(&broker, Some(&digdir), Method::PUT, &list_path, Some(json!({"name": "Readers", "description": "May read"})), None).await;
        assert!(matches!(list.status.as_u16(), 200 | 201), "creating a list: {}", list.body);
        let members = format!("{list_path}/members");
        call(&broker, Some(&digdir), Method::POST, &members, Some(json!({"data": ["not-a-urn"]})), None).await.assert_problem(400);
        let too_many: Vec<String> = (0..1001).map(|_| urn(BRREG)).collect();
        call(&broker, Some(&digdir), Method::POST, &members, Some(json!({"data": too_many})), None).await.assert_problem(400);
        call(&broker, Some(&digdir), Method::POST, &members, Some(json!({"data": [urn(BRREG)]})), None).await.expect_status(200);
        let listed = call(&broker, Some(&digdir), Method::GET, &members, None, None).await.expect_status(200).json();
        assert_eq!(listed["data"][0]["id"], urn(BRREG));
        call(&broker, Some(&brreg), Method::GET, &members, None, None).await.assert_problem(403);
        assert_eq!(decision(&broker, "read", BRREG).await, "not-on-access-list", "not connected yet");

        let connection = format!("{list_path}/resource-connections/e2e-resource");
        call(&broker, Some(&digdir), Method::PUT, &connection, Some(json!({"actionFilters": ["write"]})), None).await.expect_status(200);
        assert_eq!(decision(&broker, "read", BRREG).await, "not-on-access-list", "the filter allows only write");
        call(&broker, Some(&digdir), Method::PUT, &connection, Some(json!({"actionFilters": []})), None).await.expect_status(200);
        assert_eq!(decision(&broker, "read", BRREG).await, "permit");
        assert_eq!(decision(&broker, "read", DIGDIR).await, "not-on-access-list");
        let lists = call(&broker, Some(&digdir), Method::GET, &format!("{LISTS}?include=resources"), None, None).await.expect_status(200).json();
        assert_eq!(lists["data"][0]["identifier"], "readers");

        let one = call(&broker, Some(&digdir), Method::GET, &list_path, None, None).await.expect_status(200);
        assert_eq!(one.json()["name"], "Readers");
        assert!(one.header("etag").is_some());
        let connections = call(&broker, Some(&digdir), Method::GET, &format!("{list_path}/resource-connections"), None, None).await.expect_status(200);
        assert!(connections.body.contains("e2e-resource"), "{}", connections.body);

        // Disconnecting the list denies at once; connecting again permits.
        call(&broker, Some(&digdir), Method::DELETE, &connection, None, None).await.expect_status(200);
        assert_eq!(decision(&broker, "read", BRREG).await, "not-on-access-list");
        call(&broker, Some(&digdir), Method::PUT, &connection, Some(json!({})), None).await.expect_status(200);
        assert_eq!(decision(&broker, "read", BRREG).await, "permit");

        // Replacing the members with Digdir alone drops Brreg.
        call(&broker, Some(&digdir), Method::PUT, &members, Some(json!({"data": [urn(DIGDIR)]})), None).await.expect_status(200);
        assert_eq!(decision(&broker, "read", BRREG).await, "not-on-access-list");
        assert_eq!(decision(&broker, "read", DIGDIR).await, "permit");
        call(&broker, Some(&digdir), Method::POST, &members, Some(json!({"data": [urn(BRREG)]})), None).await.expect_status(200);

        // Removing the member is denied at once (the registry's cache is flushed by the write).
        let removed = Instant::now();
        call(&broker, Some(&digdir), Method::DELETE, &members, Some(json!({"data": [urn(BRREG)]})), None).await.expect_status(200);
        assert_eq!(decision(&broker, "read", BRREG).await, "not-on-access-list");
        assert!(removed.elapsed() < Duration::from_secs(1));

        // The owner's platform token names it as a service owner; a stranger's does not.
        let platform = broker.platform_token(&digdir).await;
        assert_eq!(broker.verify(&platform).await["urn:altinn:org"], "digdir");
        let platform = broker.platform_token(&brreg).await;
        assert!(broker.verify(&platform).await.get("urn:altinn:org").is_none());

        // Deleting the resource: gone for readers and for decisions.
        call(&broker, Some(&brreg), Method::DELETE, &path, None, None).await.assert_problem(403);
        call(&broker, Some(&digdir), Method::DELETE, &path, None, Some("\"1\"")).await.assert_problem(412);
        call(&broker, Some(&digdir), Method::DELETE, &path, None, Some("\"2\"")).await.expect_status(204);
        broker.get(&path).await.assert_problem(404);
        assert_eq!(decision(&broker, "read", BRREG).await, "resource-not-found");

        // A service owner with lists cannot be removed; once they are gone it can.
        broker.admin_delete("/admin/v1/service-owners/digdir").await.assert_problem(409);
        call(&broker, Some(&brreg), Method::DELETE, &list_path, None, None).await.assert_problem(403);
        call(&broker, Some(&digdir), Method::DELETE, &list_path, None, None).await.expect_status(200);
        call(&broker, Some(&digdir), Method::GET, &list_path, None, None).await.assert_problem(404);
        broker.admin_delete("/admin/v1/service-owners/digdir").await.expect_status(204);
        let owners = broker.admin_get("/admin/v1/service-owners").await.expect_status(200).json();
        assert_eq!(owners["serviceOwners"], json!([]));
    }
}
