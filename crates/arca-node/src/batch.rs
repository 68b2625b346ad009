//! Group commit on the leader: concurrent writes share one Raft entry.
//!
//! openraft 0.9 appends each `client_write` on its own and waits for its
//! flush before it takes the next, so every write would cost an fsync on
//! every node and a replication round of its own. Instead, every write the
//! leader proposes goes through a [`Batcher`]: while up to [`IN_FLIGHT`]
//! entries are being appended and replicated, the writes that arrive queue
//! up, and the next entry carries all of them (at most `max` proposals and
//! [`MAX_BATCH_BYTES`]) as one [`Command::Batch`]. The state machine applies
//! a batch's proposals in order, each as if it were an entry of its own
//! (deduplication, validation and outcome included), and each caller gets
//! its own outcome. A write that finds nothing else queued is proposed as
//! it is, so a quiet cluster's log looks as before.

use std::sync::Arc;

use arca_state::{Command, Outcome, Proposal};
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::counters::Counters;
use crate::types::{LogId, NodeId, NodeInfo, Raft};

/// Entries being appended and replicated at once.
pub const IN_FLIGHT: usize = 4;
/// The encoded size above which a batch takes no further proposal: an
/// entry stays well inside the peer port's message limit even when
/// replication sends many entries in one message.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Writes waiting for an entry; more wait for room (backpressure).
const QUEUE: usize = 4096;

/// Why a write got no outcome.
#[derive(Debug, Clone)]
pub enum WriteError {
    /// What `client_write` answered (not the leader, stopped, ...).
    Raft(Box<RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>>),
    /// The batching task is gone (the node is stopping), or a batch's
    /// outcome did not match its proposals; the write may have been applied
    /// (a retry with the same request id returns its outcome).
    Internal(&'static str),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Raft(e) => e.fmt(f),
            WriteError::Internal(m) => f.write_str(m),
        }
    }
}

/// A write's result: its own outcome and the entry that carried it.
pub struct Written {
    pub outcome: Outcome,
    pub log_id: LogId,
}

struct Pending {
    proposal: Proposal,
    size: usize,
    reply: oneshot::Sender<Result<Written, WriteError>>,
}

/// Puts concurrent writes into shared entries (see the module's
/// documentation). Cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Pending>,
}

impl Batcher {
    /// Starts the batching task; `max` proposals at most per entry (1: each
    /// write its own entry, as writes were before batching).
    pub fn start(raft: Raft, max: usize, counters: Arc<Counters>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(raft, rx, max.max(1), counters));
        Self { tx }
    }

    /// Proposes `p` (stamped by the leader) and waits until its entry is
    /// applied here: its own outcome and the entry's log id.
    pub async fn write(&self, p: Proposal) -> Result<Written, WriteError> {
        let size = postcard::experimental::serialized_size(&p).unwrap_or(MAX_BATCH_BYTES);
        let (reply, rx) = oneshot::channel();
        let pending = Pending {
            proposal: p,
            size,
            reply,
        };
        const GONE: WriteError = WriteError::Internal("the node is stopping");
        if self.tx.send(pending).await.is_err() {
            return Err(GONE);
        }
        rx.await.unwrap_or(Err(GONE))
    }
}

async fn run(raft: Raft, mut rx: mpsc::Receiver<Pending>, max: usize, counters: Arc<Counters>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Wait for room first: the writes that arrive meanwhile join this
        // entry.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut bytes = first.size;
        let mut batch = vec![first];
        while batch.len() < max && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.size;
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        counters
            .writes_proposed
            .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Counters::bump(&counters.write_entries);
        let raft = raft.clone();
        tokio::spawn(async move {
            propose(&raft, batch).await;
            drop(slot);
        });
    }
}

/// Proposes one entry for `batch` and answers each of its writes.
async fn propose(raft: &Raft, mut batch: Vec<Pending>) {
    if batch.len() == 1 {
        let Some(one) = batch.pop() else { return };
        let r = raft
            .client_write(one.proposal)
            .await
            .map(|r| Written {
                outcome: r.data,
                log_id: r.log_id,
            })
            .map_err(|e| WriteError::Raft(Box::new(e)));
        let _ = one.reply.send(r);
        return;
    }
    let mut proposals = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    for p in batch {
        proposals.push(p.proposal);
        replies.push(p.reply);
    }
    // The entry's stamp: the newest of its proposals' (each was stamped by
    // this leader's clock as it arrived).
    let stamp_ms = proposals.iter().map(|p| p.stamp_ms).max().unwrap_or(0);
    let mut entry = Proposal::new(None, Command::Batch { proposals });
    entry.stamp_ms = stamp_ms;
    match raft.client_write(entry).await {
        Ok(r) => match r.data {
            Outcome::Batch(outcomes) if outcomes.len() == replies.len() => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(Written {
                        outcome,
                        log_id: r.log_id,
                    }));
                }
            }
            other => {
                tracing::error!(outcome = ?other, "a batch's outcome does not match its proposals");
                for reply in replies {
                    let _ = reply.send(Err(WriteError::Internal(
                        "a batch's outcome does not match its proposals",
                    )));
                }
            }
        },
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(WriteError::Raft(Box::new(e.clone()))));
            }
        }
    }
}
