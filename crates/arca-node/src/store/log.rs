//! The Raft log and vote ([`LogStore`]).

use super::*;

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

/// A log append slower than this is logged: every write waits for it.
const SLOW_APPEND: Duration = Duration::from_millis(500);

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
        let mut bytes = 0;
        for e in entries {
            let row = enc(&e)?;
            bytes += row.len() as u64;
            rows.push((e.log_id.index, row));
        }
        self.db.note_appended(bytes);
        let db = self.db.clone();
        let started = std::time::Instant::now();
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
        let took = started.elapsed();
        if took >= SLOW_APPEND {
            tracing::warn!(
                ms = took.as_millis() as u64,
                bytes,
                "a log append took long: a slow disk, or a large write (a snapshot) holding the data file"
            );
        }
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
pub(super) fn purge_log(db: &Database, upto: u64, last_purged: &[u8]) -> Result<(), StorageError> {
    let txn = db.begin_write().map_err(w)?;
    {
        let mut m = txn.open_table(META).map_err(w)?;
        m.insert(LAST_PURGED, last_purged).map_err(w)?;
        let mut t = txn.open_table(LOG).map_err(w)?;
        t.retain_in(..=upto, |_, _| false).map_err(w)?;
    }
    txn.commit().map_err(w)
}
