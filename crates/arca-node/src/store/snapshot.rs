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
    let mut out = Vec::new();
    let (_, last_applied, membership) = encode_from_file_into(db, &mut out)?;
    Ok((out, last_applied, membership))
}

/// [`encode_from_file`] into `out` as the rows are read; returns the
/// number of bytes written.
pub fn encode_from_file_into(
    db: &Database,
    out: &mut impl std::io::Write,
) -> Result<(u64, Option<LogId>, StoredMembership), StorageError> {
    let mut out = Counted { out, bytes: 0 };
    let out = &mut out;
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

    out.put(&enc(&cluster)?)?;
    rows::<&[u8], KeyRecord, _>(&txn, SM_KEYS, out, |k, _| {
        enc(&arca_state::KeyId::from_bytes(id16(k)?))
    })?;
    rows::<&str, AccessKeyRecord, _>(&txn, SM_ACCESS_KEYS, out, |k, _| enc(&k))?;
    rows::<&str, UserRecord, _>(&txn, SM_USERS, out, |k, _| enc(&k))?;
    rows::<&str, GrantRow, _>(&txn, SM_GRANTS, out, |k, _| enc(&k))?;
    rows::<&str, AliasRecord, _>(&txn, SM_ALIASES, out, |k, _| enc(&k))?;
    // Dedup: its entries, then `by_seq` (seq → id, as `Dedup::restore`
    // derives it), then its clock.
    let mut by_seq = std::collections::BTreeMap::new();
    rows::<&[u8], DedupEntry, _>(&txn, SM_DEDUP, out, |k, e| {
        let id = id16(k)?;
        by_seq.insert(e.seq, id);
        enc(&id)
    })?;
    out.put(&enc(&by_seq)?)?;
    out.put(&enc(&newest_ms)?)?;
    rows::<&[u8], arca_state::KeyLastUsage, _>(&txn, SM_KEY_USAGE, out, |k, _| {
        enc(&arca_state::KeyId::from_bytes(id16(k)?))
    })?;
    out.put(&enc(&usage_since)?)?;
    // After the state, as `encode_state` writes them.
    out.put(&enc(&root_keys)?)?;
    Ok((out.bytes, last_applied, membership))
}

/// A writer that counts what it wrote.
struct Counted<'a, W> {
    out: &'a mut W,
    bytes: u64,
}

impl<W: std::io::Write> Counted<'_, W> {
    fn put(&mut self, b: &[u8]) -> Result<(), StorageError> {
        self.out.write_all(b).map_err(w)?;
        self.bytes += b.len() as u64;
        Ok(())
    }
}

/// A 16-byte id from a table's key.
fn id16(k: &[u8]) -> Result<[u8; 16], StorageError> {
    k.try_into()
        .map_err(|_| r(std::io::Error::other("a 16-byte id of the wrong length")))
}

/// Appends table `def` as a postcard map: its length, then each key as
/// `key` encodes it (given the row's decoded value too) and each value
/// decoded as `V` and encoded again.
fn rows<K: redb::Key + 'static, V: Serialize + for<'de> Deserialize<'de>, W: std::io::Write>(
    txn: &redb::ReadTransaction,
    def: TableDefinition<K, &'static [u8]>,
    out: &mut Counted<'_, W>,
    mut key: impl for<'a> FnMut(K::SelfType<'a>, &V) -> Result<Vec<u8>, StorageError>,
) -> Result<(), StorageError> {
    let t = match txn.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return out.put(&enc(&0usize)?),
        Err(e) => return Err(r(e)),
    };
    let len = usize::try_from(redb::ReadableTableMetadata::len(&t).map_err(r)?).map_err(r)?;
    out.put(&enc(&len)?)?;
    for item in t.iter().map_err(r)? {
        let (k, v) = item.map_err(r)?;
        let value: V = dec(v.value())?;
        out.put(&key(k.value(), &value)?)?;
        out.put(&enc(&value)?)?;
    }
    Ok(())
}

/// A snapshot as storage format 3 and before kept it: in the local meta
/// row `snapshot`, inside the database (`snapshot_file.rs` moves it out).
#[derive(Serialize, Deserialize)]
pub(super) struct StoredSnapshot {
    pub(super) meta: SnapshotMeta,
    pub(super) data: Vec<u8>,
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
        // From the database, not from memory (no lock, no copy of the
        // state), into the snapshot's own file (`snapshot_file.rs`).
        let started = std::time::Instant::now();
        let db = self.db.clone();
        let (row, encoded) = blocking(move || build_snapshot_file(&db)).await?;
        self.db.note_snapshot(row.len);
        crate::counters::Counters::bump(&self.counters.snapshots_built);
        tracing::info!(
            index = row.meta.last_log_id.map_or(0, |l| l.index),
            bytes = row.len,
            encode_ms = encoded.as_millis() as u64,
            store_ms = (started.elapsed().saturating_sub(encoded)).as_millis() as u64,
            "snapshot built"
        );
        let file = tokio::fs::File::open(self.db.snapshot_dir().join(&row.file))
            .await
            .map_err(r)?;
        Ok(Snapshot {
            meta: row.meta,
            snapshot: Box::new(file),
        })
    }
}
