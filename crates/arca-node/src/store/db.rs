//! The database file: [`Db`] (every transaction, waiting for disk space,
//! the rewrite that shreds freed pages), the data directory's modes, and the
//! local `meta` table.

use super::*;

/// The node's redb database. Every use holds a read guard for its whole
/// transaction, so [`Db::rewrite`] (under the write guard) can replace the
/// file without losing or splitting a transaction.
pub struct Db {
    path: PathBuf,
    inner: RwLock<Database>,
    /// Log index of the newest applied key deletion whose bytes may still be
    /// in freed pages of the file; 0 if none.
    pub(super) shred_after: AtomicU64,
    /// A write is waiting for disk space (see [`Db::durable`]).
    disk_full: AtomicBool,
    /// The node is stopping: writes stop waiting for space.
    stopping: AtomicBool,
    /// redb's page cache, in bytes (see [`DEFAULT_CACHE_BYTES`]).
    cache_bytes: usize,
    /// Bytes of log entries appended since this process started.
    log_bytes: AtomicU64,
    /// `log_bytes` when the last snapshot was built or installed.
    snapshot_mark: AtomicU64,
    /// The size of that snapshot (0: none since this process started).
    snapshot_bytes: AtomicU64,
}

/// redb's page cache for the data file unless configured (`[storage]
/// cache_mib`). The state machine is held in memory and read from there, so
/// the cache serves the log's tail and the pages a write changes; redb's
/// own default, 1 GiB, let it grow towards a gigabyte under write load. A
/// page it does not hold is read from the kernel's page cache, which is
/// not the process's and which the kernel can reclaim.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// Opens (or creates) a redb file with a page cache of `cache_bytes`.
fn create_file(path: &Path, cache_bytes: usize) -> Result<Database, redb::DatabaseError> {
    Database::builder().set_cache_size(cache_bytes).create(path)
}

/// Whether a storage error means the disk is full — or that redb saw an I/O
/// error before, which is how a full disk shows on the next call — so that
/// waiting for space and trying again can succeed.
pub(super) fn disk_full(e: &StorageError) -> bool {
    let m = e.to_string();
    m.contains("No space left on device")
        || m.contains("os error 28")
        || m.contains("Previous I/O error")
}

impl Db {
    /// The directory of this database's snapshot files (`snapshot_file.rs`).
    pub fn snapshot_dir(&self) -> PathBuf {
        self.path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(SNAPSHOT_DIR)
    }

    pub fn get(&self) -> RwLockReadGuard<'_, Database> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes one local meta row, waiting for disk space like any write.
    pub fn write_meta(&self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        self.durable(|g| write_local_meta(g, name, value))
    }

    /// Runs a write, waiting out a full disk. On "no space" it closes and
    /// reopens the database (redb refuses every call after an I/O error until
    /// then; opening repairs the file, which needs space too), waits — 100 ms,
    /// doubling to 2 s — and tries again, until the write succeeds or the node
    /// stops. Nothing is acknowledged meanwhile, because Raft waits for the
    /// write; every other error is returned at once.
    pub fn durable<T>(
        &self,
        f: impl Fn(&Database) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.retry_while_full(|| f(&self.get()), || self.reopen())
    }

    /// Runs a write of a file beside the database (a snapshot), waiting out
    /// a full disk as [`Db::durable`] does.
    pub(super) fn wait_for_space<T>(
        &self,
        f: impl Fn() -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.retry_while_full(f, || {})
    }

    fn retry_while_full<T>(
        &self,
        f: impl Fn() -> Result<T, StorageError>,
        after_full: impl Fn(),
    ) -> Result<T, StorageError> {
        let mut backoff = Duration::from_millis(100);
        loop {
            match f() {
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
                    after_full();
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
            match create_file(&self.path, self.cache_bytes) {
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

    /// Counts `bytes` of log entries appended.
    pub(super) fn note_appended(&self, bytes: u64) {
        self.log_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Notes a snapshot of `bytes` built or installed: the log appended
    /// from now on is measured against it.
    pub(super) fn note_snapshot(&self, bytes: u64) {
        self.snapshot_mark
            .store(self.log_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
        self.snapshot_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Whether the log appended since the last snapshot is at least as
    /// large as that snapshot (see `tasks.rs` `snapshot_loop`): building a
    /// snapshot then costs each appended byte at most one byte of encoding,
    /// however large the state.
    pub fn log_outgrew_snapshot(&self) -> bool {
        let since =
            self.log_bytes.load(Ordering::Relaxed) - self.snapshot_mark.load(Ordering::Relaxed);
        since >= self.snapshot_bytes.load(Ordering::Relaxed)
    }

    /// Whether a deletion (or a re-wrap) applied after log index `index`
    /// waits to be shredded from the file, which needs the log purged past
    /// it, so a snapshot beyond it.
    pub fn shred_waits_after(&self, index: u64) -> bool {
        self.shred_after.load(Ordering::SeqCst) > index
    }

    /// Notes that a key was deleted at `index`: once the log is purged past
    /// it, the file is rewritten so no freed page keeps the key's bytes.
    pub(super) fn note_deletion(&self, index: u64) {
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
            let new = create_file(&tmp, self.cache_bytes).map_err(w)?;
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
        *g = create_file(&self.path, self.cache_bytes).map_err(w)?;
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
pub(super) fn ensure_private_file(path: &Path) -> std::io::Result<()> {
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

/// Opens (or creates) the node's database in `dir` with the default page
/// cache; the directory is made (or kept) 0700 and the file 0600.
pub fn open_database(dir: &Path) -> Result<Arc<Db>, redb::DatabaseError> {
    open_database_with_cache(dir, DEFAULT_CACHE_BYTES)
}

/// [`open_database`] with a page cache of `cache_bytes`.
pub fn open_database_with_cache(
    dir: &Path,
    cache_bytes: usize,
) -> Result<Arc<Db>, redb::DatabaseError> {
    ensure_private_dir(dir)?;
    let path = dir.join("arca.redb");
    let _ = std::fs::remove_file(path.with_extension("redb.rewrite"));
    ensure_private_file(&path)?;
    let db = create_file(&path, cache_bytes)?;
    let u64_meta = |name| {
        read_local_meta(&db, name)
            .ok()
            .flatten()
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0)
    };
    let shred = u64_meta(SHRED_AFTER);
    // The log since the stored snapshot is counted from now on: a restart
    // does not by itself bring the next snapshot forward.
    let snapshot_bytes = u64_meta(SNAPSHOT_BYTES);
    Ok(Arc::new(Db {
        path,
        inner: RwLock::new(db),
        shred_after: AtomicU64::new(shred),
        disk_full: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        cache_bytes,
        log_bytes: AtomicU64::new(0),
        snapshot_mark: AtomicU64::new(0),
        snapshot_bytes: AtomicU64::new(snapshot_bytes),
    }))
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
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageIOError::write(&e).into())
        .and_then(|x| x)
}
