//! `arca audit verify`, and the server's side of the audit log: the `[audit]`
//! settings and reopening the file on SIGHUP.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use arca_crypto::wrap::RootKey;
use arca_gateway::audit::verify::{verify_files, Summary, VerifyOptions};
use arca_gateway::audit::{
    AuditConfig, AuditLog, AuditWriter, CheckpointKey, ReopenHandle, DEFAULT_MAX_FILE_BYTES,
};
use clap::Subcommand;

use crate::config::{read_secret_file, AuditSection};

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Check audit log files offline: print the first edited, removed,
    /// inserted or reordered line and exit with status 1, or print a summary.
    Verify {
        /// The cluster's root key file: also check checkpoint signatures
        /// (without it, a rewrite that recomputes every hash goes unnoticed).
        /// Given twice (old and new) for a log written across a root-key
        /// rotation: a checkpoint may be signed under either.
        #[arg(long, env = "ARCA_ROOT_KEY_FILE")]
        root_key_file: Vec<PathBuf>,
        /// Fail if lines follow the last checkpoint, instead of warning. A
        /// stopped node's log ends in a checkpoint; a running one's may not.
        #[arg(long)]
        require_sealed: bool,
        /// The files in chain order: rotated files oldest first, then the
        /// current one (`audit.jsonl.* audit.jsonl` lists them so).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(c: AuditCmd) -> anyhow::Result<()> {
    match c {
        AuditCmd::Verify {
            root_key_file,
            require_sealed,
            files,
        } => {
            let mut roots = Vec::with_capacity(root_key_file.len());
            for p in &root_key_file {
                roots.push(
                    RootKey::from_file_contents(&read_secret_file(p, "root key")?)
                        .with_context(|| format!("invalid root key file {}", p.display()))?,
                );
            }
            let key = CheckpointKey::from_roots(&roots.iter().collect::<Vec<_>>());
            let opts = VerifyOptions {
                key: key.as_ref(),
                require_sealed,
            };
            match verify_files(&files, opts) {
                Ok(s) => {
                    print!("{}", report(&s));
                    Ok(())
                }
                Err(finding) => {
                    // The finding is the answer, not a failure of the tool:
                    // printed as it is, and the exit status says it.
                    eprintln!("FAILED: {finding}");
                    std::process::exit(1);
                }
            }
        }
    }
}

fn report(s: &Summary) -> String {
    let mut out = String::new();
    let range = match (s.first_seq, s.last_seq) {
        (Some(a), Some(b)) => format!(", seq {a} to {b}"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "OK: {} records and {} checkpoints in {} file(s){range}",
        s.records, s.checkpoints, s.files
    );
    match &s.last_checkpoint {
        Some(c) => {
            let _ = writeln!(
                out,
                "last checkpoint: seq {} at {}:{}, node {}, {} ({})",
                c.seq,
                c.file.display(),
                c.line,
                c.node_id,
                utc(c.time_ms),
                if s.signatures_checked {
                    "signature verified"
                } else {
                    "signature not checked"
                }
            );
        }
        None => out.push_str("last checkpoint: none\n"),
    }
    if s.unsealed > 0 {
        let _ = writeln!(
            out,
            "warning: {} line(s) after the last checkpoint are unsealed: \
             cutting or rewriting them would go unnoticed (the node seals within a second, and on shutdown)",
            s.unsealed
        );
    }
    if !s.signatures_checked {
        out.push_str(
            "warning: checkpoint signatures not checked (no --root-key-file): \
             a log rewritten with recomputed hashes would pass\n",
        );
    }
    if !s.from_genesis {
        let _ = writeln!(
            out,
            "warning: the chain starts at seq {}, not at its first record: earlier files were not given",
            s.first_seq.unwrap_or(0)
        );
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Opens the audit log with the `[audit]` settings and reopens it on every
/// SIGHUP from now on (SIGHUP no longer stops the process).
pub fn open_log(
    path: PathBuf,
    node_id: u64,
    settings: &AuditSection,
    key: CheckpointKey,
) -> anyhow::Result<(AuditLog, AuditWriter)> {
    let interval = settings.checkpoint_interval_ms.unwrap_or(1000);
    if interval == 0 {
        bail!("[audit] checkpoint_interval_ms must be at least 1");
    }
    let config = AuditConfig {
        mode: settings.mode.unwrap_or_default(),
        max_file_bytes: settings.max_file_bytes.unwrap_or(DEFAULT_MAX_FILE_BYTES),
        checkpoint_interval: Duration::from_millis(interval),
        ..AuditConfig::new(path.clone(), node_id)
    };
    let mode = config.mode;
    let (log, writer) = AuditLog::open(config, key)
        .with_context(|| format!("cannot open the audit log {}", path.display()))?;
    reopen_on_sighup(log.reopen_handle())?;
    tracing::info!(path = %path.display(), ?mode, "audit log");
    Ok((log, writer))
}

#[cfg(unix)]
fn reopen_on_sighup(log: ReopenHandle) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reopening the audit log");
            log.reopen();
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn reopen_on_sighup(_: ReopenHandle) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn the_report_says_what_was_not_checked() {
        let s = Summary {
            files: 2,
            records: 10,
            checkpoints: 3,
            first_seq: Some(5),
            last_seq: Some(17),
            from_genesis: false,
            last_checkpoint: None,
            unsealed: 2,
            signatures_checked: false,
        };
        let r = report(&s);
        assert!(r.starts_with("OK: 10 records and 3 checkpoints in 2 file(s), seq 5 to 17\n"));
        assert!(r.contains("2 line(s) after the last checkpoint are unsealed"));
        assert!(r.contains("signatures not checked"));
        assert!(r.contains("starts at seq 5"));
    }
}
