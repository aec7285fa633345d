//! Who must hear that a user's record changed behind the caches' back ([`UserChanges`]): an
//! erase or an import rewrites a record without going through the request that would have
//! refreshed the caches, so every cache of user data (the profile views of
//! [`crate::enrich::Enricher`], the proxy's opened sessions) registers here and forgets the
//! user when told.
//!
//! In one process the store tells its hub synchronously once the change is durable. Across
//! replicas (PostgreSQL) each store instance listens for the others' notifications
//! (`pg/listen.rs`) and forwards them here; after a lost connection it says
//! [`UserChange::Everyone`], since notifications may have been missed meanwhile.

use std::sync::{Mutex, PoisonError, Weak};

use super::key::UserKey;

/// What a cache must forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// One user's record was erased or replaced.
    User(UserKey),
    /// Anything may have changed (notifications were missed): forget everything.
    Everyone,
}

/// A cache that holds user data and can forget it.
pub trait ForgetUsers: Send + Sync {
    /// Drops what is held about `user` (every entry of theirs).
    fn forget_user(&self, user: &UserKey);
    /// Drops everything.
    fn forget_everyone(&self);
}

/// The caches to tell, held weakly: a cache dropped (a reload's old gate) simply stops hearing.
#[derive(Default)]
pub struct UserChanges {
    listeners: Mutex<Vec<Weak<dyn ForgetUsers>>>,
}

impl UserChanges {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `cache` (once: registering the same one again changes nothing).
    pub fn subscribe(&self, cache: Weak<dyn ForgetUsers>) {
        let mut listeners = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        listeners.retain(|l| l.strong_count() > 0);
        if !listeners.iter().any(|l| Weak::ptr_eq(l, &cache)) {
            listeners.push(cache);
        }
    }

    /// Tells every live cache, before returning.
    pub fn publish(&self, change: &UserChange) {
        let live: Vec<_> = {
            let mut listeners = self
                .listeners
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            listeners.retain(|l| l.strong_count() > 0);
            listeners.iter().filter_map(Weak::upgrade).collect()
        };
        for cache in live {
            match change {
                UserChange::User(user) => cache.forget_user(user),
                UserChange::Everyone => cache.forget_everyone(),
            }
        }
    }

    /// How many caches listen now (for tests and logs).
    pub fn listeners(&self) -> usize {
        let mut listeners = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        listeners.retain(|l| l.strong_count() > 0);
        listeners.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Default)]
    struct Heard(Mutex<Vec<UserChange>>);

    impl ForgetUsers for Heard {
        fn forget_user(&self, user: &UserKey) {
            self.0
                .lock()
                .expect("lock")
                .push(UserChange::User(user.clone()));
        }
        fn forget_everyone(&self) {
            self.0.lock().expect("lock").push(UserChange::Everyone);
        }
    }

    #[test]
    fn live_caches_hear_each_change_once_and_dropped_ones_are_let_go() {
        let hub = UserChanges::new();
        let a = Arc::new(Heard::default());
        let b = Arc::new(Heard::default());
        let a_dyn: Arc<dyn ForgetUsers> = a.clone();
        let b_dyn: Arc<dyn ForgetUsers> = b.clone();
        hub.subscribe(Arc::downgrade(&a_dyn));
        hub.subscribe(Arc::downgrade(&a_dyn));
        hub.subscribe(Arc::downgrade(&b_dyn));
        assert_eq!(hub.listeners(), 2);
        let alice = UserKey::new("https://op.example", "alice");
        hub.publish(&UserChange::User(alice.clone()));
        assert_eq!(
            *a.0.lock().expect("lock"),
            [UserChange::User(alice.clone())]
        );
        drop((b, b_dyn));
        hub.publish(&UserChange::Everyone);
        assert_eq!(hub.listeners(), 1);
        assert_eq!(
            *a.0.lock().expect("lock"),
            [UserChange::User(alice), UserChange::Everyone]
        );
    }
}
