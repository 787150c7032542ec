//! The in-memory decision cache: (principal, action, resource, party) → decision.
//!
//! Every write this service commits flushes it at once; writes of other replicas arrive later
//! through the bus and call [`Invalidator::invalidate_all`]. A generation counter closes the
//! race between a decision loaded from the store and a flush that happened meanwhile: a
//! decision computed before the flush is never stored after it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::domain::decision::{Decision, Principal};
use crate::domain::ids::{Action, PartyUrn, ResourceId};

/// Entries kept before the cache starts over; bounds memory whatever callers ask.
const MAX_ENTRIES: usize = 100_000;

/// What a decision depends on (`instance` does not change it in this model).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DecisionKey {
    /// Who asks.
    pub principal: Principal,
    /// The action.
    pub action: Action,
    /// The resource.
    pub resource: ResourceId,
    /// For whom.
    pub party: PartyUrn,
}

#[derive(Default)]
struct Entries {
    generation: u64,
    decisions: HashMap<DecisionKey, Decision>,
}

/// Cached decisions, shared by every request.
#[derive(Default)]
pub struct DecisionCache {
    entries: RwLock<Entries>,
}

/// A cached decision, or the generation to hand back to [`DecisionCache::insert`].
pub type Lookup = Result<Decision, u64>;

impl DecisionCache {
    /// The cached decision, or the current generation when there is none.
    pub fn get(&self, key: &DecisionKey) -> Lookup {
        // A panic while holding the lock cannot leave the map half-updated (every change is
        // one call), so a poisoned lock is safe to keep using.
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .decisions
            .get(key)
            .copied()
            .ok_or(entries.generation)
    }

    /// Stores a decision computed at `generation`, unless the cache was flushed since.
    pub fn insert(&self, key: DecisionKey, decision: Decision, generation: u64) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.generation != generation {
            return;
        }
        if entries.decisions.len() >= MAX_ENTRIES {
            entries.decisions.clear();
        }
        entries.decisions.insert(key, decision);
    }

    /// Forgets every decision.
    pub fn invalidate_all(&self) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.generation += 1;
        entries.decisions.clear();
    }
}

/// A handle that flushes the decision cache, for whoever hears of changes from other replicas.
#[derive(Clone)]
pub struct Invalidator(Arc<DecisionCache>);

impl Invalidator {
    /// A handle on `cache`.
    pub fn new(cache: Arc<DecisionCache>) -> Self {
        Self(cache)
    }

    /// Forgets every cached decision.
    pub fn invalidate_all(&self) {
        self.0.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::decision::DenyReason;
    use broker_common::identity::OrgNumber;

    fn key() -> DecisionKey {
        let org = OrgNumber::parse("991825827").unwrap();
        DecisionKey {
            principal: Principal {
                org,
                system_user_id: None,
            },
            action: Action::parse("read").unwrap(),
            resource: ResourceId::parse("resource").unwrap(),
            party: PartyUrn::organization(org),
        }
    }

    #[test]
    fn caches_until_invalidated() {
        let cache = Arc::new(DecisionCache::default());
        let generation = cache.get(&key()).unwrap_err();
        cache.insert(key(), Decision::Permit, generation);
        assert_eq!(cache.get(&key()), Ok(Decision::Permit));
        Invalidator::new(cache.clone()).invalidate_all();
        assert!(cache.get(&key()).is_err());
    }

    #[test]
    fn a_decision_loaded_before_a_flush_is_not_stored_after_it() {
        let cache = DecisionCache::default();
        let generation = cache.get(&key()).unwrap_err();
        cache.invalidate_all();
        cache.insert(
            key(),
            Decision::Deny(DenyReason::ResourceNotFound),
            generation,
        );
        assert!(cache.get(&key()).is_err());
    }
}
