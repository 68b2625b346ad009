//! The applied state as the node's readers see it ([`SharedState`]).

use super::*;

/// The applied state, shared between the state machine (the writer) and the
/// node's readers (gateway, key actors).
pub struct SharedState {
    pub(super) inner: RwLock<Applied>,
    pub(super) applied_tx: watch::Sender<u64>,
    /// The highest log index known to be *settled*: the leader's write
    /// barrier passed for it, so no node serves state older than it (see
    /// `lease.rs`). A key changed at a later index is not shown until then.
    safe_tx: watch::Sender<u64>,
}

/// The state machine's in-memory copy.
#[derive(Default)]
pub struct Applied {
    pub state: State,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

impl SharedState {
    pub(super) fn new(applied: Applied) -> Arc<Self> {
        let idx = applied.last_applied.map(|l| l.index).unwrap_or(0);
        Arc::new(Self {
            inner: RwLock::new(applied),
            applied_tx: watch::Sender::new(idx),
            safe_tx: watch::Sender::new(0),
        })
    }

    /// Read access; hold it briefly and never across an `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, Applied> {
        // A poisoned lock means a writer panicked mid-update; the state machine
        // task is gone with it and Raft stops, so reading on is no worse.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The index of the last applied log entry.
    pub fn applied(&self) -> u64 {
        *self.applied_tx.borrow()
    }

    /// The index of the last applied log entry, as a watch.
    pub fn applied_index(&self) -> watch::Receiver<u64> {
        self.applied_tx.subscribe()
    }

    /// The highest log index known to be settled (never goes back).
    pub fn safe_index(&self) -> u64 {
        *self.safe_tx.borrow()
    }

    /// Learns that every entry up to `index` is settled.
    pub fn raise_safe(&self, index: u64) {
        self.safe_tx.send_if_modified(|s| {
            let raise = index > *s;
            if raise {
                *s = index;
            }
            raise
        });
    }

    /// The settled index, as a watch.
    pub fn safe_watch(&self) -> watch::Receiver<u64> {
        self.safe_tx.subscribe()
    }

    #[cfg(test)]
    pub(crate) fn insert_for_test(&self, k: KeyRecord) {
        self.raise_safe(k.revision);
        let mut a = self.inner.write().unwrap_or_else(|p| p.into_inner());
        a.state.keys.insert(k.key_id, k);
    }

    /// Marks `key` changed at `revision` without settling the change.
    #[cfg(test)]
    pub(crate) fn change_unsettled_for_test(&self, key: &arca_state::KeyId, revision: u64) {
        let mut a = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = a.state.keys.get_mut(key) {
            k.revision = revision;
        }
    }

    pub(super) fn replace(&self, applied: Applied) {
        let idx = applied.last_applied.map(|l| l.index).unwrap_or(0);
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = applied;
        self.applied_tx.send_replace(idx);
    }
}
