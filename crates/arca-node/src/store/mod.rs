//! Durable storage for Raft: the log and vote ([`LogStore`]) and the state
//! machine ([`StateMachineStore`]), both in one redb file, and the snapshots
//! beside it.
//!
//! Durability contracts (openraft storage v2):
//! - `append` reports the entries flushed only after the redb commit returns
//!   (redb's default durability fsyncs on commit);
//! - `save_vote` returns after the vote is committed;
//! - the applied log id, the membership and every record an entry touched are
//!   committed in one transaction, so a restart neither skips nor repeats;
//!   an apply that fails leaves the shared state as the file holds it
//!   (`machine.rs` `apply_entries`);
//! - `install_snapshot` replaces the whole state machine in one transaction;
//! - a snapshot is a file of its own, synced and renamed into place before
//!   the row that names it is committed (`snapshot_file.rs`).
//!
//! Everything stored here is either public metadata or wrapped under the root key.

// openraft's `StorageError` is large, and its traits require it as the error type.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
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
/// The snapshot inside the database (storage format 3 and before; now in
/// its own file, named by `snapshot_file`).
const SNAPSHOT: &str = "snapshot";
/// The size of the stored snapshot's state (u64 BE), so that a restarted
/// node paces its next snapshot by it (`Db::log_outgrew_snapshot`).
const SNAPSHOT_BYTES: &str = "snapshot_bytes";
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
/// 3: the log may hold batch entries (`Command::Batch`, group commit), which
///    a release that reads only 2 cannot decode.
/// 4: the snapshot is a file of its own in `snapshots/`, named by the local
///    meta row `snapshot_file` (`snapshot_file.rs`); a release that reads
///    only 3 would find no snapshot behind its purged log.
/// 5: the log may hold the alias commands that name the key they change
///    the alias from (`Command::MoveAlias`, `Command::DeleteAliasOf`) and
///    `Command::ForgetRemovedGrants`, which a release that reads only 4
///    cannot decode.
pub const FORMAT_VERSION: u32 = 5;

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

mod db;
mod log;
mod machine;
mod offline;
mod shared;
mod snapshot;
mod snapshot_file;

pub use db::*;
pub use log::*;
pub use machine::*;
pub use offline::*;
pub use shared::*;
pub use snapshot::*;
pub use snapshot_file::*;

#[cfg(all(test, unix))]
mod tests;
