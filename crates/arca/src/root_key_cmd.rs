//! `arca root-key`: make a root key, show a key file's id, and rotate a
//! running cluster to a new root key (docs/runbooks/root-key-rotation.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use arca_crypto::wrap::RootKey;
use clap::Subcommand;
use serde_json::{json, Value};

use crate::config::{read_secret_file, write_secret_file};
use crate::AdminArgs;

const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Subcommand)]
pub enum RootKeyCmd {
    /// Write a new random root key to a file (mode 0600; refuses to overwrite).
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the id of the root key in a file (the id names the key; it
    /// reveals nothing about it).
    Id {
        #[arg(long)]
        file: PathBuf,
    },
    /// Move every secret of the cluster to a new root key, online. Every
    /// voter must hold the new key already (started with its file as a
    /// further root key file); refused otherwise.
    Rotate {
        #[command(flatten)]
        admin: AdminArgs,
        /// The new root key's file (read here only for its id; the key
        /// itself never leaves this machine).
        #[arg(long)]
        new_root_key_file: PathBuf,
        /// Return once the rotation began, instead of waiting for its end.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the end, in seconds.
        #[arg(long, default_value_t = 3600)]
        wait_secs: u64,
    },
    /// The root key in use, a rotation's progress, and each member's keys.
    Status {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(c: RootKeyCmd) -> anyhow::Result<()> {
    match c {
        RootKeyCmd::Generate { out } => {
            let (key, text) = RootKey::generate()?;
            write_secret_file(&out, text.expose())?;
            println!("root key {} written to {}", key.id(), out.display());
            Ok(())
        }
        RootKeyCmd::Id { file } => {
            println!("{}", file_id(&file)?);
            Ok(())
        }
        RootKeyCmd::Rotate {
            admin,
            new_root_key_file,
            no_wait,
            wait_secs,
        } => {
            let to = file_id(&new_root_key_file)?;
            let client = admin.client()?;
            let s = client
                .call(
                    "ArcaAdmin.RotateRootKey",
                    json!({ "NewRootKeyId": to }),
                    TIMEOUT,
                )
                .await?;
            println!("rotation to root key {to} began: {}", progress(&s));
            if no_wait {
                return Ok(());
            }
            let deadline = Instant::now() + Duration::from_secs(wait_secs);
            let mut last = String::new();
            loop {
                // Any node's answer will do; a leader change midway is
                // carried on by the new leader.
                let st = match client
                    .call("ArcaAdmin.ClusterStatus", json!({}), TIMEOUT)
                    .await
                {
                    Ok(st) => st,
                    Err(e) => {
                        eprintln!("status: {e:#}; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let rk = &st["root_keys"];
                if rk["rotating_to"].is_null() && rk["active"].as_str() == Some(to.as_str()) {
                    println!(
                        "rotation finished: every secret is wrapped under root key {to}; \
                         the old root key may now be removed from every node"
                    );
                    return Ok(());
                }
                let p = progress(rk);
                if p != last {
                    println!("{p}");
                    last = p;
                }
                if Instant::now() >= deadline {
                    bail!("the rotation has not finished after {wait_secs} s (it goes on; see `arca root-key status`)");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        RootKeyCmd::Status { admin, json } => {
            let st = admin
                .client()?
                .call("ArcaAdmin.ClusterStatus", json!({}), TIMEOUT)
                .await?;
            if json {
                println!(
                    "{}",
                    json!({ "root_keys": st["root_keys"], "members": st["members"] })
                );
                return Ok(());
            }
            let rk = &st["root_keys"];
            println!("root key in use: {}", rk["active"].as_str().unwrap_or("-"));
            if !rk["rotating_to"].is_null() {
                println!("rotation: {}", progress(rk));
            }
            for m in st["members"].as_array().into_iter().flatten() {
                let ids = match m["root_key_ids"].as_array() {
                    Some(ids) => ids
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                    None => "(did not answer)".into(),
                };
                println!("node {}: holds {ids}", m["node_id"]);
            }
            Ok(())
        }
    }
}

/// The id of the root key in `file`.
fn file_id(file: &Path) -> anyhow::Result<String> {
    let k = RootKey::from_file_contents(&read_secret_file(file, "root key")?)
        .with_context(|| format!("invalid root key file {}", file.display()))?;
    Ok(k.id().to_string())
}

/// A rotation's progress, as one line.
fn progress(rk: &Value) -> String {
    match (rk["rotating_from"].as_str(), rk["rotating_to"].as_str()) {
        (Some(from), Some(to)) => format!(
            "{from} -> {to}: {} secrets re-wrapped, {} left",
            rk["rewrapped"], rk["remaining"]
        ),
        _ => format!("root key in use: {}", rk["active"].as_str().unwrap_or("-")),
    }
}
