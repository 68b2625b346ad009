//! `arca bench crypto`: in-process operations per second for each algorithm,
//! on one thread, next to `openssl speed` run on the same machine in the same
//! invocation, with the ratio.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use arca_crypto::symmetric::AesKey;
use arca_crypto::{Secret, SecretBytes};
use arca_keys::{
    EncryptionAlgorithm as E, KeySpec as K, MacAlgorithm, MessageType, PrivateKey,
    SigningAlgorithm as S,
};
use clap::Args;

#[derive(Args)]
pub struct CryptoArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 2)]
    seconds: u64,
    /// Also run `openssl speed` and print the ratio.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    openssl: bool,
    /// Measure only the rows whose algorithm name contains this text
    /// (e.g. `AES`).
    #[arg(long)]
    only: Option<String>,
}

/// Calls `f` repeatedly for `d`; returns calls per second.
fn rate(d: Duration, mut f: impl FnMut()) -> f64 {
    // Warm up briefly, then measure.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(100) {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < d {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// `openssl speed` name and column for a row (sign or verify), if OpenSSL has one.
fn openssl_row(spec: K, op: &str) -> Option<(&'static str, &'static str)> {
    let name = match spec {
        K::Rsa2048 => "rsa2048",
        K::Rsa3072 => "rsa3072",
        K::Rsa4096 => "rsa4096",
        K::EccNistP256 => "ecdsap256",
        K::EccNistP384 => "ecdsap384",
        K::EccNistP521 => "ecdsap521",
        _ => return None,
    };
    match op {
        "sign" | "decrypt" => Some((name, "sign")),
        "verify" | "encrypt" => Some((name, "verify")),
        _ => None,
    }
}

/// Runs `openssl speed` for RSA and ECDSA; returns (name, sign/s, verify/s).
fn openssl_speed(seconds: u64) -> anyhow::Result<BTreeMap<&'static str, (f64, f64)>> {
    let names = [
        "rsa2048",
        "rsa3072",
        "rsa4096",
        "ecdsap256",
        "ecdsap384",
        "ecdsap521",
    ];
    let out = Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string()])
        .args(names)
        .output()
        .context("running openssl speed")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let nums: Vec<f64> = line
            .split_whitespace()
            .filter_map(|w| w.parse::<f64>().ok())
            .collect();
        let key = if line.starts_with("rsa 2048") {
            "rsa2048"
        } else if line.starts_with("rsa 3072") {
            "rsa3072"
        } else if line.starts_with("rsa 4096") {
            "rsa4096"
        } else if line.contains("(nistp256)") {
            "ecdsap256"
        } else if line.contains("(nistp384)") {
            "ecdsap384"
        } else if line.contains("(nistp521)") {
            "ecdsap521"
        } else {
            continue;
        };
        // … sign-time verify-time sign/s verify/s (the last two numbers).
        if nums.len() >= 2 {
            m.insert(key, (nums[nums.len() - 2], nums[nums.len() - 1]));
        }
    }
    Ok(m)
}

/// (algorithm, operation, ops/s, the openssl speed row to compare with)
type Row = (String, &'static str, f64, Option<(K, &'static str)>);

pub fn run(a: CryptoArgs) -> anyhow::Result<()> {
    let d = Duration::from_secs(a.seconds.max(1));
    let msg = vec![0x5au8; 256];
    let mut rows: Vec<Row> = Vec::new();

    let want = |name: &str| a.only.as_deref().is_none_or(|o| name.contains(o));

    // Symmetric Encrypt and Decrypt as the key actor runs them: the full
    // ciphertext format with an encryption context, at a data key's size
    // (32 B), the HTTP benchmark's size (256 B) and the largest plaintext.
    let aes = AesKey::new(&Secret::<32>::random()?);
    let ctx: BTreeMap<String, String> = [("purpose".to_string(), "bench".to_string())].into();
    for len in [32usize, 256, 4096] {
        let name = if len >= 1024 {
            format!("AES-256-GCM {} KiB", len / 1024)
        } else {
            format!("AES-256-GCM {len} B")
        };
        if !want(&name) {
            continue;
        }
        let pt = vec![7u8; len];
        let blob = aes.encrypt_blob([1; 16], 1, &pt, &ctx)?;
        rows.push((
            name.clone(),
            "encrypt",
            rate(d, || {
                black_box(aes.encrypt_blob([1; 16], 1, &pt, &ctx).ok());
            }),
            None,
        ));
        rows.push((
            name,
            "decrypt",
            rate(d, || {
                black_box(aes.decrypt_blob(&blob, &ctx).ok());
            }),
            None,
        ));
    }

    let signing: [(K, S); 8] = [
        (K::Rsa2048, S::RsassaPssSha256),
        (K::Rsa3072, S::RsassaPssSha256),
        (K::Rsa4096, S::RsassaPssSha256),
        (K::EccNistP256, S::EcdsaSha256),
        (K::EccNistP384, S::EcdsaSha384),
        (K::EccNistP521, S::EcdsaSha512),
        (K::EccSecgP256k1, S::EcdsaSha256),
        (K::Sm2, S::Sm2Dsa),
    ];
    for (spec, alg) in signing {
        if !want(&format!("{} {}", spec.as_aws(), alg.as_aws())) {
            continue;
        }
        let material = arca_keys::generate(spec)?;
        let key = PrivateKey::load(spec, material.expose())?;
        let sig = key.sign(alg, &msg, MessageType::Raw)?;
        let name = format!("{} {}", spec.as_aws(), alg.as_aws());
        rows.push((
            name.clone(),
            "sign",
            rate(d, || {
                black_box(key.sign(alg, &msg, MessageType::Raw).ok());
            }),
            Some((spec, "sign")),
        ));
        rows.push((
            name,
            "verify",
            rate(d, || {
                black_box(key.verify(alg, &msg, MessageType::Raw, &sig).ok());
            }),
            Some((spec, "verify")),
        ));
    }
    // ML-DSA: RAW (pure ML-DSA through aws-lc-rs) and EXTERNAL_MU (through
    // `ml-dsa`); `openssl speed` 3.0 has no ML-DSA to compare with.
    for spec in [K::MlDsa44, K::MlDsa65, K::MlDsa87] {
        let alg = S::MlDsaShake256;
        let material = arca_keys::generate(spec)?;
        let key = PrivateKey::load(spec, material.expose())?;
        let mu = key
            .public_key()
            .context("an ML-DSA key has a public key")?
            .ml_dsa_mu(&msg)?;
        for (kind, input) in [
            (MessageType::Raw, &msg[..]),
            (MessageType::ExternalMu, &mu[..]),
        ] {
            let name = format!("{} {} {}", spec.as_aws(), alg.as_aws(), kind.as_aws());
            if !want(&name) {
                continue;
            }
            let sig = key.sign(alg, input, kind)?;
            rows.push((
                name.clone(),
                "sign",
                rate(d, || {
                    black_box(key.sign(alg, input, kind).ok());
                }),
                None,
            ));
            rows.push((
                name,
                "verify",
                rate(d, || {
                    black_box(key.verify(alg, input, kind, &sig).ok());
                }),
                None,
            ));
        }
    }
    let encryption: [(K, E); 4] = [
        (K::Rsa2048, E::RsaesOaepSha256),
        (K::Rsa3072, E::RsaesOaepSha256),
        (K::Rsa4096, E::RsaesOaepSha256),
        (K::Sm2, E::Sm2Pke),
    ];
    for (spec, alg) in encryption {
        if !want(&format!("{} {}", spec.as_aws(), alg.as_aws())) {
            continue;
        }
        let material = arca_keys::generate(spec)?;
        let key = PrivateKey::load(spec, material.expose())?;
        let ct = key.encrypt(alg, &msg[..64])?;
        let name = format!("{} {}", spec.as_aws(), alg.as_aws());
        rows.push((
            name.clone(),
            "encrypt",
            rate(d, || {
                black_box(key.encrypt(alg, &msg[..64]).ok());
            }),
            Some((spec, "encrypt")),
        ));
        rows.push((
            name,
            "decrypt",
            rate(d, || {
                black_box(key.decrypt(alg, &ct).ok());
            }),
            Some((spec, "decrypt")),
        ));
    }
    if want("HMAC_256 64 B") {
        let hmac = PrivateKey::load(K::Hmac256, arca_keys::generate(K::Hmac256)?.expose())?;
        rows.push((
            "HMAC_256 64 B".into(),
            "mac",
            rate(d, || {
                black_box(hmac.mac(MacAlgorithm::HmacSha256, &msg[..64]).ok());
            }),
            None,
        ));
    }
    for spec in [
        K::Rsa2048,
        K::Rsa4096,
        K::EccNistP256,
        K::EccSecgP256k1,
        K::Sm2,
    ] {
        if !want(spec.as_aws()) {
            continue;
        }
        rows.push((
            spec.as_aws().to_string(),
            "generate",
            rate(d, || {
                let k: Option<SecretBytes> = arca_keys::generate(spec).ok();
                black_box(k);
            }),
            None,
        ));
    }

    let speed = if a.openssl && rows.iter().any(|r| r.3.is_some()) {
        openssl_speed(a.seconds.max(1))?
    } else {
        BTreeMap::new()
    };
    println!("| algorithm | operation | Arca ops/s | openssl speed ops/s | openssl / Arca |");
    println!("|---|---|---:|---:|---:|");
    for (name, op, ops, cmp) in rows {
        let theirs = cmp
            .and_then(|(spec, op)| openssl_row(spec, op))
            .and_then(|(n, col)| {
                speed
                    .get(n)
                    .map(|(s, v)| if col == "sign" { *s } else { *v })
            });
        match theirs {
            Some(t) => println!("| {name} | {op} | {ops:.0} | {t:.0} | {:.2} |", t / ops),
            None => println!("| {name} | {op} | {ops:.0} | — | — |"),
        }
    }
    Ok(())
}
