//! When an unknown key id may make profilegate fetch the OP's key set again. An OP that rotates
//! its signing key publishes the new key and signs with it at once; the first token with the new
//! `kid` must succeed whenever the last fetch was (the OpenID Foundation's RP test
//! `rp-key-rotation-op-sign-key`). A token from anyone, though, can carry any `kid`: so each key
//! id triggers at most one fetch per [`PER_KID`], and all of them together at most
//! [`MAX_PER_WINDOW`] per [`WINDOW`], so neither a broken OP nor a flood of forged tokens makes
//! profilegate hammer the OP.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Least time between two fetches for the same key id.
pub const PER_KID: Duration = Duration::from_secs(60);
/// The window of the global ceiling.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Most fetches for unknown key ids within [`WINDOW`].
pub const MAX_PER_WINDOW: usize = 10;
/// Most key ids remembered (older ones are forgotten first; each costs one fetch at most).
const MAX_KIDS: usize = 1_000;

/// Why a fetch is not made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the key set was fetched for this key id less than a minute ago")]
    KidRecently,
    #[error("{MAX_PER_WINDOW} key-set fetches for unknown key ids in the last minute")]
    Ceiling,
}

/// The record of recent fetches for unknown key ids.
#[derive(Debug, Default)]
pub struct Refetches {
    by_kid: HashMap<String, Instant>,
    recent: VecDeque<Instant>,
}

impl Refetches {
    /// Records and allows a fetch for `kid` at `now`, or says why not. `""` stands for tokens
    /// without a key id.
    pub fn allow(&mut self, kid: &str, now: Instant) -> Result<(), Refused> {
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            self.recent.pop_front();
        }
        if self
            .by_kid
            .get(kid)
            .is_some_and(|t| now.saturating_duration_since(*t) < PER_KID)
        {
            return Err(Refused::KidRecently);
        }
        if self.recent.len() >= MAX_PER_WINDOW {
            return Err(Refused::Ceiling);
        }
        if self.by_kid.len() >= MAX_KIDS {
            self.by_kid
                .retain(|_, t| now.saturating_duration_since(*t) < PER_KID);
        }
        if self.by_kid.len() < MAX_KIDS {
            self.by_kid.insert(kid.to_owned(), now);
        }
        self.recent.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_kid_is_fetched_at_once_even_right_after_another_fetch() {
        let mut r = Refetches::default();
        let t = Instant::now();
        assert_eq!(r.allow("a", t), Ok(()));
        assert_eq!(r.allow("b", t), Ok(()), "another kid, same instant");
        assert_eq!(
            r.allow("a", t + Duration::from_secs(59)),
            Err(Refused::KidRecently)
        );
        assert_eq!(r.allow("a", t + PER_KID), Ok(()));
    }

    #[test]
    fn at_most_ten_fetches_a_minute_whatever_the_kids() {
        let mut r = Refetches::default();
        let t = Instant::now();
        for i in 0..MAX_PER_WINDOW {
            assert_eq!(r.allow(&format!("k{i}"), t), Ok(()));
        }
        assert_eq!(r.allow("one-more", t), Err(Refused::Ceiling));
        assert_eq!(
            r.allow("one-more", t + Duration::from_secs(30)),
            Err(Refused::Ceiling)
        );
        // A refused attempt is not counted: once the window has passed, it goes through.
        assert_eq!(r.allow("one-more", t + WINDOW), Ok(()));
    }

    #[test]
    fn tokens_without_a_kid_share_one_bound() {
        let mut r = Refetches::default();
        let t = Instant::now();
        assert_eq!(r.allow("", t), Ok(()));
        assert_eq!(
            r.allow("", t + Duration::from_secs(1)),
            Err(Refused::KidRecently)
        );
    }

    #[test]
    fn the_kid_record_stays_bounded() {
        let mut r = Refetches::default();
        let mut t = Instant::now();
        for i in 0..3 * MAX_KIDS {
            // Spaced so the global ceiling never refuses.
            t += WINDOW / MAX_PER_WINDOW as u32;
            assert_eq!(r.allow(&format!("k{i}"), t), Ok(()));
        }
        assert!(r.by_kid.len() <= MAX_KIDS);
    }
}
