//! The in-memory profile cache that keeps the signed-in hot path off the store: a hit costs a
//! hash, a shared lock on one shard and an `Arc` clone, with no allocation.
//!
//! A hit needs the cached revision to be at least the one the caller knows of (the session
//! carries it), so a replica whose copy is older than a change made elsewhere reloads.
//! Bounded: a full shard drops an eighth of its entries, chosen arbitrarily. Cheap, and a
//! dropped entry only costs one store read.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use ahash::RandomState;
use std::sync::{Arc, PoisonError, RwLock};

use super::key::UserKey;
use super::record::ProfileRecord;

const MAX_SHARDS: usize = 16;

/// A cached value that knows which profile revision it reflects.
pub trait Revisioned {
    fn revision(&self) -> u64;
}

impl Revisioned for ProfileRecord {
    fn revision(&self) -> u64 {
        self.revision
    }
}

/// aHash with random keys: fast on long keys (session cookies) and not floodable.
type Shard<K, V> = RwLock<HashMap<K, Arc<V>, RandomState>>;

/// A bounded, sharded map from user to their latest known record (or a view derived from it).
pub struct ProfileCache<K = UserKey, V = ProfileRecord> {
    shards: Box<[Shard<K, V>]>,
    per_shard: usize,
    hasher: RandomState,
}

impl<K: Hash + Eq, V: Revisioned> ProfileCache<K, V> {
    /// A cache of at most `capacity` records (0 disables it: every lookup misses).
    pub fn new(capacity: usize) -> Self {
        let shards = capacity.clamp(1, MAX_SHARDS);
        ProfileCache {
            shards: (0..shards)
                .map(|_| RwLock::new(HashMap::with_hasher(RandomState::new())))
                .collect(),
            per_shard: capacity / shards,
            hasher: RandomState::new(),
        }
    }

    /// The user's cached value if its revision is at least `min_revision`.
    pub fn get<Q>(&self, user: &Q, min_revision: u64) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self
            .shard(user)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard
            .get(user)
            .filter(|record| record.revision() >= min_revision)
            .cloned()
    }

    /// Caches `record` for `user`, unless a newer revision is already cached; returns the
    /// value the cache holds for the user afterwards.
    pub fn put(&self, user: K, record: Arc<V>) -> Arc<V> {
        if self.per_shard == 0 {
            return record;
        }
        let mut shard = self
            .shard(&user)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = shard.get_mut(&user) {
            if record.revision() >= cached.revision() {
                *cached = record;
            }
            return cached.clone();
        }
        if shard.len() >= self.per_shard {
            let mut evict = (self.per_shard / 8).max(1);
            shard.retain(|_, _| {
                if evict == 0 {
                    return true;
                }
                evict -= 1;
                false
            });
        }
        shard.insert(user, record.clone());
        record
    }

    /// Forgets the user's record.
    pub fn remove<Q>(&self, user: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(user)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(user);
    }

    /// Keeps only the entries for which `keep` is true (every shard locked in turn).
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        for shard in self.shards.iter() {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|k, v| keep(k, v));
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.retain(|_, _| false);
    }

    /// How many records are cached now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most records it holds at once.
    pub fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    fn shard<Q: Hash + ?Sized>(&self, user: &Q) -> &Shard<K, V> {
        // Truncation is fine: the hash only spreads users over shards.
        let index = self.hasher.hash_one(user) as usize % self.shards.len();
        &self.shards[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: usize) -> UserKey {
        UserKey::new("https://op.example", format!("user-{n}"))
    }

    fn at_revision(revision: u64) -> Arc<ProfileRecord> {
        Arc::new(ProfileRecord {
            revision,
            ..ProfileRecord::default()
        })
    }

    #[test]
    fn a_hit_needs_the_known_revision() {
        let cache = ProfileCache::new(100);
        assert!(cache.get(&user(1), 0).is_none());
        cache.put(user(1), at_revision(3));
        assert_eq!(cache.get(&user(1), 3).map(|r| r.revision), Some(3));
        assert_eq!(cache.get(&user(1), 2).map(|r| r.revision), Some(3));
        assert!(cache.get(&user(1), 4).is_none(), "stale copy must miss");
        assert!(cache.get(&user(2), 0).is_none());
    }

    #[test]
    fn an_older_revision_never_replaces_a_newer_one() {
        let cache = ProfileCache::new(100);
        cache.put(user(1), at_revision(5));
        cache.put(user(1), at_revision(4));
        assert_eq!(cache.get(&user(1), 0).map(|r| r.revision), Some(5));
        cache.put(user(1), at_revision(6));
        assert_eq!(cache.get(&user(1), 0).map(|r| r.revision), Some(6));
        cache.remove(&user(1));
        assert!(cache.get(&user(1), 0).is_none());
    }

    #[test]
    fn size_stays_within_capacity_and_the_newest_entry_is_kept() {
        let cache = ProfileCache::new(1000);
        assert!(cache.capacity() <= 1000 && cache.capacity() >= 990);
        for n in 0..20_000 {
            cache.put(user(n), at_revision(1));
            assert!(cache.get(&user(n), 1).is_some(), "just put {n}");
        }
        let len = cache.len();
        assert!(len <= 1000, "{len}");
        assert!(len >= 800, "evicts an eighth, not everything: {len}");
    }

    #[test]
    fn tiny_and_disabled_caches_behave() {
        let one = ProfileCache::new(1);
        one.put(user(1), at_revision(1));
        one.put(user(2), at_revision(1));
        assert_eq!(one.len(), 1);
        assert!(one.get(&user(2), 0).is_some());

        let off = ProfileCache::new(0);
        off.put(user(1), at_revision(1));
        assert!(off.is_empty());
        assert!(off.get(&user(1), 0).is_none());
    }

    #[test]
    fn concurrent_readers_and_writers_agree() {
        let cache = Arc::new(ProfileCache::new(10_000));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || {
                    for rev in 1..=500u64 {
                        cache.put(user(0), at_revision(rev));
                        cache.put(user(t + 1), at_revision(rev));
                        let seen = cache.get(&user(0), 0).map_or(0, |r| r.revision);
                        assert!(seen >= rev);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(cache.get(&user(0), 500).map(|r| r.revision), Some(500));
    }
}
