//! The signature nonces this node has accepted, so that a replayed request
//! is refused.
//!
//! A request is accepted only within [`MAX_SKEW_SECS`] of its own time, so a
//! nonce needs remembering only until its request's time plus that window:
//! after it, the timestamp check refuses the replay. The cache is per node
//! and bounded; see docs/api.md for why, and for the replay to another node.

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use super::sign::MAX_SKEW_SECS;

/// The most nonces remembered at once. When every entry is still within
/// its window, new requests are refused (a replay must never be let
/// through for want of room).
pub const CAPACITY: usize = 1_000_000;

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Seen before, within the window.
    Used,
    /// The cache is full of nonces still within their window.
    Full,
}

#[derive(Default)]
pub struct NonceCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    seen: HashSet<(String, String)>,
    /// (expiry, access key, nonce), oldest first.
    by_expiry: BTreeSet<(i64, String, String)>,
}

impl NonceCache {
    /// Records `nonce` of `access_key_id` for a request made at `time`
    /// (unix seconds), `now` being the server's time; refuses it if it was
    /// seen within the window.
    pub fn check(
        &self,
        access_key_id: &str,
        nonce: &str,
        time: i64,
        now: i64,
    ) -> Result<(), Refused> {
        self.check_with_capacity(access_key_id, nonce, time, now, CAPACITY)
    }

    fn check_with_capacity(
        &self,
        access_key_id: &str,
        nonce: &str,
        time: i64,
        now: i64,
        capacity: usize,
    ) -> Result<(), Refused> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Forget the nonces whose requests the timestamp check now refuses.
        while let Some(first) = g.by_expiry.first() {
            if first.0 >= now {
                break;
            }
            let (_, ak, n) = g.by_expiry.pop_first().expect("a first entry");
            g.seen.remove(&(ak, n));
        }
        let key = (access_key_id.to_owned(), nonce.to_owned());
        if g.seen.contains(&key) {
            return Err(Refused::Used);
        }
        if g.seen.len() >= capacity {
            return Err(Refused::Full);
        }
        let expiry = time + MAX_SKEW_SECS;
        g.by_expiry.insert((expiry, key.0.clone(), key.1.clone()));
        g.seen.insert(key);
        debug_assert_eq!(g.seen.len(), g.by_expiry.len());
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_once_per_access_key() {
        let c = NonceCache::default();
        c.check("AK1", "n", 1000, 1000).unwrap();
        assert_eq!(c.check("AK1", "n", 1000, 1001), Err(Refused::Used));
        // The same nonce from another access key is another request.
        c.check("AK2", "n", 1000, 1001).unwrap();
        c.check("AK1", "m", 1000, 1001).unwrap();
    }

    #[test]
    fn nonces_are_forgotten_once_their_time_is_out_of_the_window() {
        let c = NonceCache::default();
        c.check("AK", "n", 1000, 1000).unwrap();
        // Up to the end of the window it is remembered...
        assert_eq!(
            c.check("AK", "n", 1000, 1000 + MAX_SKEW_SECS),
            Err(Refused::Used)
        );
        // ...after it, only the timestamp check could refuse it, and does.
        c.check("AK", "other", 5000, 1001 + MAX_SKEW_SECS).unwrap();
        assert_eq!(c.len(), 1);
        assert!(super::super::sign::check_time(1000, 1001 + MAX_SKEW_SECS).is_err());
    }

    #[test]
    fn a_full_cache_refuses_rather_than_forgets() {
        let c = NonceCache::default();
        for i in 0..3 {
            c.check_with_capacity("AK", &i.to_string(), 1000, 1000, 3)
                .unwrap();
        }
        assert_eq!(
            c.check_with_capacity("AK", "x", 1000, 1000, 3),
            Err(Refused::Full)
        );
        assert_eq!(
            c.check_with_capacity("AK", "0", 1000, 1000, 3),
            Err(Refused::Used)
        );
        // Once the window has passed there is room again.
        c.check_with_capacity("AK", "x", 2000, 1001 + MAX_SKEW_SECS, 3)
            .unwrap();
    }
}
