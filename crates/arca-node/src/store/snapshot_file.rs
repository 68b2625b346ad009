//! The snapshot's own file. `snapshots/` in the data directory holds the
//! current snapshot's encoding as `<term>-<index>.snap`, named with its meta
//! by the local meta row `snapshot_file`. A snapshot being built or received
//! is a `.partial` file until it is complete and synced; it is then renamed
//! into place (and the directory synced) before the row names it, so a crash
//! leaves either the old snapshot or the new one, and at most a stray file
//! that the next start removes.
//!
//! The encoding is written to the file as it is produced and sent to
//! followers in chunks read from it: a snapshot is never held in memory
//! whole while it is built or sent, and storing it is not a database write
//! that the log's appends would wait behind.

use std::io::{BufWriter, Read, Seek, Write};

use super::*;

/// The local meta row naming the current snapshot's file, with its meta.
pub(super) const SNAPSHOT_FILE: &str = "snapshot_file";

/// The directory of snapshot files, in the data directory.
pub const SNAPSHOT_DIR: &str = "snapshots";
/// A snapshot being built.
const BUILDING: &str = "building.partial";
/// A snapshot being received from the leader.
const INCOMING: &str = "incoming.partial";

/// What the `snapshot_file` row holds.
#[derive(Serialize, Deserialize)]
pub(super) struct SnapshotFileRow {
    pub(super) meta: SnapshotMeta,
    /// The file's name in [`SNAPSHOT_DIR`].
    pub(super) file: String,
    /// The encoding's length in bytes.
    pub(super) len: u64,
}

/// The term and index of a snapshot's last log id (0, 0 for none).
fn term_index(last_log_id: Option<LogId>) -> (u64, u64) {
    last_log_id.map_or((0, 0), |l| (l.leader_id.term, l.index))
}

/// The file name of a snapshot at `last_log_id`: ours, whatever id the
/// leader gave a snapshot it sent.
pub(super) fn snapshot_file_name(last_log_id: Option<LogId>) -> String {
    let (term, index) = term_index(last_log_id);
    format!("{term}-{index}.snap")
}

impl SnapshotFileRow {
    /// The row of a snapshot of `len` bytes at `last_log_id`; its id is the
    /// log id and the length.
    pub(super) fn new(
        last_log_id: Option<LogId>,
        last_membership: StoredMembership,
        len: u64,
    ) -> Self {
        let (term, index) = term_index(last_log_id);
        Self {
            meta: SnapshotMeta {
                last_log_id,
                last_membership,
                snapshot_id: format!("{term}-{index}-{len}"),
            },
            file: snapshot_file_name(last_log_id),
            len,
        }
    }
}

/// Creates (or truncates) `path` for reading and writing, mode 0600, in a
/// directory made 0700 if it is missing.
fn create_private(path: &Path) -> Result<std::fs::File, StorageError> {
    if let Some(dir) = path.parent() {
        ensure_private_dir(dir).map_err(w)?;
    }
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(DATA_FILE_MODE);
    }
    o.open(path).map_err(w)
}

/// Syncs the directory `dir`, so that a rename in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(w)
}

/// Renames the complete, synced `partial` to `name` in the snapshot
/// directory and syncs the directory.
fn rename_into_place(db: &Db, partial: &str, name: &str) -> Result<(), StorageError> {
    let dir = db.snapshot_dir();
    std::fs::rename(dir.join(partial), dir.join(name)).map_err(w)?;
    sync_dir(&dir)
}

/// Commits `row` as the current snapshot's (with its size for pacing),
/// unless the current one is newer: a snapshot installed from the leader
/// while this one was built. Returns the row that is current.
fn commit_row(db: &Db, row: SnapshotFileRow) -> Result<SnapshotFileRow, StorageError> {
    let bytes = enc(&row)?;
    let size = row.len.to_be_bytes();
    let newer = db.durable(|g| {
        let txn = g.begin_write().map_err(w)?;
        let newer = {
            let mut m = txn.open_table(META).map_err(w)?;
            let current: Option<SnapshotFileRow> = m
                .get(SNAPSHOT_FILE)
                .map_err(r)?
                .map(|v| dec(v.value()))
                .transpose()?;
            match current {
                Some(c) if c.meta.last_log_id > row.meta.last_log_id => Some(c),
                _ => {
                    m.insert(SNAPSHOT_FILE, bytes.as_slice()).map_err(w)?;
                    m.insert(SNAPSHOT_BYTES, size.as_slice()).map_err(w)?;
                    // A row of format 3 (the snapshot inside the database)
                    // has no use once a file is current.
                    m.remove(SNAPSHOT).map_err(w)?;
                    None
                }
            }
        };
        txn.commit().map_err(w)?;
        Ok(newer)
    })?;
    match newer {
        Some(current) => {
            if current.file != row.file {
                let _ = std::fs::remove_file(db.snapshot_dir().join(&row.file));
            }
            Ok(current)
        }
        None => Ok(row),
    }
}

/// The `snapshot_file` row, if a snapshot was stored.
pub(super) fn current_snapshot_row(db: &Db) -> Result<Option<SnapshotFileRow>, StorageError> {
    read_local_meta(&db.get(), SNAPSHOT_FILE)?
        .map(|b| dec(&b))
        .transpose()
}

/// Removes every file of the snapshot directory but `keep`, and but the
/// `.partial` files unless `partials` (at start-up, when no snapshot is
/// being built or received). Best effort: a file that cannot be removed
/// now is removed by a later call.
pub(super) fn remove_other_files(db: &Db, keep: Option<&str>, partials: bool) {
    let dir = db.snapshot_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if Some(name.as_ref()) == keep || (!partials && name.ends_with(".partial")) {
            continue;
        }
        if let Err(err) = std::fs::remove_file(e.path()) {
            tracing::warn!(file = %e.path().display(), error = %err, "cannot remove an old snapshot file");
        }
    }
}

/// Encodes the state machine from the database into a new snapshot file
/// and makes it the current snapshot, removing the one before. Waits for
/// disk space as a database write does. Returns the current row (this
/// one, or a newer one installed meanwhile) and how long the encoding
/// took (including the file's sync).
pub(super) fn build_snapshot_file(db: &Db) -> Result<(SnapshotFileRow, Duration), StorageError> {
    let partial = db.snapshot_dir().join(BUILDING);
    let (row, encoded) = db.wait_for_space(|| {
        let started = std::time::Instant::now();
        let file = create_private(&partial)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let (len, last_applied, membership) = encode_from_file_into(&db.get(), &mut out)?;
        let file = out.into_inner().map_err(|e| w(e.into_error()))?;
        file.sync_all().map_err(w)?;
        Ok((
            SnapshotFileRow::new(last_applied, membership, len),
            started.elapsed(),
        ))
    })?;
    rename_into_place(db, BUILDING, &row.file)?;
    let row = commit_row(db, row)?;
    remove_other_files(db, Some(&row.file), false);
    Ok((row, encoded))
}

/// A fresh file to receive a snapshot into. A stream that was abandoned
/// before its end left its file: it starts afresh.
pub(super) fn begin_incoming(db: &Db) -> Result<std::fs::File, StorageError> {
    create_private(&db.snapshot_dir().join(INCOMING))
}

/// Syncs the received snapshot `file` and reads it whole, for decoding.
pub(super) fn read_incoming(mut file: std::fs::File) -> Result<Vec<u8>, StorageError> {
    file.sync_all().map_err(w)?;
    file.rewind().map_err(r)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(r)?;
    Ok(bytes)
}

/// Puts the received snapshot in place as `row`'s file. The caller then
/// commits `row` with the state it holds and calls [`remove_other_files`].
pub(super) fn keep_incoming(db: &Db, row: &SnapshotFileRow) -> Result<(), StorageError> {
    rename_into_place(db, INCOMING, &row.file)
}

/// Writes `data`, the encoding of a state at `last_log_id`, into its
/// snapshot file; the caller commits the row that makes it current.
fn write_snapshot_bytes(
    db: &Db,
    data: &[u8],
    last_log_id: Option<LogId>,
    membership: StoredMembership,
) -> Result<SnapshotFileRow, StorageError> {
    let row = SnapshotFileRow::new(last_log_id, membership, data.len() as u64);
    db.wait_for_space(|| {
        let mut file = create_private(&db.snapshot_dir().join(BUILDING))?;
        file.write_all(data).map_err(w)?;
        file.sync_all().map_err(w)
    })?;
    rename_into_place(db, BUILDING, &row.file)?;
    Ok(row)
}

/// The `snapshot_file` and `snapshot_bytes` rows of `row`, for a
/// transaction that commits them with more.
pub(super) fn snapshot_rows(
    row: &SnapshotFileRow,
) -> Result<[(&'static str, Vec<u8>); 2], StorageError> {
    Ok([
        (SNAPSHOT_FILE, enc(row)?),
        (SNAPSHOT_BYTES, row.len.to_be_bytes().to_vec()),
    ])
}

/// Writes the snapshot file of a seeded database (`offline.rs`): `data`
/// encodes the state at `last_log_id`. Returns the rows to commit with it.
pub(super) fn seed_snapshot(
    db: &Db,
    data: &[u8],
    last_log_id: LogId,
    membership: StoredMembership,
) -> Result<[(&'static str, Vec<u8>); 2], StorageError> {
    ensure_private_dir(&db.snapshot_dir()).map_err(w)?;
    let row = write_snapshot_bytes(db, data, Some(last_log_id), membership)?;
    snapshot_rows(&row)
}

/// Prepares the snapshot directory of a node that is starting: creates it
/// (0700), moves a snapshot stored inside the database (storage format 3
/// and before) into its file, and removes every file no row names — what
/// a crash left while a snapshot was built, received or replaced. The
/// current snapshot's file is made 0600 if it is looser; a missing one is
/// an error (the node cannot serve a follower that needs it).
pub fn prepare_snapshot_dir(db: &Db) -> Result<(), StorageError> {
    ensure_private_dir(&db.snapshot_dir()).map_err(w)?;
    if let Some(old) = read_local_meta(&db.get(), SNAPSHOT)? {
        let old: StoredSnapshot = dec(&old)?;
        let row = write_snapshot_bytes(
            db,
            &old.data,
            old.meta.last_log_id,
            old.meta.last_membership,
        )?;
        let row = commit_row(db, row)?;
        tracing::info!(
            file = %row.file,
            bytes = row.len,
            "the snapshot moved out of the database into its own file"
        );
    }
    let row = current_snapshot_row(db)?;
    remove_other_files(db, row.as_ref().map(|r| r.file.as_str()), true);
    if let Some(row) = row {
        let path = db.snapshot_dir().join(&row.file);
        if !path.exists() {
            return Err(StorageIOError::read_snapshot(
                Some(row.meta.signature()),
                &std::io::Error::other(format!("the snapshot file {} is missing", path.display())),
            )
            .into());
        }
        ensure_private_file(&path).map_err(w)?;
    }
    Ok(())
}
