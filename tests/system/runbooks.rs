//! The runbooks as code: each procedure in docs/runbooks/backup-restore.md
//! and docs/runbooks/disaster-recovery.md is a script in scripts/runbooks/,
//! run here against the `arca` binary the other system tests start.

use std::path::PathBuf;
use std::process::Command;

use arca_system_tests::arca_bin;

fn run(script: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/runbooks")
        .join(script);
    let out = Command::new("bash")
        .arg(&path)
        .env("ARCA_BIN", arca_bin())
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("OK: "), "{stdout}");
}

#[test]
fn the_backup_and_restore_runbook_runs() {
    run("backup-restore.sh");
}

#[test]
fn the_disaster_recovery_runbook_runs() {
    run("disaster-recovery.sh");
}
