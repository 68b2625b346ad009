//! The state machine ([`StateMachineStore`]): loading, applying, installing
//! snapshots.

use super::*;

/// The state machine: an in-memory [`State`] mirrored in redb.
#[derive(Clone)]
pub struct StateMachineStore {
    pub(super) db: Arc<Db>,
    pub(super) shared: Arc<SharedState>,
    pub(super) counters: Arc<crate::counters::Counters>,
}

impl StateMachineStore {
    /// Loads the state machine from the database (empty on a new node).
    pub fn open(
        db: Arc<Db>,
        counters: Arc<crate::counters::Counters>,
    ) -> Result<Self, StorageError> {
        let applied = load_state(&db.get())?;
        Ok(Self {
            db,
            shared: SharedState::new(applied),
            counters,
        })
    }

    pub fn shared(&self) -> Arc<SharedState> {
        self.shared.clone()
    }
}

pub(super) fn load_state(db: &Database) -> Result<Applied, StorageError> {
    let txn = db.begin_read().map_err(r)?;
    let mut applied = Applied::default();
    match txn.open_table(SM_META) {
        Ok(t) => {
            if let Some(v) = t.get(APPLIED).map_err(r)? {
                applied.last_applied = dec(v.value())?;
            }
            if let Some(v) = t.get(MEMBERSHIP).map_err(r)? {
                applied.membership = dec(v.value())?;
            }
            if let Some(v) = t.get(CLUSTER).map_err(r)? {
                applied.state.cluster = dec(v.value())?;
            }
            if let Some(v) = t.get(USAGE_SINCE).map_err(r)? {
                applied.state.usage_since_ms = dec(v.value())?;
            }
            if let Some(v) = t.get(ROOT_KEYS).map_err(r)? {
                applied.state.root_keys = dec(v.value())?;
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(applied),
        Err(e) => return Err(r(e)),
    }
    // The large maps are collected, not filled entry by entry: built whole,
    // their nodes are full (`arca_state::compact`).
    if let Ok(t) = txn.open_table(SM_KEYS) {
        applied.state.keys = t
            .iter()
            .map_err(r)?
            .map(|item| {
                let (_, v) = item.map_err(r)?;
                let k: KeyRecord = dec(v.value())?;
                Ok((k.key_id, k))
            })
            .collect::<Result<_, StorageError>>()?;
    }
    if let Ok(t) = txn.open_table(SM_ACCESS_KEYS) {
        for item in t.iter().map_err(r)? {
            let (_, v) = item.map_err(r)?;
            let a: AccessKeyRecord = dec(v.value())?;
            applied.state.access_keys.insert(a.access_key_id.clone(), a);
        }
    }
    if let Ok(t) = txn.open_table(SM_USERS) {
        for item in t.iter().map_err(r)? {
            let (_, v) = item.map_err(r)?;
            let u: UserRecord = dec(v.value())?;
            applied.state.users.insert(u.name.clone(), u);
        }
    }
    if let Ok(t) = txn.open_table(SM_GRANTS) {
        for item in t.iter().map_err(r)? {
            let (k, v) = item.map_err(r)?;
            let g: GrantRow = dec(v.value())?;
            applied.state.grants.insert(k.value().to_string(), g);
        }
    }
    if let Ok(t) = txn.open_table(SM_ALIASES) {
        for item in t.iter().map_err(r)? {
            let (_, v) = item.map_err(r)?;
            let a: AliasRecord = dec(v.value())?;
            applied.state.aliases.insert(a.name.clone(), a);
        }
    }
    // Written by this version on: absent in older data directories.
    if let Ok(t) = txn.open_table(SM_KEY_USAGE) {
        applied.state.key_usage = t
            .iter()
            .map_err(r)?
            .map(|item| {
                let (k, v) = item.map_err(r)?;
                let id: [u8; 16] = k
                    .value()
                    .try_into()
                    .map_err(|_| r(std::io::Error::other("bad key id in sm_key_usage")))?;
                Ok((arca_state::KeyId::from_bytes(id), dec(v.value())?))
            })
            .collect::<Result<_, StorageError>>()?;
    }
    applied.state.rebuild_indexes();
    let newest_ms: u64 = match txn.open_table(SM_META) {
        Ok(t) => match t.get(DEDUP_CLOCK).map_err(r)? {
            Some(v) => dec(v.value())?,
            None => 0,
        },
        Err(_) => 0,
    };
    if let Ok(t) = txn.open_table(SM_DEDUP) {
        let mut rows = Vec::new();
        for item in t.iter().map_err(r)? {
            let (k, v) = item.map_err(r)?;
            let id: [u8; 16] = k
                .value()
                .try_into()
                .map_err(|_| r(std::io::Error::other("bad dedup id")))?;
            let e: DedupEntry = dec(v.value())?;
            rows.push((id, e));
        }
        applied.state.dedup = Dedup::restore(rows, newest_ms);
    }
    Ok(applied)
}

/// Rows to write for one applied batch.
#[derive(Default)]
pub(super) struct Changes {
    cluster: Option<Option<ClusterInfo>>,
    root_keys: Option<arca_state::RootKeys>,
    keys: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    access_keys: Vec<(String, Option<Vec<u8>>)>,
    users: Vec<(String, Option<Vec<u8>>)>,
    grants: Vec<(String, Option<Vec<u8>>)>,
    aliases: Vec<(String, Option<Vec<u8>>)>,
    dedup: Vec<([u8; 16], Option<Vec<u8>>)>,
    key_usage: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    usage_since: Option<Vec<u8>>,
    /// Log index of a key deletion in this batch.
    deleted_at: Option<u64>,
}

/// Applies `entries` to the shared state and commits what they changed in
/// one redb transaction, all or nothing.
///
/// Readers see the change once the state's write lock is released, which
/// is before the commit returns: every entry applied here is already in this
/// node's log, flushed, and committed by the cluster, so a crash before the
/// commit re-applies the same entries to the same state at the next start —
/// nothing seen can be lost. What must not happen is memory that holds a
/// change the file never will: if staging or the commit fails, the shared
/// state is loaded again from the file (the last committed apply) before the
/// error is returned, and Raft stops on the error.
pub(super) fn apply_entries(
    db: &Db,
    shared: &SharedState,
    entries: Vec<Entry>,
) -> Result<(Vec<arca_state::Outcome>, Option<LogId>), StorageError> {
    let staged = {
        let mut a = shared.inner.write().unwrap_or_else(|p| p.into_inner());
        match stage(&mut a, entries) {
            Ok(staged) => staged,
            Err(e) => {
                roll_back(db, &mut a);
                return Err(e);
            }
        }
    };
    let (outcomes, last_applied, rows) = staged;
    if let Some(i) = rows.changes.deleted_at {
        db.note_deletion(i);
    }
    let shred_row = db.shred_after.load(Ordering::SeqCst).to_be_bytes();
    if let Err(e) = db.durable(|g| commit(g, &rows, &shred_row)) {
        roll_back(
            db,
            &mut shared.inner.write().unwrap_or_else(|p| p.into_inner()),
        );
        return Err(e);
    }
    Ok((outcomes, last_applied))
}

/// What one apply writes: the touched records and the state machine's meta.
pub(super) struct Rows {
    changes: Changes,
    applied: Vec<u8>,
    dedup_clock: Vec<u8>,
    membership: Vec<u8>,
    cluster: Option<Vec<u8>>,
    root_keys: Option<Vec<u8>>,
}

type Staged = (Vec<arca_state::Outcome>, Option<LogId>, Rows);

/// Applies `entries` to `a` and encodes every record they touched.
fn stage(a: &mut Applied, entries: Vec<Entry>) -> Result<Staged, StorageError> {
    let mut outcomes = Vec::with_capacity(entries.len());
    let mut changes = Changes::default();
    for entry in entries {
        a.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => outcomes.push(arca_state::Outcome::Applied),
            EntryPayload::Membership(m) => {
                a.membership = StoredMembership::new(Some(entry.log_id), m);
                outcomes.push(arca_state::Outcome::Applied);
            }
            EntryPayload::Normal(cmd) => {
                // Re-wrapping leaves the old wrapping in freed pages
                // and in the log: shredded like a deleted key's.
                let rewrap = cmd.command.rewraps();
                let (outcome, touched) = a.state.apply(entry.log_id.index, cmd);
                if rewrap && matches!(outcome, arca_state::Outcome::Applied) {
                    changes.deleted_at = Some(entry.log_id.index);
                }
                for t in touched {
                    record(a, &mut changes, entry.log_id.index, t)?;
                }
                outcomes.push(outcome);
            }
        }
    }
    let rows = Rows {
        applied: enc(&a.last_applied)?,
        dedup_clock: enc(&a.state.dedup.newest_ms)?,
        membership: enc(&a.membership)?,
        cluster: changes.cluster.as_ref().map(enc).transpose()?,
        root_keys: changes.root_keys.as_ref().map(enc).transpose()?,
        changes,
    };
    Ok((outcomes, a.last_applied, rows))
}

/// Encodes the record `t` names as `a` now holds it (`None`: removed).
fn record(a: &Applied, changes: &mut Changes, index: u64, t: Touched) -> Result<(), StorageError> {
    match t {
        Touched::Cluster => changes.cluster = Some(a.state.cluster.clone()),
        Touched::Key(id) => {
            let row = a.state.keys.get(&id).map(enc).transpose()?;
            if row.is_none() {
                changes.deleted_at = Some(index);
            }
            changes.keys.push((id.as_bytes().to_vec(), row));
        }
        Touched::AccessKey(id) => {
            let row = a.state.access_keys.get(&id).map(enc).transpose()?;
            changes.access_keys.push((id, row));
        }
        Touched::User(name) => {
            let row = a.state.users.get(&name).map(enc).transpose()?;
            changes.users.push((name, row));
        }
        Touched::Grant(id) => {
            let row = a.state.grants.get(&id).map(enc).transpose()?;
            changes.grants.push((id, row));
        }
        Touched::Alias(name) => {
            let row = a.state.aliases.get(&name).map(enc).transpose()?;
            changes.aliases.push((name, row));
        }
        Touched::DedupAdded(id) => {
            let row = a.state.dedup.entries.get(&id).map(enc).transpose()?;
            changes.dedup.push((id, row));
        }
        Touched::DedupEvicted(id) => changes.dedup.push((id, None)),
        Touched::KeyUsage(id) => {
            let row = a.state.key_usage.get(&id).map(enc).transpose()?;
            changes.key_usage.push((id.as_bytes().to_vec(), row));
        }
        Touched::UsageSince => changes.usage_since = Some(enc(&a.state.usage_since_ms)?),
        Touched::RootKeys => changes.root_keys = Some(a.state.root_keys.clone()),
    }
    Ok(())
}

/// Puts back in `a` what the file holds: the state as of the last
/// committed apply. If even that read fails, `a` stays as it is; Raft stops
/// on the apply's error either way, and a restart loads the file.
fn roll_back(db: &Db, a: &mut Applied) {
    match load_state(&db.get()) {
        Ok(committed) => *a = committed,
        Err(e) => tracing::error!(
            error = %e,
            "an apply failed and the state could not be read back from the file: restart the node"
        ),
    }
}

/// Writes one apply's rows in one transaction.
fn commit(g: &Database, rows: &Rows, shred_row: &[u8]) -> Result<(), StorageError> {
    #[cfg(test)]
    if FAIL_COMMIT.with(|f| f.get()) {
        return Err(w(std::io::Error::other("a commit failed (test)")));
    }
    let changes = &rows.changes;
    let txn = g.begin_write().map_err(w)?;
    if changes.deleted_at.is_some() {
        let mut meta = txn.open_table(META).map_err(w)?;
        meta.insert(SHRED_AFTER, shred_row).map_err(w)?;
    }
    {
        let mut m = txn.open_table(SM_META).map_err(w)?;
        m.insert(APPLIED, rows.applied.as_slice()).map_err(w)?;
        m.insert(MEMBERSHIP, rows.membership.as_slice())
            .map_err(w)?;
        m.insert(DEDUP_CLOCK, rows.dedup_clock.as_slice())
            .map_err(w)?;
        if let Some(c) = &rows.cluster {
            m.insert(CLUSTER, c.as_slice()).map_err(w)?;
        }
        if let Some(u) = &changes.usage_since {
            m.insert(USAGE_SINCE, u.as_slice()).map_err(w)?;
        }
        if let Some(rk) = &rows.root_keys {
            m.insert(ROOT_KEYS, rk.as_slice()).map_err(w)?;
        }
        if !changes.key_usage.is_empty() {
            let mut t = txn.open_table(SM_KEY_USAGE).map_err(w)?;
            write_rows(&mut t, &changes.key_usage, |id| id.as_slice())?;
        }
        let mut k = txn.open_table(SM_KEYS).map_err(w)?;
        write_rows(&mut k, &changes.keys, |id| id.as_slice())?;
        let mut a = txn.open_table(SM_ACCESS_KEYS).map_err(w)?;
        write_rows(&mut a, &changes.access_keys, |id| id.as_str())?;
        let mut u = txn.open_table(SM_USERS).map_err(w)?;
        write_rows(&mut u, &changes.users, |name| name.as_str())?;
        let mut gr = txn.open_table(SM_GRANTS).map_err(w)?;
        write_rows(&mut gr, &changes.grants, |id| id.as_str())?;
        let mut al = txn.open_table(SM_ALIASES).map_err(w)?;
        write_rows(&mut al, &changes.aliases, |name| name.as_str())?;
        let mut d = txn.open_table(SM_DEDUP).map_err(w)?;
        write_rows(&mut d, &changes.dedup, |id| id.as_slice())?;
    }
    txn.commit().map_err(w)
}

/// Inserts each `Some` row and removes each `None` one.
fn write_rows<'k, K, I: 'k>(
    t: &mut redb::Table<'_, K, &'static [u8]>,
    rows: &'k [(I, Option<Vec<u8>>)],
    key: impl Fn(&'k I) -> K::SelfType<'k>,
) -> Result<(), StorageError>
where
    K: redb::Key + 'static,
{
    for (id, row) in rows {
        match row {
            Some(b) => t.insert(key(id), b.as_slice()).map_err(w)?,
            None => t.remove(key(id)).map_err(w)?,
        };
    }
    Ok(())
}

#[cfg(test)]
thread_local! {
    /// Makes the next commits on this thread fail, for the roll-back test.
    pub(super) static FAIL_COMMIT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let a = self.shared.read();
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<arca_state::Outcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let db = self.db.clone();
        let shared = self.shared.clone();
        let (outcomes, last_applied) =
            blocking(move || apply_entries(&db, &shared, entries)).await?;
        if let Some(l) = last_applied {
            self.shared.applied_tx.send_replace(l.index);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let db = self.db.clone();
        let file = blocking(move || begin_incoming(&db)).await?;
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let mut file = *snapshot;
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(w)?;
        let file = file.into_std().await;
        let bytes = blocking(move || read_incoming(file)).await?;
        let row = SnapshotFileRow {
            meta: meta.clone(),
            file: snapshot_file_name(meta.last_log_id),
            len: bytes.len() as u64,
        };
        let len = row.len;
        let mut state = SnapshotData::decode(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        drop(bytes);
        state.rebuild_indexes();
        let applied = Applied {
            state,
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        let rows = state_rows(&applied)?;
        // The replaced state may have held keys the snapshot no longer has:
        // rewrite the file once the log is purged past the snapshot.
        if let Some(l) = meta.last_log_id {
            self.db.note_deletion(l.index);
        }
        let shred_row = self.db.shred_after.load(Ordering::SeqCst).to_be_bytes();
        let row_bytes = enc(&row)?;
        let size_row = row.len.to_be_bytes();
        let db = self.db.clone();
        let kept = row.file.clone();
        blocking(move || {
            keep_incoming(&db, &row)?;
            db.durable(|g| {
                let txn = g.begin_write().map_err(w)?;
                // Replace the whole state machine: drop every table and write anew.
                txn.delete_table(SM_META).map_err(w)?;
                txn.delete_table(SM_KEYS).map_err(w)?;
                txn.delete_table(SM_ACCESS_KEYS).map_err(w)?;
                txn.delete_table(SM_USERS).map_err(w)?;
                txn.delete_table(SM_GRANTS).map_err(w)?;
                txn.delete_table(SM_ALIASES).map_err(w)?;
                txn.delete_table(SM_DEDUP).map_err(w)?;
                txn.delete_table(SM_KEY_USAGE).map_err(w)?;
                write_state_rows(&txn, &rows)?;
                {
                    let mut m = txn.open_table(META).map_err(w)?;
                    m.insert(SNAPSHOT_FILE, row_bytes.as_slice()).map_err(w)?;
                    m.insert(SNAPSHOT_BYTES, size_row.as_slice()).map_err(w)?;
                    m.insert(SHRED_AFTER, shred_row.as_slice()).map_err(w)?;
                    m.remove(SNAPSHOT).map_err(w)?;
                }
                txn.commit().map_err(w)
            })
        })
        .await?;
        remove_other_files(&self.db, Some(&kept), false);
        self.db.note_snapshot(len);
        self.shared.replace(applied);
        crate::counters::Counters::bump(&self.counters.snapshots_installed);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let Some(row) = current_snapshot_row(&self.db)? else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(self.db.snapshot_dir().join(&row.file))
            .await
            .map_err(|e| StorageIOError::read_snapshot(Some(row.meta.signature()), &e))?;
        Ok(Some(Snapshot {
            meta: row.meta,
            snapshot: Box::new(file),
        }))
    }
}
