//! Rate limiting of *failed* `/boot` requests, keyed by (source address, host) (contract §1).
//! Successful requests are never limited: many servers may share one address behind NAT.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// How many failures a key may have within a window before its requests are refused unseen.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub max_failures: u32,
    pub window: Duration,
    /// Keys tracked at most; beyond, stale keys are dropped first, then new keys go untracked
    /// (the limiter protects the API server from floods, it never decides who is honest).
    pub max_keys: usize,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            max_failures: 10,
            window: Duration::from_secs(60),
            max_keys: 10_000,
        }
    }
}

type Key = (IpAddr, String);

/// Failure counts in fixed windows.
#[derive(Debug)]
pub struct FailureLimiter {
    limit: RateLimit,
    entries: Mutex<HashMap<Key, (jiff::Timestamp, u32)>>,
}

impl FailureLimiter {
    pub fn new(limit: RateLimit) -> Self {
        FailureLimiter {
            limit,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn expired(&self, start: jiff::Timestamp, now: jiff::Timestamp) -> bool {
        now.duration_since(start).unsigned_abs() >= self.limit.window
    }

    /// Whether requests for `host` from `addr` are refused now (too many recent failures).
    pub fn is_blocked(&self, addr: IpAddr, host: &str, now: jiff::Timestamp) -> bool {
        let entries = self.entries.lock().expect("limiter lock");
        entries
            .get(&(addr, host.to_owned()))
            .is_some_and(|(start, n)| *n >= self.limit.max_failures && !self.expired(*start, now))
    }

    /// Counts one failure.
    pub fn record_failure(&self, addr: IpAddr, host: &str, now: jiff::Timestamp) {
        let mut entries = self.entries.lock().expect("limiter lock");
        let key = (addr, host.to_owned());
        if !entries.contains_key(&key) && entries.len() >= self.limit.max_keys {
            entries.retain(|_, (start, _)| !self.expired(*start, now));
            if entries.len() >= self.limit.max_keys {
                return;
            }
        }
        let e = entries.entry(key).or_insert((now, 0));
        if self.expired(e.0, now) {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_until_the_window_ends() {
        let l = FailureLimiter::new(RateLimit {
            max_failures: 3,
            window: Duration::from_secs(60),
            max_keys: 2,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = jiff::Timestamp::from_second(1_000_000).unwrap();
        for _ in 0..3 {
            assert!(!l.is_blocked(a, "h", t0));
            l.record_failure(a, "h", t0);
        }
        assert!(l.is_blocked(a, "h", t0));
        assert!(!l.is_blocked(a, "other-host", t0));
        assert!(!l.is_blocked(b, "h", t0));
        let later = t0 + jiff::SignedDuration::from_secs(60);
        assert!(!l.is_blocked(a, "h", later));
    }
}
