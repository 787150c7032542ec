//! Asking the access registry whether a party may act on a resource, for the services that
//! hold data (file transfer, events).
//!
//! Decisions are cached in the caller's process, because most requests repeat the question of
//! the one before. A cached permit must never outlive the rule that granted it: the access
//! registry announces every change on the bus (`access.changed.*`), [`Authorizer::listen`]
//! flushes the cache on each notice, and a time to live bounds the damage should notices stop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::grpc::Channel;
use broker_bus::Bus;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::access::{AuthorizeRequest, Decision};
use broker_proto::common::Principal;

use crate::{Problem, Shutdown};

/// The routing keys of the access registry's change notices.
pub const CHANGE_BINDING: &str = "access.changed.#";
/// Most decisions kept; the cache starts over when full rather than tracking recency.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    org: String,
    action: String,
    resource: String,
    party: String,
}

/// A caching client of the access registry's `Authorize`.
pub struct Authorizer {
    client: AccessRegistryClient<Channel>,
    ttl: Duration,
    cache: Mutex<HashMap<Key, (Decision, Instant)>>,
    // Bumped by every flush; a decision fetched across a flush is not cached, so a notice that
    // arrives while a request is in flight cannot be undone by that request's (older) answer.
    generation: AtomicU64,
}

impl Authorizer {
    /// An authorizer over `client`, keeping decisions at most `ttl`.
    pub fn new(client: AccessRegistryClient<Channel>, ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        })
    }

    /// May `principal` perform `action` on `resource` for `party` (and `instance`)?
    /// The decision does not depend on `instance` in the registry's model, so the cache key
    /// leaves it out.
    pub async fn authorize(
        &self,
        principal: &Principal,
        action: &str,
        resource: &str,
        party: &str,
        instance: &str,
    ) -> Result<Decision, Problem> {
        let key = Key {
            org: principal.org_number.clone(),
            action: action.to_owned(),
            resource: resource.to_owned(),
            party: party.to_owned(),
        };
        if let Some(decision) = self.cached(&key) {
            return Ok(decision);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let request = AuthorizeRequest {
            principal: Some(principal.clone()),
            action: key.action.clone(),
            resource: key.resource.clone(),
            party: key.party.clone(),
            instance: instance.to_owned(),
        };
        let decision = self.client.clone().authorize(request).await?.into_inner();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) == generation {
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
            cache.insert(key, (decision.clone(), Instant::now()));
        }
        Ok(decision)
    }

    /// Forgets every cached decision.
    pub fn invalidate_all(&self) {
        // Bump first: a lookup in flight that read the old generation will not cache its answer.
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn cached(&self, key: &Key) -> Option<Decision> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let (decision, at) = cache.get(key)?;
        (at.elapsed() < self.ttl).then(|| decision.clone())
    }

    /// Flushes the cache on every access change announced on `bus`, until shutdown.
    pub fn listen(
        self: &Arc<Self>,
        bus: Arc<dyn Bus>,
        shutdown: Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(crate::changes::listen(
            bus,
            vec![CHANGE_BINDING.to_owned()],
            Arc::new(move || this.invalidate_all()),
            shutdown,
        ))
    }
}
