//! Altinn Events' subscription and pull API over real HTTP, answered as
//! `Altinn/altinn-events` answers it: one scenario per rule, each naming the Altinn test (in
//! `test/Altinn.Platform.Events.Tests/`) or source file it mirrors, on SQLite and on
//! PostgreSQL with RabbitMQ.

use std::time::Duration;

use broker_tests::events::types::{INITIALIZED, PUBLISHED};
use broker_tests::events::{EVENTS, SUBSCRIPTIONS, resource_urn, subscription};
use broker_tests::scenario::{RECIPIENT, RESOURCE, SENDER, STRANGER, urn};
use broker_tests::{Database, Reply, Scenario, Webhook, on_each_database};
use reqwest::Method;
use serde_json::{Value, json};

/// How long the tests wait for ingest and handshakes.
const ARRIVAL: Duration = Duration::from_secs(30);

/// Altinn's answer to an endpoint that is missing, relative or not https.
const INVALID_ENDPOINT: &str = "Missing or invalid endpoint to push events towards";
/// How Altinn types its pull and the pull's problems.
const CLOUDEVENTS_UTF8: &str = "application/cloudevents+json; charset=utf-8";

/// A subscription body for `end_point` to the scenario's resource, for `org`'s events, with
/// `member` set to `value` (`Null` removes it).
fn with(end_point: &str, org: &str, member: &str, value: Value) -> Value {
    let mut body = subscription(end_point, org);
    let object = body.as_object_mut().expect("an object");
    if value.is_null() {
        object.remove(member);
    } else {
        object.insert(member.to_owned(), value);
    }
    body
}

/// Waits until the sender can pull the three events of one published transfer; the page.
async fn given_a_published_transfer(s: &Scenario) -> Value {
    s.published(b"altinn events").await;
    let query = format!(
        "resource={}&after=0&subject={}",
        resource_urn(RESOURCE),
        urn(SENDER)
    );
    let deadline = tokio::time::Instant::now() + ARRIVAL;
    loop {
        let page = s.pull(&s.sender.events, &query).await.ok_json();
        if page.as_array().is_some_and(|events| events.len() == 3) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ingested: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /events/api/v1/events?<query>` as `token`, with `Altinn-AlternativeSubject` when given.
async fn pull(s: &Scenario, token: &str, query: &str, alternative: Option<&str>) -> Reply {
    let mut request = s
        .request(Method::GET, &format!("{EVENTS}?{query}"))
        .bearer_auth(token);
    if let Some(alternative) = alternative {
        request = request.header("Altinn-AlternativeSubject", alternative);
    }
    s.send(request).await
}

/// The ids of a pulled page.
fn ids(page: &Value) -> Vec<&str> {
    page.as_array()
        .into_iter()
        .flatten()
        .map(|event| event["id"].as_str().unwrap_or_default())
        .collect()
}

on_each_database! {
    /// `SubscriptionController.Post`'s checks in Altinn's order, each answered with Altinn's
    /// status and text (a JSON string) or its empty `Forbid()`.
    async fn creating_refuses_as_altinn_refuses(db: Database) {
        let s = Scenario::start(db).await;
        let hook = Webhook::start().await;
        let url = hook.url();
        let recipient = &s.recipient.events;

        // Post_GivenMissingBearerToken_ReturnsUnauthorized.
        s.call("not-a-token", Method::POST, SUBSCRIPTIONS, Some(subscription(&url, RECIPIENT)))
            .await
            .assert_bare(401);
        // Post_EndPointIsNotAnAbsoluteHttpsUrl_ReturnsBadRequest and
        // Post_GivenSubscriptionWithoutEndpoint_ReturnsBadRequest.
        for end_point in [
            json!(""),
            json!("skd/flyttemelding"),
            json!("altinn.no/ttd/apps-test/"),
            json!("platform.altinn.no/"),
            json!("http://altinn.no/ttd/"),
            json!("sftp://altinn.no/ttd/"),
            Value::Null,
        ] {
            let body = with(&url, RECIPIENT, "endPoint", end_point);
            s.subscribe(recipient, body).await.assert_text(400, INVALID_ENDPOINT);
        }
        // Post_SourceFilterIsNotAnAbsoluteHttpsUrl_ReturnsBadRequest.
        for source in ["skd/flyttemelding", "http://altinn.no/ttd/", "sftp://altinn.no/ttd/"] {
            let body = with(&url, RECIPIENT, "sourceFilter", json!(source));
            s.subscribe(recipient, body).await
                .assert_text(400, "SourceFilter must be an absolute URL with the https scheme.");
        }
        // Post_GivenGenericSubscriptionWithoutScope_ReturnsForbidden: after the URL checks.
        s.subscribe(&s.recipient.read, subscription(&url, RECIPIENT)).await.assert_bare(403);
        let bad_endpoint = with(&url, RECIPIENT, "endPoint", json!("http://altinn.no/ttd/"));
        s.subscribe(&s.recipient.read, bad_endpoint).await.assert_text(400, INVALID_ENDPOINT);
        // Post_GivenSubscriptionWithInvalidUrnResource_ReturnsBadRequest; Altinn's URN pattern
        // has no upper case.
        for resource in ["some-service", "", "urn:altinn:resource:Broker-E2E"] {
            let body = with(&url, RECIPIENT, "resourceFilter", json!(resource));
            s.subscribe(recipient, body).await.assert_text(400, "Resource filter must be a valid urn");
        }
        // GenericSubscriptionService's rules (GenericSubscriptionServiceTest).
        let cases = [
            (with(&url, RECIPIENT, "resourceFilter", Value::Null), "Resource filter is required."),
            (
                with(&url, RECIPIENT, "sourceFilter", json!("https://altinn.no/ttd/")),
                "Source filter is not supported for subscriptions on this resource.",
            ),
            (
                with(&url, RECIPIENT, "alternativeSubjectFilter", json!(format!("/organisation/{RECIPIENT}"))),
                "AlternativeSubject filter is not supported for subscriptions on this resource.",
            ),
            (
                with(&url, RECIPIENT, "subjectFilter", Value::Null)
                    .as_object()
                    .map(|body| {
                        let mut body = body.clone();
                        body.insert("includeSubunits".into(), json!(true));
                        Value::Object(body)
                    })
                    .unwrap_or_default(),
                "IncludeSubunits requires a subject filter.",
            ),
        ];
        for (body, text) in cases {
            s.subscribe(recipient, body).await.assert_text(400, text);
        }
        // CreateSubscription_WithoutAccess_ReturnsForbiddenError: another party's subject, no
        // subject (only the owner may), or a resource that does not exist.
        let forbidden = format!(
            "Not authorized to create a subscription for resource {}.",
            resource_urn(RESOURCE)
        );
        s.subscribe(recipient, subscription(&url, SENDER)).await.assert_text(403, &forbidden);
        let no_subject = with(&url, RECIPIENT, "subjectFilter", Value::Null);
        s.subscribe(recipient, no_subject).await.assert_text(403, &forbidden);
        let unknown = with(&url, RECIPIENT, "resourceFilter", json!("urn:altinn:resource:nowhere"));
        s.subscribe(recipient, unknown).await.assert_text(
            403,
            "Not authorized to create a subscription for resource urn:altinn:resource:nowhere.",
        );
        // ASP.NET's [Consumes("application/json")] and its model binding.
        let text = s.request(Method::POST, SUBSCRIPTIONS).bearer_auth(recipient)
            .header("content-type", "text/plain").body("{}");
        s.send(text).await.assert_bare(415);
        let problem = s.subscribe(recipient, with(&url, RECIPIENT, "includeSubunits", json!("true")))
            .await
            .assert_problem(400);
        assert!(problem["errors"]["$.includeSubunits"].is_array(), "{problem}");
        assert!(hook.received().is_empty(), "a refused subscription was validated");
    }
}

on_each_database! {
    /// Post_GivenValidAppSubscription_ReturnsStatusCreatedAndCorrectData's shape: 201, Altinn's
    /// `Location`, null filters left out, the endpoint normalised, the consumer named as Altinn
    /// names the caller (GetEntityFromPrincipal; EndToEndEventFlowTests' `/org/digdir`), and
    /// the same subscription again the one there is, its handshake sent again
    /// (CompleteSubscriptionCreation_SubscriptionAlreadyExists_ReturnExisting).
    async fn creating_answers_as_altinn_answers(db: Database) {
        let s = Scenario::start(db).await;
        let hook = Webhook::start().await;
        // Altinn's own Bruno collection writes `endpoint`: names bind in any case.
        let body = json!({
            "endpoint": hook.url().replace("http://", "HTTP://"),
            "resourcefilter": resource_urn(RESOURCE),
            "SubjectFilter": urn(RECIPIENT),
        });
        let reply = s.subscribe(&s.recipient.events, body.clone()).await.expect_status(201);
        assert_eq!(reply.content_type(), "application/json; charset=utf-8");
        let created = reply.json();
        let id = created["id"].as_i64().expect("an id");
        assert_eq!(reply.header("location"), Some(format!("/events/api/v1/subscription/{id}").as_str()));
        let end_point = hook.url();
        let members: Vec<&String> = created.as_object().expect("an object").keys().collect();
        assert_eq!(
            members,
            ["consumer", "created", "createdBy", "endPoint", "id", "includeSubunits",
             "resourceFilter", "subjectFilter", "validated"],
            "null filters are left out: {created}"
        );
        assert_eq!(created["endPoint"], end_point);
        assert_eq!(created["consumer"], format!("/organisation/{RECIPIENT}"));
        assert_eq!(created["createdBy"], created["consumer"]);
        assert_eq!(created["validated"], false);
        // System.Text.Json's `DateTime`: UTC, the fraction without trailing zeros.
        let when = created["created"].as_str().unwrap_or_default();
        let fraction = when.trim_end_matches('Z').split('.').nth(1).unwrap_or("1");
        assert!(when.ends_with('Z') && !fraction.ends_with('0'), "{when}");
        assert!(chrono::DateTime::parse_from_rfc3339(when).is_ok(), "{when}");

        hook.wait_until("the handshake", ARRIVAL, |hook| hook.validations().len() == 1).await;
        s.wait_until_validated(&s.recipient.events, id).await;
        let again = s.subscribe(&s.recipient.events, body).await.expect_status(201).json();
        assert_eq!(again["id"], id, "{again}");
        assert_eq!(again["created"], created["created"]);
        assert_eq!(again["validated"], true);
        hook.wait_until("the handshake again", ARRIVAL, |hook| hook.validations().len() == 2).await;
        let typed = json!({
            "endPoint": end_point, "resourceFilter": resource_urn(RESOURCE),
            "subjectFilter": urn(RECIPIENT), "typeFilter": PUBLISHED,
        });
        let other = s.subscribe(&s.recipient.events, typed).await.expect_status(201).json();
        assert_ne!(other["id"], id, "another filter is another subscription");
        assert_eq!(other["typeFilter"], PUBLISHED);

        let owners = s.subscribe(&s.owner, json!({"endPoint": hook.url(), "resourceFilter": resource_urn(RESOURCE)}))
            .await
            .expect_status(201)
            .json();
        assert_eq!(owners["consumer"], "/org/digdir", "{owners}");
        assert!(owners.get("subjectFilter").is_none(), "{owners}");
    }
}

on_each_database! {
    /// `SubscriptionController.Get` and `Delete` and `SubscriptionService`: any token (no
    /// scope), the caller's own only (403 with no body for another's), 404 with no body, and
    /// ASP.NET's binding of `int id`.
    async fn reading_and_deleting_answer_as_altinn_answers(db: Database) {
        let s = Scenario::start(db).await;
        let hook = Webhook::start().await;
        let created = s.subscribe(&s.recipient.events, subscription(&hook.url(), RECIPIENT))
            .await
            .expect_status(201)
            .json();
        let id = created["id"].as_i64().expect("an id");
        let one = format!("{SUBSCRIPTIONS}/{id}");

        // Get_MissingAuthToken_ReturnsUnauthorized.
        s.get(SUBSCRIPTIONS).await.assert_bare(401);
        // Get_AuthenticatedOrg_CallsServiceAndReturnsList, with a token without the scope.
        let list = s.call(&s.recipient.read, Method::GET, SUBSCRIPTIONS, None).await.ok_json();
        assert_eq!(list["count"], 1, "{list}");
        assert!(list["subscriptions"].as_array().is_some_and(|all| all.iter().all(|s| s["consumer"] == format!("/organisation/{RECIPIENT}"))));
        // Get_AuthenticatedUser_NoSubscriptionsReturnsEmtpyList.
        let none = s.call(&s.stranger.read, Method::GET, SUBSCRIPTIONS, None).await.ok_json();
        assert_eq!(none, json!({"count": 0, "subscriptions": []}));
        // Get_GivenSubscriptionOrganisationWithValidSubject_ReturnsOk, …WithInvalidCreatedBy_
        // ReturnsForbidden, and Delete_…_ReturnsForbidden.
        let read = s.call(&s.recipient.read, Method::GET, &one, None).await.ok_json();
        assert_eq!(read["id"], id);
        s.call(&s.stranger.events, Method::GET, &one, None).await.assert_bare(403);
        s.call(&s.stranger.events, Method::DELETE, &one, None).await.assert_bare(403);
        // GetSubscription_SubscriptionNotFound_Returns404 (and 0 binds, naming none).
        for missing in [i64::from(i32::MAX), 0, -1] {
            let uri = format!("{SUBSCRIPTIONS}/{missing}");
            s.call(&s.recipient.read, Method::GET, &uri, None).await.assert_bare(404);
        }
        let problem = s.call(&s.recipient.read, Method::GET, &format!("{SUBSCRIPTIONS}/abc"), None)
            .await
            .assert_problem(400);
        assert_eq!(problem["errors"], json!({"id": ["The value 'abc' is not valid."]}));
        // Delete_GivenSubscriptionOrganisationWithValidSubject_ReturnsCreated: 200, no body.
        s.call(&s.recipient.read, Method::DELETE, &one, None).await.assert_bare(200);
        s.call(&s.recipient.read, Method::DELETE, &one, None).await.assert_bare(404);
    }
}

on_each_database! {
    /// `EventsController.Get`'s checks and answers: the policy's 401 and 403 with no body,
    /// ASP.NET's binding, Altinn's own checks as problems, `size` read as Altinn reads it, the
    /// alternative subject matched against an attribute Broker's events do not have.
    async fn pulling_refuses_as_altinn_refuses(db: Database) {
        let s = Scenario::start(db).await;
        let resource = format!("resource={}", resource_urn(RESOURCE));
        let sender = &s.sender.events;
        // GetEvents_MissingBearerToken_ReturnsUnauthorized.
        s.get(&format!("{EVENTS}?{resource}&after=0&subject=%2Fparty%2F1337")).await.assert_bare(401);
        // Get_ValidTokenInvalidScope_ForbiddenResponse.
        pull(&s, &s.sender.read, &format!("{resource}&after=0"), None).await.assert_bare(403);
        // GetEvents_MissingRequiredQueryParam_Resource_ReturnsBadRequest.
        let problem = pull(&s, sender, "after=0", None).await;
        assert_eq!(problem.content_type(), CLOUDEVENTS_UTF8);
        assert_eq!(problem.json()["errors"], json!({"resource": ["The resource field is required."]}));
        // Altinn's checks, each a problem with its detail.
        let cases = [
            // GetEvents_InvalidResourceFormat_ReturnsBadRequest.
            ("resource=random&after=0", None,
                "The 'resource' parameter must begin with `urn:altinn:resource:`"),
            // GetEvents_MissingRequiredQueryParam_After_ReturnsBadRequest.
            (resource.as_str(), None, "The 'after' parameter must be defined."),
            // GetEvents_InvalidCombinationOfQueryParams_ReturnsBadRequest.
            (&*format!("{resource}&after=0&subject=%2Fparty%2F1337"), Some("person:16069412345"),
                "Only one of 'subject' or 'alternativeSubject' can be defined."),
        ];
        for (query, alternative, detail) in cases {
            let reply = pull(&s, sender, query, alternative).await;
            assert_eq!(reply.status.as_u16(), 400, "{query}: {}", reply.body);
            assert_eq!(reply.content_type(), CLOUDEVENTS_UTF8, "{query}");
            let problem = reply.json();
            assert_eq!(problem["detail"], detail, "{query}");
            assert_eq!(problem["title"], "Bad Request", "{query}");
        }
        let problem = pull(&s, sender, &format!("{resource}&after=0&size=abc"), None).await.json();
        assert_eq!(problem["errors"], json!({"size": ["The value 'abc' is not valid."]}));
        // [Consumes("application/json")] on a GET.
        let text = s.request(Method::GET, &format!("{EVENTS}?{resource}&after=0"))
            .bearer_auth(sender).header("content-type", "text/plain");
        s.send(text).await.assert_bare(415);

        let events = given_a_published_transfer(&s).await;
        // GetEvents_SizeIsLessThanZero_UsesSize50 and GetEvents_SizeMoreThan1000_…: no error.
        for size in ["-5", "0", "1500"] {
            let page = pull(&s, sender, &format!("{resource}&after=0&size={size}"), None).await.ok_json();
            assert_eq!(page.as_array().map(Vec::len), Some(3), "size {size}: {page}");
        }
        // Altinn matches the header against `alternativesubject`, which no event has; a
        // query parameter of that name is not bound at all.
        let header = pull(&s, sender, &format!("{resource}&after=0"), Some(&format!("/organisation/{SENDER}")))
            .await
            .expect_status(200);
        assert_eq!(header.json(), json!([]));
        assert!(header.header("next").is_none());
        let ignored = pull(&s, sender, &format!("{resource}&after=0&alternativeSubject=x&subject={}", urn(SENDER)), None)
            .await
            .ok_json();
        assert_eq!(ids(&ignored), ids(&events));
    }
}

on_each_database! {
    /// GetEvents_ValidRequest_ReturnsListOfEventsAndNextUrl and …ReturnsNextHeaderWithReplaced
    /// AfterParameter: the page as Altinn writes it, `next` absolute and repeating the query as
    /// sent, `type` repeatable and matched as SQL `LIKE` (getevents.sql), and the page filtered
    /// to what the caller may see rather than refused (AuthorizationService.AuthorizeEvents).
    async fn pulling_answers_as_altinn_answers(db: Database) {
        let s = Scenario::start(db).await;
        let events = given_a_published_transfer(&s).await;
        let sender = &s.sender.events;
        let all = ids(&events);
        let subject = urn(SENDER);
        let query = format!(
            "resource={}&after=0&subject={}&extra=1&size=2",
            resource_urn(RESOURCE),
            subject.replace(':', "%3A")
        );
        let reply = pull(&s, sender, &query, None).await.expect_status(200);
        assert_eq!(reply.content_type(), CLOUDEVENTS_UTF8);
        assert!(reply.body.starts_with("[{") && reply.body.contains("}, {"), "{}", reply.body);
        let page = reply.json();
        assert_eq!(ids(&page), all[..2]);
        let next = reply.header("next").expect("a next link").to_owned();
        assert_eq!(
            next,
            format!(
                "{}{EVENTS}?after={}&resource={}&subject={subject}&extra=1&size=2",
                s.base_url(),
                all[1],
                resource_urn(RESOURCE)
            )
        );
        let follow = |link: &str| {
            let path = link.strip_prefix(s.base_url()).expect("a link to this broker");
            s.send(s.request(Method::GET, path).bearer_auth(sender))
        };
        let following = follow(&next).await.expect_status(200);
        assert_eq!(ids(&following.json()), all[2..]);
        let last = following.header("next").expect("a next link").to_owned();
        let end = follow(&last).await.expect_status(200);
        assert_eq!(end.json(), json!([]));
        assert!(end.header("next").is_none(), "an empty page has no next link");

        // `type` repeats, in any case, as LIKE patterns.
        let of_types = |types: &str| format!("resource={}&after=0&subject={subject}&{types}", resource_urn(RESOURCE));
        let typed = pull(&s, sender, &of_types(&format!("type={PUBLISHED}&Type={INITIALIZED}")), None).await.ok_json();
        let mut found: Vec<&str> = typed.as_array().into_iter().flatten()
            .map(|event| event["type"].as_str().unwrap_or_default()).collect();
        found.sort_unstable();
        assert_eq!(found, [INITIALIZED, PUBLISHED]);
        let every = pull(&s, sender, &of_types("type=no.altinn.broker.%25"), None).await.ok_json();
        assert_eq!(ids(&every), all);
        let none = pull(&s, sender, &of_types("type=%25PUBLISHED"), None).await.ok_json();
        assert_eq!(none, json!([]));

        // Filtered, not refused: another party's subject, or none, gives what the caller may
        // see; the owner sees every party's.
        let resource = format!("resource={}&after=0", resource_urn(RESOURCE));
        let foreign = pull(&s, &s.stranger.events, &format!("{resource}&subject={subject}"), None).await;
        assert_eq!(foreign.expect_status(200).json(), json!([]));
        let strangers = pull(&s, &s.stranger.events, &resource, None).await.ok_json();
        assert_eq!(strangers, json!([]), "{STRANGER} sees nothing of others");
        let recipients = pull(&s, &s.recipient.events, &resource, None).await.ok_json();
        assert!(recipients.as_array().is_some_and(|page| page.len() == 1 && page[0]["subject"] == urn(RECIPIENT)), "{recipients}");
        let owners = pull(&s, &s.owner, &resource, None).await.ok_json();
        assert_eq!(owners.as_array().map(Vec::len), Some(4), "{owners}");
    }
}
