//! Asking the access registry whether a party may act on a resource, for the services that
//! hold data (file transfer, events).
//!
//! Decisions, and the resources' definitions, are cached in the caller's process, because most
//! requests repeat the question of the one before. A cached permit must never outlive the rule
//! that granted it: the access registry announces every change on the bus
//! (`access.changed.*`), [`Authorizer::listen`] flushes the caches on each notice, and a time
//! to live bounds the damage should notices stop.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::grpc::Channel;
use broker_bus::Bus;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::access::{AuthorizeRequest, Decision, GetResourceRequest, Resource};
use broker_proto::common::Principal;

use crate::{Problem, Shutdown};

/// The routing keys of the access registry's change notices.
pub const CHANGE_BINDING: &str = "access.changed.#";
/// Most entries a cache keeps; it starts over when full rather than tracking recency.
const MAX_ENTRIES: usize = 100_000;

/// Answers kept for a time to live, and dropped all at once by a flush.
struct Cache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    // Bumped by every flush; an answer fetched across a flush is not cached, so a notice that
    // arrives while a request is in flight cannot be undone by that request's (older) answer.
    generation: AtomicU64,
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    fn get(&self, key: &K, ttl: Duration) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (value, at) = entries.get(key)?;
        (at.elapsed() < ttl).then(|| value.clone())
    }

    /// The generation to pass to [`Cache::put`] with the answer fetched after this call.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn put(&self, key: K, value: V, generation: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) == generation {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (value, Instant::now()));
        }
    }

    fn flush(&self) {
        // Bump first: a lookup in flight that read the old generation will not cache its answer.
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    org: String,
    action: String,
    resource: String,
    party: String,
}

/// A caching client of the access registry's `Authorize` and `GetResource`.
pub struct Authorizer {
    client: AccessRegistryClient<Channel>,
    ttl: Duration,
    decisions: Cache<Key, Decision>,
    resources: Cache<String, Resource>,
}

impl Authorizer {
    /// An authorizer over `client`, keeping decisions at most `ttl`.
    pub fn new(client: AccessRegistryClient<Channel>, ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            client,
            ttl,
            decisions: Cache::new(),
            resources: Cache::new(),
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
        if let Some(decision) = self.decisions.get(&key, self.ttl) {
            return Ok(decision);
        }
        let generation = self.decisions.generation();
        let request = AuthorizeRequest {
            principal: Some(principal.clone()),
            action: key.action.clone(),
            resource: key.resource.clone(),
            party: key.party.clone(),
            instance: instance.to_owned(),
        };
        let decision = self.client.clone().authorize(request).await?.into_inner();
        self.decisions.put(key, decision.clone(), generation);
        Ok(decision)
    }

    /// The registry's definition of `identifier`; the registry's status when it has none or
    /// cannot answer (nothing but found resources is cached).
    pub async fn resource(&self, identifier: &str) -> Result<Resource, tonic::Status> {
        if let Some(resource) = self.resources.get(&identifier.to_owned(), self.ttl) {
            return Ok(resource);
        }
        let generation = self.resources.generation();
        let request = GetResourceRequest {
            identifier: identifier.to_owned(),
            conditions: None,
            version_id: None,
        };
        let resource = self
            .client
            .clone()
            .get_resource(request)
            .await?
            .into_inner();
        self.resources
            .put(identifier.to_owned(), resource.clone(), generation);
        Ok(resource)
    }

    /// Forgets every cached decision and resource.
    pub fn invalidate_all(&self) {
        self.decisions.flush();
        self.resources.flush();
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
