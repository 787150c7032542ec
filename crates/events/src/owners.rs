//! Who owns a resource (its competent authority in the resource registry): the owner may
//! subscribe without a subject filter and pull every subject's events.
//!
//! Both subscription requests and every ingested event ask, so answers are cached; the access
//! registry announces changes on the bus and [`RegistryOwners::listen`] flushes the cache on
//! each, with a time to live bounding the damage should notices stop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use broker_bus::Bus;
use broker_common::authz::CHANGE_BINDING;
use broker_common::grpc::Channel;
use broker_common::identity::OrgNumber;
use broker_common::{Problem, Shutdown};
use broker_proto::access::GetResourceRequest;
use broker_proto::access::access_registry_client::AccessRegistryClient;

use crate::domain::error::EventsError;

/// What a resource's ownership lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The resource exists; its owner, if it names one.
    Owned(Option<OrgNumber>),
    /// No such resource.
    Unknown,
}

impl Ownership {
    /// Whether `org` owns the resource.
    pub fn is_owner(self, org: OrgNumber) -> bool {
        self == Self::Owned(Some(org))
    }
}

/// Looks up resource owners.
#[async_trait]
pub trait ResourceOwners: Send + Sync {
    /// The owner of the resource with this id (without the URN prefix).
    async fn ownership(&self, resource_id: &str) -> Result<Ownership, EventsError>;
}

/// Most answers kept; the cache starts over when full.
const MAX_ENTRIES: usize = 10_000;

/// [`ResourceOwners`] from the access registry, cached.
pub struct RegistryOwners {
    client: AccessRegistryClient<Channel>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Ownership, Instant)>>,
}

impl RegistryOwners {
    /// Asks `client`, keeping answers at most `ttl`.
    pub fn new(client: AccessRegistryClient<Channel>, ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Flushes the cache on every access change announced on `bus`, until shutdown.
    pub fn listen(
        self: &Arc<Self>,
        bus: Arc<dyn Bus>,
        shutdown: Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(broker_common::changes::listen(
            bus,
            vec![CHANGE_BINDING.to_owned()],
            Arc::new(move || {
                this.cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
            }),
            shutdown,
        ))
    }
}

#[async_trait]
impl ResourceOwners for RegistryOwners {
    async fn ownership(&self, resource_id: &str) -> Result<Ownership, EventsError> {
        if let Some((ownership, at)) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(resource_id)
            && at.elapsed() < self.ttl
        {
            return Ok(*ownership);
        }
        let request = GetResourceRequest {
            identifier: resource_id.to_owned(),
            conditions: None,
            version_id: None,
        };
        let ownership = match self.client.clone().get_resource(request).await {
            Ok(resource) => {
                Ownership::Owned(resource.into_inner().has_competent_authority.and_then(
                    |authority| OrgNumber::parse_identifier(&authority.organization).ok(),
                ))
            }
            Err(status) if status.code() == tonic::Code::NotFound => Ownership::Unknown,
            Err(status) => {
                let problem = Problem::from(status);
                // An id the registry cannot even parse names no resource there.
                if problem.status == 400 {
                    Ownership::Unknown
                } else {
                    return Err(EventsError::Upstream(problem));
                }
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(resource_id.to_owned(), (ownership, Instant::now()));
        Ok(ownership)
    }
}
