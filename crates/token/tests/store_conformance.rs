//! One conformance suite for every `TokenStore` implementation: the same scenarios run on
//! SQLite and on PostgreSQL (a fresh database per run; see `broker_tests::database`).

use std::sync::Arc;

use broker_tests::database::{self, TestDatabase};
use broker_token::domain::grant::ReplayKey;
use broker_token::store::{
    ClientKeyRecord, ClientRecord, Inserted, PostgresTokenStore, SigningKeyRecord,
    SqliteTokenStore, TokenStore,
};

fn client(id: &str, kids: &[&str]) -> ClientRecord {
    ClientRecord {
        client_id: id.to_owned(),
        org_number: "991825827".to_owned(),
        name: format!("client {id}"),
        scopes: vec![
            "altinn:broker.read".to_owned(),
            "altinn:broker.write".to_owned(),
        ],
        keys: kids.iter().map(|kid| key(kid)).collect(),
        created_at: 1_700_000_000,
    }
}

fn key(kid: &str) -> ClientKeyRecord {
    ClientKeyRecord {
        kid: kid.to_owned(),
        jwk: format!(r#"{{"kty":"RSA","kid":"{kid}","n":"AQAB","e":"AQAB"}}"#),
        created_at: 1_700_000_000,
    }
}

fn signing_key(generation: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        generation,
        kid: format!("kid-{generation}"),
        private_key: format!("pem {generation}"),
        activates_at: generation * 100,
        created_at: 1,
    }
}

async fn clients_round_trip(store: &dyn TokenStore) {
    let alpha = client("alpha", &["k1", "k2"]);
    assert_eq!(store.insert_client(&alpha).await.unwrap(), Inserted::New);
    assert_eq!(
        store.insert_client(&client("alpha", &[])).await.unwrap(),
        Inserted::AlreadyExists
    );
    assert_eq!(
        store.client("alpha").await.unwrap(),
        Some(alpha.clone()),
        "a conflicting insert changes nothing"
    );
    assert_eq!(store.client("missing").await.unwrap(), None);

    for id in ["delta", "beta", "gamma"] {
        store.insert_client(&client(id, &["k"])).await.unwrap();
    }
    let ids =
        |clients: Vec<ClientRecord>| clients.into_iter().map(|c| c.client_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_clients(None, 2).await.unwrap()),
        ["alpha", "beta"]
    );
    assert_eq!(
        ids(store.list_clients(Some("beta"), 10).await.unwrap()),
        ["delta", "gamma"]
    );
    assert_eq!(
        store.list_clients(None, 10).await.unwrap()[0].keys.len(),
        2,
        "listed clients carry their keys"
    );
}

async fn keys_are_added_and_removed(store: &dyn TokenStore) {
    store
        .insert_client(&client("keyed", &["k1"]))
        .await
        .unwrap();
    assert_eq!(
        store.add_client_key("keyed", &key("k2")).await.unwrap(),
        Some(Inserted::New)
    );
    assert_eq!(
        store.add_client_key("keyed", &key("k2")).await.unwrap(),
        Some(Inserted::AlreadyExists)
    );
    assert_eq!(
        store.add_client_key("nobody", &key("k9")).await.unwrap(),
        None
    );
    let kids = |c: ClientRecord| c.keys.into_iter().map(|k| k.kid).collect::<Vec<_>>();
    assert_eq!(
        kids(store.client("keyed").await.unwrap().unwrap()),
        ["k1", "k2"]
    );
    assert!(store.remove_client_key("keyed", "k1").await.unwrap());
    assert!(!store.remove_client_key("keyed", "k1").await.unwrap());
    assert_eq!(kids(store.client("keyed").await.unwrap().unwrap()), ["k2"]);
    assert!(store.delete_client("keyed").await.unwrap());
    assert!(!store.delete_client("keyed").await.unwrap());
    assert_eq!(store.client("keyed").await.unwrap(), None);
    // Keys go with their client: a new client of the same id starts without them.
    store.insert_client(&client("keyed", &[])).await.unwrap();
    assert!(
        store
            .client("keyed")
            .await
            .unwrap()
            .unwrap()
            .keys
            .is_empty()
    );
}

fn jti(value: &str) -> ReplayKey {
    ReplayKey::Jti(value.to_owned())
}

fn digest(value: &str) -> ReplayKey {
    ReplayKey::Digest(value.to_owned())
}

async fn assertions_are_single_use(store: &dyn TokenStore) {
    assert_eq!(
        store.record_assertion("c", &jti("j1"), 100).await.unwrap(),
        Inserted::New
    );
    assert_eq!(
        store.record_assertion("c", &jti("j1"), 100).await.unwrap(),
        Inserted::AlreadyExists
    );
    assert_eq!(
        store
            .record_assertion("other", &jti("j1"), 100)
            .await
            .unwrap(),
        Inserted::New,
        "jti is per client"
    );
    assert_eq!(
        store.record_assertion("c", &jti("j2"), 200).await.unwrap(),
        Inserted::New
    );
    assert_eq!(store.purge_assertions(150).await.unwrap(), 2);
    assert_eq!(
        store.record_assertion("c", &jti("j2"), 200).await.unwrap(),
        Inserted::AlreadyExists,
        "unexpired ids stay"
    );
}

async fn digests_are_single_use_apart_from_jtis(store: &dyn TokenStore) {
    let d1 = "2e7336dc8eba87ef472df568c35482abf2575dc3e5eac0c5c62b8ffaeac2c934";
    let d2 = "ad4573f052ff7302a57fd72c2fa41f65cadbe842043b962738f9038a38531e84";
    assert_eq!(
        store.record_assertion("d", &digest(d1), 100).await.unwrap(),
        Inserted::New
    );
    assert_eq!(
        store.record_assertion("d", &digest(d1), 100).await.unwrap(),
        Inserted::AlreadyExists
    );
    assert_eq!(
        store.record_assertion("d", &jti(d1), 100).await.unwrap(),
        Inserted::New,
        "a jti that spells a digest is not that digest"
    );
    assert_eq!(
        store.record_assertion("d", &digest(d1), 100).await.unwrap(),
        Inserted::AlreadyExists,
        "nor does the jti take the digest's place"
    );
    assert_eq!(
        store.record_assertion("d", &digest(d2), 200).await.unwrap(),
        Inserted::New
    );
    assert_eq!(
        store.purge_assertions(150).await.unwrap(),
        2,
        "expired digests are purged with expired jtis"
    );
    assert_eq!(
        store.record_assertion("d", &digest(d1), 100).await.unwrap(),
        Inserted::New,
        "a purged digest is forgotten"
    );
    assert_eq!(
        store.record_assertion("d", &digest(d2), 200).await.unwrap(),
        Inserted::AlreadyExists,
        "unexpired digests stay"
    );
}

async fn concurrent_replays_admit_exactly_one(store: Arc<dyn TokenStore>) {
    for key in [jti("same-jti"), digest("same-digest")] {
        let attempts = (0..16).map(|_| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move { store.record_assertion("race", &key, 500).await.unwrap() })
        });
        let outcomes: Vec<Inserted> = futures::future::join_all(attempts)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            outcomes.iter().filter(|o| **o == Inserted::New).count(),
            1,
            "{key:?}"
        );
    }
}

async fn signing_key_generations_are_unique(store: &dyn TokenStore) {
    assert_eq!(
        store.insert_signing_key(&signing_key(1)).await.unwrap(),
        Inserted::New
    );
    let rival = SigningKeyRecord {
        kid: "rival".into(),
        ..signing_key(1)
    };
    assert_eq!(
        store.insert_signing_key(&rival).await.unwrap(),
        Inserted::AlreadyExists
    );
    store.insert_signing_key(&signing_key(3)).await.unwrap();
    store.insert_signing_key(&signing_key(2)).await.unwrap();
    let generations =
        |keys: Vec<SigningKeyRecord>| keys.into_iter().map(|k| k.generation).collect::<Vec<_>>();
    assert_eq!(generations(store.signing_keys().await.unwrap()), [1, 2, 3]);
    assert_eq!(store.signing_keys().await.unwrap()[0], signing_key(1));
    assert_eq!(store.delete_signing_keys_before(3).await.unwrap(), 2);
    assert_eq!(generations(store.signing_keys().await.unwrap()), [3]);
}

async fn conformance(store: Arc<dyn TokenStore>) {
    clients_round_trip(store.as_ref()).await;
    keys_are_added_and_removed(store.as_ref()).await;
    assertions_are_single_use(store.as_ref()).await;
    digests_are_single_use_apart_from_jtis(store.as_ref()).await;
    concurrent_replays_admit_exactly_one(store.clone()).await;
    signing_key_generations_are_unique(store.as_ref()).await;
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempdir();
    let store = SqliteTokenStore::open(&dir.join("token.db")).await.unwrap();
    conformance(Arc::new(store)).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn postgres_store_conforms() {
    let Some(db): Option<TestDatabase> = database::postgres().await else {
        return;
    };
    let store = PostgresTokenStore::connect(db.url()).await.unwrap();
    conformance(Arc::new(store)).await;
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("broker-token-store-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
