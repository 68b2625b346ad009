//! When each key is next due for the leader's scheduler: a deletion whose
//! date has passed, an automatic rotation, imported material whose
//! `ValidTo` has passed. Derived from the keys like `grants_by_key` (not
//! stored; built by `State::rebuild_indexes` after loading, kept current by
//! `State::apply` for every key it touches), so that the scheduler reads
//! only what is due instead of every key: at a million keys, three scans
//! of every key on each tick held the state's lock — and so every apply —
//! for about 150 ms.

use std::collections::{BTreeMap, BTreeSet};

use crate::{KeyId, KeyRecord, KeyState};

/// What falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Due {
    /// `PendingDeletion` and its `deletion_ms` (`PurgeKey`).
    Deletion,
    /// `Enabled` with automatic rotation, at its `next_ms` (`RotateKey`).
    Rotation,
    /// Material imported with a `ValidTo` (`ExpireKeyMaterial`).
    Expiry,
}

/// A key's dates, one per [`Due`] at most.
type Dates = [Option<u64>; 3];

const KINDS: [Due; 3] = [Due::Deletion, Due::Rotation, Due::Expiry];

fn dates(k: &KeyRecord) -> Dates {
    [
        k.deletion_ms
            .filter(|_| k.state == KeyState::PendingDeletion),
        k.rotation
            .map(|r| r.next_ms)
            .filter(|_| k.state == KeyState::Enabled),
        k.import
            .as_ref()
            .and_then(|i| i.valid_to_ms)
            .filter(|_| k.has_material()),
    ]
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// (date, what, key), in date order.
    due: BTreeSet<(u64, Due, KeyId)>,
    /// The dates of every key that has one, to take them out when it changes.
    by_key: BTreeMap<KeyId, Dates>,
}

impl Schedule {
    /// The schedule of `keys`.
    pub fn build<'a>(keys: impl IntoIterator<Item = &'a KeyRecord>) -> Self {
        let mut s = Self::default();
        for k in keys {
            s.refresh(k.key_id, Some(k));
        }
        s
    }

    /// Takes `key` (`None`: removed) as it is now.
    pub fn refresh(&mut self, id: KeyId, key: Option<&KeyRecord>) {
        let new = key.map_or([None; 3], dates);
        let old = self.by_key.get(&id).copied().unwrap_or([None; 3]);
        if new == old {
            return;
        }
        for (kind, date) in KINDS.iter().zip(old) {
            if let Some(d) = date {
                self.due.remove(&(d, *kind, id));
            }
        }
        for (kind, date) in KINDS.iter().zip(new) {
            if let Some(d) = date {
                self.due.insert((d, *kind, id));
            }
        }
        if new == [None; 3] {
            self.by_key.remove(&id);
        } else {
            self.by_key.insert(id, new);
        }
    }

    /// The keys for which `kind` is due at `now_ms`, earliest first.
    pub fn due(&self, kind: Due, now_ms: u64) -> Vec<KeyId> {
        self.due
            .iter()
            .take_while(|(d, _, _)| *d <= now_ms)
            .filter(|(_, k, _)| *k == kind)
            .map(|(_, _, id)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ImportInfo, KeySpec, KeyUsage, KeyVersion, RotationSchedule};

    fn key(n: u8) -> KeyRecord {
        let version = KeyVersion {
            version: 1,
            version_id: KeyId::from_bytes([n; 16]).into(),
            public_key: None,
            wrapped: vec![1],
            created_ms: 0,
        };
        KeyRecord::new(
            KeyId::from_bytes([n; 16]),
            String::new(),
            KeyUsage::EncryptDecrypt,
            KeySpec::SymmetricDefault,
            version,
        )
    }

    #[test]
    fn a_key_is_due_for_what_its_state_allows() {
        let mut k = key(1);
        let id = k.key_id;
        let mut s = Schedule::default();
        s.refresh(id, Some(&k));
        assert_eq!(s, Schedule::default(), "no dates: not scheduled");

        k.rotation = Some(RotationSchedule {
            period_days: 90,
            next_ms: 100,
        });
        s.refresh(id, Some(&k));
        assert_eq!(s.due(Due::Rotation, 99), vec![]);
        assert_eq!(s.due(Due::Rotation, 100), vec![id]);
        assert_eq!(s.due(Due::Deletion, u64::MAX), vec![]);

        // Disabled: a rotation date is kept but not due.
        k.state = KeyState::Disabled;
        s.refresh(id, Some(&k));
        assert_eq!(s, Schedule::default());

        k.state = KeyState::PendingDeletion;
        k.deletion_ms = Some(50);
        s.refresh(id, Some(&k));
        assert_eq!(s.due(Due::Deletion, 50), vec![id]);
        assert_eq!(s.due(Due::Rotation, u64::MAX), vec![]);

        k.import = Some(ImportInfo {
            valid_to_ms: Some(70),
            ..ImportInfo::default()
        });
        s.refresh(id, Some(&k));
        assert_eq!(
            s.due(Due::Expiry, 70),
            vec![id],
            "material expires even pending deletion"
        );
        assert_eq!(s, Schedule::build([&k]));

        s.refresh(id, None);
        assert_eq!(
            s,
            Schedule::default(),
            "a removed key leaves nothing behind"
        );
    }

    #[test]
    fn due_keys_come_earliest_first_and_only_up_to_now() {
        let mut keys: Vec<KeyRecord> = (1..=5).map(key).collect();
        for (k, at) in keys.iter_mut().zip([500, 100, 300, 200, 400]) {
            k.state = KeyState::PendingDeletion;
            k.deletion_ms = Some(at);
        }
        let s = Schedule::build(&keys);
        let ids = |ns: &[u8]| {
            ns.iter()
                .map(|&n| KeyId::from_bytes([n; 16]))
                .collect::<Vec<_>>()
        };
        assert_eq!(s.due(Due::Deletion, 350), ids(&[2, 4, 3]));
        assert_eq!(s.due(Due::Deletion, 1_000), ids(&[2, 4, 3, 5, 1]));
    }
}
