//! Signing-key rotation through the real store, with time moved by hand: the next key is
//! published before it signs, takes over on time, and the old key stays published until every
//! token it signed has expired. Two rings on one store (two replicas) agree at every step.

use std::sync::Arc;

use broker_tests::database;
use broker_token::keys::{KeyPolicy, KeyRing};
use broker_token::store::{PostgresTokenStore, SqliteTokenStore, TokenStore};
use serde_json::{Map, Value};

const POLICY: KeyPolicy = KeyPolicy {
    rotation: 1000,
    lead: 100,
    retain: 50,
};

async fn kids(ring: &KeyRing) -> Vec<String> {
    ring.jwks()
        .await
        .keys
        .into_iter()
        .map(|key| key.kid)
        .collect()
}

async fn signing_kid(ring: &KeyRing, now: i64) -> String {
    let token = ring.sign(&Map::<String, Value>::new(), now).await.unwrap();
    jsonwebtoken::decode_header(&token).unwrap().kid.unwrap()
}

async fn rotates_on_schedule(store: Arc<dyn TokenStore>) {
    let first = KeyRing::load(store.clone(), POLICY, 0).await.unwrap();
    let second = KeyRing::load(store.clone(), POLICY, 0).await.unwrap();
    let original = kids(&first).await;
    assert_eq!(original.len(), 1, "a fresh store gets one key");
    assert_eq!(kids(&second).await, original, "replicas share the key");

    // Before the lead time nothing changes.
    first.maintain(899).await.unwrap();
    assert_eq!(kids(&first).await, original);

    // Both replicas reach the lead time together: exactly one next key, published, not signing.
    let (a, b) = tokio::join!(first.maintain(900), second.maintain(900));
    a.unwrap();
    b.unwrap();
    second.maintain(900).await.unwrap();
    let published = kids(&first).await;
    assert_eq!(
        published.len(),
        2,
        "the next key is published ahead: {published:?}"
    );
    assert_eq!(kids(&second).await, published);
    assert_eq!(
        signing_kid(&first, 999).await,
        original[0],
        "the old key still signs"
    );

    // On time, the new key signs on every replica; the old one stays published.
    assert_eq!(signing_kid(&first, 1000).await, published[1]);
    assert_eq!(signing_kid(&second, 1000).await, published[1]);
    first.maintain(1049).await.unwrap();
    assert_eq!(
        kids(&first).await,
        published,
        "the old key's tokens may still be alive"
    );

    // Once every token the old key signed has expired, it is withdrawn.
    first.maintain(1050).await.unwrap();
    second.maintain(1050).await.unwrap();
    assert_eq!(kids(&first).await, vec![published[1].clone()]);
    assert_eq!(kids(&second).await, vec![published[1].clone()]);
}

#[tokio::test]
async fn keys_rotate_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("broker-key-rotation-{}", uuid::Uuid::new_v4()));
    let store = SqliteTokenStore::open(&dir.join("token.db")).await.unwrap();
    rotates_on_schedule(Arc::new(store)).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn keys_rotate_on_postgres() {
    let Some(db) = database::postgres().await else {
        return;
    };
    let store = PostgresTokenStore::connect(db.url()).await.unwrap();
    rotates_on_schedule(Arc::new(store)).await;
}
