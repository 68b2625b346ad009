//! `arca csr`: a PKCS#10 certificate signing request for a signing key, signed
//! inside the cluster (`TrentService.GenerateCertificateSigningRequest`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Map, Value};

use crate::AdminArgs;

const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Args)]
pub struct CsrArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The signing key: key id, key ARN, alias name or alias ARN.
    #[arg(long)]
    key_id: String,
    /// The subject, an RFC 4514 string such as `CN=api.example.com,O=Example,C=CN`.
    #[arg(long)]
    subject: String,
    /// A subject alternative name: `dns:NAME`, `email:ADDRESS`, `uri:URI` or
    /// `ip:ADDRESS`; repeat for more.
    #[arg(long = "san", value_name = "KIND:VALUE")]
    sans: Vec<String>,
    /// The signing algorithm (default: the key's first, as GetPublicKey lists them).
    #[arg(long)]
    signing_algorithm: Option<String>,
    /// A key version other than the primary (see ListKeyVersions).
    #[arg(long)]
    key_version_id: Option<String>,
    /// Write the PEM request to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `--san` values as the API's `SubjectAlternativeNames` object.
fn sans_json(sans: &[String]) -> anyhow::Result<Value> {
    let mut out = Map::new();
    for san in sans {
        let Some((kind, value)) = san.split_once(':') else {
            bail!("--san {san:?}: expected KIND:VALUE, with KIND one of dns, email, uri, ip");
        };
        let field = match kind.to_ascii_lowercase().as_str() {
            "dns" => "Dns",
            "email" => "Email",
            "uri" => "Uri",
            "ip" => "Ip",
            _ => bail!("--san {san:?}: unknown kind {kind:?} (dns, email, uri or ip)"),
        };
        if let Value::Array(list) = out.entry(field).or_insert_with(|| Value::Array(Vec::new())) {
            list.push(Value::String(value.to_string()));
        }
    }
    Ok(Value::Object(out))
}

pub async fn run(a: CsrArgs) -> anyhow::Result<()> {
    let mut body = json!({ "KeyId": a.key_id, "Subject": a.subject });
    if !a.sans.is_empty() {
        body["SubjectAlternativeNames"] = sans_json(&a.sans)?;
    }
    if let Some(alg) = a.signing_algorithm {
        body["SigningAlgorithm"] = json!(alg);
    }
    if let Some(v) = a.key_version_id {
        body["KeyVersionId"] = json!(v);
    }
    let v = a
        .admin
        .client()?
        .call(
            "TrentService.GenerateCertificateSigningRequest",
            body,
            TIMEOUT,
        )
        .await?;
    let pem = v["CertificateSigningRequest"]
        .as_str()
        .context("the answer has no CertificateSigningRequest")?;
    match a.out {
        Some(path) => {
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "certificate signing request for {} (version {}) written to {}",
                v["KeyId"].as_str().unwrap_or_default(),
                v["KeyVersionId"].as_str().unwrap_or_default(),
                path.display()
            );
        }
        None => print!("{pem}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_are_grouped_by_kind() {
        let v = sans_json(&[
            "dns:a.example".into(),
            "DNS:b.example".into(),
            "uri:spiffe://example/x".into(),
            "ip:::1".into(),
            "email:ops@example.com".into(),
        ])
        .unwrap();
        assert_eq!(
            v,
            json!({
                "Dns": ["a.example", "b.example"],
                "Uri": ["spiffe://example/x"],
                "Ip": ["::1"],
                "Email": ["ops@example.com"],
            })
        );
    }

    #[test]
    fn malformed_sans_are_refused() {
        for bad in ["a.example", "host:a.example", ":x"] {
            let e = sans_json(&[bad.to_string()]).unwrap_err().to_string();
            assert!(e.contains("--san"), "{bad}: {e}");
        }
    }
}
