//! The tonic service: translates gRPC messages to [`EventsCore`] calls and back.
//!
//! Every subscriber call verifies the bearer token the gateway forwards and acts for the caller
//! it names; the request's `principal` field is ignored, so a forged principal changes nothing.
//! Publish and the dead-letter operations take the admin credential as the bearer instead.

use std::sync::Arc;

use broker_common::Problem;
use broker_common::admin::AdminToken;
use broker_common::auth::{Caller, TokenVerifier};
use broker_proto::common::PageInfo;
use broker_proto::events as pb;
use broker_proto::events::event_service_server::EventService;
use chrono::{DateTime, SecondsFormat, Utc};
use tonic::{Request, Response, Status};

use crate::domain::error::EventsError;
use crate::domain::subscription::{Subscription, SubscriptionRequestModel};
use crate::service::{EventsCore, PullInput};
use crate::store::Delivery;

/// The gRPC face of the event service.
pub struct EventsGrpc {
    core: Arc<EventsCore>,
    verifier: Arc<TokenVerifier>,
    admin: AdminToken,
}

impl EventsGrpc {
    /// Serves `core` for callers whose tokens `verifier` accepts, and for the `admin`.
    pub fn new(core: Arc<EventsCore>, verifier: Arc<TokenVerifier>, admin: AdminToken) -> Self {
        Self {
            core,
            verifier,
            admin,
        }
    }

    /// The caller named by the forwarded token.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let token = broker_common::grpc::bearer(request)
            .ok_or_else(|| Problem::unauthorized("a bearer token is required"))?;
        Ok(self.verifier.verify(token).await?)
    }

    fn require_admin<T>(&self, request: &Request<T>) -> Result<(), Status> {
        match broker_common::grpc::bearer(request) {
            Some(token) if self.admin.matches(token) => Ok(()),
            _ => Err(EventsError::NotAdmin.into()),
        }
    }
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A UTC time as Altinn's System.Text.Json writes a `DateTime`: whole seconds, then up to
/// seven fraction digits without trailing zeros, then `Z`.
fn dotnet_utc(time: DateTime<Utc>) -> String {
    let seconds = time.format("%Y-%m-%dT%H:%M:%S");
    let ticks = format!("{:07}", time.timestamp_subsec_nanos() / 100);
    match ticks.trim_end_matches('0') {
        "" => format!("{seconds}Z"),
        fraction => format!("{seconds}.{fraction}Z"),
    }
}

fn subscription_to_pb(subscription: Subscription, secret: Option<String>) -> pb::Subscription {
    let request = subscription.request;
    pb::Subscription {
        id: subscription.id,
        end_point: request.end_point,
        source_filter: request.source_filter,
        resource_filter: request.resource_filter,
        subject_filter: request.subject_filter,
        type_filter: request.type_filter,
        consumer: subscription.consumer,
        created_by: subscription.created_by,
        created: dotnet_utc(subscription.created),
        validated: subscription.validated,
        include_subunits: request.include_subunits,
        signing_secret: secret.unwrap_or_default(),
    }
}

fn dead_letter_to_pb(delivery: Delivery) -> pb::DeadLetter {
    pb::DeadLetter {
        id: delivery.id.to_string(),
        subscription_id: delivery.subscription_id,
        cloud_event_json: serde_json::to_string(&delivery.event).unwrap_or_default(),
        attempts: delivery.attempts,
        last_error: delivery.last_error.unwrap_or_default(),
        dead_since: rfc3339(delivery.updated),
    }
}

#[tonic::async_trait]
impl EventService for EventsGrpc {
    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        self.require_admin(&request)?;
        let id = self
            .core
            .publish(&request.into_inner().cloud_event_json)
            .await?;
        Ok(Response::new(pb::PublishResponse { id: id.to_string() }))
    }

    async fn create_subscription(
        &self,
        request: Request<pb::CreateSubscriptionRequest>,
    ) -> Result<Response<pb::Subscription>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let subscription = SubscriptionRequestModel {
            end_point: request.end_point,
            resource_filter: request.resource_filter,
            subject_filter: request.subject_filter,
            source_filter: request.source_filter,
            type_filter: request.type_filter,
            alternative_subject_filter: request.alternative_subject_filter,
            include_subunits: request.include_subunits,
        };
        let (subscription, secret) = self
            .core
            .create_subscription(&caller, subscription, request.sign_deliveries)
            .await?;
        Ok(Response::new(subscription_to_pb(subscription, secret)))
    }

    async fn get_subscription(
        &self,
        request: Request<pb::GetSubscriptionRequest>,
    ) -> Result<Response<pb::Subscription>, Status> {
        let caller = self.caller(&request).await?;
        let subscription = self
            .core
            .subscription(&caller, request.into_inner().id)
            .await?;
        Ok(Response::new(subscription_to_pb(subscription, None)))
    }

    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let subscriptions = self.core.subscriptions(&caller).await?;
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions: subscriptions
                .into_iter()
                .map(|subscription| subscription_to_pb(subscription, None))
                .collect(),
        }))
    }

    async fn delete_subscription(
        &self,
        request: Request<pb::GetSubscriptionRequest>,
    ) -> Result<Response<pb::DeleteSubscriptionResponse>, Status> {
        let caller = self.caller(&request).await?;
        self.core
            .delete_subscription(&caller, request.into_inner().id)
            .await?;
        Ok(Response::new(pb::DeleteSubscriptionResponse {}))
    }

    async fn pull_events(
        &self,
        request: Request<pb::PullEventsRequest>,
    ) -> Result<Response<pb::PullEventsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let events = self
            .core
            .pull(
                &caller,
                PullInput {
                    resource: request.resource,
                    after: request.after,
                    size: request.size,
                    subject: request.subject,
                    alternative_subject: request.alternative_subject,
                    types: request.types,
                },
            )
            .await?;
        let cloud_events_json = events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(|error| {
                tracing::error!(%error, "encoding a stored event failed");
                Status::from(Problem::internal())
            })?;
        Ok(Response::new(pb::PullEventsResponse { cloud_events_json }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        self.require_admin(&request)?;
        let page = request.into_inner().page.unwrap_or_default();
        let (letters, next) = self.core.dead_letters(&page.token, page.size).await?;
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: letters.into_iter().map(dead_letter_to_pb).collect(),
            page: Some(PageInfo {
                next_token: next.unwrap_or_default(),
            }),
        }))
    }

    async fn redrive(
        &self,
        request: Request<pb::RedriveRequest>,
    ) -> Result<Response<pb::RedriveResponse>, Status> {
        self.require_admin(&request)?;
        let redriven = self.core.redrive(&request.into_inner().ids).await?;
        Ok(Response::new(pb::RedriveResponse {
            redriven: u32::try_from(redriven).unwrap_or(u32::MAX),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_system_text_json_writes_them() {
        let at = |text: &str| dotnet_utc(text.parse().unwrap());
        assert_eq!(at("2026-08-20T10:57:56Z"), "2026-08-20T10:57:56Z");
        assert_eq!(at("2026-08-20T10:57:56.120Z"), "2026-08-20T10:57:56.12Z");
        assert_eq!(
            at("2026-08-20T10:57:56.123456789Z"),
            "2026-08-20T10:57:56.1234567Z"
        );
    }
}
