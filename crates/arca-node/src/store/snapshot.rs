//! Snapshots: the state machine's encoding, its rows, and the builder.

use super::*;

/// The snapshot as stored and sent: the whole state machine.
#[derive(Serialize, Deserialize)]
pub(super) struct SnapshotData {
    state: State,
    /// `State::root_keys`, after the state: a snapshot of a release before
    /// root-key rotation ends with the state (see [`SnapshotData::decode`]).
    root_keys: arca_state::RootKeys,
}

impl SnapshotData {
    /// Decodes a snapshot, of this release or of one before root-key
    /// rotation (whose state is everything: its root keys are the default).
    pub(super) fn decode(bytes: &[u8]) -> Result<State, postcard::Error> {
        let (mut state, rest): (State, _) = postcard::take_from_bytes(bytes)?;
        if !rest.is_empty() {
            state.root_keys = postcard::from_bytes(rest)?;
        }
        Ok(state)
    }
}

/// The whole state machine as a snapshot holds it (backups too): the
/// state, then its root keys.
pub fn encode_state(state: &State) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(&(state, &state.root_keys))
}

/// Reads what [`encode_state`] wrote (or a state without root keys, written
/// before root-key rotation).
pub fn decode_state(bytes: &[u8]) -> Result<State, postcard::Error> {
    SnapshotData::decode(bytes)
}

/// The state machine as the file holds it — the last committed apply —
/// encoded exactly as [`encode_state`] encodes the same state in memory,
/// with the applied log id and membership of that apply.
///
/// A snapshot is built from here, not from memory: a redb read transaction
/// is a consistent view without holding the shared state's lock (cloning a
/// state of a million keys under it held every request back for about a
/// second) and without a second copy of the state. Each row is decoded and
/// encoded again, so the snapshot is in this release's layout whatever
/// release wrote the row. postcard writes a struct as its fields in order,
/// a map as its length and then its pairs, so the state's encoding is the
/// concatenation of its parts.
pub fn encode_from_file(
    db: &Database,
) -> Result<(Vec<u8>, Option<LogId>, StoredMembership), StorageError> {
    let txn = db.begin_read().map_err(r)?;
    let meta = match txn.open_table(SM_META) {
        Ok(t) => Some(t),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(r(e)),
    };
    let get = |name: &str| -> Result<Option<Vec<u8>>, StorageError> {
        match &meta {
            Some(t) => Ok(t.get(name).map_err(r)?.map(|v| v.value().to_vec())),
            None => Ok(None),
        }
    };
    fn field<T: Serialize + for<'de> Deserialize<'de> + Default>(
        row: Option<Vec<u8>>,
    ) -> Result<T, StorageError> {
        row.map_or_else(|| Ok(T::default()), |b| dec(&b))
    }
    let last_applied: Option<LogId> = field(get(APPLIED)?)?;
    let membership: StoredMembership = field(get(MEMBERSHIP)?)?;
    let cluster: Option<ClusterInfo> = field(get(CLUSTER)?)?;
    let newest_ms: u64 = field(get(DEDUP_CLOCK)?)?;
    let usage_since: Option<u64> = field(get(USAGE_SINCE)?)?;
    let root_keys: arca_state::RootKeys = field(get(ROOT_KEYS)?)?;

    let mut out = Vec::new();
    out.extend_from_slice(&enc(&cluster)?);
    rows::<&[u8], KeyRecord>(&txn, SM_KEYS, &mut out, |k, _| {
        enc(&arca_state::KeyId::from_bytes(id16(k)?))
    })?;
    rows::<&str, AccessKeyRecord>(&txn, SM_ACCESS_KEYS, &mut out, |k, _| enc(&k))?;
    rows::<&str, UserRecord>(&txn, SM_USERS, &mut out, |k, _| enc(&k))?;
    rows::<&str, GrantRow>(&txn, SM_GRANTS, &mut out, |k, _| enc(&k))?;
    rows::<&str, AliasRecord>(&txn, SM_ALIASES, &mut out, |k, _| enc(&k))?;
    // Dedup: its entries, then `by_seq` (seq → id, as `Dedup::restore`
    // derives it), then its clock.
    let mut by_seq = std::collections::BTreeMap::new();
    rows::<&[u8], DedupEntry>(&txn, SM_DEDUP, &mut out, |k, e| {
        let id = id16(k)?;
        by_seq.insert(e.seq, id);
        enc(&id)
    })?;
    out.extend_from_slice(&enc(&by_seq)?);
    out.extend_from_slice(&enc(&newest_ms)?);
    rows::<&[u8], arca_state::KeyLastUsage>(&txn, SM_KEY_USAGE, &mut out, |k, _| {
        enc(&arca_state::KeyId::from_bytes(id16(k)?))
    })?;
    out.extend_from_slice(&enc(&usage_since)?);
    // After the state, as `encode_state` writes them.
    out.extend_from_slice(&enc(&root_keys)?);
    Ok((out, last_applied, membership))
}

/// A 16-byte id from a table's key.
fn id16(k: &[u8]) -> Result<[u8; 16], StorageError> {
    k.try_into()
        .map_err(|_| r(std::io::Error::other("a 16-byte id of the wrong length")))
}

/// Appends table `def` as a postcard map: its length, then each key as
/// `key` encodes it (given the row's decoded value too) and each value
/// decoded as `V` and encoded again.
fn rows<K: redb::Key + 'static, V: Serialize + for<'de> Deserialize<'de>>(
    txn: &redb::ReadTransaction,
    def: TableDefinition<K, &'static [u8]>,
    out: &mut Vec<u8>,
    mut key: impl for<'a> FnMut(K::SelfType<'a>, &V) -> Result<Vec<u8>, StorageError>,
) -> Result<(), StorageError> {
    let t = match txn.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            out.extend_from_slice(&enc(&0usize)?);
            return Ok(());
        }
        Err(e) => return Err(r(e)),
    };
    let len = usize::try_from(redb::ReadableTableMetadata::len(&t).map_err(r)?).map_err(r)?;
    out.extend_from_slice(&enc(&len)?);
    for item in t.iter().map_err(r)? {
        let (k, v) = item.map_err(r)?;
        let value: V = dec(v.value())?;
        out.extend_from_slice(&key(k.value(), &value)?);
        out.extend_from_slice(&enc(&value)?);
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
pub(super) struct StoredSnapshot {
    pub(super) meta: SnapshotMeta,
    pub(super) data: Vec<u8>,
}

/// What a [`StoredSnapshot`]'s encoding holds before its data: the meta
/// and the data's length. The data follows as it is, so a snapshot is
/// written into the file's row without first being copied next to its meta.
pub(super) fn stored_snapshot_head(
    meta: &SnapshotMeta,
    data_len: usize,
) -> Result<Vec<u8>, StorageError> {
    let mut head = enc(meta)?;
    head.extend_from_slice(&enc(&data_len)?);
    Ok(head)
}

/// Every row of a state machine, encoded.
pub(super) struct StateRows {
    meta: Vec<(&'static str, Vec<u8>)>,
    keys: Vec<(Vec<u8>, Vec<u8>)>,
    access_keys: Vec<(String, Vec<u8>)>,
    users: Vec<(String, Vec<u8>)>,
    grants: Vec<(String, Vec<u8>)>,
    aliases: Vec<(String, Vec<u8>)>,
    dedup: Vec<([u8; 16], Vec<u8>)>,
    key_usage: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(super) fn state_rows(a: &Applied) -> Result<StateRows, StorageError> {
    Ok(StateRows {
        meta: vec![
            (APPLIED, enc(&a.last_applied)?),
            (MEMBERSHIP, enc(&a.membership)?),
            (CLUSTER, enc(&a.state.cluster)?),
            (ROOT_KEYS, enc(&a.state.root_keys)?),
            (DEDUP_CLOCK, enc(&a.state.dedup.newest_ms)?),
            (USAGE_SINCE, enc(&a.state.usage_since_ms)?),
        ],
        keys: a
            .state
            .keys
            .iter()
            .map(|(id, k)| Ok((id.as_bytes().to_vec(), enc(k)?)))
            .collect::<Result<_, StorageError>>()?,
        access_keys: a
            .state
            .access_keys
            .iter()
            .map(|(id, k)| Ok((id.clone(), enc(k)?)))
            .collect::<Result<_, StorageError>>()?,
        users: a
            .state
            .users
            .iter()
            .map(|(n, u)| Ok((n.clone(), enc(u)?)))
            .collect::<Result<_, StorageError>>()?,
        grants: a
            .state
            .grants
            .iter()
            .map(|(id, g)| Ok((id.clone(), enc(g)?)))
            .collect::<Result<_, StorageError>>()?,
        aliases: a
            .state
            .aliases
            .iter()
            .map(|(n, al)| Ok((n.clone(), enc(al)?)))
            .collect::<Result<_, StorageError>>()?,
        dedup: a
            .state
            .dedup
            .entries
            .iter()
            .map(|(id, row)| Ok((*id, enc(row)?)))
            .collect::<Result<_, StorageError>>()?,
        key_usage: a
            .state
            .key_usage
            .iter()
            .map(|(id, u)| Ok((id.as_bytes().to_vec(), enc(u)?)))
            .collect::<Result<_, StorageError>>()?,
    })
}

pub(super) fn write_state_rows(
    txn: &redb::WriteTransaction,
    rows: &StateRows,
) -> Result<(), StorageError> {
    let mut m = txn.open_table(SM_META).map_err(w)?;
    for (name, b) in &rows.meta {
        m.insert(*name, b.as_slice()).map_err(w)?;
    }
    let mut k = txn.open_table(SM_KEYS).map_err(w)?;
    for (id, b) in &rows.keys {
        k.insert(id.as_slice(), b.as_slice()).map_err(w)?;
    }
    let mut a = txn.open_table(SM_ACCESS_KEYS).map_err(w)?;
    for (id, b) in &rows.access_keys {
        a.insert(id.as_str(), b.as_slice()).map_err(w)?;
    }
    let mut u = txn.open_table(SM_USERS).map_err(w)?;
    for (n, b) in &rows.users {
        u.insert(n.as_str(), b.as_slice()).map_err(w)?;
    }
    let mut g = txn.open_table(SM_GRANTS).map_err(w)?;
    for (id, b) in &rows.grants {
        g.insert(id.as_str(), b.as_slice()).map_err(w)?;
    }
    let mut al = txn.open_table(SM_ALIASES).map_err(w)?;
    for (n, b) in &rows.aliases {
        al.insert(n.as_str(), b.as_slice()).map_err(w)?;
    }
    let mut d = txn.open_table(SM_DEDUP).map_err(w)?;
    for (id, b) in &rows.dedup {
        d.insert(id.as_slice(), b.as_slice()).map_err(w)?;
    }
    let mut u = txn.open_table(SM_KEY_USAGE).map_err(w)?;
    for (id, b) in &rows.key_usage {
        u.insert(id.as_slice(), b.as_slice()).map_err(w)?;
    }
    Ok(())
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        // From the file, not from memory: no lock, no copy of the state.
        let started = std::time::Instant::now();
        let db = self.db.clone();
        let (data, last_applied, membership) =
            blocking(move || encode_from_file(&db.get())).await?;
        let encoded = started.elapsed();
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, data.len()),
            None => format!("0-0-{}", data.len()),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let head = stored_snapshot_head(&meta, data.len())?;
        let size = (data.len() as u64).to_be_bytes();
        let db = self.db.clone();
        let data = blocking(move || {
            db.durable(|g| {
                let txn = g.begin_write().map_err(w)?;
                {
                    let mut m = txn.open_table(META).map_err(w)?;
                    let mut row = m
                        .insert_reserve(SNAPSHOT, head.len() + data.len())
                        .map_err(w)?;
                    let (h, d) = row.as_mut().split_at_mut(head.len());
                    h.copy_from_slice(&head);
                    d.copy_from_slice(&data);
                    drop(row);
                    m.insert(SNAPSHOT_BYTES, size.as_slice()).map_err(w)?;
                }
                txn.commit().map_err(w)
            })?;
            Ok(data)
        })
        .await?;
        self.db.note_snapshot(data.len() as u64);
        crate::counters::Counters::bump(&self.counters.snapshots_built);
        tracing::info!(
            index = last_applied.map_or(0, |l| l.index),
            bytes = data.len(),
            encode_ms = encoded.as_millis() as u64,
            store_ms = (started.elapsed() - encoded).as_millis() as u64,
            "snapshot built"
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
