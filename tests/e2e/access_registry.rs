//! The access registry through the gateway, as a service owner's system uses it: the operator
//! registers the owner; the owner publishes a resource, its policy and an access list; decisions
//! (asked over gRPC, as the other services ask) follow every change. Then Altinn's Resource
//! Registry rule by rule, each scenario naming the Altinn test or source it mirrors: the same
//! request gets the same answer (status, body shape and texts, headers).

use std::time::{Duration, Instant};

use broker_proto::access::AuthorizeRequest;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::common::Principal;
use broker_tests::{
    BRREG, Broker, BrokerOptions, DIGDIR, Database, Reply, on_each_database, org_numbers,
    service_resource,
};
use reqwest::Method;
use serde_json::{Value, json};

const RESOURCE_WRITE: &str = "altinn:resourceregistry/resource.write";
const LIST_READ: &str = "altinn:resourceregistry/accesslist.read";
const LIST_WRITE: &str = "altinn:resourceregistry/accesslist.write";
const SERVICE_OWNER: &str = "altinn:serviceowner";
const RESOURCE: &str = "/resourceregistry/api/v1/resource";
const LISTS: &str = "/resourceregistry/api/v1/access-lists/digdir";
const SCOPES: [&str; 4] = [RESOURCE_WRITE, LIST_READ, LIST_WRITE, SERVICE_OWNER];

fn urn(org: &str) -> String {
    format!("urn:altinn:organization:identifier-no:{org}")
}

/// A JSON call with a bearer token and optional headers.
async fn call(
    broker: &Broker,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = broker.request(method, path);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    broker.send(request).await
}

/// A caller of the registry: a broker and the caller's token.
struct As<'a> {
    broker: &'a Broker,
    token: &'a str,
}

impl As<'_> {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        call(
            self.broker,
            Some(self.token),
            Method::GET,
            path,
            None,
            headers,
        )
        .await
    }

    async fn put(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        call(
            self.broker,
            Some(self.token),
            Method::PUT,
            path,
            Some(body),
            headers,
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        call(
            self.broker,
            Some(self.token),
            Method::POST,
            path,
            Some(body),
            &[],
        )
        .await
    }
}

/// The reply's `ETag`.
fn etag(reply: &Reply) -> String {
    reply.header("etag").expect("an ETag").to_owned()
}

/// Asserts a status with no body, as ASP.NET answers `Forbid()` and its policies' refusals.
#[track_caller]
fn assert_bare(reply: &Reply, status: u16) {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{}: {}",
        reply.request,
        reply.body
    );
    assert!(reply.body.is_empty(), "{}: {}", reply.request, reply.body);
}

/// Asserts an Altinn Authorization problem (`AltinnProblemDetails`) with `code`.
#[track_caller]
fn assert_altinn_problem(reply: &Reply, status: u16, code: &str) -> Value {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{}: {}",
        reply.request,
        reply.body
    );
    assert!(
        reply.content_type().starts_with("application/problem+json"),
        "{}: {}",
        reply.request,
        reply.content_type()
    );
    let body = reply.json();
    assert_eq!(body["code"], code, "{}: {body}", reply.request);
    assert_eq!(body["type"], format!("urn:altinn:error:{code}"));
    assert!(body["statusDescription"].is_string(), "{body}");
    body
}

/// Asserts Altinn Authorization's validation problem holding one error `code` at `paths`.
#[track_caller]
fn assert_validation_error(reply: &Reply, code: &str, paths: &[&str]) -> Value {
    let body = assert_altinn_problem(reply, 400, "STD-00000");
    assert_eq!(body["validationErrors"][0]["code"], code, "{body}");
    assert_eq!(body["validationErrors"][0]["paths"], json!(paths), "{body}");
    body
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

/// A broker with Digdir and Brreg as service owners; their tokens with every registry scope.
async fn owners(db: Database) -> (Broker, String, String) {
    let broker = Broker::start(BrokerOptions::new().database(db)).await;
    for (org, code) in [(DIGDIR, "digdir"), (BRREG, "brreg")] {
        let owner = json!({"orgNumber": org, "orgCode": code, "name": code});
        broker
            .admin_post("/admin/v1/service-owners", &owner)
            .await
            .expect_status(201);
    }
    let digdir = broker
        .register_client(DIGDIR, &SCOPES)
        .await
        .token(&SCOPES)
        .await;
    let brreg = broker
        .register_client(BRREG, &SCOPES)
        .await
        .token(&SCOPES)
        .await;
    (broker, digdir, brreg)
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

        let digdir = broker.register_client(DIGDIR, &SCOPES).await.token(&SCOPES).await;
        let brreg = broker.register_client(BRREG, &SCOPES).await.token(&SCOPES).await;
        let unscoped = broker.register_client(DIGDIR, &["altinn:broker.read"]).await.token(&["altinn:broker.read"]).await;

        // Only the owner, with the scope, creates the resource; reading it is public.
        let body = service_resource("e2e-resource", "Enabled");
        assert_bare(&call(&broker, None, Method::POST, RESOURCE, Some(body.clone()), &[]).await, 401);
        assert_bare(&call(&broker, Some(&unscoped), Method::POST, RESOURCE, Some(body.clone()), &[]).await, 403);
        assert_bare(&call(&broker, Some(&brreg), Method::POST, RESOURCE, Some(body.clone()), &[]).await, 403);
        let created = call(&broker, Some(&digdir), Method::POST, RESOURCE, Some(body), &[]).await;
        assert_bare(&created, 201);
        let first = etag(&created);
        let public = broker.get(&format!("{RESOURCE}/e2e-resource")).await.expect_status(200).json();
        assert_eq!(public["hasCompetentAuthority"]["orgcode"], "digdir");
        assert_eq!(public["accessListMode"], "Enabled");
        broker.get(&format!("{RESOURCE}/no-such-resource")).await.assert_problem(404);
        let listed = broker.get(&format!("{RESOURCE}/resourcelist")).await.expect_status(200).json();
        assert!(listed.to_string().contains("e2e-resource"));

        // Writes honour conditions (Broker's addition on resources); a stale tag changes nothing.
        let path = format!("{RESOURCE}/e2e-resource");
        let mut update = service_resource("e2e-resource", "Enabled");
        update["description"] = json!({"nb": "Oppdatert", "nn": "Oppdatert", "en": "Updated"});
        call(&broker, Some(&digdir), Method::PUT, &path, Some(update.clone()), &[("If-Match", "\"1\"")]).await.assert_problem(400);
        assert_bare(&call(&broker, Some(&brreg), Method::PUT, &path, Some(update.clone()), &[]).await, 403);
        let updated = call(&broker, Some(&digdir), Method::PUT, &path, Some(update.clone()), &[("If-Match", &first)]).await;
        assert_bare(&updated, 200);
        assert_ne!(etag(&updated), first);
        call(&broker, Some(&digdir), Method::PUT, &path, Some(update), &[("If-Match", &first)]).await.assert_problem(412);

        // No policy yet: nothing is permitted.
        assert_eq!(decision(&broker, "read", BRREG).await, "policy");
        let policy = json!({"rules": [{"subjects": ["any-organization"], "actions": ["read"]}]});
        let policy_path = format!("{path}/policy");
        assert_bare(&call(&broker, Some(&brreg), Method::PUT, &policy_path, Some(policy.clone()), &[]).await, 403);
        let bad_policy = json!({"rules": [{"subjects": ["urn:altinn:organization:identifier-no:123"], "actions": ["read"]}]});
        call(&broker, Some(&digdir), Method::PUT, &policy_path, Some(bad_policy), &[]).await.assert_problem(400);
        call(&broker, Some(&digdir), Method::PUT, &policy_path, Some(policy), &[]).await.expect_status(200);
        assert_eq!(broker.get(&policy_path).await.expect_status(200).json()["rules"][0]["actions"][0], "read");

        // Access lists are on: Brreg is denied until it is a member of a connected list.
        assert_eq!(decision(&broker, "read", BRREG).await, "not-on-access-list");
        let list_path = format!("{LISTS}/readers");
        assert_bare(&call(&broker, Some(&brreg), Method::PUT, &list_path, Some(json!({"name": "Readers"})), &[]).await, 403);
        call(&broker, Some(&digdir), Method::PUT, &list_path, Some(json!({"name": "Readers", "description": "May read"})), &[]).await.expect_status(200);
        let members = format!("{list_path}/members");
        call(&broker, Some(&digdir), Method::POST, &members, Some(json!({"data": ["not-a-urn"]})), &[]).await.assert_problem(400);
        call(&broker, Some(&digdir), Method::POST, &members, Some(json!({"data": [urn(BRREG)]})), &[]).await.expect_status(200);
        let listed = call(&broker, Some(&digdir), Method::GET, &members, None, &[]).await.expect_status(200).json();
        assert_eq!(listed["data"][0]["id"], urn(BRREG));
        assert_bare(&call(&broker, Some(&brreg), Method::GET, &members, None, &[]).await, 403);
        assert_eq!(decision(&broker, "read", BRREG).await, "not-on-access-list", "not connected yet");

        let connection = format!("{list_path}/resource-connections/e2e-resource");
        call(&broker, Some(&digdir), Method::PUT, &connection, Some(json!({"actionFilters": ["write"]})), &[]).await.expect_status(200);
        assert_eq!(decision(&broker, "read", BRREG).await, "not-on-access-list", "the filter allows only write");
        call(&broker, Some(&digdir), Method::PUT, &connection, Some(json!({"actionFilters": []})), &[]).await.expect_status(200);
        assert_eq!(decision(&broker, "read", BRREG).await, "permit");
        assert_eq!(decision(&broker, "read", DIGDIR).await, "not-on-access-list");

        // Disconnecting the list denies at once; connecting again permits.
        call(&broker, Some(&digdir), Method::DELETE, &connection, None, &[]).await.expect_status(200);
        assert_eq!(decision(&broker, "read", BRREG).await, "not-on-access-list");
        call(&broker, Some(&digdir), Method::PUT, &connection, Some(json!({})), &[]).await.expect_status(200);
        assert_eq!(decision(&broker, "read", BRREG).await, "permit");

        // Replacing the members with Digdir alone drops Brreg.
        call(&broker, Some(&digdir), Method::PUT, &members, Some(json!({"data": [urn(DIGDIR)]})), &[]).await.expect_status(200);
        assert_eq!(decision(&broker, "read", BRREG).await, "not-on-access-list");
        assert_eq!(decision(&broker, "read", DIGDIR).await, "permit");
        call(&broker, Some(&digdir), Method::POST, &members, Some(json!({"data": [urn(BRREG)]})), &[]).await.expect_status(200);

        // Removing the member is denied at once (the registry's cache is flushed by the write).
        let removed = Instant::now();
        call(&broker, Some(&digdir), Method::DELETE, &members, Some(json!({"data": [urn(BRREG)]})), &[]).await.expect_status(200);
        assert_eq!(decision(&broker, "read", BRREG).await, "not-on-access-list");
        assert!(removed.elapsed() < Duration::from_secs(1));

        // The owner's platform token names it as a service owner; a stranger's does not.
        let platform = broker.platform_token(&digdir).await;
        assert_eq!(broker.verify(&platform).await["urn:altinn:org"], "digdir");
        let platform = broker.platform_token(&brreg).await;
        assert!(broker.verify(&platform).await.get("urn:altinn:org").is_none());

        // Deleting the resource: gone for readers and for decisions.
        assert_bare(&call(&broker, Some(&brreg), Method::DELETE, &path, None, &[]).await, 403);
        call(&broker, Some(&digdir), Method::DELETE, &path, None, &[("If-Match", &first)]).await.assert_problem(412);
        assert_bare(&call(&broker, Some(&digdir), Method::DELETE, &path, None, &[]).await, 204);
        broker.get(&path).await.assert_problem(404);
        assert_eq!(decision(&broker, "read", BRREG).await, "resource-not-found");

        // A service owner with lists cannot be removed; once they are gone it can.
        broker.admin_delete("/admin/v1/service-owners/digdir").await.assert_problem(409);
        assert_bare(&call(&broker, Some(&brreg), Method::DELETE, &list_path, None, &[]).await, 403);
        call(&broker, Some(&digdir), Method::DELETE, &list_path, None, &[]).await.expect_status(200);
        call(&broker, Some(&digdir), Method::GET, &list_path, None, &[]).await.assert_problem(404);
        broker.admin_delete("/admin/v1/service-owners/digdir").await.expect_status(204);
        let owners = broker.admin_get("/admin/v1/service-owners").await.expect_status(200).json();
        assert_eq!(owners["serviceOwners"], json!([]));
    }
}

on_each_database! {
    /// Altinn's `ResourceController` and `ServiceResourceHelper.ValidateResource`, rule by rule.
    async fn resources_answer_as_altinns_resource_controller(db: Database) {
        let (broker, digdir, brreg) = owners(db).await;
        let (as_digdir, as_brreg) = (As { broker: &broker, token: &digdir }, As { broker: &broker, token: &brreg });

        // `ValidateResource`: every failing rule under its C# name, in Altinn's words.
        let invalid = as_digdir.post(RESOURCE, json!({"identifier": "Ab", "title": {"nb": "x"}})).await;
        let errors = invalid.assert_problem(400)["errors"].clone();
        assert_eq!(errors["ResourceType"], json!(["ResourceType needs to be set"]));
        assert_eq!(errors["HasCompetentAuthority.Organization"], json!(["HasCompetentAuthority needs to be set with valid organization number"]));
        assert_eq!(errors["Identifier"], json!(["Invalid id. Only a-z and 0-9 is allowed together with _ and -.  Minimum 4 characters"]));
        assert_eq!(errors["Title"], json!(["Missing title in english en", "Missing title in nynorsk nn"]));
        assert_eq!(errors["Description"].as_array().map(Vec::len), Some(3));
        assert_eq!(errors["RightDescription"].as_array().map(Vec::len), Some(3), "delegable by default");

        // `HasWriteAccess`: the organisation must be the caller's, else `Forbid()`.
        let mut theirs = service_resource("e2e-compat", "Enabled");
        theirs["hasCompetentAuthority"] = json!({"organization": BRREG});
        assert_bare(&as_digdir.post(RESOURCE, theirs).await, 403);

        // `Created(uri, null)`: 201, the address, no body. Enums by Altinn's numbers; every
        // member sent is kept and answered back.
        let mut body = service_resource("e2e-compat", "Enabled");
        body["hasCompetentAuthority"] = json!({"organization": DIGDIR});
        body["resourceType"] = json!(32);
        body["accessListMode"] = json!(1);
        body["version"] = json!("1.0");
        body["keywords"] = json!([{"word": "post", "language": "nb"}]);
        body["homepage"] = json!("https://digdir.no");
        let created = as_digdir.post(RESOURCE, body.clone()).await;
        assert_bare(&created, 201);
        assert_eq!(created.header("location"), Some("/resourceregistry/api/v1/resource/e2e-compat"));
        // `Conflict("The Resource already exist: …")`: a JSON string.
        let again = as_digdir.post(RESOURCE, body).await;
        assert_eq!(again.status.as_u16(), 409);
        assert_eq!(again.json(), json!("The Resource already exist: e2e-compat"));

        let path = format!("{RESOURCE}/e2e-compat");
        let read = broker.get(&path).await.expect_status(200).json();
        assert_eq!(read["resourceType"], "BrokerService");
        assert_eq!(read["accessListMode"], "Enabled");
        assert_eq!(read["version"], "1.0");
        assert_eq!(read["keywords"], json!([{"word": "post", "language": "nb"}]));
        assert_eq!(read["homepage"], "https://digdir.no");
        assert_eq!(read["hasCompetentAuthority"]["orgcode"], "digdir", "filled in");
        assert_eq!((read["delegable"].clone(), read["selfIdentifiedUserEnabled"].clone()), (json!(true), json!(false)));
        assert_eq!(read["versionId"], 1);
        assert!(read.get("status").is_none(), "nothing absent is written as null: {read}");

        // `versionId`: the version there is (Broker keeps no history); `int` binds ASP.NET's way.
        broker.get(&format!("{path}?versionId=1")).await.expect_status(200);
        broker.get(&format!("{path}?versionId=2")).await.assert_problem(404);
        broker.get(&format!("{path}?versionId=one")).await.assert_problem(400);

        // `NotFound()` for any identifier nobody has, even one no resource could take.
        broker.get(&format!("{RESOURCE}/Not%20A%20Slug")).await.assert_problem(404);

        // `PUT`: 404 first, then `"Id in path does not match ID in resource"`, the `[Required]`
        // members, and `Ok()` with no body.
        let replacement = service_resource("e2e-compat", "Disabled");
        call(&broker, Some(&digdir), Method::PUT, &format!("{RESOURCE}/nowhere"), Some(service_resource("nowhere", "Disabled")), &[]).await.assert_problem(404);
        let other = call(&broker, Some(&digdir), Method::PUT, &path, Some(service_resource("other-id", "Disabled")), &[]).await;
        assert_eq!(other.status.as_u16(), 400);
        assert_eq!(other.json(), json!("Id in path does not match ID in resource"));
        let mut incomplete = replacement.clone();
        incomplete.as_object_mut().map(|members| members.remove("contactPoints"));
        let required = call(&broker, Some(&digdir), Method::PUT, &path, Some(incomplete), &[]).await;
        assert_eq!(required.assert_problem(400)["errors"], json!({"ContactPoints": ["The ContactPoints field is required."]}));
        assert_bare(&call(&broker, Some(&digdir), Method::PUT, &path, Some(replacement), &[]).await, 200);
        assert_eq!(broker.get(&path).await.json()["versionId"], 2);

        // `resourcelist`: every resource in one array; paging only when asked (Broker's).
        let mut second = service_resource("e2e-second", "Disabled");
        second["hasCompetentAuthority"] = json!({"organization": BRREG, "orgcode": "brreg"});
        assert_bare(&as_brreg.post(RESOURCE, second).await, 201);
        let all = broker.get(&format!("{RESOURCE}/resourcelist")).await.expect_status(200);
        assert!(all.header("link").is_none());
        let identifiers: Vec<Value> = all.json().as_array().unwrap().iter().map(|r| r["identifier"].clone()).collect();
        assert_eq!(identifiers, [json!("e2e-compat"), json!("e2e-second")]);
        let page = broker.get(&format!("{RESOURCE}/resourcelist?pageSize=1")).await.expect_status(200);
        assert_eq!(page.json().as_array().map(Vec::len), Some(1));
        let link = page.header("link").expect("a next page").to_owned();
        let next = link.trim_start_matches('<').split('>').next().unwrap().to_owned();
        assert_eq!(broker.get(&next).await.json()[0]["identifier"], "e2e-second");
        broker.get(&format!("{RESOURCE}/resourcelist?includeApps=maybe")).await.assert_problem(400);

        // `GetPolicy`: Altinn's texts as text/plain.
        let policy = broker.get(&format!("{path}/policy")).await;
        assert_eq!((policy.status.as_u16(), policy.body.as_str()), (404, "Unable to find requested policy"));
        assert!(policy.content_type().starts_with("text/plain"), "{}", policy.content_type());
        let missing = broker.get(&format!("{RESOURCE}/nowhere/policy")).await;
        assert_eq!((missing.status.as_u16(), missing.body.as_str()), (404, "Unable to find resource"));

        // `HasAdminAccess`: `resource.admin` writes any owner's resource.
        let scopes = ["altinn:resourceregistry/resource.admin"];
        let admin = broker.register_client(BRREG, &scopes).await.token(&scopes).await;
        let mut for_digdir = service_resource("e2e-by-admin", "Disabled");
        for_digdir["hasCompetentAuthority"] = json!({"organization": DIGDIR});
        assert_bare(&call(&broker, Some(&admin), Method::POST, RESOURCE, Some(for_digdir), &[]).await, 201);
        assert_eq!(broker.get(&format!("{RESOURCE}/e2e-by-admin")).await.json()["hasCompetentAuthority"]["orgcode"], "digdir");
        assert_bare(&call(&broker, Some(&admin), Method::DELETE, &format!("{RESOURCE}/e2e-by-admin"), None, &[]).await, 204);

        // `DELETE`: someone else's is forbidden, no body; the owner's is 204.
        assert_bare(&call(&broker, Some(&brreg), Method::DELETE, &path, None, &[]).await, 403);
        assert_bare(&call(&broker, Some(&digdir), Method::DELETE, &path, None, &[]).await, 204);
    }
}

on_each_database! {
    /// Altinn's `AccessListsController` with `OwnerMustBeOrgcodeFilter` and its conditional
    /// requests (`EtagHeadersTests`, `Can_Require_New_List`, `Can_Require_Existing_List`).
    async fn access_lists_answer_as_altinns_access_lists_controller(db: Database) {
        let (broker, digdir, brreg) = owners(db).await;
        let owner = As { broker: &broker, token: &digdir };

        // The owner in another case is the owner (`OwnerMustBeOrgcode` canonicalises); PUT
        // answers 200 even when it creates, with a weak tag and `Last-Modified`, and no version.
        let created = owner.put("/resourceregistry/api/v1/access-lists/DIGDIR/compat", json!({"name": "Compat"}), &[]).await;
        let list = created.expect_status(200);
        let tag = etag(&list);
        assert!(tag.starts_with("W/\""), "{tag}");
        assert!(list.header("last-modified").is_some());
        let body = list.json();
        assert_eq!(body["urn"], "urn:altinn:access-list:digdir:compat");
        assert_eq!(body["description"], "");
        assert!(body.get("version").is_none() && body.get("resourceConnections").is_none(), "{body}");
        assert!(body["createdAt"].as_str().unwrap().ends_with("+00:00"), "{body}");

        // `Handles_Update_To_Same`: the same texts make no new version.
        let same = owner.put(&format!("{LISTS}/compat"), json!({"name": "Compat"}), &[]).await;
        assert_eq!(etag(&same.expect_status(200)), tag);
        // `Can_Require_New_List` and `Can_Require_Existing_List`.
        owner.put(&format!("{LISTS}/compat"), json!({"name": "New"}), &[("If-None-Match", "*")]).await.assert_problem(412);
        owner.put(&format!("{LISTS}/absent"), json!({"name": "New"}), &[("If-Match", "*")]).await.assert_problem(412);
        owner.get(&format!("{LISTS}/absent"), &[]).await.assert_problem(404);
        // `CanNot_Create_List_Without_Name`.
        let nameless = owner.put(&format!("{LISTS}/nameless"), json!({"description": "d"}), &[]).await;
        assert_eq!(nameless.assert_problem(400)["errors"]["Name"], json!(["The Name field is required."]));

        // `OwnerMustBeOrgcode`: an org number is no org code (RR-00010); `WrongOwner_Returns_Forbidden`.
        let by_number = owner.get(&format!("/resourceregistry/api/v1/access-lists/{DIGDIR}"), &[]).await;
        assert_validation_error(&by_number, "RR-00010", &["/$PATH/owner"]);
        assert_bare(&owner.get("/resourceregistry/api/v1/access-lists/brreg", &[]).await, 403);
        // `CorrectScopeAndAdmin_Returns_Ok`: the administrators' scope reads any owner's lists;
        // an owner nobody registered is still no org code.
        let scopes = ["altinn:resourceregistry/resource.admin"];
        let admin = broker.register_client(BRREG, &scopes).await.token(&scopes).await;
        let admin = As { broker: &broker, token: &admin };
        admin.get(LISTS, &[]).await.expect_status(200);
        assert_validation_error(&admin.get("/resourceregistry/api/v1/access-lists/nobody", &[]).await, "RR-00010", &["/$PATH/owner"]);

        // `EtagHeadersTests`: 304 for a current copy, 412 for an old tag.
        let unchanged = owner.get(&format!("{LISTS}/compat"), &[("If-None-Match", &tag)]).await;
        assert_bare(&unchanged, 304);
        assert_eq!(unchanged.header("etag"), Some(tag.as_str()));
        let renamed = owner.put(&format!("{LISTS}/compat"), json!({"name": "Renamed"}), &[("If-Match", &tag)]).await;
        let current = etag(&renamed.expect_status(200));
        owner.get(&format!("{LISTS}/compat"), &[("If-Match", &tag)]).await.assert_problem(412);
        let since = owner.get(&format!("{LISTS}/compat"), &[]).await.header("last-modified").unwrap().to_owned();
        assert_bare(&owner.get(&format!("{LISTS}/compat"), &[("If-Modified-Since", &since)]).await, 304);
        assert_ne!(current, tag);

        // `Can_Include_Additional_Data`: `resource` picks the connection each list includes.
        let mut resource = service_resource("e2e-listed", "Enabled");
        resource["hasCompetentAuthority"] = json!({"organization": DIGDIR});
        assert_bare(&call(&broker, Some(&digdir), Method::POST, RESOURCE, Some(resource), &[]).await, 201);
        owner.put(&format!("{LISTS}/other"), json!({"name": "Other"}), &[]).await.expect_status(200);
        let connection = owner.put(&format!("{LISTS}/compat/resource-connections/e2e-listed"), json!({"actionFilters": ["read"]}), &[]).await;
        let connected = connection.expect_status(200).json();
        assert_eq!(connected["actionFilters"], json!(["read"]));
        assert!(connected["updatedAt"].is_string() && connected.get("modifiedAt").is_none(), "{connected}");
        let lists = owner.get(&format!("{LISTS}?include=resources&resource=e2e-listed"), &[]).await.expect_status(200).json();
        assert_eq!(lists["data"][0]["identifier"], "compat");
        assert_eq!(lists["data"][0]["resourceConnections"][0]["resourceIdentifier"], "e2e-listed");
        assert!(lists["data"][0]["resourceConnections"][0].get("actionFilters").is_none(), "{lists}");
        assert_eq!(lists["data"][1]["resourceConnections"], json!([]), "not filtered: {lists}");
        assert_eq!(lists["links"], json!({}), "the last page has no next link");
        let actions = owner.get(&format!("{LISTS}?include=resource-actions&resource=e2e-listed"), &[]).await.json();
        assert_eq!(actions["data"][0]["resourceConnections"][0]["actionFilters"], json!(["read"]));
        assert_altinn_problem(&owner.get(&format!("{LISTS}?include=members"), &[]).await, 501, "RR-00000");
        assert_validation_error(&owner.get(&format!("{LISTS}?include=resources"), &[]).await, "RR-00002", &["/$QUERY/include", "/$QUERY/resource"]);
        let all_actions = owner.put(&format!("{LISTS}/compat/resource-connections/e2e-listed"), json!({"actionFilters": null}), &[]).await;
        assert!(all_actions.expect_status(200).json().get("actionFilters").is_none(), "every action");

        // `UpsertAccessListResourceConnection`: a missing resource (RR-00002), another owner's
        // (RR-00004, `Disallows_Referencing_Other_ServiceOwners_Resource_If_WriteScope`).
        assert_altinn_problem(&owner.put(&format!("{LISTS}/compat/resource-connections/nowhere"), json!({}), &[]).await, 400, "RR-00002");
        let mut theirs = service_resource("e2e-theirs", "Enabled");
        theirs["hasCompetentAuthority"] = json!({"organization": BRREG});
        assert_bare(&call(&broker, Some(&brreg), Method::POST, RESOURCE, Some(theirs), &[]).await, 201);
        assert_altinn_problem(&owner.put(&format!("{LISTS}/compat/resource-connections/e2e-theirs"), json!({}), &[]).await, 403, "RR-00004");
        // `Returns_NoContent_ForMissingConnection` and `Returns_NoContent_ForMissingList`.
        assert_bare(&call(&broker, Some(&digdir), Method::DELETE, &format!("{LISTS}/other/resource-connections/e2e-listed"), None, &[]).await, 204);
        assert_bare(&call(&broker, Some(&digdir), Method::DELETE, &format!("{LISTS}/absent"), None, &[]).await, 204);
        // `UpdateAccessList`: JSON Patch is not implemented.
        let patch = broker.request(Method::PATCH, &format!("{LISTS}/compat")).bearer_auth(&digdir).header("content-type", "application/json-patch+json").body("[]");
        broker.send(patch).await.assert_problem(501);

        // `Returns_Paginated`: 20 lists a page, an absolute next link.
        for n in 0..19 {
            owner.put(&format!("{LISTS}/page-{n:02}"), json!({"name": "Page"}), &[]).await.expect_status(200);
        }
        let first = owner.get(LISTS, &[]).await.expect_status(200).json();
        assert_eq!(first["data"].as_array().map(Vec::len), Some(20));
        let next = first["links"]["next"].as_str().expect("a next page").to_owned();
        assert!(next.starts_with("http://") && next.contains("/access-lists/digdir?token="), "{next}");
        let path = next.split_once("/resourceregistry").map(|(_, rest)| format!("/resourceregistry{rest}")).unwrap();
        let last = owner.get(&path, &[]).await.expect_status(200).json();
        assert_eq!(last["data"].as_array().map(Vec::len), Some(1));
    }
}

on_each_database! {
    /// Altinn's members actions: parties as `PartyUrn` takes them, 100 per change, answers of
    /// 100 per page whose tokens carry the list's version.
    async fn members_answer_as_altinns_members_actions(db: Database) {
        let (broker, digdir, _) = owners(db).await;
        let members = format!("{LISTS}/members-list/members");
        let change = async |method: Method, parties: Vec<String>| {
            call(&broker, Some(&digdir), method, &members, Some(json!({"data": parties})), &[]).await
        };
        call(&broker, Some(&digdir), Method::PUT, &format!("{LISTS}/members-list"), Some(json!({"name": "Members"})), &[]).await.expect_status(200);

        // `DisallowsUpdatingTooManyMembers`: RR-00000 for a replacement, RR-00001 otherwise.
        let orgs = org_numbers(101);
        let parties: Vec<String> = orgs.iter().map(|org| urn(org)).collect();
        assert_validation_error(&change(Method::PUT, parties.clone()).await, "RR-00000", &["/data"]);
        assert_validation_error(&change(Method::POST, parties.clone()).await, "RR-00001", &["/data"]);
        assert_validation_error(&change(Method::DELETE, parties.clone()).await, "RR-00001", &["/data"]);

        // `PartyUrn`: three forms (a malformed one fails binding); a party Broker cannot
        // resolve without Altinn's Register is RR-00001, as an unknown one is in Altinn.
        let malformed = change(Method::POST, vec!["urn:altinn:person:identifier-no:01017012345".into()]).await;
        assert!(malformed.assert_problem(400)["errors"]["$.data[0]"].is_array());
        for unknown in ["urn:altinn:party:id:50012345", "urn:altinn:party:uuid:e458014d-4d4f-49a1-96d5-a869d95e8715", "urn:altinn:organization:identifier-no:991825828"] {
            assert_altinn_problem(&change(Method::POST, vec![unknown.into()]).await, 400, "RR-00001");
        }

        // 100 at once; the answer is the first page, each member with its identifiers.
        let added = change(Method::POST, parties[..100].to_vec()).await.expect_status(200);
        let page = added.json();
        assert_eq!(page["data"].as_array().map(Vec::len), Some(100));
        assert_eq!(page["data"][0]["identifiers"], json!({"urn:altinn:organization:identifier-no": orgs[0]}));
        assert!(page["links"].get("next").is_none(), "{}", page["links"]);
        // `IsIdempotent`: adding them again changes nothing, not even the version.
        let tag = etag(&added);
        assert_eq!(etag(&change(Method::POST, parties[..100].to_vec()).await.expect_status(200)), tag);

        // `Returns_PreconditionFailed_If_AccessList_Is_Modified_While_Iterating`.
        let grown = change(Method::POST, vec![parties[100].clone()]).await.expect_status(200).json();
        let next = grown["links"]["next"].as_str().expect("a second page").to_owned();
        let path = next.split_once("/resourceregistry").map(|(_, rest)| format!("/resourceregistry{rest}")).unwrap();
        let second = call(&broker, Some(&digdir), Method::GET, &path, None, &[]).await.expect_status(200).json();
        assert_eq!(second["data"].as_array().map(Vec::len), Some(1));
        change(Method::DELETE, vec![parties[0].clone()]).await.expect_status(200);
        call(&broker, Some(&digdir), Method::GET, &path, None, &[]).await.assert_problem(412);
    }
}

on_each_database! {
    /// Altinn's `AccessListMembershipsController`, as Altinn's Broker calls it
    /// (`AltinnResourceRegistryRepository`: `memberships?resource=…&party=…`).
    async fn memberships_answer_as_altinns_memberships_controller(db: Database) {
        let (broker, digdir, _) = owners(db).await;
        let owner = As { broker: &broker, token: &digdir };
        let mut resource = service_resource("e2e-members", "Enabled");
        resource["hasCompetentAuthority"] = json!({"organization": DIGDIR});
        assert_bare(&owner.post(RESOURCE, resource).await, 201);
        owner.put(&format!("{LISTS}/readers"), json!({"name": "Readers"}), &[]).await.expect_status(200);
        owner.post(&format!("{LISTS}/readers/members"), json!({"data": [urn(BRREG)]})).await.expect_status(200);
        owner.put(&format!("{LISTS}/readers/resource-connections/e2e-members"), json!({"actionFilters": ["read"]}), &[]).await.expect_status(200);

        let scopes = ["altinn:resourceregistry/resource.admin"];
        let admin = broker.register_client(DIGDIR, &scopes).await.token(&scopes).await;
        let platform = As { broker: &broker, token: &admin };
        let path = format!("/resourceregistry/api/v1/access-lists/memberships?resource=urn:altinn:resource:e2e-members&party={}", urn(BRREG));
        let found = platform.get(&path, &[]).await.expect_status(200).json();
        assert_eq!(found["data"][0]["party"], urn(BRREG));
        assert_eq!(found["data"][0]["resource"], "urn:altinn:resource:e2e-members");
        assert_eq!(found["data"][0]["actionFilters"], json!(["read"]));
        let none = platform.get(&format!("/resourceregistry/api/v1/access-lists/memberships?party={}", urn(DIGDIR)), &[]).await;
        assert_eq!(none.expect_status(200).json(), json!({"data": []}));
        assert_bare(&owner.get(&path, &[]).await, 403);
        let errors = platform.get("/resourceregistry/api/v1/access-lists/memberships?resource=x", &[]).await;
        let body = assert_altinn_problem(&errors, 400, "STD-00000");
        let codes: Vec<&Value> = body["validationErrors"].as_array().unwrap().iter().map(|e| &e["code"]).collect();
        assert_eq!(codes, [&json!("RR-00005"), &json!("RR-00003")]);
        let unknown = platform.get("/resourceregistry/api/v1/access-lists/memberships?party=urn:altinn:party:id:1", &[]).await;
        assert_altinn_problem(&unknown, 400, "RR-00001");
    }
}
