//! A stand-in for the event service at the gRPC boundary, on a real loopback server: it records
//! what the gateway sends (messages and bearer tokens) and answers with canned subscriptions,
//! events and dead letters, so tests see what crosses the wire. The real service is exercised by
//! the end-to-end tests.

use std::sync::{Arc, Mutex};

use axum::Router;
use broker_common::Problem;
use broker_common::config::ServiceUrls;
use broker_gateway::Clients;
use broker_proto::common::{PageInfo, PageRequest};
use broker_proto::events as pb;
use broker_proto::events::event_service_server::{EventService, EventServiceServer};
use http::StatusCode;
use tonic::{Request, Response, Status};

use crate::support::{ORG, serve_backend, state};

/// The id of the one subscription the double knows.
pub const SUBSCRIPTION_ID: i64 = 42;

/// The secret a subscription asking for signed deliveries gets.
pub const SECRET: &str = "whsec_test";

/// The resource whose pull answers no events.
pub const QUIET_RESOURCE: &str = "urn:altinn:resource:quiet";

/// How many events a pull answers at most.
pub const EVENTS: u32 = 3;

/// The id of a subscription someone else created.
pub const THEIRS: i64 = 8;

/// The resource filter the double refuses as Altinn refuses a filter that is not a URN.
pub const NOT_A_URN: &str = "some-service";
/// The resource filter the double refuses as Altinn refuses a caller without the right.
pub const FORBIDDEN_RESOURCE: &str = "urn:altinn:resource:forbidden";
/// Altinn's text for [`NOT_A_URN`].
pub const NOT_A_URN_TEXT: &str = "Resource filter must be a valid urn";
/// Altinn's text for [`FORBIDDEN_RESOURCE`].
pub const FORBIDDEN_TEXT: &str =
    "Not authorized to create a subscription for resource urn:altinn:resource:forbidden.";
/// The resource the double's pull refuses, as Altinn refuses one without the URN prefix.
pub const RANDOM_RESOURCE: &str = "random";
/// Altinn's text for [`RANDOM_RESOURCE`].
pub const RANDOM_TEXT: &str = "The 'resource' parameter must begin with `urn:altinn:resource:`";

/// What the service saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// The bearer token of each call.
    pub bearers: Vec<String>,
    /// Create requests.
    pub creates: Vec<pb::CreateSubscriptionRequest>,
    /// The ids of get and delete requests, in order.
    pub ids: Vec<i64>,
    /// Pull requests.
    pub pulls: Vec<pb::PullEventsRequest>,
    /// The page of each dead-letter listing.
    pub pages: Vec<Option<PageRequest>>,
    /// The ids of each re-drive.
    pub redrives: Vec<Vec<String>>,
}

/// The recording service.
#[derive(Clone, Default)]
pub struct Double {
    /// What it has seen so far.
    pub seen: Arc<Mutex<Seen>>,
}

impl Double {
    /// Serves the double on a loopback port; returns a gateway router forwarding to it.
    pub async fn start() -> (Self, Router) {
        let double = Self::default();
        let url = serve_backend(tonic::service::Routes::new(EventServiceServer::new(
            double.clone(),
        )))
        .await;
        // Only the event service is called: the others keep their (unused) default addresses.
        let urls = ServiceUrls {
            events_url: url,
            ..ServiceUrls::default()
        };
        let mut state = state();
        state.clients = Clients::connect(&urls).expect("valid URLs");
        (double, broker_gateway::router(state))
    }

    /// Records the call's bearer token and what `change` notes.
    fn record<T>(&self, request: &Request<T>, change: impl FnOnce(&mut Seen)) {
        let token = broker_common::grpc::bearer(request)
            .unwrap_or_default()
            .to_owned();
        let mut seen = self.seen.lock().expect("not poisoned");
        seen.bearers.push(token);
        change(&mut seen);
    }
}

/// The subscription the double stores under `id`.
pub fn subscription(id: i64) -> pb::Subscription {
    pb::Subscription {
        id,
        end_point: "https://example.com/hook".to_owned(),
        resource_filter: "urn:altinn:resource:broker-demo".to_owned(),
        subject_filter: Some(format!("urn:altinn:organization:identifier-no:{ORG}")),
        consumer: format!("/organisation/{ORG}"),
        created_by: format!("/organisation/{ORG}"),
        created: "2026-11-29T08:00:00Z".to_owned(),
        ..Default::default()
    }
}

/// The `n`th event of a pull (ids are UUIDs ending in `n`, subjects `/party/<n>`).
pub fn event_json(n: u32) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"00000000-0000-4000-8000-00000000000{n}","type":"no.altinn.broker.published","source":"https://broker.example/broker/api/v1/filetransfer","resource":"urn:altinn:resource:broker-demo","subject":"/party/{n}","data":{{"Role":"Sender"}}}}"#
    )
}

/// The subscription if it is the known one; else the service's 403 (no body) for someone
/// else's, its 404 (no body) for any other.
fn known(id: i64) -> Result<pb::Subscription, Status> {
    match id {
        SUBSCRIPTION_ID => Ok(subscription(id)),
        THEIRS => Err(Problem::bare(StatusCode::FORBIDDEN).into()),
        _ => Err(Problem::bare(StatusCode::NOT_FOUND).into()),
    }
}

#[tonic::async_trait]
impl EventService for Double {
    async fn publish(
        &self,
        _: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn create_subscription(
        &self,
        request: Request<pb::CreateSubscriptionRequest>,
    ) -> Result<Response<pb::Subscription>, Status> {
        self.record(&request, |seen| {
            seen.creates.push(request.get_ref().clone())
        });
        let asked = request.into_inner();
        match asked.resource_filter.as_deref() {
            Some(NOT_A_URN) => {
                return Err(Problem::new(StatusCode::BAD_REQUEST, NOT_A_URN_TEXT).into());
            }
            Some(FORBIDDEN_RESOURCE) => {
                return Err(Problem::new(StatusCode::FORBIDDEN, FORBIDDEN_TEXT).into());
            }
            _ => {}
        }
        Ok(Response::new(pb::Subscription {
            end_point: asked.end_point.unwrap_or_default(),
            source_filter: asked.source_filter,
            resource_filter: asked.resource_filter.unwrap_or_default(),
            subject_filter: asked.subject_filter,
            type_filter: asked.type_filter,
            include_subunits: asked.include_subunits,
            signing_secret: if asked.sign_deliveries {
                SECRET.to_owned()
            } else {
                String::new()
            },
            ..subscription(SUBSCRIPTION_ID)
        }))
    }

    async fn get_subscription(
        &self,
        request: Request<pb::GetSubscriptionRequest>,
    ) -> Result<Response<pb::Subscription>, Status> {
        let id = request.get_ref().id;
        self.record(&request, |seen| seen.ids.push(id));
        known(id).map(Response::new)
    }

    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        self.record(&request, |_| ());
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions: vec![subscription(SUBSCRIPTION_ID), subscription(43)],
        }))
    }

    async fn delete_subscription(
        &self,
        request: Request<pb::GetSubscriptionRequest>,
    ) -> Result<Response<pb::DeleteSubscriptionResponse>, Status> {
        let id = request.get_ref().id;
        self.record(&request, |seen| seen.ids.push(id));
        known(id).map(|_| Response::new(pb::DeleteSubscriptionResponse {}))
    }

    async fn pull_events(
        &self,
        request: Request<pb::PullEventsRequest>,
    ) -> Result<Response<pb::PullEventsResponse>, Status> {
        self.record(&request, |seen| seen.pulls.push(request.get_ref().clone()));
        let asked = request.into_inner();
        let count = match asked.resource.as_str() {
            QUIET_RESOURCE => 0,
            RANDOM_RESOURCE => {
                return Err(Problem::new(StatusCode::BAD_REQUEST, RANDOM_TEXT).into());
            }
            _ if asked.size == 0 => EVENTS,
            _ => asked.size.min(EVENTS),
        };
        Ok(Response::new(pb::PullEventsResponse {
            cloud_events_json: (1..=count).map(event_json).collect(),
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        self.record(&request, |seen| {
            seen.pages.push(request.get_ref().page.clone())
        });
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: vec![pb::DeadLetter {
                id: "dl-1".to_owned(),
                subscription_id: SUBSCRIPTION_ID,
                cloud_event_json: event_json(1),
                attempts: 12,
                last_error: "HTTP 503".to_owned(),
                dead_since: "2026-11-29T09:00:00Z".to_owned(),
            }],
            page: Some(PageInfo {
                next_token: "page-2".to_owned(),
            }),
        }))
    }

    async fn redrive(
        &self,
        request: Request<pb::RedriveRequest>,
    ) -> Result<Response<pb::RedriveResponse>, Status> {
        let ids = request.get_ref().ids.clone();
        self.record(&request, |seen| seen.redrives.push(ids.clone()));
        let redriven = if ids.is_empty() { 5 } else { ids.len() as u32 };
        Ok(Response::new(pb::RedriveResponse { redriven }))
    }
}
