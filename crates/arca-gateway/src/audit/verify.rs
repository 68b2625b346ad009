//! Offline verification of audit log files (`arca audit verify`): the hash
//! chain that [`crate::audit`] writes, and with the checkpoint key the
//! checkpoints' signatures. Stops at the first problem and says where.
//!
//! What it detects, given the files in chain order:
//! - a line edited anywhere before the last line (the next line's `prev`
//!   no longer matches), a line removed (a gap in `seq`), inserted or
//!   duplicated (a `seq` that does not go up), lines reordered, a missing
//!   file between two given ones, a torn or non-JSON line;
//! - with the key: a forged or altered checkpoint, and any rewrite that
//!   recomputes the hashes of the lines after an edit (the next checkpoint's
//!   signature no longer matches);
//! - lines after the last checkpoint are *unsealed*: reported, and a failure
//!   with `require_sealed`.
//!
//! What it cannot detect: without the key, a rewrite that recomputes every
//! hash after the change; with it, changes to unsealed lines made the same
//! way; the removal of whole lines from the end of the newest file back to a
//! checkpoint, or of whole files from either end of the list (compare with the
//! node's `arca_audit_last_seq`, or a copy shipped elsewhere); and anything
//! done by someone who holds the root key.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::{hex32, sha256, CheckpointKey, Link, GENESIS, MAX_LINE};

#[derive(Debug, Default)]
pub struct VerifyOptions<'a> {
    /// Checks checkpoint signatures; without it they are not checked.
    pub key: Option<&'a CheckpointKey>,
    /// Lines after the last checkpoint are a failure, not a warning.
    pub require_sealed: bool,
}

/// A verified log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    /// Request records (checkpoints not counted).
    pub records: u64,
    pub checkpoints: u64,
    /// The first and last `seq` seen.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The first line given is the chain's first (seq 1 from the genesis);
    /// otherwise earlier lines were not checked.
    pub from_genesis: bool,
    pub last_checkpoint: Option<CheckpointSeen>,
    /// Lines after the last checkpoint.
    pub unsealed: u64,
    /// Checkpoint signatures were checked.
    pub signatures_checked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSeen {
    pub file: PathBuf,
    pub line: u64,
    pub seq: u64,
    pub node_id: u64,
    pub time_ms: u64,
}

/// The first problem found: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: PathBuf,
    /// 1-based; 0 when the file could not be read at all.
    pub line: u64,
    pub seq: Option<u64>,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Unreadable(String),
    TooLong,
    /// The last line has no newline: a torn write, or cut in the middle.
    Incomplete,
    NotARecord(String),
    /// `seq` 1 does not chain from the genesis value.
    BadGenesis,
    /// `seq` jumps from `expected - 1` to `found`.
    Missing {
        expected: u64,
        found: u64,
        /// The jump is at the start of a file.
        file_start: bool,
    },
    /// `found` comes where `expected` belongs, and `expected` right after.
    Swapped {
        expected: u64,
        found: u64,
    },
    /// `seq` does not go up from the line before.
    NotIncreasing {
        previous: u64,
    },
    /// This line's hash is not the next line's `prev`.
    Edited {
        next_file: PathBuf,
        next_line: u64,
    },
    BadSignature,
    Unsealed {
        lines: u64,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        f.write_str(": ")?;
        match &self.problem {
            Problem::Unreadable(e) => write!(f, "cannot read the file: {e}"),
            Problem::TooLong => write!(f, "line longer than {MAX_LINE} bytes: not an audit record"),
            Problem::Incomplete => f.write_str(
                "the last line is incomplete (no newline): the file was cut in the middle of a record",
            ),
            Problem::NotARecord(e) => write!(f, "not an audit record: {e}"),
            Problem::BadGenesis => f.write_str(
                "the first record does not chain from the genesis value: it was edited, or earlier records were removed",
            ),
            Problem::Missing { expected, found, file_start } => {
                write!(f, "seq jumps from {} to {found}: ", expected - 1)?;
                if found - expected == 1 {
                    write!(f, "record {expected} is missing (deleted)")?;
                } else {
                    write!(f, "records {expected} to {} are missing (deleted)", found - 1)?;
                }
                if *file_start {
                    f.write_str(", or a file between this one and the previous one was not given or was removed")?;
                }
                Ok(())
            }
            Problem::Swapped { expected, found } => write!(
                f,
                "record {found} comes before record {expected}: records were reordered"
            ),
            Problem::NotIncreasing { previous } => write!(
                f,
                "seq does not go up from {previous} on the line before: a record was inserted, duplicated or moved here"
            ),
            Problem::Edited { next_file, next_line } => write!(
                f,
                "record edited: its SHA-256 is not the prev of the next line ({}:{next_line}) \
                 (or that line's prev was edited)",
                next_file.display()
            ),
            Problem::BadSignature => f.write_str(
                "checkpoint signature invalid: the checkpoint was forged or altered, or lines before it were \
                 rewritten with recomputed hashes (or the root key is not this cluster's)",
            ),
            Problem::Unsealed { lines } => write!(
                f,
                "{lines} line(s) after the last checkpoint are unsealed (--require-sealed): \
                 the end of the log may have been cut or rewritten"
            ),
        }
    }
}

impl std::error::Error for Finding {}

struct Last {
    seq: u64,
    hash: [u8; 32],
    file: usize,
    line: u64,
}

/// Feeds files in chain order; [`Verifier::finish`] gives the summary.
pub struct Verifier<'a> {
    opts: VerifyOptions<'a>,
    files: Vec<PathBuf>,
    last: Option<Last>,
    /// A gap in `seq`, reported once the next line shows whether it is
    /// a swap.
    gap: Option<Finding>,
    records: u64,
    checkpoints: u64,
    first_seq: Option<u64>,
    last_checkpoint: Option<CheckpointSeen>,
    unsealed: u64,
}

impl<'a> Verifier<'a> {
    pub fn new(opts: VerifyOptions<'a>) -> Self {
        Self {
            opts,
            files: Vec::new(),
            last: None,
            gap: None,
            records: 0,
            checkpoints: 0,
            first_seq: None,
            last_checkpoint: None,
            unsealed: 0,
        }
    }

    /// Checks the next file's lines.
    pub fn file(&mut self, name: &Path, mut reader: impl BufRead) -> Result<(), Finding> {
        self.files.push(name.to_path_buf());
        let f = self.files.len() - 1;
        let mut buf = Vec::with_capacity(1024);
        let mut n = 0u64;
        loop {
            buf.clear();
            let read = Read::take(&mut reader, MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| self.finding(f, n + 1, None, Problem::Unreadable(e.to_string())))?;
            if read == 0 {
                return Ok(());
            }
            n += 1;
            if buf.last() != Some(&b'\n') {
                let p = if buf.len() > MAX_LINE {
                    Problem::TooLong
                } else {
                    Problem::Incomplete
                };
                return Err(self.finding(f, n, None, p));
            }
            buf.pop();
            self.line(f, n, &buf)?;
        }
    }

    fn finding(&self, file: usize, line: u64, seq: Option<u64>, problem: Problem) -> Finding {
        Finding {
            file: self.files[file].clone(),
            line,
            seq,
            problem,
        }
    }

    fn line(&mut self, f: usize, n: u64, bytes: &[u8]) -> Result<(), Finding> {
        let link: Link = serde_json::from_slice(bytes)
            .map_err(|e| self.finding(f, n, None, Problem::NotARecord(e.to_string())))?;
        let seq = link.seq;
        if let Some(mut gap) = self.gap.take() {
            if let Problem::Missing {
                expected, found, ..
            } = gap.problem
            {
                if seq == expected {
                    gap.problem = Problem::Swapped { expected, found };
                }
            }
            return Err(gap);
        }
        match &self.last {
            None => {
                if seq == 0 {
                    return Err(self.finding(f, n, Some(0), Problem::NotARecord("seq 0".into())));
                }
                if seq == 1 && link.prev.as_bytes() != hex32(&GENESIS) {
                    return Err(self.finding(f, n, Some(1), Problem::BadGenesis));
                }
                self.first_seq = Some(seq);
            }
            Some(last) => {
                let expected = last.seq.checked_add(1).ok_or_else(|| {
                    self.finding(
                        f,
                        n,
                        Some(seq),
                        Problem::NotARecord("seq out of range".into()),
                    )
                })?;
                if seq < expected {
                    let previous = last.seq;
                    return Err(self.finding(f, n, Some(seq), Problem::NotIncreasing { previous }));
                }
                if seq > expected {
                    self.gap = Some(self.finding(
                        f,
                        n,
                        Some(seq),
                        Problem::Missing {
                            expected,
                            found: seq,
                            file_start: n == 1 && last.file != f,
                        },
                    ));
                    return Ok(());
                }
                if link.prev.as_bytes() != hex32(&last.hash) {
                    let (file, line, seq) = (last.file, last.line, last.seq);
                    let p = Problem::Edited {
                        next_file: self.files[f].clone(),
                        next_line: n,
                    };
                    return Err(self.finding(file, line, Some(seq), p));
                }
            }
        }
        match &link.checkpoint {
            Some(cp) => {
                if let Some(key) = self.opts.key {
                    let mut prev = [0u8; 32];
                    let mut sig = [0u8; 32];
                    let decoded = hex::decode_to_slice(&link.prev, &mut prev).is_ok()
                        && link
                            .sig
                            .as_ref()
                            .is_some_and(|s| hex::decode_to_slice(s, &mut sig).is_ok());
                    if !decoded || !key.verify(cp.node_id, seq, &prev, cp.time_ms, &sig) {
                        return Err(self.finding(f, n, Some(seq), Problem::BadSignature));
                    }
                }
                self.checkpoints += 1;
                self.unsealed = 0;
                self.last_checkpoint = Some(CheckpointSeen {
                    file: self.files[f].clone(),
                    line: n,
                    seq,
                    node_id: cp.node_id,
                    time_ms: cp.time_ms,
                });
            }
            None => {
                self.records += 1;
                self.unsealed += 1;
            }
        }
        self.last = Some(Last {
            seq,
            hash: sha256(bytes),
            file: f,
            line: n,
        });
        Ok(())
    }

    pub fn finish(mut self) -> Result<Summary, Finding> {
        if let Some(gap) = self.gap.take() {
            return Err(gap);
        }
        if self.opts.require_sealed && self.unsealed > 0 {
            if let Some(last) = &self.last {
                let lines = self.unsealed;
                return Err(self.finding(
                    last.file,
                    last.line,
                    Some(last.seq),
                    Problem::Unsealed { lines },
                ));
            }
        }
        Ok(Summary {
            files: self.files.len(),
            records: self.records,
            checkpoints: self.checkpoints,
            first_seq: self.first_seq,
            last_seq: self.last.as_ref().map(|l| l.seq),
            from_genesis: self.first_seq.is_none_or(|s| s == 1),
            last_checkpoint: self.last_checkpoint,
            unsealed: self.unsealed,
            signatures_checked: self.opts.key.is_some(),
        })
    }
}

/// Verifies `paths`, in chain order (rotated files oldest first, then the
/// current file).
pub fn verify_files(paths: &[PathBuf], opts: VerifyOptions<'_>) -> Result<Summary, Finding> {
    let mut v = Verifier::new(opts);
    for p in paths {
        let file = std::fs::File::open(p).map_err(|e| Finding {
            file: p.clone(),
            line: 0,
            seq: None,
            problem: Problem::Unreadable(e.to_string()),
        })?;
        v.file(p, BufReader::with_capacity(256 * 1024, file))?;
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::test_support::*;
    use crate::audit::{AuditConfig, AuditLog, CheckpointKey};
    use arca_crypto::wrap::RootKey;

    /// A real log: 6 records, a checkpoint after the third (by reopening),
    /// and one at shutdown.
    async fn real_log() -> (TempDir, Vec<String>) {
        let dir = TempDir::new();
        let path = dir.path().join("audit.jsonl");
        let (log, writer) = AuditLog::open(config(&path), key()).unwrap();
        for i in 0..3 {
            log.record(&record(i)).await.unwrap();
        }
        log.reopen_handle().reopen();
        // Once the reopen's checkpoint is written, the next record follows it.
        for _ in 0..1000 {
            if log.last_seq() == 4 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(log.last_seq(), 4);
        for i in 3..6 {
            log.record(&record(i)).await.unwrap();
        }
        drop(log);
        writer.finished().await;
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        assert_eq!(lines.len(), 8);
        (dir, lines)
    }

    fn check(
        lines: &[String],
        key: Option<&CheckpointKey>,
        sealed: bool,
    ) -> Result<Summary, Finding> {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let mut v = Verifier::new(VerifyOptions {
            key,
            require_sealed: sealed,
        });
        v.file(Path::new("audit.jsonl"), text.as_bytes())?;
        v.finish()
    }

    fn with_key(lines: &[String]) -> Result<Summary, Finding> {
        check(lines, Some(&key()), false)
    }

    /// Recomputes seq and prev from line `from` on, as someone covering an
    /// edit would.
    fn rechain(lines: &mut [String], from: usize) {
        for i in from..lines.len() {
            let mut v: serde_json::Value = serde_json::from_str(&lines[i]).unwrap();
            let prev = if i == 0 {
                hex::encode(GENESIS)
            } else {
                hex::encode(sha256(lines[i - 1].as_bytes()))
            };
            v["seq"] = (i as u64 + 1).into();
            v["prev"] = prev.into();
            lines[i] = v.to_string();
        }
    }

    #[tokio::test]
    async fn an_untouched_log_verifies() {
        let (_dir, lines) = real_log().await;
        let s = with_key(&lines).unwrap();
        assert_eq!(
            (
                s.records,
                s.checkpoints,
                s.unsealed,
                s.first_seq,
                s.last_seq
            ),
            (6, 2, 0, Some(1), Some(8))
        );
        assert!(s.from_genesis && s.signatures_checked);
        assert_eq!(s.last_checkpoint.unwrap().line, 8);
        assert!(check(&lines, None, true).is_ok());
    }

    #[tokio::test]
    async fn an_edited_field_names_the_record() {
        let (_dir, mut lines) = real_log().await;
        lines[1] = lines[1].replace(
            "\"outcome\":\"OK\"",
            "\"outcome\":\"AccessDeniedException\"",
        );
        let f = check(&lines, None, false).unwrap_err();
        assert_eq!((f.line, f.seq), (2, Some(2)));
        assert!(
            matches!(f.problem, Problem::Edited { next_line: 3, .. }),
            "{f}"
        );
        assert!(
            f.to_string()
                .starts_with("audit.jsonl:2 (seq 2): record edited"),
            "{f}"
        );
    }

    #[tokio::test]
    async fn a_deleted_record_is_a_gap() {
        let (_dir, mut lines) = real_log().await;
        lines.remove(2);
        let f = with_key(&lines).unwrap_err();
        assert_eq!((f.line, f.seq), (3, Some(4)));
        assert!(
            matches!(
                f.problem,
                Problem::Missing {
                    expected: 3,
                    found: 4,
                    ..
                }
            ),
            "{f}"
        );
        assert!(f.to_string().contains("record 3 is missing"), "{f}");
    }

    #[tokio::test]
    async fn swapped_records_are_reported_as_reordered() {
        let (_dir, mut lines) = real_log().await;
        lines.swap(4, 5);
        let f = check(&lines, None, false).unwrap_err();
        assert_eq!((f.line, f.seq), (5, Some(6)));
        assert_eq!(
            f.problem,
            Problem::Swapped {
                expected: 5,
                found: 6
            }
        );
    }

    #[tokio::test]
    async fn an_inserted_record_is_found() {
        let (_dir, mut lines) = real_log().await;
        // A copy of record 2, chained correctly after record 2 and given its
        // successor's seq: the real record 3 then repeats a seq.
        let mut fake: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        fake["seq"] = 3.into();
        fake["prev"] = hex::encode(sha256(lines[1].as_bytes())).into();
        fake["key_id"] = "attacker-key".into();
        lines.insert(2, fake.to_string());
        let f = check(&lines, None, false).unwrap_err();
        assert_eq!((f.line, f.seq), (4, Some(3)));
        assert_eq!(f.problem, Problem::NotIncreasing { previous: 3 });
        // Renumbered and rechained, it passes the chain — but not the
        // checkpoint after it.
        rechain(&mut lines, 2);
        assert!(check(&lines, None, false).is_ok());
        let f = with_key(&lines).unwrap_err();
        assert_eq!(
            (f.line, f.seq, f.problem.clone()),
            (5, Some(5), Problem::BadSignature)
        );
    }

    #[tokio::test]
    async fn an_edit_covered_by_recomputed_hashes_fails_the_next_checkpoint() {
        let (_dir, mut lines) = real_log().await;
        lines[0] = lines[0].replace("AKIAEXAMPLE", "AKIAOTHERKEY");
        rechain(&mut lines, 1);
        assert!(
            check(&lines, None, true).is_ok(),
            "undetectable without the key"
        );
        let f = with_key(&lines).unwrap_err();
        assert_eq!((f.line, f.problem.clone()), (4, Problem::BadSignature));
    }

    #[tokio::test]
    async fn a_truncated_tail_is_unsealed() {
        let (_dir, mut lines) = real_log().await;
        lines.truncate(6); // the last checkpoint and record 6 gone
        let s = with_key(&lines).unwrap();
        assert_eq!((s.unsealed, s.last_checkpoint.unwrap().seq), (2, 4));
        let f = check(&lines, Some(&key()), true).unwrap_err();
        assert_eq!(
            (f.line, f.problem.clone()),
            (6, Problem::Unsealed { lines: 2 })
        );
        // Cut in the middle of a line.
        let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        text.truncate(text.len() - 10);
        let mut v = Verifier::new(VerifyOptions::default());
        let f = v.file(Path::new("a"), text.as_bytes()).unwrap_err();
        assert_eq!((f.line, f.problem), (6, Problem::Incomplete));
    }

    #[tokio::test]
    async fn a_forged_checkpoint_fails_with_the_key_only() {
        let (_dir, mut lines) = real_log().await;
        let mut cp: serde_json::Value = serde_json::from_str(&lines[7]).unwrap();
        cp["sig"] = hex::encode([0u8; 32]).into();
        lines[7] = cp.to_string();
        assert!(check(&lines, None, true).is_ok());
        let f = with_key(&lines).unwrap_err();
        assert_eq!(
            (f.line, f.seq, f.problem.clone()),
            (8, Some(8), Problem::BadSignature)
        );
        // A root key of another cluster does not verify real ones either.
        let (_dir, lines) = real_log().await;
        let other = CheckpointKey::from_root(&RootKey::from_file_contents(&[9u8; 32]).unwrap());
        let f = check(&lines, Some(&other), false).unwrap_err();
        assert_eq!((f.line, f.problem), (4, Problem::BadSignature));
    }

    #[tokio::test]
    async fn the_first_record_must_chain_from_the_genesis() {
        let (_dir, mut lines) = real_log().await;
        lines[0] = lines[0].replace(&hex::encode(GENESIS), &"1".repeat(64));
        let f = check(&lines, None, false).unwrap_err();
        assert_eq!((f.line, f.problem), (1, Problem::BadGenesis));
        // Starting later in the chain is allowed, and said.
        let (_dir, lines) = real_log().await;
        let s = with_key(&lines[3..]).unwrap();
        assert!(!s.from_genesis);
        assert_eq!(s.first_seq, Some(4));
    }

    #[tokio::test]
    async fn garbage_and_long_lines_are_not_records() {
        let (_dir, mut lines) = real_log().await;
        lines[2] = "hello".into();
        let f = check(&lines, None, false).unwrap_err();
        assert!(
            matches!(f.problem, Problem::NotARecord(_)) && f.line == 3,
            "{f}"
        );
        lines[2] = "x".repeat(MAX_LINE + 5);
        let f = check(&lines, None, false).unwrap_err();
        assert_eq!((f.line, f.problem), (3, Problem::TooLong));
    }

    #[tokio::test]
    async fn a_missing_file_between_two_is_found() {
        let dir = TempDir::new();
        let path = dir.path().join("audit.jsonl");
        let cfg = AuditConfig {
            max_file_bytes: 1,
            ..config(&path)
        };
        write_log(cfg, 0, 3).await;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p != &path)
            .collect();
        files.sort();
        let k = key();
        let opts = || VerifyOptions {
            key: Some(&k),
            require_sealed: true,
        };
        assert!(verify_files(&files, opts()).is_ok());
        let f = verify_files(&[files[0].clone(), files[2].clone()], opts()).unwrap_err();
        assert_eq!((&f.file, f.line), (&files[2], 1));
        assert!(
            f.to_string()
                .contains("a file between this one and the previous one"),
            "{f}"
        );
        let f = verify_files(&[files[1].clone(), files[0].clone()], opts()).unwrap_err();
        assert_eq!(f.problem, Problem::NotIncreasing { previous: 4 });
        let f = verify_files(&[dir.path().join("nope")], opts()).unwrap_err();
        assert!(matches!(f.problem, Problem::Unreadable(_)));
    }
}
