//! One conformance suite for every `EventStore` implementation: the same scenarios run on SQLite
//! and on PostgreSQL (a fresh database per run; see `broker_tests::database`).

use std::collections::HashSet;
use std::sync::Arc;

use broker_common::transfer_event::{EventParty, PartyRole, TransferEvent, TransferEventKind};
use broker_events::delivery::signing::SigningSecret;
use broker_events::domain::cloud_event::CloudEvent;
use broker_events::domain::subscription::SubscriptionRequest;
use broker_events::store::{
    Appended, Attempt, DeliveryState, EventStore, NewEvent, NewSubscription, Outcome,
    PostgresEventStore, PullQuery, SqliteEventStore, ValidationOutcome,
};
use broker_tests::database::{self, TestDatabase};
use chrono::{DateTime, Utc};
use uuid::Uuid;

const SENDER: &str = "991825827";
const RECIPIENT: &str = "974760673";
const PUBLIC_URL: &str = "https://broker.example/";

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

fn subject(org: &str) -> String {
    format!("urn:altinn:organization:identifier-no:{org}")
}

/// The CloudEvents (sender's, recipient's) of one published transfer in `resource`.
fn published(resource: &str, seconds: i64) -> Vec<CloudEvent> {
    let event = TransferEvent {
        id: Uuid::now_v7(),
        kind: TransferEventKind::Published,
        resource_id: resource.to_owned(),
        file_transfer_id: Uuid::now_v7(),
        time: at(seconds),
        parties: vec![
            EventParty {
                org_number: SENDER.to_owned(),
                role: PartyRole::Sender,
            },
            EventParty {
                org_number: RECIPIENT.to_owned(),
                role: PartyRole::Recipient,
            },
        ],
    };
    CloudEvent::from_transfer_event(&event, PUBLIC_URL)
}

/// `event` to append, queued for `subscriptions`.
fn queued(event: &CloudEvent, subscriptions: &[i64]) -> NewEvent {
    NewEvent {
        event: event.clone(),
        traceparent: None,
        subscriptions: subscriptions.to_vec(),
    }
}

/// `events` to append, queued for nobody.
fn unqueued(events: &[CloudEvent]) -> Vec<NewEvent> {
    events.iter().map(|event| queued(event, &[])).collect()
}

fn appended(events: usize, deliveries: usize) -> Appended {
    Appended { events, deliveries }
}

/// Records one attempt; whether the lease still held the delivery.
async fn record(
    store: &dyn EventStore,
    delivery: i64,
    lease_until: DateTime<Utc>,
    outcome: &Outcome,
    at: DateTime<Utc>,
) -> bool {
    let attempt = Attempt {
        delivery,
        lease_until,
        outcome: outcome.clone(),
        at,
    };
    let held = store.record(&[attempt]).await.unwrap();
    assert_eq!(held.len(), 1);
    held[0]
}

fn new_subscription(resource: &str, consumer: &str, end_point: &str) -> NewSubscription {
    NewSubscription {
        request: SubscriptionRequest {
            end_point: end_point.to_owned(),
            resource_filter: format!("urn:altinn:resource:{resource}"),
            subject_filter: Some(subject(RECIPIENT)),
            source_filter: None,
            type_filter: Some("no.altinn.broker.published".to_owned()),
            include_subunits: false,
        },
        consumer: consumer.to_owned(),
        consumer_org: RECIPIENT.to_owned(),
        created_by: consumer.to_owned(),
        created: at(0),
        signing_secret: None,
    }
}

async fn pull(store: &dyn EventStore, query: PullQuery) -> Vec<Uuid> {
    store
        .pull(&query)
        .await
        .unwrap()
        .iter()
        .map(|event| event.id)
        .collect()
}

async fn events_are_appended_once_and_pulled_in_order(store: &dyn EventStore) {
    let first = published("pull-resource", 1);
    let second = published("pull-resource", 2);
    let elsewhere = published("other-resource", 3);
    assert_eq!(
        store.append(&unqueued(&first), at(1)).await.unwrap(),
        appended(2, 0)
    );
    // A redelivered bus message: the same ids again, stored once.
    assert_eq!(
        store.append(&unqueued(&first), at(5)).await.unwrap(),
        appended(0, 0)
    );
    let mixed = [first[0].clone(), second[0].clone(), second[1].clone()];
    assert_eq!(
        store.append(&unqueued(&mixed), at(2)).await.unwrap(),
        appended(2, 0)
    );
    store.append(&unqueued(&elsewhere), at(3)).await.unwrap();
    assert_eq!(
        store.event(first[1].id).await.unwrap().as_ref(),
        Some(&first[1])
    );
    assert_eq!(store.event(Uuid::now_v7()).await.unwrap(), None);

    let resource = "urn:altinn:resource:pull-resource".to_owned();
    let all = PullQuery {
        resource: resource.clone(),
        after: "0".to_owned(),
        size: 100,
        subject: None,
        types: Vec::new(),
    };
    let order = [first[0].id, first[1].id, second[0].id, second[1].id];
    assert_eq!(pull(store, all.clone()).await, order);
    let page = PullQuery {
        after: first[1].id.to_string(),
        size: 1,
        ..all.clone()
    };
    assert_eq!(pull(store, page).await, [second[0].id]);
    let last = PullQuery {
        after: second[1].id.to_string(),
        ..all.clone()
    };
    assert!(pull(store, last).await.is_empty());
    let recipient = PullQuery {
        subject: Some(subject(RECIPIENT)),
        ..all.clone()
    };
    assert_eq!(pull(store, recipient).await, [first[1].id, second[1].id]);
    let unknown_after = PullQuery {
        after: "not-an-event".to_owned(),
        ..all.clone()
    };
    assert_eq!(pull(store, unknown_after).await, order);
    // Types are SQL LIKE patterns, case-sensitive, any of which may match (Altinn's
    // `LIKE ANY(types)`); `\` makes a wildcard literal.
    let published = "no.altinn.broker.published";
    for (patterns, matches) in [
        (vec![published], true),
        (vec!["no.altinn.broker.%"], true),
        (vec!["no_altinn_broker_published"], true),
        (vec!["%PUBLISHED"], false),
        (vec!["no.altinn.broker.initialized", "%.published"], true),
        (vec!["no.altinn.broker.initialized"], false),
        (vec![r"no\_altinn%"], false),
        (vec![r"no.altinn.broker.publishe\d"], true),
        (vec![r"no.altinn.broker.published\"], false),
        (vec![r"no.altinn.broker.published\\"], false),
        (vec!["*", "?", "[n]o%"], false),
    ] {
        let typed = PullQuery {
            types: patterns.iter().map(|p| (*p).to_owned()).collect(),
            ..all.clone()
        };
        let expected = if matches { order.to_vec() } else { Vec::new() };
        assert_eq!(pull(store, typed).await, expected, "{patterns:?}");
    }
}

async fn subscriptions_are_stored_listed_validated_and_deleted(store: &dyn EventStore) {
    let consumer = "/organisation/974760673";
    let new = new_subscription("sub-resource", consumer, "https://hooks.example/a");
    let created = store.create_subscription(&new).await.unwrap();
    assert!(!created.validated);
    assert_eq!(created.request, new.request);
    assert_eq!(created.created, at(0));
    assert_eq!(
        store.subscription(created.id).await.unwrap(),
        Some(created.clone())
    );
    let other = store
        .create_subscription(&new_subscription(
            "sub-resource",
            "/organisation/991825827",
            "https://hooks.example/b",
        ))
        .await
        .unwrap();
    assert_ne!(other.id, created.id);
    let mine = store.subscriptions_of(consumer).await.unwrap();
    assert_eq!(mine, std::slice::from_ref(&created));
    assert_eq!(created.consumer_org, RECIPIENT);

    // Altinn's `find_subscription`: every filter (absent matching only absent), the consumer,
    // the endpoint and `includeSubunits`; and Broker's signing.
    assert_eq!(
        store.find_subscription(&new).await.unwrap(),
        Some(created.clone())
    );
    let differing = [
        NewSubscription {
            consumer: "/org/ttd".to_owned(),
            ..new.clone()
        },
        NewSubscription {
            signing_secret: Some(SigningSecret::new("whsec_x".to_owned())),
            ..new.clone()
        },
    ];
    let mut changes: Vec<fn(&mut SubscriptionRequest)> = vec![
        |r| r.end_point.push('x'),
        |r| r.resource_filter.push('x'),
        |r| r.subject_filter = None,
        |r| r.subject_filter = Some(String::new()),
        |r| r.type_filter = None,
        |r| r.source_filter = Some("https://broker.example/".to_owned()),
        |r| r.include_subunits = true,
    ];
    let mut others: Vec<NewSubscription> = differing.into();
    for change in changes.drain(..) {
        let mut changed = new.clone();
        change(&mut changed.request);
        others.push(changed);
    }
    for other in others {
        assert_eq!(
            store.find_subscription(&other).await.unwrap(),
            None,
            "{other:?}"
        );
    }

    let resource = "urn:altinn:resource:sub-resource";
    assert!(
        store
            .validated_subscriptions(resource)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.mark_validated(created.id).await.unwrap());
    assert!(!store.mark_validated(i64::MAX).await.unwrap());
    let validated = store.validated_subscriptions(resource).await.unwrap();
    assert_eq!(validated.len(), 1);
    assert!(validated[0].validated);
    assert_eq!(validated[0].id, created.id);

    assert!(store.delete_subscription(created.id).await.unwrap());
    assert!(!store.delete_subscription(created.id).await.unwrap());
    assert_eq!(store.subscription(created.id).await.unwrap(), None);
    assert!(store.subscriptions_of(consumer).await.unwrap().is_empty());
}

async fn deliveries_are_queued_leased_retried_and_dead_lettered(store: &dyn EventStore) {
    let subscription = store
        .create_subscription(&new_subscription(
            "delivery-resource",
            "/organisation/974760673",
            "https://hooks.example/deliveries",
        ))
        .await
        .unwrap();
    let events = published("delivery-resource", 100);
    let event = &events[1];
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let traced = NewEvent {
        traceparent: Some(traceparent.to_owned()),
        ..queued(event, &[subscription.id])
    };
    assert_eq!(store.pending_count().await.unwrap(), 0);
    // An event and its deliveries are written together; a subscription deleted since ingest
    // read it is left out rather than failing the batch.
    assert_eq!(
        store
            .append(&[queued(&events[0], &[i64::MAX]), traced], at(100))
            .await
            .unwrap(),
        appended(2, 1)
    );
    assert_eq!(
        store
            .append(&[queued(event, &[subscription.id])], at(101))
            .await
            .unwrap(),
        appended(0, 0),
        "a pair is queued once"
    );
    assert_eq!(store.pending_count().await.unwrap(), 1);

    assert!(
        store
            .claim_due(at(99), 10, at(200), 100, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store
        .claim_due(at(100), 10, at(130), 100, &[])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let delivery = &claimed[0];
    assert_eq!(delivery.event, *event);
    assert_eq!(delivery.end_point, "https://hooks.example/deliveries");
    assert_eq!(delivery.subscription_id, subscription.id);
    assert_eq!(delivery.attempts, 0);
    assert_eq!(delivery.state, DeliveryState::Pending);
    assert_eq!(delivery.traceparent.as_deref(), Some(traceparent));
    assert!(
        store
            .claim_due(at(110), 10, at(200), 100, &[])
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    // The worker died: the lease runs out and the row comes back.
    let again = store
        .claim_due(at(130), 10, at(140), 100, &[])
        .await
        .unwrap();
    assert_eq!(again.len(), 1);

    let retry = Outcome::Retry {
        next_attempt: at(150),
        error: "503 Service Unavailable".to_owned(),
    };
    assert!(
        !record(store, delivery.id, at(130), &retry, at(131)).await,
        "the first worker's lease ran out and the row was claimed again"
    );
    assert!(record(store, delivery.id, at(140), &retry, at(131)).await);
    assert!(
        store
            .claim_due(at(149), 10, at(300), 100, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let retried = store
        .claim_due(at(150), 10, at(300), 100, &[])
        .await
        .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempts, 1);
    assert_eq!(
        retried[0].last_error.as_deref(),
        Some("503 Service Unavailable")
    );

    let dead = Outcome::DeadLetter {
        error: "timed out".to_owned(),
    };
    assert!(record(store, delivery.id, at(300), &dead, at(151)).await);
    assert!(
        !record(store, delivery.id, at(300), &Outcome::Delivered, at(152)).await,
        "a dead letter takes no more outcomes"
    );
    assert_eq!(
        store.pending_count().await.unwrap(),
        0,
        "dead letters wait for nobody"
    );
    assert!(
        store
            .claim_due(at(10_000), 10, at(20_000), 100, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let letters = store.dead_letters(0, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].id, delivery.id);
    assert_eq!(letters[0].state, DeliveryState::Dead);
    assert_eq!(letters[0].attempts, 2);
    assert_eq!(letters[0].last_error.as_deref(), Some("timed out"));

    assert!(store.redrive(delivery.id, at(200)).await.unwrap());
    assert!(!store.redrive(delivery.id, at(200)).await.unwrap());
    assert!(store.dead_letters(0, 10).await.unwrap().is_empty());
    let redriven = store
        .claim_due(at(200), 10, at(230), 100, &[])
        .await
        .unwrap();
    assert_eq!(redriven.len(), 1);
    assert_eq!(redriven[0].attempts, 0);
    assert_eq!(store.pending_count().await.unwrap(), 1);
    assert!(record(store, delivery.id, at(230), &Outcome::Delivered, at(201)).await);
    assert_eq!(store.pending_count().await.unwrap(), 0);
    assert!(
        store
            .claim_due(at(10_000), 10, at(20_000), 100, &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.dead_letters(0, 10).await.unwrap().is_empty());

    // Deleting a subscription drops its queued deliveries.
    let more = published("delivery-resource", 300);
    store
        .append(&[queued(&more[1], &[subscription.id])], at(300))
        .await
        .unwrap();
    assert!(store.delete_subscription(subscription.id).await.unwrap());
    assert_eq!(store.pending_count().await.unwrap(), 0);
    assert!(
        store
            .claim_due(at(10_000), 10, at(20_000), 100, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn concurrent_claimers_never_share_a_row(store: Arc<dyn EventStore>) {
    const DELIVERIES: usize = 200;
    let subscription = store
        .create_subscription(&new_subscription(
            "race-resource",
            "/organisation/974760673",
            "https://hooks.example/race",
        ))
        .await
        .unwrap();
    for index in 0..DELIVERIES / 2 {
        let events: Vec<NewEvent> = published("race-resource", 1000)
            .iter()
            .map(|event| queued(event, &[subscription.id]))
            .collect();
        store
            .append(&events, at(1000 + index as i64 % 7))
            .await
            .unwrap();
    }
    let workers = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_due(at(2000), 7, at(100_000), 100, &[])
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.iter().map(|delivery| delivery.id));
                tokio::task::yield_now().await;
            }
        })
    });
    let mut seen = HashSet::new();
    let mut total = 0;
    for worker in workers.collect::<Vec<_>>() {
        let claimed = worker.await.unwrap();
        total += claimed.len();
        seen.extend(claimed);
    }
    assert_eq!(total, seen.len(), "a delivery was claimed twice");
    assert_eq!(seen.len(), DELIVERIES);
}

async fn a_reader_following_concurrent_appends_misses_nothing(store: Arc<dyn EventStore>) {
    const APPENDERS: usize = 4;
    const TRANSFERS: usize = 25;
    let resource = "urn:altinn:resource:follow-resource".to_owned();
    let appenders: Vec<_> = (0..APPENDERS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..TRANSFERS {
                    let events = published("follow-resource", 4000);
                    store.append(&unqueued(&events), at(4000)).await.unwrap();
                }
            })
        })
        .collect();
    let expected = APPENDERS * TRANSFERS * 2;
    let mut seen = Vec::new();
    let mut after = "0".to_owned();
    for _ in 0..100_000 {
        let query = PullQuery {
            resource: resource.clone(),
            after: after.clone(),
            size: 7,
            subject: None,
            types: Vec::new(),
        };
        let page = pull(store.as_ref(), query).await;
        if let Some(last) = page.last() {
            after = last.to_string();
        }
        seen.extend(page);
        if seen.len() >= expected {
            break;
        }
        tokio::task::yield_now().await;
    }
    for appender in appenders {
        appender.await.unwrap();
    }
    let unique: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "an event was pulled twice");
    assert_eq!(seen.len(), expected, "the reader missed events");
}

async fn conformance(store: Arc<dyn EventStore>) {
    events_are_appended_once_and_pulled_in_order(store.as_ref()).await;
    subscriptions_are_stored_listed_validated_and_deleted(store.as_ref()).await;
    deliveries_are_queued_leased_retried_and_dead_lettered(store.as_ref()).await;
    concurrent_claimers_never_share_a_row(store.clone()).await;
    a_reader_following_concurrent_appends_misses_nothing(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_conforms() {
    let dir = std::env::temp_dir().join(format!("broker-events-store-{}", Uuid::new_v4()));
    let store = SqliteEventStore::open(&dir.join("events.db"))
        .await
        .unwrap();
    conformance(Arc::new(store)).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_conforms() {
    let Some(db): Option<TestDatabase> = database::postgres().await else {
        return;
    };
    let store = PostgresEventStore::connect(db.url()).await.unwrap();
    conformance(Arc::new(store)).await;
}

/// Claims that leave saturated endpoints out, releases, type filters, paging and re-driving
/// every dead letter, and signing secrets carried to the sender.
async fn claims_skip_excluded_endpoints_and_release(store: &dyn EventStore) {
    let slow = NewSubscription {
        signing_secret: Some(SigningSecret::new("whsec_c2VjcmV0".to_owned())),
        ..new_subscription(
            "fair-resource",
            "/organisation/974760673",
            "https://slow.example/",
        )
    };
    let slow = store.create_subscription(&slow).await.unwrap();
    let fast = new_subscription(
        "fair-resource",
        "/organisation/974760673",
        "https://fast.example/",
    );
    let fast = store.create_subscription(&fast).await.unwrap();
    let events: Vec<NewEvent> = published("fair-resource", 10)
        .iter()
        .map(|event| queued(event, &[slow.id, fast.id]))
        .collect();
    assert_eq!(store.append(&events, at(10)).await.unwrap(), appended(2, 4));
    assert_eq!(store.pending_count().await.unwrap(), 4);
    // At most one row per endpoint, when asked; released rows are due again at once.
    let one_each = store.claim_due(at(10), 10, at(45), 1, &[]).await.unwrap();
    assert_eq!(one_each.len(), 2);
    assert_ne!(one_each[0].subscription_id, one_each[1].subscription_id);
    for delivery in &one_each {
        assert!(store.release(delivery.id, at(45)).await.unwrap());
    }
    let excluded = ["https://slow.example/".to_owned()];
    let claimed = store
        .claim_due(at(10), 10, at(50), 100, &excluded)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed
            .iter()
            .all(|delivery| delivery.subscription_id == fast.id)
    );
    assert!(
        claimed
            .iter()
            .all(|delivery| delivery.signing_secret.is_none())
    );
    let slow_rows = store.claim_due(at(10), 10, at(50), 100, &[]).await.unwrap();
    assert_eq!(slow_rows.len(), 2);
    assert_eq!(
        slow_rows[0]
            .signing_secret
            .as_ref()
            .map(SigningSecret::expose),
        Some("whsec_c2VjcmV0")
    );
    // Released rows can be claimed again at once; a stale lease releases nothing.
    assert!(!store.release(slow_rows[0].id, at(49)).await.unwrap());
    assert!(store.release(slow_rows[0].id, at(50)).await.unwrap());
    let again = store.claim_due(at(11), 10, at(60), 100, &[]).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, slow_rows[0].id);

    // Three dead letters recorded in one batch beside a stale outcome, which changes nothing;
    // paged two at a time, then all re-driven at once.
    let outcome = Outcome::DeadLetter {
        error: "the endpoint answered 500".to_owned(),
    };
    let dying = claimed.iter().chain(&slow_rows[1..]);
    let mut attempts: Vec<Attempt> = dying
        .map(|delivery| Attempt {
            delivery: delivery.id,
            lease_until: at(50),
            outcome: outcome.clone(),
            at: at(20),
        })
        .collect();
    attempts.insert(
        1,
        Attempt {
            delivery: again[0].id,
            lease_until: at(50),
            outcome: Outcome::Delivered,
            at: at(20),
        },
    );
    assert_eq!(
        store.record(&attempts).await.unwrap(),
        [true, false, true, true]
    );
    assert_eq!(store.pending_count().await.unwrap(), 1, "the stale one");
    let mut dead: Vec<i64> = claimed
        .iter()
        .chain(&slow_rows[1..])
        .map(|delivery| delivery.id)
        .collect();
    dead.sort_unstable();
    let first = store.dead_letters(0, 2).await.unwrap();
    assert_eq!(first.iter().map(|d| d.id).collect::<Vec<_>>(), dead[..2]);
    assert_eq!(first[0].updated, at(20));
    let rest = store.dead_letters(first[1].id, 2).await.unwrap();
    assert_eq!(rest.iter().map(|d| d.id).collect::<Vec<_>>(), dead[2..]);
    assert_eq!(store.redrive_all(at(30)).await.unwrap(), 3);
    assert_eq!(store.redrive_all(at(30)).await.unwrap(), 0);
    let redriven = store.claim_due(at(30), 10, at(90), 100, &[]).await.unwrap();
    assert_eq!(redriven.len(), 3);
    assert!(redriven.iter().all(|delivery| delivery.attempts == 0));

    let typed = |event_type: &str| PullQuery {
        resource: "urn:altinn:resource:fair-resource".to_owned(),
        after: "0".to_owned(),
        size: 10,
        subject: None,
        types: vec![event_type.to_owned()],
    };
    assert_eq!(
        store
            .pull(&typed("no.altinn.broker.published"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .pull(&typed("no.altinn.broker.filepurged"))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Handshakes are due at creation, leased, rescheduled, and stop when validated or given up.
async fn validation_handshakes_are_leased_and_scheduled(store: &dyn EventStore) {
    let first = store
        .create_subscription(&new_subscription(
            "hand-resource",
            "/organisation/974760673",
            "https://a.example/",
        ))
        .await
        .unwrap();
    let second = store
        .create_subscription(&NewSubscription {
            created: at(5),
            ..new_subscription(
                "hand-resource",
                "/organisation/974760673",
                "https://b.example/",
            )
        })
        .await
        .unwrap();
    let ids = |claimed: Vec<broker_events::store::PendingValidation>| {
        claimed
            .into_iter()
            .map(|pending| (pending.subscription.id, pending.attempts))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.claim_validations(at(0), 10, at(30)).await.unwrap()),
        [(first.id, 0)]
    );
    assert_eq!(
        ids(store.claim_validations(at(5), 10, at(30)).await.unwrap()),
        [(second.id, 0)]
    );
    assert!(
        store
            .claim_validations(at(29), 10, at(60))
            .await
            .unwrap()
            .is_empty()
    );
    // A crashed worker's handshakes come back when the lease runs out.
    assert_eq!(
        ids(store.claim_validations(at(30), 10, at(60)).await.unwrap()),
        [(first.id, 0), (second.id, 0)]
    );
    assert!(
        store
            .record_validation(first.id, ValidationOutcome::RetryAt(at(100)))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_validation(second.id, ValidationOutcome::Validated)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_validation(i64::MAX, ValidationOutcome::GiveUp)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_validations(at(99), 10, at(130))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(store.claim_validations(at(100), 10, at(130)).await.unwrap()),
        [(first.id, 1)]
    );
    assert!(
        store
            .record_validation(first.id, ValidationOutcome::GiveUp)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_validations(at(1_000_000), 10, at(2_000_000))
            .await
            .unwrap()
            .is_empty()
    );
    let resource = "urn:altinn:resource:hand-resource";
    let validated = store.validated_subscriptions(resource).await.unwrap();
    assert_eq!(
        validated.iter().map(|s| s.id).collect::<Vec<_>>(),
        [second.id]
    );

    // A duplicate's handshake is sent again with fresh attempts: a failure leaves a validated
    // subscription validated, a success validates one that was given up on.
    assert!(
        store
            .rearm_validation(second.id, at(3_000_000))
            .await
            .unwrap()
    );
    assert!(
        store
            .rearm_validation(first.id, at(3_000_000))
            .await
            .unwrap()
    );
    assert!(
        !store
            .rearm_validation(i64::MAX, at(3_000_000))
            .await
            .unwrap()
    );
    assert_eq!(
        ids(store
            .claim_validations(at(3_000_000), 10, at(3_000_030))
            .await
            .unwrap()),
        [(first.id, 0), (second.id, 0)]
    );
    for (id, outcome) in [
        (first.id, ValidationOutcome::Validated),
        (second.id, ValidationOutcome::GiveUp),
    ] {
        assert!(store.record_validation(id, outcome).await.unwrap());
    }
    let validated = store.validated_subscriptions(resource).await.unwrap();
    assert_eq!(
        validated.iter().map(|s| s.id).collect::<Vec<_>>(),
        [first.id, second.id]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_claims_fairly_and_schedules_handshakes() {
    let dir = std::env::temp_dir().join(format!("broker-events-store-{}", Uuid::new_v4()));
    let store = SqliteEventStore::open(&dir.join("events.db"))
        .await
        .unwrap();
    // Handshakes first: the other scenario's subscriptions would be due too.
    validation_handshakes_are_leased_and_scheduled(&store).await;
    claims_skip_excluded_endpoints_and_release(&store).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_claims_fairly_and_schedules_handshakes() {
    let Some(db): Option<TestDatabase> = database::postgres().await else {
        return;
    };
    let store = PostgresEventStore::connect(db.url()).await.unwrap();
    // Handshakes first: the other scenario's subscriptions would be due too.
    validation_handshakes_are_leased_and_scheduled(&store).await;
    claims_skip_excluded_endpoints_and_release(&store).await;
}
