//! `--max-concurrent-provisions`: a global cap on hosts booting the agent at once (provisioning
//! or cleaning), across all BMCs.
//!
//! A host takes a slot just before its attempt is written and gives it back once the attempt's
//! outcome is written. Hosts this process has not decided about yet (after a restart, hosts
//! already mid-attempt) count from the shared PhysicalHost cache, so a restart never lets more
//! hosts boot than the cap. A host that finds no free slot waits (its `Provisioned` condition
//! says so) and is woken when a slot frees, not by polling.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use futures::channel::mpsc;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::physical_host::{AttemptMode, HostState, PhysicalHost, PhysicalHostStatus};

/// Whether a host's status says it is booting the agent (it holds a slot).
pub fn is_booting(status: &PhysicalHostStatus) -> bool {
    let attempt = status.attempt.as_ref();
    let failed = |id: &Option<String>| {
        status
            .last_failure
            .as_ref()
            .is_some_and(|f| f.attempt_id.is_some() && f.attempt_id == *id)
    };
    match status.state {
        Some(HostState::Inspecting | HostState::Deploying) => true,
        Some(HostState::Deprovisioning) => attempt.is_some_and(|a| {
            a.mode == Some(AttemptMode::Clean)
                && !(a.records_are_current() && a.cleaned_at.is_some())
                && !failed(&a.id)
        }),
        _ => false,
    }
}

#[derive(Default)]
struct Inner {
    /// Hosts this process gave a slot to.
    holders: HashSet<String>,
    /// Hosts this process decided about (holding or released): the cache does not count for
    /// them, since it may lag behind this process's own writes.
    known: HashSet<String>,
    /// Hosts waiting for a slot, woken when one frees.
    waiting: HashSet<ObjectRef<PhysicalHost>>,
}

pub struct ProvisionSlots {
    cap: usize,
    inner: Mutex<Inner>,
    store: OnceLock<Store<PhysicalHost>>,
    wake_tx: mpsc::UnboundedSender<ObjectRef<PhysicalHost>>,
    wake_rx: Mutex<Option<mpsc::UnboundedReceiver<ObjectRef<PhysicalHost>>>>,
}

impl ProvisionSlots {
    pub fn new(cap: u32) -> Self {
        let (wake_tx, wake_rx) = mpsc::unbounded();
        Self {
            cap: cap.max(1) as usize,
            inner: Mutex::new(Inner::default()),
            store: OnceLock::new(),
            wake_tx,
            wake_rx: Mutex::new(Some(wake_rx)),
        }
    }

    /// The host cache that counts hosts this process has not decided about.
    pub fn use_store(&self, store: Store<PhysicalHost>) {
        let _ = self.store.set(store);
    }

    /// The stream of hosts to reconcile because a slot freed (taken once, by the controller).
    pub fn take_wakeups(&self) -> Option<mpsc::UnboundedReceiver<ObjectRef<PhysicalHost>>> {
        self.wake_rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Gives `host` a slot if it holds one or one is free; otherwise it waits.
    pub fn try_acquire(&self, key: &str, host: ObjectRef<PhysicalHost>) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.holders.contains(key) {
            return true;
        }
        let cached = self
            .store
            .get()
            .map(|s| {
                s.state()
                    .iter()
                    .filter(|h| h.status.as_ref().is_some_and(is_booting))
                    .map(|h| super::reconcile::object_key(h))
                    .filter(|k| !inner.known.contains(k) && k != key)
                    .count()
            })
            .unwrap_or(0);
        if inner.holders.len() + cached < self.cap {
            inner.holders.insert(key.to_owned());
            inner.known.insert(key.to_owned());
            inner.waiting.remove(&host);
            true
        } else {
            inner.waiting.insert(host);
            false
        }
    }

    /// Takes note that `host` is booting (its status says so), whatever the cap: a host found
    /// mid-attempt keeps going.
    pub fn hold(&self, key: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.holders.insert(key.to_owned());
        inner.known.insert(key.to_owned());
    }

    /// Gives `key`'s slot back (if it held one) and wakes every waiting host.
    pub fn release(&self, key: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.known.insert(key.to_owned());
        if !inner.holders.remove(key) {
            return;
        }
        for host in std::mem::take(&mut inner.waiting) {
            let _ = self.wake_tx.unbounded_send(host);
        }
    }

    /// Forgets a deleted host.
    pub fn forget(&self, key: &str, host: &ObjectRef<PhysicalHost>) {
        self.release(key);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.known.remove(key);
        inner.waiting.remove(host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str) -> ObjectRef<PhysicalHost> {
        ObjectRef::new(name).within("ns")
    }

    #[test]
    fn the_cap_holds_and_a_release_wakes_the_waiters() {
        let slots = ProvisionSlots::new(2);
        let mut wake = slots.take_wakeups().unwrap();
        assert!(slots.try_acquire("ns/a", r("a")));
        assert!(slots.try_acquire("ns/b", r("b")));
        assert!(slots.try_acquire("ns/a", r("a")), "a holder keeps its slot");
        assert!(!slots.try_acquire("ns/c", r("c")));
        assert!(!slots.try_acquire("ns/d", r("d")));
        assert!(wake.try_recv().is_err());
        slots.release("ns/a");
        let woken: HashSet<_> = [wake.try_recv().unwrap(), wake.try_recv().unwrap()].into();
        assert_eq!(woken, [r("c"), r("d")].into());
        assert!(slots.try_acquire("ns/c", r("c")));
        assert!(!slots.try_acquire("ns/d", r("d")));
        slots.release("ns/x");
        assert!(
            wake.try_recv().is_err(),
            "releasing a non-holder wakes nobody"
        );
    }
}
