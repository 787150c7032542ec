//! The event service's background work end to end, short of gRPC: file-transfer events go in on
//! the in-process bus, the validation handshake and deliveries go out over real HTTP to
//! receivers on loopback, and everything in between is the real store. The scenarios that
//! matter most for durability run on SQLite and on PostgreSQL.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_bus::RabbitBus;
use broker_common::auth::{Caller, TokenKind};
use broker_common::identity::OrgNumber;
use broker_events::config::EventsConfig;
use broker_events::delivery::signing;
use broker_events::domain::cloud_event::CloudEvent;
use broker_events::domain::error::EventsError;
use broker_events::domain::subscription::{INVALID_ENDPOINT, SubscriptionRequestModel};
use broker_events::service::{self, PullInput, SUBSCRIBE_SCOPE};
use broker_events::store::{DeliveryState, EventStore};
use support::{OWNER, PUBLIC_URL, RECIPIENT, Receiver, SENDER, Service, published, subject};
use uuid::Uuid;

/// Runs a scenario on SQLite, and on PostgreSQL when `BROKER_TEST_DATABASE_URL` is set (in CI it
/// must be).
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let store = super::support::sqlite().await;
                super::$scenario(store.store.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(store) = super::support::postgres().await {
                    super::$scenario(store.store.clone()).await;
                }
            }
        }
    )*};
}

on_both_stores!(
    delivers_signed_cloud_events_after_the_handshake,
    retries_on_the_schedule_until_delivered,
    dead_letters_survive_a_restart_and_are_redriven,
    a_failed_handshake_never_validates_nor_receives,
    a_redelivered_message_makes_one_event_and_one_delivery,
    a_slow_endpoint_does_not_delay_others,
);

const WAIT: Duration = Duration::from_secs(10);

fn caller(org: &str, scopes: &[&str]) -> Caller {
    Caller {
        org: OrgNumber::parse(org).unwrap(),
        client_id: format!("client-{org}"),
        scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        org_code: None,
        system_user_id: None,
        consumer: None,
        kind: TokenKind::Maskinporten,
        token: String::new(),
    }
}

/// The recipient's CloudEvent of `event`.
fn recipients(event: &broker_common::transfer_event::TransferEvent) -> CloudEvent {
    CloudEvent::from_transfer_event(event, PUBLIC_URL)
        .into_iter()
        .find(|cloud| cloud.subject == subject(RECIPIENT))
        .unwrap()
}

async fn delivers_signed_cloud_events_after_the_handshake(store: Arc<dyn EventStore>) {
    let service = Service::start(store, &support::fast_config()).await;
    let signed_hook = Receiver::start().await;
    let plain_hook = Receiver::start().await;
    let secret = signing::generate_secret().unwrap();
    let recipient = subject(RECIPIENT);
    let signed = service
        .subscribe(
            RECIPIENT,
            "signed",
            Some(&recipient),
            &signed_hook.url(),
            Some(secret.clone()),
        )
        .await;
    let plain = service
        .subscribe(
            RECIPIENT,
            "signed",
            Some(&recipient),
            &plain_hook.url(),
            None,
        )
        .await;
    service.wait_validated(signed.id).await;
    service.wait_validated(plain.id).await;

    let handshake = &signed_hook.validations()[0];
    assert_eq!(
        handshake.header("content-type").unwrap_or_default(),
        "application/json; charset=utf-8"
    );
    assert_eq!(handshake.body["specversion"], "1.0");
    assert_eq!(
        handshake.body["source"],
        format!("{PUBLIC_URL}/events/api/v1/subscriptions/{}", signed.id)
    );
    assert!(Uuid::parse_str(handshake.body["id"].as_str().unwrap()).is_ok());

    let event = published("signed");
    let sent = Instant::now();
    service.publish(&event).await;
    signed_hook
        .wait_until("a signed delivery", WAIT, |hook| {
            hook.delivered().len() == 1
        })
        .await;
    println!(
        "publish → webhook: {:?}",
        signed_hook.delivered()[0].at - sent
    );
    plain_hook
        .wait_until("a plain delivery", WAIT, |hook| hook.delivered().len() == 1)
        .await;

    let expected = recipients(&event);
    let got = &signed_hook.delivered()[0];
    assert_eq!(
        got.header("content-type").unwrap_or_default(),
        "application/json; charset=utf-8"
    );
    let body: CloudEvent = serde_json::from_slice(&got.raw).unwrap();
    assert_eq!(body, expected);
    assert_eq!(
        got.header("webhook-id").unwrap_or_default(),
        expected.id.to_string()
    );
    let timestamp: i64 = got
        .header("webhook-timestamp")
        .unwrap_or_default()
        .parse()
        .unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    let text = std::str::from_utf8(&got.raw).unwrap();
    let signature = signing::signature(&secret, &expected.id.to_string(), timestamp, text).unwrap();
    assert_eq!(
        got.header("webhook-signature").unwrap_or_default(),
        signature
    );
    let plain = &plain_hook.delivered()[0];
    assert_eq!(plain.raw, got.raw);
    assert!(plain.headers.get("webhook-signature").is_none());

    // The sender's event does not match the recipient's subject filter.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(signed_hook.attempts().len(), 1);
    service.stop().await;
}

async fn retries_on_the_schedule_until_delivered(store: Arc<dyn EventStore>) {
    let service = Service::start(store, &support::fast_config()).await;
    let (hook, _) = service.recipient_hook("retried").await;
    hook.fail_next_events(2);
    service.publish(&published("retried")).await;
    hook.wait_until("delivery after two failures", WAIT, |hook| {
        hook.delivered().len() == 1
    })
    .await;
    let attempts = hook.attempts();
    assert_eq!(attempts.len(), 3, "two failures and the success");
    // The schedule is 100 ms, 200 ms, 300 ms; a few ms of slack for clock granularity.
    let slack = Duration::from_millis(5);
    assert!(attempts[1].at - attempts[0].at + slack >= Duration::from_millis(100));
    assert!(attempts[2].at - attempts[1].at + slack >= Duration::from_millis(200));
    assert!(
        attempts
            .iter()
            .all(|attempt| attempt.raw == attempts[0].raw)
    );
    service.stop().await;
}

async fn dead_letters_survive_a_restart_and_are_redriven(store: Arc<dyn EventStore>) {
    let config = support::fast_config();
    let service = Service::start(store.clone(), &config).await;
    let (hook, _) = service.recipient_hook("dead").await;
    hook.fail_next_events(4);
    service.publish(&published("dead")).await;
    hook.wait_until("four failed attempts", WAIT, |hook| {
        hook.attempts().len() == 4
    })
    .await;
    let deadline = Instant::now() + WAIT;
    let letters = loop {
        let (letters, next) = service.core.dead_letters("", 0).await.unwrap();
        if !letters.is_empty() {
            assert_eq!(next, None);
            break letters;
        }
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 4);
    assert_eq!(letters[0].state, DeliveryState::Dead);
    assert!(letters[0].last_error.as_deref().unwrap().contains("503"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(hook.attempts().len(), 4, "a dead letter is never retried");
    service.stop().await;

    // A new process finds the dead letter and re-drives it.
    let service = Service::start(store, &config).await;
    assert!(matches!(
        service.core.redrive(&["x".to_owned()]).await,
        Err(EventsError::Invalid(_))
    ));
    assert_eq!(service.core.redrive(&[]).await.unwrap(), 1);
    hook.wait_until("the re-driven delivery", WAIT, |hook| {
        hook.delivered().len() == 1
    })
    .await;
    assert!(service.core.dead_letters("", 0).await.unwrap().0.is_empty());
    assert_eq!(
        service
            .core
            .redrive(&[letters[0].id.to_string()])
            .await
            .unwrap(),
        0
    );
    service.stop().await;
}

async fn a_failed_handshake_never_validates_nor_receives(store: Arc<dyn EventStore>) {
    let service = Service::start(store.clone(), &support::fast_config()).await;
    let hook = Receiver::start().await;
    hook.refuse_validation(true);
    let recipient = subject(RECIPIENT);
    let subscription = service
        .subscribe(RECIPIENT, "refused", Some(&recipient), &hook.url(), None)
        .await;
    // The schedule "100ms,100ms" allows three handshakes.
    hook.wait_until("three handshakes", WAIT, |hook| {
        hook.validations().len() == 3
    })
    .await;
    service.publish(&published("refused")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hook.validations().len(),
        3,
        "no handshake after the schedule"
    );
    assert!(
        hook.attempts().is_empty(),
        "an unvalidated subscription got an event"
    );
    let stored = store.subscription(subscription.id).await.unwrap().unwrap();
    assert!(!stored.validated);
    service.stop().await;
}

async fn a_redelivered_message_makes_one_event_and_one_delivery(store: Arc<dyn EventStore>) {
    let service = Service::start(store, &support::fast_config()).await;
    let recipient_hook = Receiver::start().await;
    let owner_hook = Receiver::start().await;
    let outsider_hook = Receiver::start().await;
    let recipient = subject(RECIPIENT);
    let subscriptions = [
        service
            .subscribe(
                RECIPIENT,
                "twice",
                Some(&recipient),
                &recipient_hook.url(),
                None,
            )
            .await,
        // The owner may omit the subject and gets every party's event.
        service
            .subscribe(OWNER, "twice", None, &owner_hook.url(), None)
            .await,
        // Someone else without a subject filter (the API refuses that; the store does not):
        // the re-check at enqueue keeps other organisations' events from it.
        service
            .subscribe("123456785", "twice", None, &outsider_hook.url(), None)
            .await,
    ];
    for subscription in &subscriptions {
        service.wait_validated(subscription.id).await;
    }
    let event = published("twice");
    service.publish(&event).await;
    service.publish(&event).await;
    owner_hook
        .wait_until("both parties' events", WAIT, |hook| {
            hook.delivered().len() == 2
        })
        .await;
    recipient_hook
        .wait_until("the recipient's event", WAIT, |hook| {
            hook.delivered().len() == 1
        })
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(owner_hook.delivered().len(), 2);
    assert_eq!(recipient_hook.delivered().len(), 1);
    assert!(outsider_hook.attempts().is_empty());

    let owner = super_caller(OWNER);
    let pulled = service
        .core
        .pull(
            &owner,
            PullInput {
                resource: "urn:altinn:resource:twice".into(),
                after: "0".into(),
                ..PullInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(pulled, CloudEvent::from_transfer_event(&event, PUBLIC_URL));
    let recipients_only = service
        .core
        .pull(
            &owner,
            PullInput {
                resource: "urn:altinn:resource:twice".into(),
                after: "0".into(),
                subject: recipient.clone(),
                types: vec!["no.altinn.broker.published".into()],
                ..PullInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(recipients_only, [recipients(&event)]);
    service.stop().await;
}

fn super_caller(org: &str) -> Caller {
    caller(org, &[SUBSCRIBE_SCOPE])
}

async fn a_slow_endpoint_does_not_delay_others(store: Arc<dyn EventStore>) {
    let config = EventsConfig {
        events_max_per_endpoint: 2,
        events_max_in_flight: 4,
        ..support::fast_config()
    };
    let service = Service::start(store, &config).await;
    let slow = Receiver::start().await;
    let fast = Receiver::start().await;
    let recipient = subject(RECIPIENT);
    let subscriptions = [
        service
            .subscribe(RECIPIENT, "slow", Some(&recipient), &slow.url(), None)
            .await,
        service
            .subscribe(RECIPIENT, "fast", Some(&recipient), &fast.url(), None)
            .await,
    ];
    for subscription in &subscriptions {
        service.wait_validated(subscription.id).await;
    }
    slow.answer_after(Duration::from_millis(1500));
    for _ in 0..8 {
        service.publish(&published("slow")).await;
    }
    // Let the slow endpoint's deliveries take every slot they can.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = Instant::now();
    service.publish(&published("fast")).await;
    fast.wait_until("the fast delivery", WAIT, |hook| {
        hook.delivered().len() == 1
    })
    .await;
    let latency = fast.delivered()[0].at - sent;
    println!("fast endpoint beside a slow one: {latency:?}");
    assert!(
        latency < Duration::from_millis(1000),
        "the slow endpoint delayed the fast one by {latency:?}"
    );

    slow.wait_until("every slow delivery", Duration::from_secs(20), |hook| {
        hook.delivered().len() == 8
    })
    .await;
    assert_eq!(slow.most_in_flight(), 2, "the per-endpoint limit");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingests_from_rabbitmq_once_and_drops_poison() {
    let Some(url) = broker_tests::amqp::amqp_url() else {
        return;
    };
    // An exchange (and so an ingest queue) of this test alone on the shared server.
    let exchange = format!("broker-test-{}", Uuid::new_v4().simple());
    let bus = Arc::new(RabbitBus::connect(&url, &exchange).await.unwrap());
    let store = support::sqlite().await;
    let service =
        Service::start_on(store.store.clone(), &support::fast_config(), bus, &exchange).await;
    let (hook, _) = service.recipient_hook("rabbit").await;
    service.publish_poison().await;
    let event = published("rabbit");
    service.publish(&event).await;
    service.publish(&event).await;
    hook.wait_until("the delivery", WAIT, |hook| hook.delivered().len() == 1)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hook.attempts().len(),
        1,
        "one delivery of a redelivered event"
    );
    let owner = super_caller(OWNER);
    let pulled = service
        .core
        .pull(
            &owner,
            PullInput {
                resource: "urn:altinn:resource:rabbit".into(),
                after: "0".into(),
                ..PullInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        pulled.len(),
        2,
        "one event per party, however often it came"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_endpoints_are_refused_when_not_allowed() {
    let store = support::sqlite().await;
    let config = EventsConfig {
        events_allow_private_endpoints: false,
        events_retry_schedule: "50ms".into(),
        ..support::fast_config()
    };
    let service = Service::start(store.store.clone(), &config).await;
    let hook = Receiver::start().await;
    let recipient = subject(RECIPIENT);
    // Stored directly: the API would refuse the endpoint, but DNS may change after creation.
    let unvalidated = service
        .subscribe(RECIPIENT, "private", Some(&recipient), &hook.url(), None)
        .await;
    let validated = service
        .subscribe(RECIPIENT, "private", Some(&recipient), &hook.url(), None)
        .await;
    store.store.mark_validated(validated.id).await.unwrap();
    service.publish(&published("private")).await;
    let deadline = Instant::now() + WAIT;
    let letter = loop {
        if let Some(letter) = service.core.dead_letters("", 0).await.unwrap().0.pop() {
            break letter;
        }
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(letter.subscription_id, validated.id);
    assert!(letter.last_error.unwrap().contains("refused"));
    assert!(hook.received().is_empty(), "a private endpoint was called");
    let stored = store
        .store
        .subscription(unvalidated.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.validated);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_the_access_rules() {
    let store = support::sqlite().await;
    let service = Service::start(store.store.clone(), &support::fast_config()).await;
    let hook = Receiver::start().await;
    let request = SubscriptionRequestModel {
        end_point: Some(hook.url()),
        resource_filter: Some("urn:altinn:resource:rules".into()),
        ..SubscriptionRequestModel::default()
    };
    let owner = super_caller(OWNER);
    let (created, secret) = service
        .core
        .create_subscription(&owner, request.clone(), true)
        .await
        .unwrap();
    assert!(secret.unwrap().starts_with("whsec_"));
    assert_eq!(created.consumer, format!("/organisation/{OWNER}"));
    assert_eq!(created.created_by, created.consumer);
    service.wait_validated(created.id).await;
    // The same subscription again is the one there is (Altinn's
    // `CompleteSubscriptionCreation_SubscriptionAlreadyExists_ReturnExisting`); unsigned, it is
    // another one.
    let (again, none) = service
        .core
        .create_subscription(&owner, request.clone(), true)
        .await
        .unwrap();
    assert_eq!((again.id, none), (created.id, None));
    let (unsigned, none) = service
        .core
        .create_subscription(&owner, request.clone(), false)
        .await
        .unwrap();
    assert!(none.is_none());
    assert_ne!(unsigned.id, created.id);
    assert_eq!(service.core.subscriptions(&owner).await.unwrap().len(), 2);

    // Another organisation is refused the owner's subscription (Altinn's
    // `GetSubscription_NotAuthorized_Returns403`, `DeleteSubscription_NotAuthorized_Returns403`)
    // and sees none of it in its list.
    let other = super_caller(SENDER);
    assert!(matches!(
        service.core.subscription(&other, created.id).await,
        Err(EventsError::NotCreator)
    ));
    assert!(matches!(
        service.core.delete_subscription(&other, created.id).await,
        Err(EventsError::NotCreator)
    ));
    assert!(service.core.subscriptions(&other).await.unwrap().is_empty());
    // Nor may it subscribe to another subject's events, nor to all of them
    // (`CreateSubscription_WithoutAccess_ReturnsForbiddenError`).
    for subject_filter in [Some(subject(RECIPIENT)), None] {
        let refused = service
            .core
            .create_subscription(
                &other,
                SubscriptionRequestModel {
                    subject_filter,
                    ..request.clone()
                },
                false,
            )
            .await;
        assert!(matches!(
            refused,
            Err(EventsError::NotAuthorized(resource)) if resource == "urn:altinn:resource:rules"
        ));
    }
    // Pulling another subject's events is an empty page, not a refusal.
    service.publish(&published("rules")).await;
    let pull = |subject: &str, after: &str, size: u32| PullInput {
        resource: "urn:altinn:resource:rules".into(),
        subject: subject.into(),
        after: after.into(),
        size,
        ..PullInput::default()
    };
    assert_eq!(
        service
            .core
            .pull(&owner, pull("", "0", 0))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        service
            .core
            .pull(&other, pull(&subject(RECIPIENT), "0", 0))
            .await
            .unwrap()
            .is_empty()
    );
    // Altinn's pull checks, each with its text.
    let cases = [
        (
            PullInput {
                resource: "rules".into(),
                ..pull("", "0", 0)
            },
            service::PULL_RESOURCE_NOT_URN,
        ),
        (pull("", "", 0), service::PULL_AFTER_MISSING),
        (
            PullInput {
                alternative_subject: "/person/16069412345".into(),
                ..pull(&subject(RECIPIENT), "0", 0)
            },
            service::PULL_TWO_SUBJECTS,
        ),
    ];
    for (input, text) in cases {
        assert!(matches!(
            service.core.pull(&owner, input).await,
            Err(EventsError::BadRequest(message)) if message == text
        ));
    }
    // Without the scope, neither subscribing nor pulling; the caller's own subscriptions it
    // still sees (Altinn asks no scope there).
    let unscoped = caller(OWNER, &["altinn:broker.read"]);
    assert!(matches!(
        service
            .core
            .create_subscription(&unscoped, request.clone(), false)
            .await,
        Err(EventsError::MissingScope(_))
    ));
    assert!(matches!(
        service.core.pull(&unscoped, pull("", "0", 0)).await,
        Err(EventsError::MissingScope(_))
    ));
    assert_eq!(
        service.core.subscriptions(&unscoped).await.unwrap().len(),
        2
    );
    // A bad endpoint is refused before the scope is asked for, as Altinn checks it.
    let bad = SubscriptionRequestModel {
        end_point: Some("ftp://x".into()),
        ..request
    };
    assert!(matches!(
        service.core.create_subscription(&unscoped, bad, false).await,
        Err(EventsError::BadRequest(message)) if message == INVALID_ENDPOINT
    ));
    service
        .core
        .delete_subscription(&owner, created.id)
        .await
        .unwrap();
    assert!(matches!(
        service.core.subscription(&owner, created.id).await,
        Err(EventsError::SubscriptionNotFound)
    ));
    // Publish takes the broker's CloudEvents and refuses anything else.
    assert!(matches!(
        service.core.publish("{\"id\": 1}").await,
        Err(EventsError::Invalid(_))
    ));
    let event = recipients(&published("rules"));
    let id = service
        .core
        .publish(&serde_json::to_string(&event).unwrap())
        .await
        .unwrap();
    assert_eq!(id, event.id);
    assert_eq!(store.store.event(id).await.unwrap(), Some(event));
    service.stop().await;
}
