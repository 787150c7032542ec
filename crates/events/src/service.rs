//! The event service's operations, for callers the gRPC layer has authenticated: subscriptions,
//! pull, publish, dead letters. Access decisions live here, in one place:
//!
//! - every subscriber operation needs the scope `altinn:events.subscribe`;
//! - a resource's owner may subscribe to and pull every subject's events;
//! - anyone else only its own organisation's, and only with the `subscribe` right on the
//!   resource for itself (the access registry decides);
//! - a subscription is only visible to its consumer: someone else's is "not found", so ids do
//!   not leak which subscriptions exist.

use std::sync::Arc;

use broker_common::auth::Caller;
use broker_common::authz::Authorizer;
use broker_common::clock::Clock;
use broker_proto::common::Principal;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::delivery::signing::{self, SigningSecret};
use crate::domain::cloud_event::{CloudEvent, SPEC_VERSION};
use crate::domain::error::EventsError;
use crate::domain::subscription::{
    Subscription, SubscriptionRequest, ValidationContext, organisation_consumer, resource_id,
};
use crate::ingest::Ingest;
use crate::owners::{Ownership, ResourceOwners};
use crate::store::{Delivery, EventStore, NewSubscription, PullQuery};

/// The scope of every subscriber operation.
pub const SUBSCRIBE_SCOPE: &str = "altinn:events.subscribe";
/// The access registry's action for subscribing to and pulling a resource's events.
const SUBSCRIBE_ACTION: &str = "subscribe";
/// Pull page size when none is asked for.
pub const DEFAULT_PULL_SIZE: u32 = 50;
/// Largest pull page.
pub const MAX_PULL_SIZE: u32 = 1000;
/// Dead-letter page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest dead-letter page.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// What a pull asks for, as sent.
#[derive(Debug, Clone, Default)]
pub struct PullInput {
    /// `urn:altinn:resource:<id>`.
    pub resource: String,
    /// The last event id seen, or empty.
    pub after: String,
    /// Page size, 0 for the default.
    pub size: u32,
    /// Subject filter, or empty.
    pub subject: String,
    /// Type filter, or empty.
    pub event_type: String,
}

/// The event service's operations.
pub struct EventsCore {
    store: Arc<dyn EventStore>,
    authorizer: Arc<Authorizer>,
    owners: Arc<dyn ResourceOwners>,
    ingest: Arc<Ingest>,
    clock: Arc<dyn Clock>,
    allow_private_endpoints: bool,
    validations: Arc<Notify>,
    deliveries: Arc<Notify>,
}

/// The access registry's view of a caller.
fn principal(caller: &Caller) -> Principal {
    Principal {
        org_number: caller.org.to_string(),
        client_id: caller.client_id.clone(),
        scopes: caller.scopes.clone(),
        org_code: caller.org_code.clone().unwrap_or_default(),
        system_user_id: caller.system_user_id.clone().unwrap_or_default(),
    }
}

fn require_scope(caller: &Caller) -> Result<(), EventsError> {
    if caller.has_scope(SUBSCRIBE_SCOPE) {
        Ok(())
    } else {
        Err(EventsError::MissingScope(SUBSCRIBE_SCOPE))
    }
}

fn non_empty(text: String) -> Option<String> {
    Some(text).filter(|text| !text.is_empty())
}

impl EventsCore {
    /// The operations over `store`; `validations` and `deliveries` wake the background loops.
    #[allow(clippy::too_many_arguments)] // Each is a distinct collaborator, wired once in lib.rs.
    pub fn new(
        store: Arc<dyn EventStore>,
        authorizer: Arc<Authorizer>,
        owners: Arc<dyn ResourceOwners>,
        ingest: Arc<Ingest>,
        clock: Arc<dyn Clock>,
        allow_private_endpoints: bool,
        validations: Arc<Notify>,
        deliveries: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            authorizer,
            owners,
            ingest,
            clock,
            allow_private_endpoints,
            validations,
            deliveries,
        }
    }

    /// Refuses unless the caller may act for `party` on the resource: it must be its own
    /// organisation and the registry must permit `subscribe`.
    async fn require_subscribe_right(
        &self,
        caller: &Caller,
        resource: &str,
        party: &str,
    ) -> Result<(), EventsError> {
        let own = caller.org.urn();
        if party != own {
            return Err(EventsError::Forbidden(format!(
                "only the resource's owner may use another subject than {own}"
            )));
        }
        let decision = self
            .authorizer
            .authorize(&principal(caller), SUBSCRIBE_ACTION, resource, &own, "")
            .await
            .map_err(EventsError::Upstream)?;
        if decision.permit {
            Ok(())
        } else {
            Err(EventsError::Forbidden(format!(
                "{own} may not subscribe to events of the resource {resource}"
            )))
        }
    }

    /// Creates a subscription for the caller; with `sign`, also its signing secret, which is
    /// returned only here.
    pub async fn create_subscription(
        &self,
        caller: &Caller,
        request: SubscriptionRequest,
        sign: bool,
    ) -> Result<(Subscription, Option<String>), EventsError> {
        require_scope(caller)?;
        let resource = resource_id(&request.resource_filter).map(str::to_owned);
        let ownership = match &resource {
            Some(resource) => Some(self.owners.ownership(resource).await?),
            None => None,
        };
        let owner = ownership.is_some_and(|ownership| ownership.is_owner(caller.org));
        request.validate(ValidationContext {
            allow_private_endpoints: self.allow_private_endpoints,
            subscriber_owns_resource: owner,
        })?;
        let (Some(resource), Some(ownership)) = (resource, ownership) else {
            return Err(EventsError::invalid("resourceFilter", "must be a resource"));
        };
        if ownership == Ownership::Unknown {
            return Err(EventsError::UnknownResource {
                field: "resourceFilter",
                resource: request.resource_filter,
            });
        }
        if !owner {
            let subject = request.subject_filter.as_deref().unwrap_or_default();
            self.require_subscribe_right(caller, &resource, subject)
                .await?;
        }
        let secret = if sign {
            Some(signing::generate_secret().map_err(|error| {
                tracing::error!(%error, "no randomness for a signing secret");
                EventsError::Unavailable
            })?)
        } else {
            None
        };
        let consumer = organisation_consumer(&caller.org.to_string());
        let subscription = self
            .store
            .create_subscription(&NewSubscription {
                request,
                created_by: consumer.clone(),
                consumer,
                created: self.clock.now(),
                signing_secret: secret.clone().map(SigningSecret::new),
            })
            .await?;
        self.validations.notify_one();
        Ok((subscription, secret))
    }

    /// The caller's subscription `id`.
    pub async fn subscription(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<Subscription, EventsError> {
        require_scope(caller)?;
        let consumer = organisation_consumer(&caller.org.to_string());
        self.store
            .subscription(id)
            .await?
            .filter(|subscription| subscription.consumer == consumer)
            .ok_or(EventsError::SubscriptionNotFound)
    }

    /// The caller's subscriptions, oldest first.
    pub async fn subscriptions(&self, caller: &Caller) -> Result<Vec<Subscription>, EventsError> {
        require_scope(caller)?;
        let consumer = organisation_consumer(&caller.org.to_string());
        Ok(self.store.subscriptions_of(&consumer).await?)
    }

    /// Deletes the caller's subscription `id` and its pending deliveries.
    pub async fn delete_subscription(&self, caller: &Caller, id: i64) -> Result<(), EventsError> {
        let subscription = self.subscription(caller, id).await?;
        if self.store.delete_subscription(subscription.id).await? {
            Ok(())
        } else {
            Err(EventsError::SubscriptionNotFound)
        }
    }

    /// A page of a resource's events the caller may see.
    pub async fn pull(
        &self,
        caller: &Caller,
        input: PullInput,
    ) -> Result<Vec<CloudEvent>, EventsError> {
        require_scope(caller)?;
        let mut errors = crate::domain::error::FieldErrors::new();
        let mut fail = |field: &str, message: &str| {
            errors
                .entry(field.to_owned())
                .or_default()
                .push(message.to_owned());
        };
        let resource = resource_id(&input.resource).map(str::to_owned);
        if resource.is_none() {
            fail("resource", "must be urn:altinn:resource:<resource id>");
        }
        let after = match input.after.as_str() {
            "" => None,
            text => Uuid::parse_str(text)
                .map_err(|_| fail("after", "must be an event id (a UUID)"))
                .ok(),
        };
        let size = match input.size {
            0 => DEFAULT_PULL_SIZE,
            size if size > MAX_PULL_SIZE => {
                fail("size", &format!("must be at most {MAX_PULL_SIZE}"));
                MAX_PULL_SIZE
            }
            size => size,
        };
        let Some(resource) = resource.filter(|_| errors.is_empty()) else {
            return Err(EventsError::Invalid(errors));
        };
        let subject = match self.owners.ownership(&resource).await? {
            Ownership::Unknown => {
                return Err(EventsError::UnknownResource {
                    field: "resource",
                    resource: input.resource,
                });
            }
            ownership if ownership.is_owner(caller.org) => non_empty(input.subject),
            Ownership::Owned(_) => {
                let subject = non_empty(input.subject).unwrap_or_else(|| caller.org.urn());
                self.require_subscribe_right(caller, &resource, &subject)
                    .await?;
                Some(subject)
            }
        };
        Ok(self
            .store
            .pull(&PullQuery {
                resource: input.resource,
                after,
                size,
                subject,
                event_type: non_empty(input.event_type),
            })
            .await?)
    }

    /// Appends a CloudEvent given as JSON and queues its deliveries; for the admin only (the
    /// gRPC layer checks). Only the broker's own event shape is accepted.
    pub async fn publish(&self, json: &str) -> Result<Uuid, EventsError> {
        let event: CloudEvent = serde_json::from_str(json).map_err(|error| {
            EventsError::invalid("cloudEvent", format!("not a broker CloudEvent: {error}"))
        })?;
        if event.specversion != SPEC_VERSION {
            return Err(EventsError::invalid("specversion", "must be 1.0"));
        }
        if resource_id(&event.resource).is_none() {
            return Err(EventsError::invalid(
                "resource",
                "must be urn:altinn:resource:<resource id>",
            ));
        }
        self.ingest.accept(std::slice::from_ref(&event)).await?;
        Ok(event.id)
    }

    /// Up to `size` dead letters after the one with id `after` (0 for the first page), and
    /// the token of the next page when there may be one.
    pub async fn dead_letters(
        &self,
        after: &str,
        size: u32,
    ) -> Result<(Vec<Delivery>, Option<String>), EventsError> {
        let after = match after {
            "" => 0,
            token => token
                .parse::<i64>()
                .map_err(|_| EventsError::invalid("page.token", "is not a page token"))?,
        };
        let size = match size {
            0 => DEFAULT_PAGE_SIZE,
            size => size.min(MAX_PAGE_SIZE),
        };
        let letters = self.store.dead_letters(after, size).await?;
        let next = (letters.len() == size as usize)
            .then(|| letters.last().map(|last| last.id.to_string()))
            .flatten();
        Ok((letters, next))
    }

    /// Makes the dead letters with these ids (all, when empty) pending again; how many were.
    pub async fn redrive(&self, ids: &[String]) -> Result<u64, EventsError> {
        let now = self.clock.now();
        let redriven = if ids.is_empty() {
            self.store.redrive_all(now).await?
        } else {
            let ids = ids
                .iter()
                .map(|id| id.parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| EventsError::invalid("ids", "must be dead-letter ids"))?;
            let mut redriven = 0;
            for id in ids {
                redriven += u64::from(self.store.redrive(id, now).await?);
            }
            redriven
        };
        if redriven > 0 {
            self.deliveries.notify_one();
        }
        Ok(redriven)
    }
}
