//! `arca bench state-memory`: what the replicated state costs in memory per
//! symmetric key, in process. It applies CreateKey proposals shaped as a
//! node makes them (a random key id, a version id, 32 bytes of material
//! wrapped under a root key) to a fresh `State`, and reads the process's
//! resident memory (`/proc/self/statm`) before and after: once without
//! request identities (the keys alone) and once with them, as every SDK
//! request carries (the keys and the retry table's entries, which the state
//! keeps for `DEDUP_WINDOW_MS`).

use std::time::Instant;

use anyhow::{bail, Context};
use arca_crypto::wrap::RootKey;
use arca_crypto::SecretBytes;
use arca_state::{Command, KeyId, KeyRecord, KeySpec, KeyUsage, KeyVersion, Proposal, RequestKey};
use clap::Args;

#[derive(Args)]
pub struct StateMemoryArgs {
    /// Keys to create.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
}

/// Resident memory of this process, in bytes.
fn rss_bytes() -> anyhow::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("reading /proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .context("no resident field in /proc/self/statm")?
        .parse()?;
    Ok(pages * 4096)
}

/// The proposals a node makes for `n` CreateKey requests.
fn proposals(
    root: &RootKey,
    n: u64,
    with_request_ids: bool,
) -> anyhow::Result<impl Iterator<Item = anyhow::Result<Proposal>> + '_> {
    let material = SecretBytes::random(32)?;
    Ok((0..n).map(move |i| {
        let key_id = KeyId::from_random(arca_crypto::random::bytes16()?);
        let wrapped = root.wrap(
            material.expose(),
            arca_node::actors::material_context(&key_id, 1),
        )?;
        let first = KeyVersion {
            version: 1,
            version_id: KeyId::from_random(arca_crypto::random::bytes16()?).into(),
            public_key: None,
            wrapped,
            created_ms: 1_700_000_000_000 + i,
        };
        let record = KeyRecord::new(
            key_id,
            String::new(),
            KeyUsage::EncryptDecrypt,
            KeySpec::SymmetricDefault,
            first,
        );
        let request = with_request_ids.then(|| RequestKey {
            id: arca_crypto::random::bytes16().unwrap_or([0; 16]),
            fingerprint: [7; 16],
        });
        let mut p = Proposal::new(request, Command::CreateKey { key: record });
        p.stamp_ms = 1_700_000_000_000 + i;
        Ok(p)
    }))
}

/// Applies `n` CreateKey proposals to a fresh state; returns the resident
/// memory above `base` and the state (kept alive until the caller drops it).
fn build(
    root: &RootKey,
    n: u64,
    with_request_ids: bool,
    base: u64,
) -> anyhow::Result<(u64, arca_state::State)> {
    let mut state = arca_state::State::default();
    let init = Command::InitCluster {
        info: arca_state::ClusterInfo {
            region: "us-east-1".into(),
            account_id: "111122223333".into(),
            root_check_value: root.check_value(),
            created_ms: 1_700_000_000_000,
        },
        admin: arca_state::AccessKeyRecord {
            access_key_id: "AKIAADMIN".into(),
            wrapped_secret: vec![0; 60],
            user: "admin".into(),
            created_ms: 1_700_000_000_000,
        },
    };
    state.apply(1, Proposal::new(None, init));
    for (i, p) in proposals(root, n, with_request_ids)?.enumerate() {
        let (outcome, _) = state.apply(i as u64 + 2, p?);
        if outcome != arca_state::Outcome::Applied {
            bail!("proposal {i} was not applied: {outcome:?}");
        }
    }
    Ok((rss_bytes()?.saturating_sub(base), state))
}

pub fn run(a: StateMemoryArgs) -> anyhow::Result<()> {
    if a.keys == 0 || a.keys > 20_000_000 {
        bail!("--keys must be between 1 and 20000000");
    }
    let (root, _) = RootKey::generate()?;
    let started = Instant::now();
    // Keys alone first; the second state reuses what the allocator kept of
    // the first, so both are measured from the same base.
    let base = rss_bytes()?;
    let (keys_only, state) = build(&root, a.keys, false, base)?;
    let per_key = keys_only as f64 / a.keys as f64;
    println!(
        "keys alone:               {:>8.1} MiB resident, {per_key:>6.0} bytes per key",
        keys_only as f64 / (1 << 20) as f64
    );
    drop(state);
    let (with_ids, state) = build(&root, a.keys, true, base)?;
    let per_key_ids = with_ids as f64 / a.keys as f64;
    println!(
        "keys and retry entries:   {:>8.1} MiB resident, {per_key_ids:>6.0} bytes per key ({} retry entries)",
        with_ids as f64 / (1 << 20) as f64,
        state.dedup.entries.len()
    );
    println!(
        "retry table (difference): {:>8.1} MiB, {:>6.0} bytes per entry",
        with_ids.saturating_sub(keys_only) as f64 / (1 << 20) as f64,
        per_key_ids - per_key
    );
    let encoded = arca_node::store::encode_state(&state)?.len();
    println!(
        "snapshot encoding:        {:>8.1} MiB, {:>6.0} bytes per key (with retry entries)",
        encoded as f64 / (1 << 20) as f64,
        encoded as f64 / a.keys as f64
    );
    println!("({:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}
