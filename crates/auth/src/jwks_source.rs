//! Client key sets registered by URL: fetched when first needed, kept for five minutes,
//! and fetched again early (at most every 30 s) when an assertion names a key the kept set
//! lacks, so a client can rotate its keys without the operator. Fetching is HTTP, which
//! this crate does not speak: the server plugs in a [`JwksFetcher`].

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use serde_json::Value;

use crate::AuthError;

/// Gets a JWKS document from a URL.
pub trait JwksFetcher: Send + Sync {
    fn fetch(&self, url: &str) -> Result<Value, AuthError>;
}

const KEEP_SECS: u64 = 300;
const REFETCH_AFTER_SECS: u64 = 30;
/// Key sets kept at most (one per client registered by URL).
const MAX_KEPT: usize = 1024;

#[derive(Default)]
pub(crate) struct JwksCache {
    fetcher: OnceLock<Arc<dyn JwksFetcher>>,
    kept: Mutex<HashMap<String, (Value, u64)>>,
}

impl JwksCache {
    pub(crate) fn set_fetcher(&self, f: Arc<dyn JwksFetcher>) {
        let _ = self.fetcher.set(f);
    }

    /// The key set at `url`; `fresh`: the kept one lacked a key, so fetch again unless it
    /// was fetched very recently.
    pub(crate) fn get(&self, url: &str, now: u64, fresh: bool) -> Result<Value, AuthError> {
        if let Some((jwks, at)) = self.kept.lock().get(url) {
            let age = now.saturating_sub(*at);
            if age < KEEP_SECS && !(fresh && age >= REFETCH_AFTER_SECS) {
                return Ok(jwks.clone());
            }
        }
        let fetcher = self
            .fetcher
            .get()
            .ok_or_else(|| AuthError::InvalidClient("this server cannot fetch key sets by URL".into()))?;
        let jwks = fetcher.fetch(url)?;
        if !jwks.get("keys").is_some_and(Value::is_array) {
            return Err(AuthError::InvalidClient("the client's key set URL does not give a JWKS".into()));
        }
        let mut kept = self.kept.lock();
        if kept.len() >= MAX_KEPT {
            kept.retain(|_, (_, at)| now.saturating_sub(*at) < KEEP_SECS);
        }
        if kept.len() < MAX_KEPT {
            kept.insert(url.to_string(), (jwks.clone(), now));
        }
        Ok(jwks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize);

    impl JwksFetcher for Counting {
        fn fetch(&self, _url: &str) -> Result<Value, AuthError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Ok(serde_json::json!({ "keys": [{ "kid": format!("k{n}") }] }))
        }
    }

    #[test]
    fn key_sets_are_kept_and_fetched_again_when_old_or_missing_a_key() {
        let cache = JwksCache::default();
        assert!(cache.get("u", 0, false).is_err(), "no fetcher: refused");
        let counting = Arc::new(Counting(AtomicUsize::new(0)));
        cache.set_fetcher(counting.clone());
        let calls = || counting.0.load(Ordering::SeqCst);
        cache.get("u", 1000, false).unwrap();
        assert_eq!(calls(), 1);
        cache.get("u", 1010, false).unwrap();
        cache.get("u", 1010, true).unwrap();
        assert_eq!(calls(), 1, "kept, and too recent to fetch again");
        let again = cache.get("u", 1040, true).unwrap();
        assert_eq!(calls(), 2, "a missing key after 30 s fetches again");
        assert_eq!(again["keys"][0]["kid"], "k1");
        cache.get("u", 1040 + KEEP_SECS, false).unwrap();
        assert_eq!(calls(), 3, "expired after five minutes");
    }
}
