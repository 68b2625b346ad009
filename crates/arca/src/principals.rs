//! `arca access-key` and `arca user`: principals and their identity policies,
//! through the signed admin operations (see docs/authorization.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use serde_json::json;

use crate::AdminArgs;

const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Subcommand)]
pub enum AccessKeyCmd {
    /// Create an access key for a user (created if new, with no policy) and
    /// print its secret (shown once).
    Create {
        #[command(flatten)]
        admin: AdminArgs,
        /// The user (principal) the key belongs to.
        #[arg(long)]
        user: String,
        /// Print `{"AccessKeyId", "SecretAccessKey", "UserArn"}`.
        #[arg(long)]
        json: bool,
    },
    /// List access keys and their users (never a secret).
    List {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        json: bool,
    },
    /// Delete an access key; requests signed with it fail from then on.
    Delete {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long = "access-key")]
        access_key: String,
    },
}

// The variants name the CLI's subcommands (`put-policy`, ...).
#[allow(clippy::enum_variant_names)]
#[derive(Subcommand)]
pub enum UserCmd {
    /// Set a user's identity policy (AWS policy JSON) from a file.
    PutPolicy {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        user: String,
        #[arg(long = "policy-file")]
        policy_file: PathBuf,
    },
    /// Print a user's identity policy.
    GetPolicy {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        user: String,
    },
    /// Remove a user's identity policy: it may then do only what key policies
    /// allow it by name.
    DeletePolicy {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        user: String,
    },
}

pub async fn access_key(c: AccessKeyCmd) -> anyhow::Result<()> {
    match c {
        AccessKeyCmd::Create { admin, user, json } => {
            let r = admin
                .client()?
                .call(
                    "ArcaAdmin.CreateAccessKey",
                    json!({ "UserName": user }),
                    TIMEOUT,
                )
                .await?;
            if json {
                println!(
                    "{}",
                    json!({
                        "AccessKeyId": r["AccessKeyId"],
                        "SecretAccessKey": r["SecretAccessKey"],
                        "UserArn": r["UserArn"],
                    })
                );
            } else {
                println!("Access key created (the secret is shown once; store it now):");
                println!(
                    "  aws_access_key_id     = {}",
                    r["AccessKeyId"].as_str().unwrap_or("")
                );
                println!(
                    "  aws_secret_access_key = {}",
                    r["SecretAccessKey"].as_str().unwrap_or("")
                );
                println!(
                    "  user                  = {}",
                    r["UserArn"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        AccessKeyCmd::List { admin, json } => {
            let r = admin
                .client()?
                .call("ArcaAdmin.ListAccessKeys", json!({}), TIMEOUT)
                .await?;
            if json {
                println!("{r}");
            } else {
                println!("{:<24} USER", "ACCESS KEY");
                for k in r["AccessKeys"].as_array().into_iter().flatten() {
                    println!(
                        "{:<24} {}",
                        k["AccessKeyId"].as_str().unwrap_or(""),
                        k["UserName"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        AccessKeyCmd::Delete { admin, access_key } => {
            admin
                .client()?
                .call(
                    "ArcaAdmin.DeleteAccessKey",
                    json!({ "AccessKeyId": access_key }),
                    TIMEOUT,
                )
                .await?;
            println!("access key {access_key} deleted");
            Ok(())
        }
    }
}

pub async fn user(c: UserCmd) -> anyhow::Result<()> {
    match c {
        UserCmd::PutPolicy {
            admin,
            user,
            policy_file,
        } => {
            let doc = std::fs::read_to_string(&policy_file).map_err(|e| {
                anyhow::anyhow!("cannot read the policy file {}: {e}", policy_file.display())
            })?;
            admin
                .client()?
                .call(
                    "ArcaAdmin.PutUserPolicy",
                    json!({ "UserName": user, "PolicyDocument": doc }),
                    TIMEOUT,
                )
                .await?;
            println!("policy of user {user} set");
            Ok(())
        }
        UserCmd::GetPolicy { admin, user } => {
            let r = admin
                .client()?
                .call(
                    "ArcaAdmin.GetUserPolicy",
                    json!({ "UserName": user }),
                    TIMEOUT,
                )
                .await?;
            match r["PolicyDocument"].as_str() {
                Some(doc) => println!("{doc}"),
                None => println!("user {user} has no identity policy"),
            }
            Ok(())
        }
        UserCmd::DeletePolicy { admin, user } => {
            admin
                .client()?
                .call(
                    "ArcaAdmin.DeleteUserPolicy",
                    json!({ "UserName": user }),
                    TIMEOUT,
                )
                .await?;
            println!("policy of user {user} removed");
            Ok(())
        }
    }
}
