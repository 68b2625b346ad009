//! Durable storage for Raft: the log and vote ([`LogStore`]) and the state
//! machine with its snapshots ([`StateMachineStore`]), both in one redb file.
//!
//! Durability contracts (openraft storage v2):
//! - `append` reports the entries flushed only after the redb commit returns
//!   (redb's default durability fsyncs on commit);
//! - `save_vote` returns after the vote is committed;
//! - the applied log id, the membership and every record an entry touched are
//!   committed in one transaction, so a restart neither skips nor repeats;
//! - `install_snapshot` replaces the whole state machine in one transaction.
//!
//! Everything stored here is either public metadata or wrapped under the root key.

// openraft's `StorageError` is large, and its traits require it as the error type.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use arca_state::{
    AccessKeyRecord, AliasRecord, ClusterInfo, Dedup, DedupEntry, GrantRow, KeyRecord, State,
    Touched, UserRecord,
};
use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    EntryPayload, LogState, OptionalSend, RaftLogReader, RaftSnapshotBuilder, StorageIOError,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig, Vote,
};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const SM_META: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_meta");
const SM_KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sm_keys");
const SM_ACCESS_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_access_keys");
const SM_USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_users");
const SM_GRANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_grants");
const SM_ALIASES: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_aliases");
const SM_DEDUP: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sm_dedup");
/// Key id → its last successful cryptographic use (GetKeyLastUsage).
const SM_KEY_USAGE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sm_key_usage");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";
const APPLIED: &str = "applied";
const MEMBERSHIP: &str = "membership";
const CLUSTER: &str = "cluster";
/// `State::root_keys`: the root key in use and a rotation in progress.
const ROOT_KEYS: &str = "root_keys";
/// The dedup table's clock (`Dedup::newest_ms`).
const DEDUP_CLOCK: &str = "dedup_clock";
/// `State::usage_since_ms`.
const USAGE_SINCE: &str = "usage_since";
const SNAPSHOT: &str = "snapshot";
/// The check value of the root key this data directory was written under.
pub const ROOT_CHECK: &str = "root_check";
/// The node id this data directory belongs to.
pub const NODE_ID: &str = "node_id";
/// The storage format the data directory is written in (local meta, u32 BE).
pub const FORMAT: &str = "format_version";

/// The storage format this release writes, and the newest it reads.
///
/// 1: releases before root-key ids (no version recorded; read as 1).
/// 2: wrapped secrets name their root key (wrap format `0x02`), and the state
///    holds the root keys' record (`sm_meta` `root_keys`); a release that
///    reads only 1 would not open secrets re-wrapped by a rotation.
pub const FORMAT_VERSION: u32 = 2;

/// The data directory was written in a format this release cannot read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the data directory {dir} is in storage format {found}, written by a newer release of arca; this release reads formats 1 to {FORMAT_VERSION}. Run the release that wrote it (or a newer one); see docs/upgrading.md")]
pub struct NewerFormat {
    pub dir: String,
    pub found: u32,
}

/// The data directory's storage format (1 if none is recorded: releases
/// before formats were recorded).
pub fn format_version(db: &Database) -> Result<u32, StorageError> {
    Ok(read_local_meta(db, FORMAT)?
        .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
        .map_or(1, u32::from_be_bytes))
}

/// Refuses a data directory of a newer format; records this release's
/// format in an older (or new) one. Call before reading anything else.
pub fn check_format(db: &Db, dir: &Path) -> Result<Result<(), NewerFormat>, StorageError> {
    let found = format_version(&db.get())?;
    if found > FORMAT_VERSION {
        return Ok(Err(NewerFormat {
            dir: dir.display().to_string(),
            found,
        }));
    }
    if found < FORMAT_VERSION || read_local_meta(&db.get(), FORMAT)?.is_none() {
        db.durable(|g| write_local_meta(g, FORMAT, &FORMAT_VERSION.to_be_bytes()))?;
    }
    Ok(Ok(()))
}

/// Records `version` as the storage format of the stopped node's data
/// directory `dir`. For tests of the refusal of newer formats.
pub fn set_format_version(dir: &Path, version: u32) -> Result<(), StorageError> {
    let db = Database::open(dir.join("arca.redb")).map_err(r)?;
    write_local_meta(&db, FORMAT, &version.to_be_bytes())
}

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, StorageError> {
    postcard::to_allocvec(v).map_err(|e| StorageIOError::write(&e).into())
}

fn dec<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, StorageError> {
    postcard::from_bytes(b).map_err(|e| StorageIOError::read(&e).into())
}

fn w<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::write(&e).into()
}

fn r<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageIOError::read(&e).into()
}

/// Every table, for [`Db::rewrite`].
const ALL_STR_TABLES: [TableDefinition<&str, &[u8]>; 6] = [
    META,
    SM_META,
    SM_ACCESS_KEYS,
    SM_USERS,
    SM_GRANTS,
    SM_ALIASES,
];
const ALL_BYTES_TABLES: [TableDefinition<&[u8], &[u8]>; 3] = [SM_KEYS, SM_DEDUP, SM_KEY_USAGE];

/// Log index of a key deletion not yet shredded from the file (local meta).
const SHRED_AFTER: &str = "shred_after";

/// The node's redb database. Every use holds a read guard for its whole
/// transaction, so [`Db::rewrite`] (under the write guard) can replace the
/// file without losing or splitting a transaction.
pub struct Db {
    path: PathBuf,
    inner: RwLock<Database>,
    /// Log index of the newest applied key deletion whose bytes may still be
    /// in freed pages of the file; 0 if none.
    shred_after: AtomicU64,
    /// A write is waiting for disk space (see [`Db::durable`]).
    disk_full: AtomicBool,
    /// The node is stopping: writes stop waiting for space.
    stopping: AtomicBool,
}

/// Whether a storage error means the disk is full — or that redb saw an I/O
/// error before, which is how a full disk shows on the next call — so that
/// waiting for space and trying again can succeed.
fn disk_full(e: &StorageError) -> bool {
    let m = e.to_string();
    m.contains("No space left on device")
        || m.contains("os error 28")
        || m.contains("Previous I/O error")
}

impl Db {
    pub fn get(&self) -> RwLockReadGuard<'_, Database> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a write, waiting out a full disk. On "no space" it closes and
    /// reopens the database (redb refuses every call after an I/O error until
    /// then; opening repairs the file, which needs space too), waits — 100 ms,
    /// doubling to 2 s — and tries again, until the write succeeds or the node
    /// stops. Nothing is acknowledged meanwhile, because Raft waits for the
    /// write; every other error is returned at once.
    /// Writes one local meta row, waiting for disk space like any write.
    pub fn write_meta(&self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        self.durable(|g| write_local_meta(g, name, value))
    }

    pub fn durable<T>(
        &self,
        f: impl Fn(&Database) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let res = f(&self.get());
            match res {
                Err(e) if disk_full(&e) && !self.stopping.load(Ordering::SeqCst) => {
                    if !self.disk_full.swap(true, Ordering::SeqCst) {
                        tracing::error!(
                            path = %self.path.display(),
                            error = %e,
                            "the disk holding the data directory is full: writes wait for space (free some, and this node continues by itself)"
                        );
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    self.reopen();
                }
                other => {
                    if other.is_ok() && self.disk_full.swap(false, Ordering::SeqCst) {
                        tracing::warn!("the disk has space again: writes continue");
                    }
                    return other;
                }
            }
        }
    }

    /// Whether a write is waiting for disk space.
    pub fn waiting_for_space(&self) -> bool {
        self.disk_full.load(Ordering::SeqCst)
    }

    /// Stops waiting for disk space (the node is shutting down).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Closes and reopens the database file, holding every reader off until
    /// a database on the file is in place again (never a stand-in).
    fn reopen(&self) {
        let mut g = self.inner.write().unwrap_or_else(|p| p.into_inner());
        // Release the file (and its lock) before opening it again.
        let placeholder =
            match Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()) {
                Ok(db) => db,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reopen the database yet");
                    return;
                }
            };
        drop(std::mem::replace(&mut *g, placeholder));
        let mut backoff = Duration::from_millis(100);
        loop {
            match Database::create(&self.path) {
                Ok(db) => {
                    *g = db;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reopen the database yet; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Notes that a key was deleted at `index`: once the log is purged past
    /// it, the file is rewritten so no freed page keeps the key's bytes.
    fn note_deletion(&self, index: u64) {
        self.shred_after.fetch_max(index, Ordering::SeqCst);
    }

    /// Copies every table into a new file and puts it in place of the old one.
    /// redb is copy-on-write: a deleted record stays in freed pages until they
    /// are reused; a fresh copy holds only live data.
    pub fn rewrite(&self) -> Result<(), StorageError> {
        let mut g = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let tmp = self.path.with_extension("redb.rewrite");
        let _ = std::fs::remove_file(&tmp);
        {
            // The copy takes the database's place: it is created 0600 too.
            ensure_private_file(&tmp).map_err(w)?;
            let new = Database::create(&tmp).map_err(w)?;
            let src = g.begin_read().map_err(r)?;
            let dst = new.begin_write().map_err(w)?;
            for def in ALL_STR_TABLES {
                if let Ok(t) = src.open_table(def) {
                    let mut out = dst.open_table(def).map_err(w)?;
                    for item in t.iter().map_err(r)? {
                        let (k, v) = item.map_err(r)?;
                        out.insert(k.value(), v.value()).map_err(w)?;
                    }
                }
            }
            for def in ALL_BYTES_TABLES {
                if let Ok(t) = src.open_table(def) {
                    let mut out = dst.open_table(def).map_err(w)?;
                    for item in t.iter().map_err(r)? {
                        let (k, v) = item.map_err(r)?;
                        out.insert(k.value(), v.value()).map_err(w)?;
                    }
                }
            }
            if let Ok(t) = src.open_table(LOG) {
                let mut out = dst.open_table(LOG).map_err(w)?;
                for item in t.iter().map_err(r)? {
                    let (k, v) = item.map_err(r)?;
                    out.insert(k.value(), v.value()).map_err(w)?;
                }
            }
            {
                let mut m = dst.open_table(META).map_err(w)?;
                m.remove(SHRED_AFTER).map_err(w)?;
            }
            dst.commit().map_err(w)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(w)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(w)?;
        }
        *g = Database::create(&self.path).map_err(w)?;
        Ok(())
    }
}

/// The mode of the data directory: its owner only.
pub const DATA_DIR_MODE: u32 = 0o700;
/// The mode of the database and every other file that holds node data.
pub const DATA_FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) with mode 0700, or tightens an
/// existing directory that group or others may enter to 0700, with a warning
/// that names it. The root key is what protects key material, but the
/// database also holds key metadata, policies and the Raft log, which are
/// nobody else's business.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DATA_DIR_MODE)
            .create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
            tracing::warn!(
                path = %dir.display(),
                was = format_args!("{mode:o}"),
                now = format_args!("{:o}", mode & 0o700),
                "the data directory was open to group or others; its mode is now owner-only"
            );
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    Ok(())
}

/// Creates `path` empty with mode 0600 if it is missing, or tightens an
/// existing file that group or others may access to 0600, with a warning.
/// Called before redb opens a database file, since redb creates files with
/// the process's default mode.
fn ensure_private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(DATA_FILE_MODE)
            .open(path)?;
        let mode = f.metadata()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            f.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
            tracing::warn!(
                path = %path.display(),
                was = format_args!("{mode:o}"),
                now = format_args!("{:o}", mode & 0o700),
                "a data file was open to group or others; its mode is now owner-only"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Opens (or creates) the node's database in `dir`; the directory is made
/// (or kept) 0700 and the file 0600.
pub fn open_database(dir: &Path) -> Result<Arc<Db>, redb::DatabaseError> {
    ensure_private_dir(dir)?;
    let path = dir.join("arca.redb");
    let _ = std::fs::remove_file(path.with_extension("redb.rewrite"));
    ensure_private_file(&path)?;
    let db = Database::create(&path)?;
    let shred = read_local_meta(&db, SHRED_AFTER)
        .ok()
        .flatten()
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    Ok(Arc::new(Db {
        path,
        inner: RwLock::new(db),
        shred_after: AtomicU64::new(shred),
        disk_full: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
    }))
}

/// The term of the vote stored in `db` (0: none yet).
pub fn stored_vote_term(db: &Database) -> Result<u64, StorageError> {
    let vote: Option<Vote> = read_local_meta(db, VOTE)?.map(|b| dec(&b)).transpose()?;
    Ok(vote.map_or(0, |v| v.leader_id.term))
}

/// The id of the last entry in the log, or of the last purged one if the
/// log is empty.
pub fn last_log_id(db: &Database) -> Result<Option<LogId>, StorageError> {
    let txn = db.begin_read().map_err(r)?;
    let last = match txn.open_table(LOG) {
        Ok(t) => match t.last().map_err(r)? {
            Some((_, v)) => Some(dec::<Entry>(v.value())?.log_id),
            None => None,
        },
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(r(e)),
    };
    match last {
        Some(id) => Ok(Some(id)),
        None => read_local_meta(db, LAST_PURGED)?
            .map(|b| dec(&b))
            .transpose(),
    }
}

/// Reads a value of the local `meta` table (not replicated).
pub fn read_local_meta(db: &Database, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
    let txn = db.begin_read().map_err(r)?;
    let table = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(r(e)),
    };
    Ok(table.get(name).map_err(r)?.map(|v| v.value().to_vec()))
}

/// Writes a value of the local `meta` table, durably.
pub fn write_local_meta(db: &Database, name: &str, value: &[u8]) -> Result<(), StorageError> {
    let txn = db.begin_write().map_err(w)?;
    {
        let mut t = txn.open_table(META).map_err(w)?;
        t.insert(name, value).map_err(w)?;
    }
    txn.commit().map_err(w)
}

/// Runs blocking storage work off the async worker threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageIOError::write(&e).into())
        .and_then(|x| x)
}

/// The Raft log and vote.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Db>,
}

impl LogStore {
    pub fn new(db: Arc<Db>) -> Self {
        Self { db }
    }

    fn get_meta<T: for<'de> Deserialize<'de>>(
        &self,
        name: &str,
    ) -> Result<Option<T>, StorageError> {
        read_local_meta(&self.db.get(), name)?
            .map(|b| dec(&b))
            .transpose()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let db = self.db.clone();
        let start = range.start_bound().cloned();
        let end = range.end_bound().cloned();
        blocking(move || {
            db.durable(|g| {
                let txn = g.begin_read().map_err(r)?;
                let table = match txn.open_table(LOG) {
                    Ok(t) => t,
                    Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                    Err(e) => return Err(r(e)),
                };
                let mut out = Vec::new();
                for item in table.range::<u64>((start, end)).map_err(r)? {
                    let (_, v) = item.map_err(r)?;
                    out.push(dec::<Entry>(v.value())?);
                }
                Ok(out)
            })
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        Ok(LogState {
            last_purged_log_id: self.get_meta(LAST_PURGED)?,
            last_log_id: last_log_id(&self.db.get())?,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let b = enc(vote)?;
        let db = self.db.clone();
        blocking(move || db.durable(|g| write_local_meta(g, VOTE, &b))).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.get_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let b = enc(&committed)?;
        let db = self.db.clone();
        blocking(move || db.durable(|g| write_local_meta(g, COMMITTED, &b))).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rows = Vec::new();
        for e in entries {
            rows.push((e.log_id.index, enc(&e)?));
        }
        let db = self.db.clone();
        let res = blocking(move || {
            db.durable(|g| {
                let txn = g.begin_write().map_err(w)?;
                {
                    let mut t = txn.open_table(LOG).map_err(w)?;
                    for (i, b) in &rows {
                        t.insert(*i, b.as_slice()).map_err(w)?;
                    }
                }
                // Commit fsyncs (redb's default durability): only then is it flushed.
                txn.commit().map_err(w)
            })
        })
        .await;
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let db = self.db.clone();
        blocking(move || {
            db.durable(|g| {
                let txn = g.begin_write().map_err(w)?;
                {
                    let mut t = txn.open_table(LOG).map_err(w)?;
                    t.retain_in(log_id.index.., |_, _| false).map_err(w)?;
                }
                txn.commit().map_err(w)
            })
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let b = enc(&log_id)?;
        let db = self.db.clone();
        let shred = self.db.shred_after.load(Ordering::SeqCst);
        if shred != 0 && shred <= log_id.index {
            // The purge below removes the last log entries that held a deleted
            // key; the current snapshot is newer than the deletion. Rewrite
            // the file so no freed page keeps the key's wrapped material.
            blocking(move || {
                db.durable(|g| purge_log(g, log_id.index, &b))?;
                db.rewrite()?;
                let _ =
                    db.shred_after
                        .compare_exchange(shred, 0, Ordering::SeqCst, Ordering::SeqCst);
                tracing::info!(
                    upto = log_id.index,
                    "data file rewritten after a key deletion"
                );
                Ok(())
            })
            .await?;
            return Ok(());
        }
        blocking(move || db.durable(|g| purge_log(g, log_id.index, &b))).await
    }
}

/// Removes log entries up to `upto` and records the last purged log id.
fn purge_log(db: &Database, upto: u64, last_purged: &[u8]) -> Result<(), StorageError> {
    let txn = db.begin_write().map_err(w)?;
    {
        let mut m = txn.open_table(META).map_err(w)?;
        m.insert(LAST_PURGED, last_purged).map_err(w)?;
        let mut t = txn.open_table(LOG).map_err(w)?;
        t.retain_in(..=upto, |_, _| false).map_err(w)?;
    }
    txn.commit().map_err(w)
}

/// The applied state, shared between the state machine (the writer) and the
/// node's readers (gateway, key actors).
pub struct SharedState {
    inner: RwLock<Applied>,
    applied_tx: watch::Sender<u64>,
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
    fn new(applied: Applied) -> Arc<Self> {
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

    fn replace(&self, applied: Applied) {
        let idx = applied.last_applied.map(|l| l.index).unwrap_or(0);
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = applied;
        self.applied_tx.send_replace(idx);
    }
}

/// The snapshot as stored and sent: the whole state machine.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    state: State,
    /// `State::root_keys`, after the state: a snapshot of a release before
    /// root-key rotation ends with the state (see [`SnapshotData::decode`]).
    root_keys: arca_state::RootKeys,
}

impl SnapshotData {
    /// Decodes a snapshot, of this release or of one before root-key
    /// rotation (whose state is everything: its root keys are the default).
    fn decode(bytes: &[u8]) -> Result<State, postcard::Error> {
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

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The state machine: an in-memory [`State`] mirrored in redb.
#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<Db>,
    shared: Arc<SharedState>,
    counters: Arc<crate::counters::Counters>,
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

fn load_state(db: &Database) -> Result<Applied, StorageError> {
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
    if let Ok(t) = txn.open_table(SM_KEYS) {
        for item in t.iter().map_err(r)? {
            let (_, v) = item.map_err(r)?;
            let k: KeyRecord = dec(v.value())?;
            applied.state.keys.insert(k.key_id, k);
        }
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
        for item in t.iter().map_err(r)? {
            let (k, v) = item.map_err(r)?;
            let id: [u8; 16] = k
                .value()
                .try_into()
                .map_err(|_| r(std::io::Error::other("bad key id in sm_key_usage")))?;
            applied
                .state
                .key_usage
                .insert(arca_state::KeyId::from_bytes(id), dec(v.value())?);
        }
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
struct Changes {
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
        let mut outcomes = Vec::new();
        let mut changes = Changes::default();
        let (last_applied, membership, dedup_clock) = {
            let mut a = self.shared.inner.write().unwrap_or_else(|p| p.into_inner());
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
                        let rewrap = matches!(
                            cmd.command,
                            arca_state::Command::RewrapMaterial { .. }
                                | arca_state::Command::FinishRootKeyRotation
                        );
                        let (outcome, touched) = a.state.apply(entry.log_id.index, cmd);
                        if rewrap && matches!(outcome, arca_state::Outcome::Applied) {
                            changes.deleted_at = Some(entry.log_id.index);
                        }
                        for t in touched {
                            match t {
                                Touched::Cluster => {
                                    changes.cluster = Some(a.state.cluster.clone());
                                }
                                Touched::Key(id) => {
                                    let row = a.state.keys.get(&id).map(enc).transpose()?;
                                    if row.is_none() {
                                        changes.deleted_at = Some(entry.log_id.index);
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
                                    let row =
                                        a.state.dedup.entries.get(&id).map(enc).transpose()?;
                                    changes.dedup.push((id, row));
                                }
                                Touched::DedupEvicted(id) => changes.dedup.push((id, None)),
                                Touched::KeyUsage(id) => {
                                    let row = a.state.key_usage.get(&id).map(enc).transpose()?;
                                    changes.key_usage.push((id.as_bytes().to_vec(), row));
                                }
                                Touched::UsageSince => {
                                    changes.usage_since = Some(enc(&a.state.usage_since_ms)?);
                                }
                                Touched::RootKeys => {
                                    changes.root_keys = Some(a.state.root_keys.clone());
                                }
                            }
                        }
                        outcomes.push(outcome);
                    }
                }
            }
            (
                a.last_applied,
                a.membership.clone(),
                a.state.dedup.newest_ms,
            )
        };
        let applied_row = enc(&last_applied)?;
        let dedup_clock_row = enc(&dedup_clock)?;
        let membership_row = enc(&membership)?;
        let cluster_row = changes.cluster.map(|c| enc(&c)).transpose()?;
        let root_keys_row = changes.root_keys.as_ref().map(enc).transpose()?;
        if let Some(i) = changes.deleted_at {
            self.db.note_deletion(i);
        }
        let shred_row = self.db.shred_after.load(Ordering::SeqCst).to_be_bytes();
        let db = self.db.clone();
        blocking(move || {
            db.durable(|g| {
                let txn = g.begin_write().map_err(w)?;
                if changes.deleted_at.is_some() {
                    let mut meta = txn.open_table(META).map_err(w)?;
                    meta.insert(SHRED_AFTER, shred_row.as_slice()).map_err(w)?;
                }
                {
                    let mut m = txn.open_table(SM_META).map_err(w)?;
                    m.insert(APPLIED, applied_row.as_slice()).map_err(w)?;
                    m.insert(MEMBERSHIP, membership_row.as_slice()).map_err(w)?;
                    m.insert(DEDUP_CLOCK, dedup_clock_row.as_slice())
                        .map_err(w)?;
                    if let Some(c) = &cluster_row {
                        m.insert(CLUSTER, c.as_slice()).map_err(w)?;
                    }
                    if let Some(u) = &changes.usage_since {
                        m.insert(USAGE_SINCE, u.as_slice()).map_err(w)?;
                    }
                    if !changes.key_usage.is_empty() {
                        let mut t = txn.open_table(SM_KEY_USAGE).map_err(w)?;
                        for (id, row) in &changes.key_usage {
                            match row {
                                Some(b) => t.insert(id.as_slice(), b.as_slice()).map_err(w)?,
                                None => t.remove(id.as_slice()).map_err(w)?,
                            };
                        }
                    }
                    if let Some(rk) = &root_keys_row {
                        m.insert(ROOT_KEYS, rk.as_slice()).map_err(w)?;
                    }
                    let mut k = txn.open_table(SM_KEYS).map_err(w)?;
                    for (id, row) in &changes.keys {
                        match row {
                            Some(b) => k.insert(id.as_slice(), b.as_slice()).map_err(w)?,
                            None => k.remove(id.as_slice()).map_err(w)?,
                        };
                    }
                    let mut a = txn.open_table(SM_ACCESS_KEYS).map_err(w)?;
                    for (id, row) in &changes.access_keys {
                        match row {
                            Some(b) => a.insert(id.as_str(), b.as_slice()).map_err(w)?,
                            None => a.remove(id.as_str()).map_err(w)?,
                        };
                    }
                    let mut u = txn.open_table(SM_USERS).map_err(w)?;
                    for (name, row) in &changes.users {
                        match row {
                            Some(b) => u.insert(name.as_str(), b.as_slice()).map_err(w)?,
                            None => u.remove(name.as_str()).map_err(w)?,
                        };
                    }
                    let mut g = txn.open_table(SM_GRANTS).map_err(w)?;
                    for (id, row) in &changes.grants {
                        match row {
                            Some(b) => g.insert(id.as_str(), b.as_slice()).map_err(w)?,
                            None => g.remove(id.as_str()).map_err(w)?,
                        };
                    }
                    let mut al = txn.open_table(SM_ALIASES).map_err(w)?;
                    for (name, row) in &changes.aliases {
                        match row {
                            Some(b) => al.insert(name.as_str(), b.as_slice()).map_err(w)?,
                            None => al.remove(name.as_str()).map_err(w)?,
                        };
                    }
                    let mut d = txn.open_table(SM_DEDUP).map_err(w)?;
                    for (id, row) in &changes.dedup {
                        match row {
                            Some(b) => d.insert(id.as_slice(), b.as_slice()).map_err(w)?,
                            None => d.remove(id.as_slice()).map_err(w)?,
                        };
                    }
                }
                txn.commit().map_err(w)
            })
        })
        .await?;
        if let Some(l) = last_applied {
            self.shared.applied_tx.send_replace(l.index);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let mut state = SnapshotData::decode(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        state.rebuild_indexes();
        let applied = Applied {
            state,
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        let stored = enc(&StoredSnapshot {
            meta: meta.clone(),
            data: bytes,
        })?;
        let rows = state_rows(&applied)?;
        // The replaced state may have held keys the snapshot no longer has:
        // rewrite the file once the log is purged past the snapshot.
        if let Some(l) = meta.last_log_id {
            self.db.note_deletion(l.index);
        }
        let shred_row = self.db.shred_after.load(Ordering::SeqCst).to_be_bytes();
        let db = self.db.clone();
        blocking(move || {
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
                    m.insert(SNAPSHOT, stored.as_slice()).map_err(w)?;
                    m.insert(SHRED_AFTER, shred_row.as_slice()).map_err(w)?;
                }
                txn.commit().map_err(w)
            })
        })
        .await?;
        self.shared.replace(applied);
        crate::counters::Counters::bump(&self.counters.snapshots_installed);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let stored: Option<StoredSnapshot> = read_local_meta(&self.db.get(), SNAPSHOT)?
            .map(|b| dec(&b))
            .transpose()?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

/// Every row of a state machine, encoded.
struct StateRows {
    meta: Vec<(&'static str, Vec<u8>)>,
    keys: Vec<(Vec<u8>, Vec<u8>)>,
    access_keys: Vec<(String, Vec<u8>)>,
    users: Vec<(String, Vec<u8>)>,
    grants: Vec<(String, Vec<u8>)>,
    aliases: Vec<(String, Vec<u8>)>,
    dedup: Vec<([u8; 16], Vec<u8>)>,
    key_usage: Vec<(Vec<u8>, Vec<u8>)>,
}

fn state_rows(a: &Applied) -> Result<StateRows, StorageError> {
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

fn write_state_rows(txn: &redb::WriteTransaction, rows: &StateRows) -> Result<(), StorageError> {
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
        // Copy the state under the read lock; serialize and store outside it.
        let (state, last_applied, membership) = {
            let a = self.shared.read();
            (a.state.clone(), a.last_applied, a.membership.clone())
        };
        let root_keys = state.root_keys.clone();
        let data = enc(&SnapshotData { state, root_keys })?;
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, data.len()),
            None => format!("0-0-{}", data.len()),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let stored = enc(&StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        })?;
        let db = self.db.clone();
        blocking(move || db.durable(|g| write_local_meta(g, SNAPSHOT, &stored))).await?;
        crate::counters::Counters::bump(&self.counters.snapshots_built);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// The replicated state in a stopped node's data dir, as it would load it.
/// For offline inspection and tests.
pub fn offline_state(dir: &Path) -> Result<State, StorageError> {
    let db = Database::open(dir.join("arca.redb")).map_err(r)?;
    Ok(load_state(&db)?.state)
}

/// The wrapped material of every key version in a stopped node's data dir:
/// `(key id, version, wrapped bytes)`. For offline inspection and tests.
pub fn wrapped_key_material(
    dir: &Path,
) -> Result<Vec<(arca_state::KeyId, u32, Vec<u8>)>, StorageError> {
    let db = Database::open(dir.join("arca.redb")).map_err(r)?;
    let applied = load_state(&db)?;
    Ok(applied
        .state
        .keys
        .values()
        .flat_map(|k| {
            k.versions
                .iter()
                // A key pending import has a version without material.
                .filter(|v| !v.wrapped.is_empty())
                .map(|v| (k.key_id, v.version, v.wrapped.clone()))
        })
        .collect())
}

/// The whole log of a stopped node's database, oldest first (offline
/// recovery reads the entries past the applied index).
pub(crate) fn all_log_entries(db: &Database) -> Result<Vec<Entry>, StorageError> {
    let txn = db.begin_read().map_err(r)?;
    let table = match txn.open_table(LOG) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(r(e)),
    };
    let mut out = Vec::new();
    for item in table.iter().map_err(r)? {
        let (_, v) = item.map_err(r)?;
        out.push(dec::<Entry>(v.value())?);
    }
    Ok(out)
}

/// The applied state of a stopped node's database.
pub(crate) fn load_applied(db: &Database) -> Result<Applied, StorageError> {
    load_state(db)
}

/// Writes `applied` into an empty database as a node that has just installed
/// a snapshot of it and purged its log up to it: state machine rows, the
/// snapshot, the purge mark, the committed index and `vote` — one
/// transaction. `local` are further rows of the local `meta` table.
pub(crate) fn seed_database(
    db: &Database,
    applied: &Applied,
    vote: &Vote,
    local: &[(&str, Vec<u8>)],
) -> Result<(), StorageError> {
    let last = applied
        .last_applied
        .ok_or_else(|| w(std::io::Error::other("a seeded state needs a log id")))?;
    let data = encode_state(&applied.state).map_err(w)?;
    let meta = SnapshotMeta {
        last_log_id: Some(last),
        last_membership: applied.membership.clone(),
        snapshot_id: format!("{}-{}-{}", last.leader_id.term, last.index, data.len()),
    };
    let stored = enc(&StoredSnapshot { meta, data })?;
    let rows = state_rows(applied)?;
    let txn = db.begin_write().map_err(w)?;
    write_state_rows(&txn, &rows)?;
    {
        let mut m = txn.open_table(META).map_err(w)?;
        m.insert(SNAPSHOT, stored.as_slice()).map_err(w)?;
        m.insert(LAST_PURGED, enc(&last)?.as_slice()).map_err(w)?;
        m.insert(COMMITTED, enc(&Some(last))?.as_slice())
            .map_err(w)?;
        m.insert(VOTE, enc(vote)?.as_slice()).map_err(w)?;
        for (name, value) in local {
            m.insert(*name, value.as_slice()).map_err(w)?;
        }
        // The log table exists, empty: everything is in the snapshot.
        txn.open_table(LOG).map_err(w)?;
    }
    txn.commit().map_err(w)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn set_mode(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn a_newer_format_is_refused_and_an_older_one_is_recorded_as_this_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_database(dir.path()).unwrap();
        // Nothing recorded: a data directory of a release before formats.
        assert_eq!(format_version(&db.get()).unwrap(), 1);
        assert_eq!(check_format(&db, dir.path()).unwrap(), Ok(()));
        assert_eq!(format_version(&db.get()).unwrap(), FORMAT_VERSION);
        drop(db);
        set_format_version(dir.path(), FORMAT_VERSION + 1).unwrap();
        let db = open_database(dir.path()).unwrap();
        let e = check_format(&db, dir.path()).unwrap().unwrap_err();
        assert_eq!(e.found, FORMAT_VERSION + 1);
        assert!(e.to_string().contains("written by a newer release"), "{e}");
        // Refused, not rewritten.
        assert_eq!(format_version(&db.get()).unwrap(), FORMAT_VERSION + 1);
    }

    #[test]
    fn a_new_data_dir_is_0700_and_the_database_0600() {
        let tmp = tempfile::tempdir().unwrap();
        // Parents that do not exist yet are created too.
        let dir = tmp.path().join("a/b/data");
        let _db = open_database(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("arca.redb")), 0o600);
    }

    #[test]
    fn an_open_data_dir_and_database_are_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        drop(open_database(&dir).unwrap());
        // As an older release, or a careless copy, left them.
        set_mode(&dir, 0o755);
        set_mode(&dir.join("arca.redb"), 0o644);
        let _db = open_database(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("arca.redb")), 0o600);
    }

    #[test]
    fn the_rewritten_database_keeps_mode_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open_database(tmp.path()).unwrap();
        db.rewrite().unwrap();
        assert_eq!(mode(&tmp.path().join("arca.redb")), 0o600);
    }
}
