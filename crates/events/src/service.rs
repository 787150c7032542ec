//! The event service's operations, for callers the gRPC layer has authenticated: subscriptions,
//! pull, publish, dead letters. Access decisions live here, in one place, as Altinn Events
//! makes them:
//!
//! - creating a subscription needs the scope `altinn:events.subscribe` and the `subscribe`
//!   right for the consumer on the resource and subject: a resource's owner has it for every
//!   subject (Altinn's service owners have it by policy), anyone else only for its own
//!   organisation and when the access registry permits it;
//! - any authenticated caller reads, lists and deletes the subscriptions it created, and is
//!   refused (403) someone else's;
//! - pulling needs the scope; the page is then filtered to the events the caller may see, as
//!   Altinn filters it, so asking for another party's events is not an error but an empty page.

use std::sync::Arc;

use broker_common::auth::Caller;
use broker_common::authz::Authorizer;
use broker_common::clock::Clock;
use broker_proto::common::Principal;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::delivery::signing::{self, SigningSecret};
use crate::domain::cloud_event::{CloudEvent, RESOURCE_URN_PREFIX, SPEC_VERSION};
use crate::domain::error::EventsError;
use crate::domain::subscription::{
    Subscription, SubscriptionRequestModel, consumer_name, resource_id, subject_organisation,
};
use crate::ingest::Ingest;
use crate::owners::ResourceOwners;
use crate::store::{Delivery, EventStore, NewSubscription, PullQuery};

/// The scope of creating subscriptions and pulling.
pub const SUBSCRIBE_SCOPE: &str = "altinn:events.subscribe";
/// The access registry's action for subscribing to and pulling a resource's events.
const SUBSCRIBE_ACTION: &str = "subscribe";
/// Pull page size when none (or less than 1) is asked for, as Altinn reads it.
pub const DEFAULT_PULL_SIZE: u32 = 50;
/// Largest pull page; a larger size is read as this, as Altinn reads it.
pub const MAX_PULL_SIZE: u32 = 1000;
/// Dead-letter page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest dead-letter page.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Altinn's answer to a pull whose `resource` is not a resource URN.
pub const PULL_RESOURCE_NOT_URN: &str =
    "The 'resource' parameter must begin with `urn:altinn:resource:`";
/// Altinn's answer to a pull without `after`.
pub const PULL_AFTER_MISSING: &str = "The 'after' parameter must be defined.";
/// Altinn's answer to a pull with both a subject and an alternative subject.
pub const PULL_TWO_SUBJECTS: &str = "Only one of 'subject' or 'alternativeSubject' can be defined.";

/// What a pull asks for, as Altinn's controller binds it.
#[derive(Debug, Clone, Default)]
pub struct PullInput {
    /// `urn:altinn:resource:<id>`.
    pub resource: String,
    /// The last event id seen (required; `0` or an unknown id reads from the start).
    pub after: String,
    /// Page size, 0 for the default.
    pub size: u32,
    /// Subject filter, or empty.
    pub subject: String,
    /// The `Altinn-AlternativeSubject` header, or empty.
    pub alternative_subject: String,
    /// Type patterns (SQL `LIKE`), any of which matches; none for every type.
    pub types: Vec<String>,
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

    /// Whether the caller owns the resource with this id.
    async fn owns(&self, caller: &Caller, resource: &str) -> Result<bool, EventsError> {
        Ok(self.owners.ownership(resource).await?.is_owner(caller.org))
    }

    /// Whether the access registry gives the caller the `subscribe` right on the resource for
    /// its own organisation.
    async fn may_subscribe_for_itself(
        &self,
        caller: &Caller,
        resource: &str,
    ) -> Result<bool, EventsError> {
        let decision = self
            .authorizer
            .authorize(
                &principal(caller),
                SUBSCRIBE_ACTION,
                resource,
                &caller.org.urn(),
                "",
            )
            .await
            .map_err(EventsError::Upstream)?;
        Ok(decision.permit)
    }

    /// Altinn's authorization of a new subscription (its PDP's `subscribe` for the consumer on
    /// the resource and subject filter): the resource's owner for any subject, anyone else for
    /// its own organisation with the registry's permit.
    async fn may_create(
        &self,
        caller: &Caller,
        resource_filter: &str,
        subject_filter: Option<&str>,
    ) -> Result<bool, EventsError> {
        let Some(resource) = resource_id(resource_filter) else {
            return Ok(false);
        };
        if self.owns(caller, resource).await? {
            return Ok(true);
        }
        let own = caller.org.to_string();
        if subject_filter.and_then(subject_organisation) != Some(own.as_str()) {
            return Ok(false);
        }
        self.may_subscribe_for_itself(caller, resource).await
    }

    /// Creates a subscription for the caller, checked as Altinn checks it, or returns the one
    /// it duplicates (its handshake sent again) as Altinn does; with `sign`, a new one also gets
    /// its signing secret, which is returned only here.
    pub async fn create_subscription(
        &self,
        caller: &Caller,
        model: SubscriptionRequestModel,
        sign: bool,
    ) -> Result<(Subscription, Option<String>), EventsError> {
        let end_point = model.check_urls(self.allow_private_endpoints)?;
        // Altinn asks for the scope only here, after the URLs (and not for app resources,
        // which Broker does not have).
        require_scope(caller)?;
        let request = model.into_generic(end_point)?;
        if !self
            .may_create(
                caller,
                &request.resource_filter,
                request.subject_filter.as_deref(),
            )
            .await?
        {
            return Err(EventsError::NotAuthorized(request.resource_filter));
        }
        let secret = if sign {
            Some(signing::generate_secret().map_err(|error| {
                tracing::error!(%error, "no randomness for a signing secret");
                EventsError::Unavailable
            })?)
        } else {
            None
        };
        let consumer = consumer_name(caller);
        let new = NewSubscription {
            request,
            created_by: consumer.clone(),
            consumer,
            consumer_org: caller.org.to_string(),
            created: self.clock.now(),
            signing_secret: secret.clone().map(SigningSecret::new),
        };
        let created = match self.store.find_subscription(&new).await? {
            Some(existing) => {
                self.store
                    .rearm_validation(existing.id, self.clock.now())
                    .await?;
                (existing, None)
            }
            None => (self.store.create_subscription(&new).await?, secret),
        };
        self.validations.notify_one();
        Ok(created)
    }

    /// Subscription `id`, if the caller created it: someone else's is refused (403), a missing
    /// one not found (404), as Altinn answers.
    pub async fn subscription(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<Subscription, EventsError> {
        let subscription = self
            .store
            .subscription(id)
            .await?
            .ok_or(EventsError::SubscriptionNotFound)?;
        if subscription.created_by == consumer_name(caller) {
            Ok(subscription)
        } else {
            Err(EventsError::NotCreator)
        }
    }

    /// The caller's subscriptions (validated or not), oldest first.
    pub async fn subscriptions(&self, caller: &Caller) -> Result<Vec<Subscription>, EventsError> {
        Ok(self.store.subscriptions_of(&consumer_name(caller)).await?)
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

    /// A page of a resource's events, checked and selected as Altinn's pull selects them, then
    /// filtered to those the caller may see.
    pub async fn pull(
        &self,
        caller: &Caller,
        input: PullInput,
    ) -> Result<Vec<CloudEvent>, EventsError> {
        require_scope(caller)?;
        if !input.resource.starts_with(RESOURCE_URN_PREFIX) {
            return Err(EventsError::bad_request(PULL_RESOURCE_NOT_URN));
        }
        if input.after.is_empty() {
            return Err(EventsError::bad_request(PULL_AFTER_MISSING));
        }
        if !input.subject.is_empty() && !input.alternative_subject.is_empty() {
            return Err(EventsError::bad_request(PULL_TWO_SUBJECTS));
        }
        // Altinn matches the header against the events' `alternativesubject`, which Broker's
        // events (as Altinn Broker's) do not have: nothing matches.
        if !input.alternative_subject.is_empty() {
            return Ok(Vec::new());
        }
        let size = match input.size {
            0 => DEFAULT_PULL_SIZE,
            size => size.min(MAX_PULL_SIZE),
        };
        let page = self
            .store
            .pull(&PullQuery {
                resource: input.resource,
                after: input.after,
                size,
                subject: non_empty(input.subject),
                types: input.types,
            })
            .await?;
        self.visible(caller, page).await
    }

    /// The events of a pulled page that the caller may see, as Altinn's authorization filters
    /// them after the page is read (so a page may come back short, or empty): all of them for
    /// the resource's owner, else those about its own organisation if the registry permits.
    async fn visible(
        &self,
        caller: &Caller,
        page: Vec<CloudEvent>,
    ) -> Result<Vec<CloudEvent>, EventsError> {
        // One page is one resource's.
        let Some(first) = page.first() else {
            return Ok(page);
        };
        let Some(resource) = resource_id(&first.resource).map(str::to_owned) else {
            return Ok(Vec::new());
        };
        if self.owns(caller, &resource).await? {
            return Ok(page);
        }
        let own = caller.org.urn();
        if !page.iter().any(|event| event.subject == own)
            || !self.may_subscribe_for_itself(caller, &resource).await?
        {
            return Ok(Vec::new());
        }
        Ok(page
            .into_iter()
            .filter(|event| event.subject == own)
            .collect())
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
