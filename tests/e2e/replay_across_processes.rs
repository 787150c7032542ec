//! Replicas are safe (DESIGN §3.5): two `brokerd token` processes on one PostgreSQL database
//! admit each assertion exactly once, even when both receive it at the same moment.

use broker_common::Problem;
use broker_proto::token::{CreateClientRequest, IssueTokenRequest};
use broker_tests::{
    Assertion, Broker, BrokerOptions, ClientKeys, DIGDIR, JWT_BEARER, WRITE, database,
};

/// The issuer both processes derive from the shared public URL.
const PUBLIC_URL: &str = "http://broker.test";
const ROUNDS: i64 = 20;

fn token_process(db: &database::TestDatabase, admin: &str) -> BrokerOptions {
    BrokerOptions::token_service()
        .database_url(db.url())
        .admin_token(admin)
        .env("BROKER_PUBLIC_URL", PUBLIC_URL)
}

#[tokio::test]
async fn two_token_processes_admit_each_assertion_once() {
    each_assertion_is_admitted_once(|assertion, _round| assertion).await;
}

/// Without `jti`, the assertion's digest is what both processes record in the shared database.
#[tokio::test]
async fn two_token_processes_admit_each_assertion_without_jti_once() {
    // Each round's lifetime differs, so two rounds in one second are still two grants.
    each_assertion_is_admitted_once(|assertion, round| {
        assertion.without_jti().lifetime(60 + round)
    })
    .await;
}

/// Sends every round's assertion, shaped by `shape` (given the round), to both processes at once.
async fn each_assertion_is_admitted_once(shape: fn(Assertion, i64) -> Assertion) {
    let Some(db) = database::postgres().await else {
        return;
    };
    let admin = format!("admin-{}", uuid::Uuid::new_v4().simple());
    let a = Broker::start(token_process(&db, &admin)).await;
    let b = Broker::start(token_process(&db, &admin)).await;
    let (mut to_a, mut to_b) = (a.token_service().await, b.token_service().await);

    let keys = ClientKeys::generate();
    let created = to_a
        .create_client(broker_common::grpc::with_bearer(
            tonic::Request::new(CreateClientRequest {
                org_number: DIGDIR.to_owned(),
                scopes: vec![WRITE.to_owned()],
                jwks_json: keys.jwks().to_string(),
                name: "replay test".to_owned(),
                client_id: String::new(),
            }),
            &admin,
        ))
        .await
        .unwrap_or_else(|status| panic!("CreateClient on A: {status:?}\n{}", a.output()))
        .into_inner();
    // B knows the client through the shared database, not through A.
    let issuer = format!("{PUBLIC_URL}/");

    let make_assertion = |round| {
        shape(
            Assertion::new(&keys, &created.client_id, &issuer, WRITE),
            round,
        )
        .sign()
    };
    for round in 0..ROUNDS {
        let assertion = make_assertion(round);
        let request = || IssueTokenRequest {
            grant_type: JWT_BEARER.to_owned(),
            assertion: assertion.clone(),
        };
        let (from_a, from_b) =
            tokio::join!(to_a.issue_token(request()), to_b.issue_token(request()));
        let outcomes = [("A", from_a), ("B", from_b)];
        let admitted: Vec<_> = outcomes
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(p, _)| *p)
            .collect();
        assert_eq!(
            admitted.len(),
            1,
            "round {round}: exactly one process admits the assertion, got {outcomes:?}"
        );
        for (process, outcome) in &outcomes {
            if let Err(status) = outcome {
                let problem: Problem = serde_json::from_slice(status.details()).unwrap_or_else(|e| {
                    panic!("round {round}: {process}'s refusal carries no problem ({e}): {status:?}")
                });
                assert_eq!(
                    problem.oauth_error.as_deref(),
                    Some("invalid_grant"),
                    "round {round}: {process} refused with {problem:?}"
                );
                assert_eq!(problem.status, 400, "round {round}: {problem:?}");
                assert!(
                    problem
                        .detail
                        .as_deref()
                        .is_some_and(|d| d.contains("MP-012")),
                    "round {round}: {process} refused it as a replay: {problem:?}"
                );
            }
        }
    }

    // Both still answer the next, unseen assertion (a refusal did not poison anything).
    for (round, service) in [(ROUNDS, &mut to_a), (ROUNDS + 1, &mut to_b)] {
        let assertion = make_assertion(round);
        service
            .issue_token(IssueTokenRequest {
                grant_type: JWT_BEARER.to_owned(),
                assertion,
            })
            .await
            .expect("a fresh assertion is admitted");
    }
}

#[tokio::test]
async fn two_token_processes_starting_together_publish_the_same_keys() {
    let Some(db) = database::postgres().await else {
        return;
    };
    let admin = format!("admin-{}", uuid::Uuid::new_v4().simple());
    let (a, b) = tokio::join!(
        Broker::start(token_process(&db, &admin)),
        Broker::start(token_process(&db, &admin))
    );
    let jwks = |broker: &Broker| {
        let broker_url = broker.listening("token").to_owned();
        async move {
            let mut client =
                broker_proto::token::token_service_client::TokenServiceClient::connect(broker_url)
                    .await
                    .expect("connect");
            let json = client
                .get_jwks(broker_proto::token::GetJwksRequest {})
                .await
                .expect("GetJwks")
                .into_inner()
                .json;
            let set: serde_json::Value = serde_json::from_str(&json).expect("JWK set JSON");
            let mut kids: Vec<String> = set["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .map(|k| k["kid"].as_str().expect("kid").to_owned())
                .collect();
            kids.sort();
            kids
        }
    };
    let (kids_a, kids_b) = (jwks(&a).await, jwks(&b).await);
    assert!(!kids_a.is_empty());
    assert_eq!(kids_a, kids_b, "replicas publish one key set");
}
