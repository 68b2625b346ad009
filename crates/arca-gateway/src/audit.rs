//! The audit log: one JSON line per API request — who (access key id), what
//! (operation, key id), from where, and the decision (`OK` or the error code).
//! Never a plaintext, a key or a signature.
//!
//! Records go through a bounded channel to a writer task that drains it,
//! appends to the file and flushes every 50 ms, and syncs on shutdown. If the writer falls
//! behind by more than the channel holds, records are dropped and counted
//! (`arca_audit_dropped_total`) rather than slowing every request.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

/// Records the writer may fall behind by.
const CAPACITY: usize = 65_536;

#[derive(Serialize)]
pub struct Record<'a> {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub request_id: &'a str,
    pub node_id: u64,
    pub source: &'a str,
    /// The access key id, once the signature was verified.
    pub principal: Option<&'a str>,
    pub operation: &'a str,
    pub key_id: Option<String>,
    /// `OK` or the AWS error code returned.
    pub outcome: &'a str,
    pub status: u16,
}

pub struct AuditLog {
    tx: mpsc::Sender<Vec<u8>>,
    dropped: AtomicU64,
    path: PathBuf,
}

impl AuditLog {
    /// Opens (appends to) `path` and starts the writer; the task ends when
    /// the log is dropped, after writing what it holds.
    pub fn open(path: &Path) -> std::io::Result<(Self, tokio::task::JoinHandle<()>)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path)?;
        let (tx, rx) = mpsc::channel(CAPACITY);
        let task = tokio::spawn(writer(file, rx));
        Ok((
            Self {
                tx,
                dropped: AtomicU64::new(0),
                path: path.to_path_buf(),
            },
            task,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn record(&self, r: &Record<'_>) {
        let mut line = match serde_json::to_vec(r) {
            Ok(l) => l,
            Err(_) => return,
        };
        line.push(b'\n');
        if self.tx.try_send(line).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "audit records dropped: the audit log writer is behind"
                );
            }
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Drains the channel every 50 ms rather than waking per record, so a busy
/// node pays no thread wake-up per request for its audit trail.
async fn writer(file: std::fs::File, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let closed = loop {
            match rx.try_recv() {
                Ok(line) => {
                    if let Err(e) = out.write_all(&line) {
                        tracing::error!(error = %e, "cannot write the audit log");
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break false,
                Err(mpsc::error::TryRecvError::Disconnected) => break true,
            }
        };
        if let Err(e) = out.flush() {
            tracing::error!(error = %e, "cannot flush the audit log");
        }
        if closed {
            break;
        }
    }
    let _ = out.get_ref().sync_all();
}
