//! One client's share of the request slots (`max_concurrent_requests_per_client`).
//!
//! `max_concurrent_requests` bounds the requests in progress; without a share, one token
//! could hold every slot, for instance with 66 bodies sent four bytes every three seconds,
//! and every other client would get 503 until the body timeout. Counted by the caller's
//! identity (`client:<id>`, `user:<id>`) once its token is checked, before its body is read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The slots each identity holds now.
#[derive(Default)]
pub(crate) struct ClientShares {
    held: Mutex<HashMap<String, usize>>,
}

/// One slot of one identity, given back when dropped.
pub(crate) struct ClientSlot {
    shares: Arc<ClientShares>,
    who: String,
}

impl ClientShares {
    /// A slot for `who`, unless it holds `max` already (`max` 0: no share).
    pub(crate) fn take(self: &Arc<Self>, who: &str, max: usize) -> Option<Option<ClientSlot>> {
        if max == 0 {
            return Some(None);
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(who.to_string()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Some(ClientSlot { shares: self.clone(), who: who.to_string() }))
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self.shares.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.who) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.who);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_its_share_and_gives_it_back() {
        let shares = Arc::new(ClientShares::default());
        let a1 = shares.take("client:a", 2).unwrap();
        let a2 = shares.take("client:a", 2).unwrap();
        assert!(shares.take("client:a", 2).is_none(), "a third slot of a");
        assert!(shares.take("client:b", 2).unwrap().is_some(), "b has its own share");
        drop(a1);
        assert!(shares.take("client:a", 2).is_some(), "a slot came back");
        drop(a2);
        assert!(shares.take("client:x", 0).unwrap().is_none(), "0: no share counted");
    }
}
