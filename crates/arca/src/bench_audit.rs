//! `arca bench audit`: what the audit log costs per request, in process.
//! First the record's encoding alone (an Encrypt request's record, as the
//! gateway makes it); then the whole path a request waits for in
//! fail-closed mode — encode, queue, chain (SHA-256 of the line), `write` to
//! a real file — from many tasks at once, with the process's CPU per record
//! and the bytes each record adds to the file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use arca_crypto::wrap::RootKey;
use arca_gateway::audit::{AuditConfig, AuditLog, CheckpointKey, Record};
use arca_state::{KeyId, KeyIdText};
use clap::Args;

#[derive(Args)]
pub struct AuditArgs {
    /// Records to write.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Tasks recording at once (as concurrent requests do).
    #[arg(long, default_value_t = 64)]
    tasks: u64,
    /// Directory for the log (removed afterwards); a temporary one by default.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The record of one Encrypt request as the gateway writes it.
fn record(key: &KeyIdText, n: u64) -> Record<'_> {
    Record {
        time_ms: 1_764_806_400_000 + n,
        request_id: "5d9f6a3e-2b7c-4c1e-9f00-0123456789ab",
        node_id: 1,
        source: "127.0.0.1:50412",
        principal: Some("AKIAARCA7Q2M4X9K3B5D"),
        operation: "Encrypt",
        arn: Some("arn:aws:iam::111122223333:user/app"),
        key_id: Some(key),
        destination_key_id: None,
        outcome: "OK",
        status: 200,
    }
}

pub fn run(a: AuditArgs) -> anyhow::Result<()> {
    if a.records == 0 || a.tasks == 0 || a.tasks > 10_000 {
        bail!("--records must be positive and --tasks between 1 and 10000");
    }
    let key = KeyId::from_random(arca_crypto::random::bytes16()?).encode();

    // The encoding alone, on this thread.
    let mut line = Vec::with_capacity(512);
    let started = Instant::now();
    let cpu_before = crate::bench::process_cpu();
    for n in 0..a.records {
        line.clear();
        record(&key, n).encode(&mut line);
        std::hint::black_box(&line);
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = crate::bench::process_cpu()
        .zip(cpu_before)
        .map(|(a, b)| a - b);
    println!(
        "encode: {:.0} ns per record ({} bytes before seq and prev), CPU {}",
        secs * 1e9 / a.records as f64,
        line.len(),
        cpu.map_or("not available".into(), |c| format!(
            "{:.0} ns per record",
            c * 1e9 / a.records as f64
        )),
    );

    // The whole path, to a file.
    let dir = crate::bench::scratch_dir(a.dir.as_deref(), "audit")?;
    let path = dir.join("audit.jsonl");
    let (records, tasks, log_path) = (a.records, a.tasks, path.clone());
    // A fresh OS thread: a runtime cannot be started inside this one.
    let result = std::thread::spawn(move || write_log(&log_path, &key, records, tasks))
        .join()
        .map_err(|_| anyhow::anyhow!("the benchmark thread panicked"))?;
    // Every file: the log rotates at 100 MiB.
    let size = std::fs::read_dir(&dir).and_then(|files| {
        files
            .map(|f| f?.metadata().map(|m| m.len()))
            .sum::<std::io::Result<u64>>()
    });
    let _ = std::fs::remove_dir_all(&dir);
    let (secs, cpu) = result?;
    println!(
        "log: {} records from {} tasks in {:.2} s: {:.0} records/s, {:.0} bytes per record in the file, process CPU {}",
        a.records,
        a.tasks,
        secs,
        a.records as f64 / secs,
        size? as f64 / a.records as f64,
        cpu.map_or("not available".into(), |c| format!(
            "{:.2} µs per record",
            c * 1e6 / a.records as f64
        )),
    );
    Ok(())
}

/// Writes `records` records from `tasks` tasks, each waiting for its line
/// (fail-closed, the default); the wall time and the process CPU.
fn write_log(
    path: &std::path::Path,
    key: &KeyIdText,
    records: u64,
    tasks: u64,
) -> anyhow::Result<(f64, Option<f64>)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let root = RootKey::from_file_contents(&arca_crypto::random::bytes16()?.repeat(2))?;
    let (log, writer) = AuditLog::open(
        AuditConfig::new(path.to_path_buf(), 1),
        CheckpointKey::from_root(&root),
    )?;
    let log = Arc::new(log);
    let key = *key;
    let started = Instant::now();
    let cpu_before = crate::bench::process_cpu();
    rt.block_on(async {
        let per_task = records / tasks;
        let mut handles = Vec::new();
        for t in 0..tasks {
            let log = log.clone();
            let n = per_task + u64::from(t < records % tasks);
            handles.push(tokio::spawn(async move {
                for i in 0..n {
                    log.record(&record(&key, i)).await?;
                }
                Ok::<_, arca_gateway::audit::AuditError>(())
            }));
        }
        for h in handles {
            h.await??;
        }
        anyhow::Ok(())
    })?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = crate::bench::process_cpu()
        .zip(cpu_before)
        .map(|(a, b)| a - b);
    drop(log);
    rt.block_on(writer.finished());
    Ok((secs, cpu))
}
