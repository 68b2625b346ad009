//! A stopped node's database: inspection, recovery and seeding.

use super::*;

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
/// a snapshot of it and purged its log up to it: the snapshot's file first,
/// then state machine rows, the snapshot's row, the purge mark, the
/// committed index and `vote` in one transaction. `local` are further rows
/// of the local `meta` table.
pub(crate) fn seed_database(
    db: &Db,
    applied: &Applied,
    vote: &Vote,
    local: &[(&str, Vec<u8>)],
) -> Result<(), StorageError> {
    let last = applied
        .last_applied
        .ok_or_else(|| w(std::io::Error::other("a seeded state needs a log id")))?;
    let data = encode_state(&applied.state).map_err(w)?;
    let snapshot = seed_snapshot(db, &data, last, applied.membership.clone())?;
    let rows = state_rows(applied)?;
    let txn = db.get().begin_write().map_err(w)?;
    write_state_rows(&txn, &rows)?;
    {
        let mut m = txn.open_table(META).map_err(w)?;
        m.insert(LAST_PURGED, enc(&last)?.as_slice()).map_err(w)?;
        m.insert(COMMITTED, enc(&Some(last))?.as_slice())
            .map_err(w)?;
        m.insert(VOTE, enc(vote)?.as_slice()).map_err(w)?;
        for (name, value) in snapshot.iter().chain(local) {
            m.insert(*name, value.as_slice()).map_err(w)?;
        }
        // The log table exists, empty: everything is in the snapshot.
        txn.open_table(LOG).map_err(w)?;
    }
    txn.commit().map_err(w)
}
