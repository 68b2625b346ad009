//! The audit log: one JSON line per API request — who (access key id), what
//! (operation, key id), from where, and the decision (`OK` or the error code).
//! Never a plaintext, a key or a signature.
//!
//! **Tamper-evident.** Every line carries `seq` (1, 2, 3, … across files and
//! restarts) and `prev`, the SHA-256 (hex) of the line before it; the first
//! line of a new log chains from [`GENESIS`]. At most every
//! [`AuditConfig::checkpoint_interval`] while records arrive, and on rotation
//! and shutdown, the writer appends a *checkpoint* line, itself a link of the
//! chain, whose HMAC-SHA256 under a key derived from the root key
//! ([`CheckpointKey`]) seals every line before it:
//!
//! ```text
//! {"seq":7,"prev":"<sha256 of line 6>","time_ms":…,"request_id":…,"operation":"Encrypt",…}
//! {"seq":8,"prev":"<sha256 of line 7>","checkpoint":{"node_id":1,"time_ms":…},"sig":"<hmac>"}
//! ```
//!
//! [`verify`] checks files offline (`arca audit verify`).
//!
//! **Fail-closed** ([`AuditMode::FailClosed`], the default): [`AuditLog::record`]
//! returns once its line has been written to the file (a `write` to the
//! operating system; fsync at checkpoints, rotation and shutdown), or an error
//! — the request then fails with 503 and `arca_audit_failures_total` counts
//! it. Group commit keeps that cheap: requests queue their lines; the one
//! that finds no one writing writes everything queued itself, with one
//! `write`, until the queue is empty, and wakes the others whose lines it
//! wrote — no hand-off to another thread and back on the request path. A
//! writer thread does the slow, rare work: checkpoints (with their sync),
//! rotation, reopening and the final seal; while it works, lines queue and
//! it writes them after. [`AuditMode::BestEffort`] returns at once instead
//! (unless the request is the one writing) and drops (and counts,
//! `arca_audit_dropped_total`) what it cannot write.
//!
//! **Rotation.** Once the file reaches [`AuditConfig::max_file_bytes`] it is
//! sealed and renamed to `<name>.<seq of its last line, 20 digits>` (so a shell
//! glob lists rotated files in chain order) and a new file is started; on
//! [`ReopenHandle::reopen`] (SIGHUP) the file is sealed and the configured path
//! opened again, so `mv audit.jsonl audit.1 && kill -HUP <pid>` rotates. The
//! chain continues across files, and across restarts from the last line of the
//! file (or of the newest rotated file if the file is gone).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arca_crypto::wrap::RootKey;
use aws_lc_rs::{digest, hmac};
use serde::Deserialize;
use tokio::sync::{oneshot, Notify};

use crate::error::ApiError;

pub mod verify;

/// Lines queued for the writer at most; beyond, a record is refused
/// (fail-closed) or dropped (best-effort).
const CAPACITY: usize = 65_536;
/// How long a request waits for its line to be written before it fails.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The writer hands the operating system at most this much per `write`.
const CHUNK: usize = 1 << 20;
/// A record's expected size: one allocation per line, as a rule.
const LINE_CAPACITY: usize = 384;
/// How long a failed rotation waits before it is tried again.
const ROTATION_RETRY: Duration = Duration::from_secs(10);

/// String fields from the request (operation, source, principal, key id) are
/// kept up to this many bytes; longer ones are cut and end in
/// `…[+N bytes]`.
pub const MAX_FIELD: usize = 128;
/// No line of an audit log is longer (a record is well under 2 KiB).
pub const MAX_LINE: usize = 64 * 1024;
/// The `prev` of a new log's first line.
pub const GENESIS: [u8; 32] = [0; 32];
/// The label under which the checkpoint key is derived from the root key.
pub const CHECKPOINT_KEY_LABEL: &[u8] = b"arca/audit-checkpoint/v1";
/// The default [`AuditConfig::max_file_bytes`]: 100 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 << 20;
/// The default [`AuditConfig::checkpoint_interval`].
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// One API request, as the gateway records it: one JSON object per line,
/// its fields in this order (absent ones left out):
///
/// ```text
/// {"seq":…,"prev":"…","time_ms":…,"request_id":"…","node_id":…,"source":"…","principal":"…",
///  "operation":"…","arn":"…","key_id":"…","destination_key_id":"…","outcome":"…","status":…}
/// ```
///
/// [`Record::encode`] writes it straight into the line's buffer — no
/// serializer, no allocation — since every request writes one.
pub struct Record<'a> {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub request_id: &'a str,
    pub node_id: u64,
    /// Capped at [`MAX_FIELD`], as `principal`, `operation` and `key_id` are.
    pub source: &'a str,
    /// The access key id, once the signature was verified.
    pub principal: Option<&'a str>,
    pub operation: &'a str,
    /// The caller's ARN, once the signature was verified.
    pub arn: Option<&'a str>,
    pub key_id: Option<&'a str>,
    /// ReEncrypt's destination key.
    pub destination_key_id: Option<&'a str>,
    /// `OK` or the AWS error code returned.
    pub outcome: &'a str,
    pub status: u16,
}

impl Record<'_> {
    /// Appends the record as a JSON object; the writer puts `seq` and `prev`
    /// in front of its fields when it chains the line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time_ms\":");
        push_u64(out, self.time_ms);
        out.extend_from_slice(b",\"request_id\":");
        push_str(out, self.request_id, usize::MAX);
        out.extend_from_slice(b",\"node_id\":");
        push_u64(out, self.node_id);
        out.extend_from_slice(b",\"source\":");
        push_str(out, self.source, MAX_FIELD);
        if let Some(p) = self.principal {
            out.extend_from_slice(b",\"principal\":");
            push_str(out, p, MAX_FIELD);
        }
        out.extend_from_slice(b",\"operation\":");
        push_str(out, self.operation, MAX_FIELD);
        if let Some(a) = self.arn {
            out.extend_from_slice(b",\"arn\":");
            push_str(out, a, usize::MAX);
        }
        if let Some(k) = self.key_id {
            out.extend_from_slice(b",\"key_id\":");
            push_str(out, k, MAX_FIELD);
        }
        if let Some(k) = self.destination_key_id {
            out.extend_from_slice(b",\"destination_key_id\":");
            push_str(out, k, MAX_FIELD);
        }
        out.extend_from_slice(b",\"outcome\":");
        push_str(out, self.outcome, usize::MAX);
        out.extend_from_slice(b",\"status\":");
        push_u64(out, u64::from(self.status));
        out.push(b'}');
    }
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// `s` as a JSON string, escaped as serde_json escapes; longer than `cap`
/// bytes, it is cut on a character boundary and ends in `…[+N bytes]`.
fn push_str(out: &mut Vec<u8>, s: &str, cap: usize) {
    let (head, cut) = if s.len() <= cap {
        (s, 0)
    } else {
        let mut end = cap;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        (&s[..end], s.len() - end)
    };
    out.push(b'"');
    push_escaped(out, head);
    if cut > 0 {
        out.extend_from_slice("…[+".as_bytes());
        push_u64(out, cut as u64);
        out.extend_from_slice(b" bytes]");
    }
    out.push(b'"');
}

/// For each byte: 0 if it stands as it is in a JSON string, else the letter
/// after the backslash (`u`: `\u00XX`).
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

fn push_escaped(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let e = ESCAPE[usize::from(b)];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(&[b'\\', e]);
        if e == b'u' {
            out.extend_from_slice(&[
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// What happens to a request whose record cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditMode {
    /// The request fails with 503 (`[audit] mode = "fail-closed"`).
    #[default]
    FailClosed,
    /// The request goes on; the record is dropped and counted
    /// (`[audit] mode = "best-effort"`).
    BestEffort,
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub path: PathBuf,
    /// Written into checkpoints (and covered by their signature).
    pub node_id: u64,
    pub mode: AuditMode,
    /// Rotate once the file is this large; 0: never by size.
    pub max_file_bytes: u64,
    /// New records are sealed by a checkpoint at most this much later.
    pub checkpoint_interval: Duration,
}

impl AuditConfig {
    /// The defaults: fail-closed, 100 MiB files, a checkpoint every second.
    pub fn new(path: PathBuf, node_id: u64) -> Self {
        Self {
            path,
            node_id,
            mode: AuditMode::FailClosed,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
        }
    }
}

/// Why a record was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log could not be written")]
    WriteFailed,
    #[error("the audit log writer is too far behind")]
    Behind,
    #[error("the audit log was not written within {} s", WRITE_TIMEOUT.as_secs())]
    TimedOut,
    #[error("the audit log writer has stopped")]
    Stopped,
}

impl From<AuditError> for ApiError {
    /// Every audit failure is temporary as far as the client can tell: 503,
    /// which SDKs retry.
    fn from(e: AuditError) -> Self {
        ApiError::new(
            503,
            "DependencyTimeoutException",
            format!("the request could not be recorded in the audit log: {e}"),
        )
    }
}

/// The key that signs checkpoints: HMAC-SHA256 under
/// `RootKey::derive_subkey(CHECKPOINT_KEY_LABEL)`, the same on every node.
///
/// During a root-key rotation a node holds two root keys: it signs under
/// the last one given (the new key) and accepts checkpoints under any of
/// them, so a log whose last checkpoint the old key signed continues, and
/// once the old key is removed the log's tail is already signed under the
/// new one.
pub struct CheckpointKey {
    sign: hmac::Key,
    /// Every key a checkpoint may be signed under (`sign` among them).
    accept: Vec<hmac::Key>,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointKey([REDACTED])")
    }
}

impl CheckpointKey {
    pub fn from_root(root: &RootKey) -> Self {
        Self::from_roots(&[root]).expect("one root key")
    }

    /// Signs under the last of `roots`, accepts any; `None` if there is none.
    pub fn from_roots(roots: &[&RootKey]) -> Option<Self> {
        let key = |r: &&RootKey| {
            let k = r.derive_subkey(CHECKPOINT_KEY_LABEL);
            hmac::Key::new(hmac::HMAC_SHA256, k.expose())
        };
        Some(Self {
            sign: key(roots.last()?),
            accept: roots.iter().map(key).collect(),
        })
    }

    /// What a checkpoint's signature covers: the node, the checkpoint's own
    /// seq and prev (which commit to every line before it), and its time.
    fn message(node_id: u64, seq: u64, prev: &[u8; 32], time_ms: u64) -> [u8; 80] {
        let mut m = [0u8; 80];
        m[..24].copy_from_slice(b"arca-audit-checkpoint-v1");
        m[24..32].copy_from_slice(&node_id.to_be_bytes());
        m[32..40].copy_from_slice(&seq.to_be_bytes());
        m[40..72].copy_from_slice(prev);
        m[72..].copy_from_slice(&time_ms.to_be_bytes());
        m
    }

    fn sign(&self, node_id: u64, seq: u64, prev: &[u8; 32], time_ms: u64) -> [u8; 32] {
        let tag = hmac::sign(&self.sign, &Self::message(node_id, seq, prev, time_ms));
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether `sig` is the checkpoint's signature under the key this node
    /// signs with now; constant time.
    pub(crate) fn signs(
        &self,
        node_id: u64,
        seq: u64,
        prev: &[u8; 32],
        time_ms: u64,
        sig: &[u8],
    ) -> bool {
        let m = Self::message(node_id, seq, prev, time_ms);
        hmac::verify(&self.sign, &m, sig).is_ok()
    }

    /// Whether `sig` is the checkpoint's signature under one of the keys
    /// accepted; constant time for each.
    pub(crate) fn verify(
        &self,
        node_id: u64,
        seq: u64,
        prev: &[u8; 32],
        time_ms: u64,
        sig: &[u8],
    ) -> bool {
        let m = Self::message(node_id, seq, prev, time_ms);
        self.accept.iter().any(|k| hmac::verify(k, &m, sig).is_ok())
    }
}

/// The fields of a line the chain is made of; a record's own fields are
/// ignored here.
#[derive(Deserialize)]
pub(crate) struct Link {
    pub seq: u64,
    pub prev: String,
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
    #[serde(default)]
    pub sig: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct Checkpoint {
    pub node_id: u64,
    pub time_ms: u64,
}

pub(crate) fn sha256(b: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex, without allocating.
pub(crate) fn hex32(b: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, x) in b.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(x >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(x & 0xf)];
    }
    out
}

/// Appends one line to `buf` — `{"seq":…,"prev":"…",` and `rest`, the
/// serialized object without its opening brace — and returns its hash.
fn compose(buf: &mut Vec<u8>, seq: u64, prev: &[u8; 32], rest: &[u8]) -> [u8; 32] {
    let start = buf.len();
    let _ = write!(buf, "{{\"seq\":{seq},\"prev\":\"");
    buf.extend_from_slice(&hex32(prev));
    buf.extend_from_slice(b"\",");
    buf.extend_from_slice(rest);
    let h = sha256(&buf[start..]);
    buf.push(b'\n');
    h
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

const PENDING: u8 = 0;
const WRITTEN: u8 = 1;
const FAILED: u8 = 2;

/// The lines one `write` carries, and the requests that wait for it.
#[derive(Default)]
struct Batch {
    state: AtomicU8,
    done: Notify,
}

impl Batch {
    fn finish(&self, written: bool) {
        self.state
            .store(if written { WRITTEN } else { FAILED }, Ordering::Release);
        self.done.notify_waiters();
    }

    async fn wait(&self) -> Result<(), AuditError> {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.state.load(Ordering::Acquire) {
                PENDING => notified.await,
                WRITTEN => return Ok(()),
                _ => return Err(AuditError::WriteFailed),
            }
        }
    }
}

/// Serialized records in one buffer, in arrival order: the bytes are copied
/// in on the request's thread and the buffer is reused, so no allocation
/// crosses from the request threads to the writer's.
#[derive(Default)]
struct Lines {
    bytes: Vec<u8>,
    /// Where each record ends in `bytes`.
    ends: Vec<usize>,
}

impl Lines {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn push(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
        self.ends.push(self.bytes.len());
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let line = &self.bytes[start..end];
            start = end;
            line
        })
    }

    /// Empties it, keeping a bounded capacity for reuse.
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        shrink(&mut self.bytes);
        if self.ends.capacity() > CAPACITY {
            self.ends.shrink_to(CAPACITY);
        }
    }
}

struct Queue {
    /// Serialized records (without seq and prev), in arrival order.
    lines: Lines,
    /// The batch that `lines` will be written in.
    batch: Arc<Batch>,
    /// The writer thread waits on `wake`.
    writer_idle: bool,
    /// Someone holds the right to write: a request writing the queue itself,
    /// or the writer thread. Only its holder locks the [`Writer`].
    writing: bool,
    /// A checkpoint or rotation is due: the writer thread's work, done
    /// before more lines are written.
    maintenance: bool,
    /// The right to write passes to the writer thread (the lines queued are
    /// its to write).
    handoff: bool,
    reopen: bool,
    /// The log was dropped: write what is queued, seal, stop.
    closed: bool,
    /// The writer thread has ended.
    stopped: bool,
}

impl Queue {
    /// The writer thread has something to do before more lines are written.
    fn thread_work(&self) -> bool {
        self.maintenance || self.reopen || self.closed
    }
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    mode: AuditMode,
    dropped: AtomicU64,
    failures: AtomicU64,
    /// Failed writes (and syncs) of the file.
    write_errors: AtomicU64,
    last_seq: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn poke(&self, f: impl FnOnce(&mut Queue)) {
        let mut q = self.lock();
        f(&mut q);
        q.writer_idle = false;
        drop(q);
        self.wake.notify_one();
    }
}

/// The gateway's side of the audit log. Dropping it lets the writer write
/// what is queued, seal the log with a checkpoint, sync and stop.
pub struct AuditLog {
    shared: Arc<Shared>,
    writer: Arc<Mutex<Writer>>,
    path: PathBuf,
}

/// Asks the writer to seal the file and open its path again (SIGHUP).
#[derive(Clone)]
pub struct ReopenHandle(Arc<Shared>);

impl ReopenHandle {
    pub fn reopen(&self) {
        self.0.poke(|q| q.reopen = true);
    }
}

/// The writer thread; [`AuditWriter::finished`] resolves once it has
/// stopped (after the [`AuditLog`] is dropped).
pub struct AuditWriter {
    done: oneshot::Receiver<()>,
}

impl AuditWriter {
    pub async fn finished(self) {
        let _ = self.done.await;
    }
}

impl AuditLog {
    /// Opens (appends to) the configured file, continuing the chain from its
    /// last line, and starts the writer thread.
    ///
    /// A torn last line (a crash in the middle of a write) is cut off. A file
    /// from before the chain existed (its last line has no `seq`) is renamed
    /// to `<name>-unchained-<ms>` and a new chain started. A last line that is
    /// not an audit record at all is an error: the file is evidence, and the
    /// operator decides.
    pub fn open(config: AuditConfig, key: CheckpointKey) -> io::Result<(Self, AuditWriter)> {
        let path = config.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut tail = read_tail(&path, &key)?;
        if matches!(tail, Tail::Unchained) {
            let mut aside = path.clone().into_os_string();
            aside.push(format!("-unchained-{}", now_ms()));
            let aside = PathBuf::from(aside);
            std::fs::rename(&path, &aside)?;
            tracing::warn!(
                path = %path.display(),
                moved_to = %aside.display(),
                "the audit log was written without a hash chain; it was moved aside and a new chain starts"
            );
            tail = Tail::Empty;
        }
        // Only a missing or empty file continues from a rotated one (not /dev/…).
        let plain = path.metadata().map_or(true, |m| m.is_file());
        if matches!(tail, Tail::Empty) && plain {
            if let Some(rotated) = newest_rotated(&path)? {
                tail = match read_tail(&rotated, &key)? {
                    Tail::Unchained => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{} has no hash chain", rotated.display()),
                        ))
                    }
                    t => t,
                };
            }
        }
        let (seq, head, sealed) = match tail {
            Tail::Chained {
                seq,
                head,
                sealed,
                sealed_under_old_key,
            } => {
                if sealed_under_old_key {
                    tracing::info!(
                        path = %path.display(),
                        "the audit log's last checkpoint is signed under a root key being retired; \
                         the next checkpoint signs it under the new one"
                    );
                }
                if !sealed {
                    tracing::warn!(
                        path = %path.display(),
                        "the audit log does not end in a checkpoint (the node stopped without shutting down): \
                         its last lines are sealed by the next checkpoint"
                    );
                }
                (seq, head, sealed && !sealed_under_old_key)
            }
            Tail::Empty | Tail::Unchained => (0, GENESIS, true),
        };
        let file = open_append(&path)?;
        let meta = file.metadata()?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                lines: Lines::default(),
                batch: Arc::new(Batch::default()),
                writer_idle: false,
                writing: false,
                maintenance: false,
                handoff: false,
                reopen: false,
                closed: false,
                stopped: false,
            }),
            wake: Condvar::new(),
            mode: config.mode,
            dropped: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            last_seq: AtomicU64::new(seq),
        });
        let writer = Writer {
            shared: shared.clone(),
            path: path.clone(),
            regular: meta.is_file(),
            good_len: meta.len(),
            file,
            cut_to: None,
            seq,
            head,
            unsealed: u64::from(!sealed),
            last_checkpoint: Instant::now(),
            key,
            node_id: config.node_id,
            max_file_bytes: config.max_file_bytes,
            checkpoint_interval: config.checkpoint_interval,
            buf: Vec::new(),
            spare: Lines::default(),
            failing: 0,
            rotation_retry: None,
        };
        let (tx, rx) = oneshot::channel();
        let guard = StopGuard {
            shared: shared.clone(),
            done: Some(tx),
        };
        let writer = Arc::new(Mutex::new(writer));
        let thread = Maintainer {
            shared: shared.clone(),
            writer: writer.clone(),
            checkpoint_interval: config.checkpoint_interval,
        };
        std::thread::Builder::new()
            .name("arca-audit".into())
            .spawn(move || {
                let _guard = guard;
                thread.run();
            })?;
        Ok((
            Self {
                shared,
                writer,
                path,
            },
            AuditWriter { done: rx },
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn mode(&self) -> AuditMode {
        self.shared.mode
    }

    pub fn reopen_handle(&self) -> ReopenHandle {
        ReopenHandle(self.shared.clone())
    }

    /// Records one request. Fail-closed: returns once the line is written,
    /// or the reason it was not (the request must then fail). Best-effort:
    /// returns at once and always `Ok`.
    pub async fn record(&self, r: &Record<'_>) -> Result<(), AuditError> {
        thread_local! {
            static LINE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(LINE_CAPACITY));
        }
        let queued = LINE.with(|line| {
            let mut line = line.borrow_mut();
            line.clear();
            r.encode(&mut line);
            let queued = self.enqueue(&line);
            shrink(&mut line);
            queued
        });
        let (batch, write) = match queued {
            Ok(q) => q,
            Err(e) => return self.refuse(e),
        };
        if write {
            // No one was writing: this request writes the queue itself (its
            // own line and any that arrive meanwhile) — no hand-off to
            // another thread and back.
            drain(
                &self.shared,
                &mut lock_writer(&self.writer),
                REQUEST_BATCHES,
            );
        }
        let Some(batch) = batch else {
            return Ok(());
        };
        match tokio::time::timeout(WRITE_TIMEOUT, batch.wait()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => self.refuse(e),
            Err(_) => self.refuse(AuditError::TimedOut),
        }
    }

    /// Queues `line`: the batch to wait for (fail-closed), and whether the
    /// caller took the right to write.
    fn enqueue(&self, line: &[u8]) -> Result<(Option<Arc<Batch>>, bool), AuditError> {
        let mut q = self.shared.lock();
        if q.stopped {
            return Err(AuditError::Stopped);
        }
        if q.lines.len() >= CAPACITY {
            return Err(AuditError::Behind);
        }
        q.lines.push(line);
        let batch = (self.shared.mode == AuditMode::FailClosed).then(|| q.batch.clone());
        // The first line while no one writes takes the right to write, unless
        // the writer thread has work to do first.
        let write = !q.writing && !q.thread_work();
        q.writing |= write;
        Ok((batch, write))
    }

    fn refuse(&self, e: AuditError) -> Result<(), AuditError> {
        match self.shared.mode {
            AuditMode::FailClosed => {
                self.shared.failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
            AuditMode::BestEffort => {
                count_dropped(&self.shared, 1);
                Ok(())
            }
        }
    }

    /// Records lost without failing their request (best-effort mode).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Requests failed because their record could not be written
    /// (fail-closed mode).
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Relaxed)
    }

    /// The seq of the last line written.
    pub fn last_seq(&self) -> u64 {
        self.shared.last_seq.load(Ordering::Relaxed)
    }

    /// Appends this log's counters to a Prometheus text body (the dropped
    /// count is rendered with the request metrics).
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str("# HELP arca_audit_failures_total Requests answered 503 because their audit record could not be written.\n");
        out.push_str("# TYPE arca_audit_failures_total counter\n");
        let _ = writeln!(out, "arca_audit_failures_total {}", self.failures());
        out.push_str("# HELP arca_audit_write_errors_total Failed writes of the audit log file (each is retried; see the node's log).\n");
        out.push_str("# TYPE arca_audit_write_errors_total counter\n");
        let _ = writeln!(
            out,
            "arca_audit_write_errors_total {}",
            self.shared.write_errors.load(Ordering::Relaxed)
        );
        out.push_str("# HELP arca_audit_last_seq The seq of the last line written to the audit log (compare with `arca audit verify`).\n");
        out.push_str("# TYPE arca_audit_last_seq gauge\n");
        let _ = writeln!(out, "arca_audit_last_seq {}", self.last_seq());
    }
}

/// Records the writes other nodes forward to this one (as the leader), next
/// to the API requests: the node a client sent a write to records the
/// request, and the leader that ran it records it again, with the node that
/// forwarded it as the source. Installed with
/// `Node::set_forward_observer`; see [`AuditLog::forwarded_writes`].
pub struct ForwardAudit {
    shared: Arc<Shared>,
    node_id: u64,
}

impl AuditLog {
    /// A recorder for the writes forwarded to node `node_id`.
    pub fn forwarded_writes(&self, node_id: u64) -> ForwardAudit {
        ForwardAudit {
            shared: self.shared.clone(),
            node_id,
        }
    }
}

impl ForwardAudit {
    /// Queues one line for `w`: operation `Forwarded:<command>`, source
    /// `node:<id>`, the key id, and the outcome as the client would see it.
    /// The leader's answer does not wait for the line (the forwarding node
    /// already holds the client's answer until its own record is written);
    /// a line that cannot be queued is counted in
    /// `arca_audit_dropped_total`.
    pub fn record(&self, w: arca_node::writes::ForwardedWrite) {
        let (outcome, status) = match w.outcome {
            Ok(()) => ("OK", 200),
            Err(e) => {
                let e = crate::error::ApiError::from(e);
                (e.code, e.status)
            }
        };
        let source = w
            .from
            .map_or_else(|| "node:-".to_string(), |n| format!("node:{n}"));
        let operation = format!("Forwarded:{}", w.operation);
        let r = Record {
            time_ms: now_ms(),
            request_id: w.request.as_deref().unwrap_or("-"),
            node_id: self.node_id,
            source: &source,
            principal: None,
            operation: &operation,
            arn: None,
            key_id: w.key_id.as_deref(),
            destination_key_id: None,
            outcome,
            status,
        };
        let mut line = Vec::with_capacity(LINE_CAPACITY);
        r.encode(&mut line);
        let mut q = self.shared.lock();
        if q.stopped || q.closed || q.lines.len() >= CAPACITY {
            drop(q);
            count_dropped(&self.shared, 1);
            return;
        }
        q.lines.push(&line);
        // Whoever writes takes it along; if no one does, the writer thread.
        let wake = !q.writing && std::mem::replace(&mut q.writer_idle, false);
        drop(q);
        if wake {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shared.poke(|q| q.closed = true);
    }
}

fn count_dropped(shared: &Shared, n: u64) {
    let before = shared.dropped.fetch_add(n, Ordering::Relaxed);
    // Warn at 1, 2, 4, 8, … records.
    if (before + n).ilog2() != before.checked_ilog2().unwrap_or(u32::MAX) {
        tracing::warn!(
            dropped = before + n,
            "audit records dropped (best-effort mode): the audit log cannot keep up or cannot be written"
        );
    }
}

/// Marks the writer stopped however its thread ends, fails the requests still
/// queued, and resolves [`AuditWriter::finished`].
struct StopGuard {
    shared: Arc<Shared>,
    done: Option<oneshot::Sender<()>>,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        let mut q = self.shared.lock();
        q.stopped = true;
        if !q.lines.is_empty() {
            q.batch.finish(false);
        }
        drop(q);
        if let Some(tx) = self.done.take() {
            let _ = tx.send(());
        }
    }
}

struct Writer {
    shared: Arc<Shared>,
    path: PathBuf,
    file: File,
    /// A regular file (not `/dev/…`): can be cut back, synced and rotated.
    regular: bool,
    /// The file's length after the last complete write.
    good_len: u64,
    /// A failed write left bytes past `good_len` that could not be cut off
    /// yet; nothing is appended until they are.
    cut_to: Option<u64>,
    seq: u64,
    head: [u8; 32],
    /// Lines after the last checkpoint.
    unsealed: u64,
    last_checkpoint: Instant,
    key: CheckpointKey,
    node_id: u64,
    max_file_bytes: u64,
    checkpoint_interval: Duration,
    buf: Vec<u8>,
    /// The queue's previous buffer, kept for reuse.
    spare: Lines,
    /// Consecutive failed writes.
    failing: u64,
    rotation_retry: Option<Instant>,
}

fn lock_writer(w: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

/// How many batches a request that took the right to write writes at most
/// (its own, and one that queued meanwhile) before it hands the rest to the
/// writer thread: its own answer waits for them.
const REQUEST_BATCHES: usize = 2;

/// Writes what is queued, batch after batch, while `budget` lasts. The caller
/// holds the right to write (`writing`). It gives the right up when the
/// queue is empty, or hands it to the writer thread when the budget is spent
/// or a checkpoint or rotation is due with lines still queued (those go after
/// the checkpoint).
fn drain(shared: &Shared, w: &mut Writer, mut budget: usize) {
    let mut due = false;
    loop {
        let (mut lines, batch) = {
            let mut q = shared.lock();
            q.maintenance |= due;
            if q.lines.is_empty() || budget == 0 || q.thread_work() {
                if q.lines.is_empty() {
                    q.writing = false;
                } else {
                    q.handoff = true;
                }
                let wake =
                    (q.handoff || q.thread_work()) && std::mem::replace(&mut q.writer_idle, false);
                drop(q);
                if wake {
                    shared.wake.notify_one();
                }
                return;
            }
            budget -= 1;
            let lines = std::mem::take(&mut w.spare);
            let lines = std::mem::replace(&mut q.lines, lines);
            (lines, std::mem::take(&mut q.batch))
        };
        let written = w.write_records(&lines);
        batch.finish(written);
        lines.clear();
        w.spare = lines;
        due = w.checkpoint_due() || w.rotation_due();
    }
}

/// The writer thread: checkpoints (with their sync), rotation, reopening, the
/// final seal, and writing when requests hand it the queue — the slow or
/// long work, kept off the requests' threads.
struct Maintainer {
    shared: Arc<Shared>,
    writer: Arc<Mutex<Writer>>,
    checkpoint_interval: Duration,
}

impl Maintainer {
    fn run(self) {
        loop {
            let (reopen, closed) = {
                let mut q = self.shared.lock();
                loop {
                    if q.handoff {
                        // `writing` stays taken: it passes to this thread.
                        q.handoff = false;
                        break;
                    }
                    if !q.writing && (q.thread_work() || !q.lines.is_empty()) {
                        q.writing = true;
                        break;
                    }
                    q.writer_idle = true;
                    let (next, timeout) = self
                        .shared
                        .wake
                        .wait_timeout(q, self.checkpoint_interval)
                        .unwrap_or_else(|p| p.into_inner());
                    q = next;
                    q.writer_idle = false;
                    // Every interval, look whether a checkpoint is due.
                    if timeout.timed_out() && !q.writing {
                        q.writing = true;
                        break;
                    }
                }
                q.maintenance = false;
                (std::mem::take(&mut q.reopen), q.closed)
            };
            let mut w = lock_writer(&self.writer);
            let rotate = w.rotation_due();
            if w.unsealed > 0 && (reopen || closed || rotate || w.checkpoint_due()) {
                let _ = w.checkpoint();
            }
            if rotate {
                w.rotate();
            } else if reopen {
                w.reopen();
            }
            drain(&self.shared, &mut w, usize::MAX);
            if closed {
                // The log was dropped, so no request adds lines any more:
                // seal what the drain wrote, sync, stop.
                if w.unsealed > 0 {
                    let _ = w.checkpoint();
                }
                if w.regular {
                    if let Err(e) = w.file.sync_all() {
                        tracing::error!(error = %e, "cannot sync the audit log");
                    }
                }
                return;
            }
        }
    }
}

impl Writer {
    fn checkpoint_due(&self) -> bool {
        self.unsealed > 0 && self.last_checkpoint.elapsed() >= self.checkpoint_interval
    }

    /// Writes the batch; on failure cuts the file back and leaves the chain
    /// as it was, so the lines never happened.
    fn write_records(&mut self, lines: &Lines) -> bool {
        if lines.is_empty() {
            return true;
        }
        let (seq0, head0) = (self.seq, self.head);
        self.buf.clear();
        let mut written = 0usize;
        let mut result = self.cut_back();
        if result.is_ok() {
            for body in lines.iter() {
                debug_assert!(body.len() > 2 && body[0] == b'{');
                let rest = body.get(1..).unwrap_or_default();
                self.seq += 1;
                self.head = compose(&mut self.buf, self.seq, &self.head, rest);
                if self.buf.len() >= CHUNK {
                    result = self.file.write_all(&self.buf);
                    if result.is_err() {
                        break;
                    }
                    written += self.buf.len();
                    self.buf.clear();
                }
            }
        }
        if result.is_ok() && !self.buf.is_empty() {
            result = self.file.write_all(&self.buf);
            written += self.buf.len();
        }
        shrink(&mut self.buf);
        match result {
            Ok(()) => {
                self.good_len += written as u64;
                self.unsealed += lines.len() as u64;
                self.shared.last_seq.store(self.seq, Ordering::Relaxed);
                self.succeeded();
                true
            }
            Err(e) => {
                (self.seq, self.head) = (seq0, head0);
                self.failed(&e);
                if self.shared.mode == AuditMode::BestEffort {
                    count_dropped(&self.shared, lines.len() as u64);
                }
                false
            }
        }
    }

    /// Appends a signed checkpoint sealing every line so far, and syncs.
    fn checkpoint(&mut self) -> io::Result<()> {
        self.last_checkpoint = Instant::now();
        self.cut_back()?;
        let seq = self.seq + 1;
        let time_ms = now_ms();
        let sig = self.key.sign(self.node_id, seq, &self.head, time_ms);
        let mut body = Vec::with_capacity(160);
        let _ = write!(
            body,
            "{{\"checkpoint\":{{\"node_id\":{},\"time_ms\":{time_ms}}},\"sig\":\"",
            self.node_id
        );
        body.extend_from_slice(&hex32(&sig));
        body.extend_from_slice(b"\"}");
        self.buf.clear();
        let head = compose(&mut self.buf, seq, &self.head, &body[1..]);
        let mut result = self.file.write_all(&self.buf);
        if result.is_ok() && self.regular {
            result = self.file.sync_data();
        }
        match result {
            Ok(()) => {
                self.good_len += self.buf.len() as u64;
                (self.seq, self.head, self.unsealed) = (seq, head, 0);
                self.shared.last_seq.store(seq, Ordering::Relaxed);
                self.succeeded();
                Ok(())
            }
            Err(e) => {
                self.failed(&e);
                Err(e)
            }
        }
    }

    /// Cuts off what a failed write left past `good_len`.
    fn cut_back(&mut self) -> io::Result<()> {
        if let Some(len) = self.cut_to {
            self.file.set_len(len)?;
            self.cut_to = None;
        }
        Ok(())
    }

    fn rotation_due(&self) -> bool {
        self.regular
            && self.max_file_bytes > 0
            && self.good_len >= self.max_file_bytes
            && self.rotation_retry.is_none_or(|t| Instant::now() >= t)
    }

    /// Renames the sealed file to `<name>.<last seq>` and starts a new one.
    fn rotate(&mut self) {
        self.rotation_retry = Some(Instant::now() + ROTATION_RETRY);
        if self.unsealed > 0 {
            return;
        }
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{:020}", self.seq));
        let rotated = PathBuf::from(name);
        if rotated.exists() {
            tracing::error!(path = %rotated.display(), "cannot rotate the audit log: the file exists");
            return;
        }
        if let Err(e) = std::fs::rename(&self.path, &rotated) {
            tracing::error!(error = %e, path = %self.path.display(), "cannot rotate the audit log");
            return;
        }
        tracing::info!(rotated = %rotated.display(), "audit log rotated");
        if self.reopen() {
            self.rotation_retry = None;
        }
    }

    /// Opens the configured path again (a new file if it was moved away);
    /// on failure keeps writing to the file it has.
    fn reopen(&mut self) -> bool {
        let opened = open_append(&self.path).and_then(|f| {
            let meta = f.metadata()?;
            Ok((f, meta))
        });
        match opened {
            Ok((f, meta)) => {
                self.file = f;
                self.regular = meta.is_file();
                self.good_len = meta.len();
                self.cut_to = None;
                // The new name (and a rotated file's) survive a crash.
                if self.regular {
                    if let Err(e) = File::open(dir_of(&self.path)).and_then(|d| d.sync_all()) {
                        tracing::warn!(error = %e, "cannot sync the audit log's directory");
                    }
                }
                tracing::info!(path = %self.path.display(), seq = self.seq, "audit log reopened");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, path = %self.path.display(), "cannot reopen the audit log; writing on to the file already open");
                false
            }
        }
    }

    fn failed(&mut self, e: &io::Error) {
        if self.regular {
            if let Err(e2) = self.file.set_len(self.good_len) {
                self.cut_to = Some(self.good_len);
                tracing::error!(error = %e2, "cannot cut a failed write off the audit log");
            }
        }
        self.failing += 1;
        self.shared.write_errors.fetch_add(1, Ordering::Relaxed);
        if self.failing.is_power_of_two() {
            tracing::error!(error = %e, failed_writes = self.failing, path = %self.path.display(), "cannot write the audit log");
        }
    }

    fn succeeded(&mut self) {
        if self.failing > 0 {
            tracing::warn!(
                failed_writes = self.failing,
                "the audit log is written again"
            );
            self.failing = 0;
        }
    }
}

/// Keeps a reused buffer from holding on to a large batch's memory.
fn shrink(buf: &mut Vec<u8>) {
    if buf.capacity() > 2 * CHUNK {
        *buf = Vec::new();
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// The end of an existing log.
#[derive(Debug, PartialEq, Eq)]
enum Tail {
    /// No file, an empty one, or not a regular file.
    Empty,
    Chained {
        seq: u64,
        head: [u8; 32],
        /// The last line is a checkpoint.
        sealed: bool,
        /// ... signed under a root key this node accepts but no longer signs
        /// with (a root-key rotation): the next checkpoint signs the tail
        /// again, so the log still opens once the old key is gone.
        sealed_under_old_key: bool,
    },
    /// Written before the chain existed.
    Unchained,
}

/// Reads the last line of `path`, cutting off a torn one. A last line that
/// is a checkpoint must carry `key`'s signature.
fn read_tail(path: &Path, key: &CheckpointKey) -> io::Result<Tail> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Tail::Empty),
        // Devices such as /dev/full may refuse reading; there is nothing to continue.
        Err(e) if !path.is_file() && path.exists() => {
            tracing::debug!(error = %e, "the audit log is not a regular file");
            return Ok(Tail::Empty);
        }
        Err(e) => return Err(e),
    };
    let meta = f.metadata()?;
    if !meta.is_file() || meta.len() == 0 {
        return Ok(Tail::Empty);
    }
    let len = meta.len();
    let start = len.saturating_sub(MAX_LINE as u64 + 1);
    f.seek(SeekFrom::Start(start))?;
    let mut window = Vec::with_capacity((len - start) as usize);
    Read::take(&mut f, len - start).read_to_end(&mut window)?;
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    if window.last() != Some(&b'\n') {
        let keep = match window.iter().rposition(|b| *b == b'\n') {
            Some(i) => i + 1,
            None if start == 0 => 0,
            None => {
                return Err(invalid(format!(
                    "the last line of {} is longer than {MAX_LINE} bytes: not an audit log",
                    path.display()
                )))
            }
        };
        let cut = start + keep as u64;
        tracing::warn!(
            path = %path.display(),
            bytes = len - cut,
            "the audit log ends in an incomplete line (a write interrupted by a crash); cutting it off"
        );
        // Opened for writing only now: an append-only file opens for reading.
        let w = OpenOptions::new().write(true).open(path)?;
        w.set_len(cut)?;
        w.sync_all()?;
        window.truncate(keep);
        if window.is_empty() {
            return Ok(Tail::Empty);
        }
    }
    let body = &window[..window.len() - 1];
    let line = match body.iter().rposition(|b| *b == b'\n') {
        Some(i) => &body[i + 1..],
        None if start == 0 => body,
        None => {
            return Err(invalid(format!(
                "the last line of {} is longer than {MAX_LINE} bytes: not an audit log",
                path.display()
            )))
        }
    };
    match serde_json::from_slice::<Link>(line) {
        Ok(l) => {
            let mut sealed_under_old_key = false;
            if let Some(cp) = &l.checkpoint {
                let mut prev = [0u8; 32];
                let mut sig = [0u8; 32];
                let signed = hex::decode_to_slice(&l.prev, &mut prev).is_ok()
                    && l.sig
                        .as_ref()
                        .is_some_and(|s| hex::decode_to_slice(s, &mut sig).is_ok())
                    && key.verify(cp.node_id, l.seq, &prev, cp.time_ms, &sig);
                if !signed {
                    return Err(invalid(format!(
                        "the last line of {} is a checkpoint without a valid signature (altered, \
                         or written under another root key); keep the file as evidence, run \
                         `arca audit verify` on it, and move it aside to start a new log",
                        path.display()
                    )));
                }
                sealed_under_old_key = !key.signs(cp.node_id, l.seq, &prev, cp.time_ms, &sig);
            }
            Ok(Tail::Chained {
                seq: l.seq,
                head: sha256(line),
                sealed: l.checkpoint.is_some(),
                sealed_under_old_key,
            })
        }
        Err(_) => match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(m)) if !m.contains_key("seq") => Ok(Tail::Unchained),
            _ => Err(invalid(format!(
                "the last line of {} is not an audit record, so its chain cannot be continued; \
                 keep the file as evidence, run `arca audit verify` on it, and move it aside to start a new log",
                path.display()
            ))),
        },
    }
}

/// The directory `path` is in.
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The newest `<name>.<20 digits>` beside `path` (size rotation's names).
fn newest_rotated(path: &Path) -> io::Result<Option<PathBuf>> {
    let dir = dir_of(path);
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    let mut newest: Option<String> = None;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let Ok(n) = e.file_name().into_string() else {
            continue;
        };
        let rotated = n
            .strip_prefix(name)
            .and_then(|s| s.strip_prefix('.'))
            .is_some_and(|s| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()));
        if rotated && newest.as_ref().is_none_or(|m| n > *m) {
            newest = Some(n);
        }
    }
    Ok(newest.map(|n| dir.join(n)))
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A directory under the system's temporary directory, removed on drop.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new() -> Self {
            let r = arca_crypto::random::bytes16().unwrap();
            let h = hex32(&sha256(&r));
            let name = std::str::from_utf8(&h[..16]).unwrap();
            let p = std::env::temp_dir().join(format!("arca-audit-{name}"));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub fn root() -> RootKey {
        RootKey::from_file_contents(&[7u8; 32]).unwrap()
    }

    pub fn key() -> CheckpointKey {
        CheckpointKey::from_root(&root())
    }

    pub fn config(path: &Path) -> AuditConfig {
        AuditConfig {
            // Long enough that only rotation, reopening and shutdown seal.
            checkpoint_interval: Duration::from_secs(3600),
            ..AuditConfig::new(path.to_path_buf(), 1)
        }
    }

    pub fn record(n: u64) -> Record<'static> {
        Record {
            time_ms: 1_700_000_000_000 + n,
            request_id: "5d9f6a3e-2b7c-4c1e-9f00-0123456789ab",
            node_id: 1,
            source: "127.0.0.1:50000",
            principal: Some("AKIAEXAMPLE"),
            operation: "Encrypt",
            arn: Some("arn:aws:iam::111122223333:user/app"),
            // Leaked: a test writes a few hundred records at most.
            key_id: Some(Box::leak(format!("key-{n}").into_boxed_str())),
            destination_key_id: None,
            outcome: "OK",
            status: 200,
        }
    }

    /// Writes `n` records, one after another, and stops the writer.
    pub async fn write_log(config: AuditConfig, first: u64, n: u64) {
        let (log, writer) = AuditLog::open(config, key()).unwrap();
        for i in first..first + n {
            log.record(&record(i)).await.unwrap();
        }
        drop(log);
        writer.finished().await;
    }

    pub fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::verify::{verify_files, VerifyOptions};
    use super::*;

    fn verify_ok(files: &[PathBuf]) -> super::verify::Summary {
        let key = key();
        verify_files(
            files,
            VerifyOptions {
                key: Some(&key),
                require_sealed: true,
            },
        )
        .unwrap_or_else(|f| panic!("{f}"))
    }

    #[tokio::test]
    async fn records_form_a_chain_sealed_at_shutdown() {
        let dir = TempDir::new();
        let path = dir.path().join("audit.jsonl");
        write_log(config(&path), 0, 5).await;
        let lines = lines(&path);
        assert_eq!(lines.len(), 6, "5 records and a closing checkpoint");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut prev = hex::encode(GENESIS);
        for (i, (l, raw)) in lines.iter().zip(text.lines()).enumerate() {
            assert_eq!(l["seq"], i as u64 + 1);
            assert_eq!(l["prev"], prev.as_str());
            prev = hex::encode(sha256(raw.as_bytes()));
        }
        assert_eq!(lines[0]["operation"], "Encrypt");
        assert_eq!(lines[4]["key_id"], "key-4");
        assert_eq!(lines[5]["checkpoint"]["node_id"], 1);
        let s = verify_ok(&[path]);
        assert_eq!((s.records, s.checkpoints, s.unsealed), (5, 1, 0));
        assert_eq!(s.last_checkpoint.unwrap().seq, 6);
    }

    #[tokio::test]
    async fn a_restart_continues_the_chain() {
        let dir = TempDir::new();
        let path = dir.path().join("audit.jsonl");
        write_log(config(&path), 0, 3).await;
        write_log(config(&path), 3, 3).await;
        let lines = lines(&path);
        assert_eq!(lines.len(), 8);
        assert_eq!(lines[4]["seq"], 5);
        assert_eq!(lines[4]["key_id"], "key-3");
        let s = verify_ok(&[path]);
        assert_eq!((s.records, s.checkpoints), (6, 2));
    }

    #[tokio::test]
    async fn a_torn_last_line_is_cut_off_and_the_chain_goes_on() {
        let dir = TempDir::new();
        let path = dir.path().join("audit.jsonl");
        write_log(config(&path), 0, 2).await;
        let whole = std::fs::read(&path).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":4,\"prev\":\"00").unwrap();
        drop(f);
        write_log(config(&path), 2, 1).await;
        let now = std::fs::read(&path).unwrap();
        assert!(now.starts_with(&whole));
        verify_ok(&[path]);
    }

    #[tokio::test]
    async fn an_unsealed_tail_from_a_crash_is_sealed_after_a_restart() {
        let dir = TempDir::new();
        let path = dir.path().join("audit.jsonl");
        write_log(config(&path), 0, 2).await;
        // Drop the closing checkpoint, as if the node had been killed.
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, kept).unwrap();
        let (log, writer) = AuditLog::open(config(&path), key()).unwrap();
        drop(log);
        writer.finished().await;
        let s = verify_ok(&[path]);
        assert_eq!((s.records, s.checkpoints), (2, 1));
    }

    #[tokio::test]
    async fn rotation_by_size_continues_the_chain_in_a_new_file() {
        let dir = TempDir::new();
        let path = dir.path().join("audit.jsonl");
        let cfg = AuditConfig {
            max_file_bytes: 1,
            ..config(&path)
        };
        write_log(cfg.clone(), 0, 3).await;
        let mut rotated: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p != &path)
            .collect();
        rotated.sort();
        assert_eq!(rotated.len(), 3, "{rotated:?}");
        // Named after their last line (the checkpoint): 2, 4 and 6.
        assert!(rotated[0]
            .to_str()
            .unwrap()
            .ends_with(".00000000000000000002"));
        assert!(rotated[2]
            .to_str()
            .unwrap()
            .ends_with(".00000000000000000006"));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        // A restart with the current file empty continues from the newest rotated one.
        write_log(cfg, 3, 1).await;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p != &path)
            .collect();
        files.sort();
        files.push(path);
        let s = verify_ok(&files);
        assert_eq!((s.records, s.checkpoints, s.files), (4, 4, 5));
    }

    #[tokio::test]
    async fn reopening_after_a_move_starts_a_new_file_on_the_same_chain() {
        let dir = TempDir::new();
        let path = dir.path().join("audit.jsonl");
        let moved = dir.path().join("audit.1");
        let (log, writer) = AuditLog::open(config(&path), key()).unwrap();
        log.record(&record(0)).await.unwrap();
        log.record(&record(1)).await.unwrap();
        std::fs::rename(&path, &moved).unwrap();
        log.reopen_handle().reopen();
        // The first may still reach the moved file; the second cannot.
        log.record(&record(2)).await.unwrap();
        log.record(&record(3)).await.unwrap();
        drop(log);
        writer.finished().await;
        let old = lines(&moved);
        let new = lines(&path);
        assert!(old.last().unwrap()["checkpoint"].is_object(), "sealed");
        assert_eq!(new.iter().filter(|l| l["key_id"] == "key-3").count(), 1);
        let s = verify_ok(&[moved, path]);
        assert_eq!(s.records, 4);
    }

    #[tokio::test]
    async fn a_log_from_before_the_chain_is_moved_aside() {
        let dir = TempDir::new();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "{\"time_ms\":1,\"operation\":\"Encrypt\"}\n").unwrap();
        write_log(config(&path), 0, 1).await;
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names
            .iter()
            .any(|n| n.starts_with("audit.jsonl-unchained-")));
        let s = verify_ok(&[path]);
        assert_eq!(s.records, 1);
    }

    #[tokio::test]
    async fn a_log_that_does_not_end_in_a_record_is_refused() {
        let dir = TempDir::new();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "not json\n").unwrap();
        let Err(e) = AuditLog::open(config(&path), key()) else {
            panic!("opened a log that does not end in a record");
        };
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("not an audit record"), "{e}");
    }

    #[tokio::test]
    async fn a_log_ending_in_a_forged_checkpoint_is_refused() {
        let dir = TempDir::new();
        let path = dir.path().join("audit.jsonl");
        write_log(config(&path), 0, 1).await;
        let other = CheckpointKey::from_root(&RootKey::from_file_contents(&[8u8; 32]).unwrap());
        let Err(e) = AuditLog::open(config(&path), other) else {
            panic!("continued a log signed under another root key");
        };
        assert!(e.to_string().contains("without a valid signature"), "{e}");
        let text = std::fs::read_to_string(&path).unwrap();
        let (records, checkpoint) = text.trim_end().rsplit_once('\n').unwrap();
        let mut cp: serde_json::Value = serde_json::from_str(checkpoint).unwrap();
        cp["checkpoint"]["time_ms"] = 1.into();
        std::fs::write(&path, format!("{records}\n{cp}\n")).unwrap();
        assert!(AuditLog::open(config(&path), key()).is_err());
    }

    /// A root-key rotation: the node holds the old and the new key, then
    /// only the new one; its log goes on throughout, and verifies offline
    /// with both keys (not with either alone).
    #[tokio::test]
    async fn a_log_continues_across_a_root_key_rotation() {
        let dir = TempDir::new();
        let path = dir.path().join("audit.jsonl");
        write_log(config(&path), 0, 2).await;
        let old = root();
        let new = RootKey::from_file_contents(&[8u8; 32]).unwrap();
        let both = || CheckpointKey::from_roots(&[&old, &new]).unwrap();
        // A run with both keys that records nothing still signs the tail
        // under the new key as it stops.
        let (log, writer) = AuditLog::open(config(&path), both()).unwrap();
        drop(log);
        writer.finished().await;
        let (log, writer) = AuditLog::open(config(&path), CheckpointKey::from_root(&new)).unwrap();
        drop(log);
        writer.finished().await;
        let (log, writer) = AuditLog::open(config(&path), both()).unwrap();
        log.record(&record(2)).await.unwrap();
        drop(log);
        writer.finished().await;
        // The tail is signed under the new key now.
        let (log, writer) = AuditLog::open(config(&path), CheckpointKey::from_root(&new)).unwrap();
        log.record(&record(3)).await.unwrap();
        drop(log);
        writer.finished().await;
        fn opts(key: Option<&CheckpointKey>) -> super::verify::VerifyOptions<'_> {
            super::verify::VerifyOptions {
                key,
                require_sealed: true,
            }
        }
        let s =
            super::verify::verify_files(std::slice::from_ref(&path), opts(Some(&both()))).unwrap();
        assert_eq!(s.records, 4);
        for one in [key(), CheckpointKey::from_root(&new)] {
            assert!(
                super::verify::verify_files(std::slice::from_ref(&path), opts(Some(&one))).is_err()
            );
        }
        assert!(CheckpointKey::from_roots(&[]).is_none());
    }

    #[tokio::test]
    async fn fail_closed_refuses_and_best_effort_drops_when_the_disk_is_full() {
        let full = Path::new("/dev/full");
        let (log, writer) = AuditLog::open(config(full), key()).unwrap();
        assert_eq!(log.record(&record(0)).await, Err(AuditError::WriteFailed));
        assert_eq!((log.failures(), log.dropped()), (1, 0));
        let api = ApiError::from(AuditError::WriteFailed);
        assert_eq!((api.status, api.code), (503, "DependencyTimeoutException"));
        drop(log);
        writer.finished().await;

        let cfg = AuditConfig {
            mode: AuditMode::BestEffort,
            ..config(full)
        };
        let (log, writer) = AuditLog::open(cfg, key()).unwrap();
        assert_eq!(log.record(&record(0)).await, Ok(()));
        drop(log);
        writer.finished().await;
    }

    #[tokio::test]
    async fn best_effort_counts_what_the_writer_could_not_write() {
        let cfg = AuditConfig {
            mode: AuditMode::BestEffort,
            ..config(Path::new("/dev/full"))
        };
        let (log, writer) = AuditLog::open(cfg, key()).unwrap();
        log.record(&record(0)).await.unwrap();
        let shared = log.shared.clone();
        drop(log);
        writer.finished().await;
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(shared.failures.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn many_concurrent_records_share_writes() {
        let dir = TempDir::new();
        let path = dir.path().join("audit.jsonl");
        let (log, writer) = AuditLog::open(config(&path), key()).unwrap();
        let log = Arc::new(log);
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move { log.record(&record(i)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(log.last_seq(), 200);
        drop(log);
        writer.finished().await;
        let s = verify_ok(&[path]);
        assert_eq!(s.records, 200);
    }

    #[test]
    fn fields_from_the_request_are_capped() {
        let long = format!("TrentService.{}", "A".repeat(420_000));
        let source = "é".repeat(100);
        let r = Record {
            operation: &long,
            source: &source,
            ..record(0)
        };
        let mut line = Vec::new();
        r.encode(&mut line);
        assert!(line.len() < 1024, "{}", line.len());
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let op = v["operation"].as_str().unwrap();
        assert!(op.starts_with("TrentService.AAA"));
        assert!(op.ends_with(&format!("…[+{} bytes]", long.len() - MAX_FIELD)));
        // Cut on a character boundary: 64 two-byte characters fit.
        assert_eq!(
            v["source"].as_str().unwrap(),
            format!("{}…[+72 bytes]", "é".repeat(64))
        );
        assert_eq!(v["principal"], "AKIAEXAMPLE");
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        for s in [
            "",
            "plain",
            "quote \" and backslash \\",
            "line\nbreak\r\ttab\u{8}\u{c}",
            &all_controls,
            "\u{7f} é 鍵 🗝",
            "\\u0000",
        ] {
            let mut out = Vec::new();
            push_str(&mut out, s, usize::MAX);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }

    #[test]
    fn a_record_is_one_json_object_in_the_documented_order() {
        let r = Record {
            destination_key_id: Some("6f2a…dest"),
            ..record(7)
        };
        let mut line = Vec::new();
        r.encode(&mut line);
        let text = String::from_utf8(line).unwrap();
        assert_eq!(
            text,
            "{\"time_ms\":1700000000007,\"request_id\":\"5d9f6a3e-2b7c-4c1e-9f00-0123456789ab\",\
             \"node_id\":1,\"source\":\"127.0.0.1:50000\",\"principal\":\"AKIAEXAMPLE\",\
             \"operation\":\"Encrypt\",\"arn\":\"arn:aws:iam::111122223333:user/app\",\
             \"key_id\":\"key-7\",\"destination_key_id\":\"6f2a…dest\",\"outcome\":\"OK\",\"status\":200}"
        );
        // A request refused before it was authenticated names no one and no key:
        // those fields are left out (a JSON reader sees null, as before).
        let refused = Record {
            principal: None,
            arn: None,
            key_id: None,
            outcome: "InvalidSignatureException",
            status: 400,
            time_ms: 0,
            node_id: u64::MAX,
            ..record(0)
        };
        let mut line = Vec::new();
        refused.encode(&mut line);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert!(v.get("principal").is_none() && v.get("key_id").is_none());
        assert_eq!(v["time_ms"], 0);
        assert_eq!(v["node_id"], u64::MAX);
        assert_eq!(v["outcome"], "InvalidSignatureException");
        assert_eq!(v["status"], 400);
    }

    #[test]
    fn checkpoint_signatures_bind_every_field() {
        let k = key();
        let prev = [3u8; 32];
        let sig = k.sign(1, 10, &prev, 99);
        assert!(k.verify(1, 10, &prev, 99, &sig));
        assert!(!k.verify(2, 10, &prev, 99, &sig));
        assert!(!k.verify(1, 11, &prev, 99, &sig));
        assert!(!k.verify(1, 10, &[4u8; 32], 99, &sig));
        assert!(!k.verify(1, 10, &prev, 98, &sig));
        let other = CheckpointKey::from_root(&RootKey::from_file_contents(&[8u8; 32]).unwrap());
        assert!(!other.verify(1, 10, &prev, 99, &sig));
        assert_eq!(format!("{k:?}"), "CheckpointKey([REDACTED])");
    }
}
