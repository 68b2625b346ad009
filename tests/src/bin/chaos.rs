//! `arca-chaos`: the chaos suite as a command (see `scripts/chaos.sh`).
//!
//! ```text
//! arca-chaos [--rounds N] [--seed S] [--out FILE] [--faults kill_leader,pause_follower,...]
//! ```
//! Prints the one-line summary, writes the JSON report to FILE (default
//! `chaos-report.json`), and exits 1 if anything was lost, stale or wrong.

use std::time::{SystemTime, UNIX_EPOCH};

use arca_system_tests::chaos::{self, ChaosOptions};

fn main() {
    let mut opts = ChaosOptions {
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        ..ChaosOptions::default()
    };
    let mut out = String::from("chaos-report.json");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--rounds" => {
                opts.rounds = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--rounds takes a number"))
            }
            "--seed" => {
                opts.seed = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--seed takes a number"))
            }
            "--out" => out = value(),
            "--faults" => opts.only = value().split(',').map(str::to_string).collect(),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = rt.block_on(chaos::run(opts));
    let text = serde_json::to_string_pretty(&report).expect("json");
    if let Err(e) = std::fs::write(&out, text) {
        eprintln!("cannot write {out}: {e}");
        std::process::exit(2);
    }
    println!("{}", chaos::summary(&report));
    println!("report: {out}");
    if !chaos::clean(&report) {
        std::process::exit(1);
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("arca-chaos: {problem}");
    }
    eprintln!("usage: arca-chaos [--rounds N] [--seed S] [--out FILE] [--faults NAME,...]");
    eprintln!("faults: kill_leader kill_follower pause_leader pause_follower partition_leader partition_follower");
    std::process::exit(2);
}
