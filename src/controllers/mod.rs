//! The reconcilers and what they share: the Kubernetes client, the manager's settings, the
//! metrics, the event recorder and the per-BMC operation locks.

pub mod cluster;
pub mod conditions;
pub mod machine;
pub mod physical_host;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::metrics::Metrics;
use crate::redfish::{Discovery, Policy};
use crate::tokens::TokenKey;

pub use physical_host::slots::ProvisionSlots;

/// The settings reconcilers read (from the manager's flags).
#[derive(Clone, Debug)]
pub struct Settings {
    /// A released host's power-off and override clear must finish within this, else the host
    /// goes to Error ("power state unknown").
    pub deprovision_timeout: Duration,
    /// How often an idle host's BMC is checked for drift (one cheap GET).
    pub resync_interval: Duration,
    /// First retry delay after a failure; doubles per consecutive failure.
    pub backoff_base: Duration,
    /// The longest retry delay.
    pub backoff_max: Duration,
    /// Timing of the Redfish client.
    pub redfish: Policy,
    /// From an attempt's start to the agent's hardware report.
    pub inspection_timeout: Duration,
    /// From the accepted report to `provisioned`.
    pub deployment_timeout: Duration,
    /// Hosts booting the agent at once (provisioning or cleaning), across all BMCs.
    pub max_concurrent_provisions: u32,
    /// The agent image of cleaning attempts that have none from their provisioning attempt.
    pub clean_image_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            deprovision_timeout: Duration::from_secs(600),
            resync_interval: Duration::from_secs(600),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            redfish: Policy::default(),
            inspection_timeout: Duration::from_secs(600),
            deployment_timeout: Duration::from_secs(1200),
            max_concurrent_provisions: 20,
            clean_image_url: None,
        }
    }
}

/// What every reconcile gets.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    bmc_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    failures: Mutex<HashMap<String, u32>>,
    /// What discovery learned per host connection (paths and auth hints, never credentials),
    /// so an idle check is one GET instead of a rediscovery.
    discoveries: Mutex<HashMap<String, Discovery>>,
    /// When each host's BMC last answered, and for which spec generation and Secret versions:
    /// a reconcile that only follows this controller's own status write (or a Secret event that
    /// changed nothing) then needs no BMC call before the next resync.
    checked: Mutex<HashMap<String, (Instant, String)>>,
    digest_keys: std::collections::hash_map::RandomState,
    /// The key attempt secrets are derived from (only their hashes are written).
    pub token_key: TokenKey,
    /// Who may boot the agent now (`--max-concurrent-provisions`).
    pub provisions: ProvisionSlots,
}

impl Context {
    pub fn new(
        client: Client,
        settings: Settings,
        metrics: Arc<Metrics>,
        token_key: TokenKey,
    ) -> Self {
        let reporter = Reporter {
            controller: "beskar7".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            provisions: ProvisionSlots::new(settings.max_concurrent_provisions),
            client,
            settings,
            metrics,
            bmc_locks: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            discoveries: Mutex::new(HashMap::new()),
            checked: Mutex::new(HashMap::new()),
            digest_keys: std::collections::hash_map::RandomState::new(),
            token_key,
        }
    }

    /// The lock that keeps at most one operation in flight per BMC (several hosts may name the
    /// same BMC address, e.g. a multi-system chassis, and BMCs handle concurrency badly).
    pub fn bmc_lock(&self, address: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.bmc_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(address.trim_end_matches('/').to_owned())
            .or_default()
            .clone()
    }

    /// Records one more consecutive failure of `key` and returns the delay before the next try:
    /// base × 2^(n-1), capped.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let n = failures.entry(key.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        backoff_delay(self.settings.backoff_base, self.settings.backoff_max, *n)
    }

    pub fn discovery(&self, key: &str) -> Option<Discovery> {
        self.discoveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    pub fn remember_discovery(&self, key: &str, d: Discovery) {
        self.discoveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), d);
    }

    pub fn forget_discovery(&self, key: &str) {
        self.discoveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// Forgets every discovery whose key starts with `prefix` (a deleted host's uid).
    pub fn forget_discoveries(&self, prefix: &str) {
        self.discoveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k, _| !k.starts_with(prefix));
    }

    /// A keyed hash of the Secrets' data (keys random per process, so it reveals nothing and
    /// is never stored outside memory): tells whether what the BMC sees changed, while a
    /// metadata-only change (an owner reference, an annotation) does not count.
    pub fn secrets_digest(&self, secrets: &[k8s_openapi::api::core::v1::Secret]) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = self.digest_keys.build_hasher();
        for s in secrets {
            s.metadata.name.hash(&mut h);
            for (k, v) in s.data.iter().flatten() {
                k.hash(&mut h);
                v.0.hash(&mut h);
            }
        }
        h.finish()
    }

    /// Records that `key`'s BMC answered now, for the inputs summed up in `fingerprint`.
    pub fn mark_checked(&self, key: &str, fingerprint: String) {
        self.checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), (Instant::now(), fingerprint));
    }

    /// How long ago `key`'s BMC answered for these same inputs, if it did.
    pub fn checked_ago(&self, key: &str, fingerprint: &str) -> Option<Duration> {
        self.checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .filter(|(_, f)| f == fingerprint)
            .map(|(at, _)| at.elapsed())
    }

    pub fn forget_checked(&self, key: &str) {
        self.checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// Forgets `key`'s failures after a success.
    pub fn reset_backoff(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// Sets `ready` once `store` has its first full list (a controller's cache is synced).
///
/// kube-runtime 5's store readiness is a oneshot behind a mutex that remembers only the last
/// poller's waker; the controller's own runner also waits on it, so a single
/// `wait_until_ready().await` may never be woken. Re-poll it instead.
pub fn mark_ready_when_synced<K>(
    store: kube::runtime::reflector::Store<K>,
    ready: Arc<std::sync::atomic::AtomicBool>,
    what: &'static str,
) where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Send + Sync,
{
    tokio::spawn(async move {
        loop {
            match tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()).await {
                Ok(Ok(())) => {
                    ready.store(true, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(kind = what, "cache synced");
                    return;
                }
                Ok(Err(_)) => return,
                Err(_) => continue,
            }
        }
    });
}

/// base × 2^(failures-1), capped at `max`.
pub fn backoff_delay(base: Duration, max: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    base.saturating_mul(1u32 << exp).min(max)
}

/// An Api over one namespace, or all of them.
pub fn scoped_api<K>(client: &Client, namespace: Option<&str>) -> kube::Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    }
}

/// The watch of a controller's own kind: `cluster.x-k8s.io/watch-filter=<value>` when the
/// manager runs with `--watch-filter` (the CAPI convention).
pub fn watch_config(watch_filter: Option<&str>) -> kube::runtime::watcher::Config {
    let config = kube::runtime::watcher::Config::default().any_semantic();
    match watch_filter {
        Some(v) => config.labels(&format!("{}={v}", physical_host::WATCH_FILTER_LABEL)),
        None => config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let s = Duration::from_secs;
        let d = |n| backoff_delay(s(10), s(300), n);
        assert_eq!(
            [d(1), d(2), d(3), d(5), d(6), d(40)],
            [s(10), s(20), s(40), s(160), s(300), s(300)]
        );
    }
}
