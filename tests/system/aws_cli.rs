//! The unmodified aws CLI (v1, pinned in `tests/awscli/requirements.txt`;
//! `scripts/test.sh` makes its virtual environment) against a TLS cluster,
//! as an operator would use it with `--endpoint-url`: symmetric, HMAC,
//! ECDSA, Ed25519, ML-DSA, ECDH key agreement and imported material, with
//! OpenSSL on the other side where the algorithm allows. The CLI's bundled
//! KMS model has no Encapsulate/Decapsulate yet, so ML-KEM is only reached
//! through the SDK (tests/system/ml_kem.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

use arca_system_tests::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;

/// The `aws` of the virtual environment with the pinned CLI: `ARCA_AWS_CLI`,
/// or the one `scripts/test.sh` creates.
fn aws_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ARCA_AWS_CLI") {
        return p.into();
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("awscli/.venv/bin/aws");
    assert!(
        p.exists(),
        "{} is missing: run scripts/test.sh (it creates the virtual environment from \
         tests/awscli/requirements.txt), or set ARCA_AWS_CLI",
        p.display()
    );
    p
}

/// One CLI user of one cluster: credentials, the CA, and a scratch directory
/// for the `fileb://` files blobs travel in.
struct Cli<'a> {
    c: &'a Cluster,
    dir: tempfile::TempDir,
    n: std::cell::Cell<u32>,
}

impl<'a> Cli<'a> {
    fn new(c: &'a Cluster) -> Self {
        Self {
            c,
            dir: tempfile::tempdir().unwrap(),
            n: std::cell::Cell::new(0),
        }
    }

    /// Writes `bytes` to a fresh file; returns its `fileb://` argument.
    fn file(&self, bytes: &[u8]) -> String {
        format!("fileb://{}", self.path(bytes).display())
    }

    fn path(&self, bytes: &[u8]) -> PathBuf {
        self.n.set(self.n.get() + 1);
        let p = self.dir.path().join(format!("blob-{}", self.n.get()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// `aws kms <args>` through node `via`: the JSON it printed, or (exit
    /// code, stderr).
    fn try_kms(&self, via: usize, args: &[&str]) -> Result<Value, (i32, String)> {
        let out = Command::new(aws_bin())
            .arg("kms")
            .args(args)
            .args(["--endpoint-url", &self.c.nodes[via].endpoint()])
            .args(["--output", "json"])
            .env("AWS_ACCESS_KEY_ID", &self.c.creds.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.c.creds.secret_access_key)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_CA_BUNDLE", self.c.ca_file())
            // Nothing of this machine's own configuration.
            .env("AWS_CONFIG_FILE", self.dir.path().join("no-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("no-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("run the aws CLI");
        if !out.status.success() {
            return Err((
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        if stdout.trim().is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}")))
    }

    fn kms(&self, via: usize, args: &[&str]) -> Value {
        self.try_kms(via, args)
            .unwrap_or_else(|(code, err)| panic!("aws kms {args:?} exited {code}: {err}"))
    }

    /// The AWS error code the CLI reported for a call that must fail.
    fn error(&self, via: usize, args: &[&str]) -> String {
        let (code, err) = self.try_kms(via, args).expect_err("the call must fail");
        // The v1 CLI's exit status for any failed call (v2 gives 254 for an
        // error the service returned): the code in the message tells them apart.
        assert_eq!(code, 255, "{err}");
        let start = err.find("An error occurred (").expect(&err) + "An error occurred (".len();
        err[start..start + err[start..].find(')').unwrap()].to_string()
    }

    fn create(&self, via: usize, extra: &[&str]) -> String {
        let mut args = vec!["create-key"];
        args.extend_from_slice(extra);
        self.kms(via, &args)["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// GetPublicKey as PEM in a file, for OpenSSL.
    fn public_pem(&self, via: usize, key: &str) -> PathBuf {
        let der = b64(&self.kms(via, &["get-public-key", "--key-id", key])["PublicKey"]);
        let der_path = self.path(&der);
        let pem = self.dir.path().join(format!("{key}.pem"));
        openssl_ok(&[
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            s(&der_path),
            "-out",
            s(&pem),
        ]);
        pem
    }
}

fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap_or_else(|| panic!("not base64 text: {v}")))
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn openssl_ok(args: &[&str]) {
    let (ok, err) = openssl(args);
    assert!(ok, "openssl {args:?}: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_cli_works_against_a_tls_cluster() {
    let mut c = Cluster::start_with(
        3,
        Options {
            tls: true,
            ..Options::default()
        },
    )
    .await;
    c.wait_leader().await;
    let cli = Cli::new(&c);

    // Symmetric: created through one node, used through the others, with an
    // encryption context; the wrong context is refused with AWS's code.
    let sym = cli.create(1, &["--description", "made with the aws CLI"]);
    let plain = b"envelope of the aws CLI".to_vec();
    let ct = cli.kms(
        0,
        &[
            "encrypt",
            "--key-id",
            &sym,
            "--plaintext",
            &cli.file(&plain),
            "--encryption-context",
            "purpose=cli,team=ops",
        ],
    );
    let blob = cli.file(&b64(&ct["CiphertextBlob"]));
    let pt = cli.kms(
        2,
        &[
            "decrypt",
            "--ciphertext-blob",
            &blob,
            "--encryption-context",
            "purpose=cli,team=ops",
        ],
    );
    assert_eq!(b64(&pt["Plaintext"]), plain);
    assert!(pt["KeyId"].as_str().unwrap().ends_with(&sym), "{pt}");
    assert_eq!(
        cli.error(
            2,
            &[
                "decrypt",
                "--ciphertext-blob",
                &blob,
                "--encryption-context",
                "purpose=other"
            ]
        ),
        "InvalidCiphertextException"
    );

    // Envelope encryption: the data key's copy decrypts to its plaintext.
    let dk = cli.kms(
        1,
        &[
            "generate-data-key",
            "--key-id",
            &sym,
            "--key-spec",
            "AES_256",
        ],
    );
    let copy = cli.kms(
        0,
        &[
            "decrypt",
            "--ciphertext-blob",
            &cli.file(&b64(&dk["CiphertextBlob"])),
        ],
    );
    assert_eq!(b64(&copy["Plaintext"]), b64(&dk["Plaintext"]));
    assert_eq!(b64(&dk["Plaintext"]).len(), 32);

    // Aliases, and pagination the CLI follows by itself (one key per page).
    cli.kms(
        0,
        &[
            "create-alias",
            "--alias-name",
            "alias/cli-made",
            "--target-key-id",
            &sym,
        ],
    );
    let by_alias = cli.kms(2, &["describe-key", "--key-id", "alias/cli-made"]);
    assert_eq!(by_alias["KeyMetadata"]["KeyId"], sym.as_str());
    assert_eq!(by_alias["KeyMetadata"]["KeyState"], "Enabled");

    // HMAC.
    let mac_key = cli.create(
        0,
        &[
            "--key-spec",
            "HMAC_256",
            "--key-usage",
            "GENERATE_VERIFY_MAC",
        ],
    );
    let msg = cli.file(b"authenticated by the cluster");
    let mac = cli.kms(
        1,
        &[
            "generate-mac",
            "--key-id",
            &mac_key,
            "--message",
            &msg,
            "--mac-algorithm",
            "HMAC_SHA_256",
        ],
    );
    let mac_file = cli.file(&b64(&mac["Mac"]));
    let ok = cli.kms(
        2,
        &[
            "verify-mac",
            "--key-id",
            &mac_key,
            "--message",
            &msg,
            "--mac-algorithm",
            "HMAC_SHA_256",
            "--mac",
            &mac_file,
        ],
    );
    assert_eq!(ok["MacValid"], true);
    assert_eq!(
        cli.error(
            2,
            &[
                "verify-mac",
                "--key-id",
                &mac_key,
                "--message",
                &cli.file(b"something else"),
                "--mac-algorithm",
                "HMAC_SHA_256",
                "--mac",
                &mac_file,
            ]
        ),
        "KMSInvalidMacException"
    );

    // ECDSA P-256 and Ed25519: signed inside, verified by OpenSSL.
    let message = b"signed through the aws CLI".to_vec();
    let msg_path = cli.path(&message);
    for (spec, alg, verify) in [
        (
            "ECC_NIST_P256",
            "ECDSA_SHA_256",
            &["dgst", "-sha256", "-verify"][..],
        ),
        (
            "ECC_NIST_EDWARDS25519",
            "ED25519_SHA_512",
            &["pkeyutl", "-verify", "-rawin", "-pubin", "-inkey"][..],
        ),
    ] {
        let key = cli.create(0, &["--key-spec", spec, "--key-usage", "SIGN_VERIFY"]);
        let sig = cli.kms(
            1,
            &[
                "sign",
                "--key-id",
                &key,
                "--message",
                &cli.file(&message),
                "--message-type",
                "RAW",
                "--signing-algorithm",
                alg,
            ],
        );
        assert_eq!(sig["SigningAlgorithm"], alg);
        let sig_path = cli.path(&b64(&sig["Signature"]));
        let pem = cli.public_pem(2, &key);
        let mut args = verify.to_vec();
        args.push(s(&pem));
        if spec == "ECC_NIST_P256" {
            args.extend(["-signature", s(&sig_path), s(&msg_path)]);
        } else {
            args.extend(["-sigfile", s(&sig_path), "-in", s(&msg_path)]);
        }
        openssl_ok(&args);
    }

    // ML-DSA: signed and verified through the CLI (OpenSSL 3.0 has no
    // ML-DSA; tests/system/ml_dsa.rs verifies with an independent library).
    let ml_dsa = cli.create(
        0,
        &["--key-spec", "ML_DSA_65", "--key-usage", "SIGN_VERIFY"],
    );
    let sig = cli.kms(
        1,
        &[
            "sign",
            "--key-id",
            &ml_dsa,
            "--message",
            &cli.file(&message),
            "--message-type",
            "RAW",
            "--signing-algorithm",
            "ML_DSA_SHAKE_256",
        ],
    );
    let sig = b64(&sig["Signature"]);
    assert_eq!(sig.len(), 3309);
    let valid = cli.kms(
        2,
        &[
            "verify",
            "--key-id",
            &ml_dsa,
            "--message",
            &cli.file(&message),
            "--message-type",
            "RAW",
            "--signing-algorithm",
            "ML_DSA_SHAKE_256",
            "--signature",
            &cli.file(&sig),
        ],
    );
    assert_eq!(valid["SignatureValid"], true);

    // ECDH: the CLI's shared secret is the one OpenSSL derives on the other side.
    let agree = cli.create(
        0,
        &[
            "--key-spec",
            "ECC_NIST_P256",
            "--key-usage",
            "KEY_AGREEMENT",
        ],
    );
    let peer_key = cli.dir.path().join("peer.pem");
    let peer_pub = cli.dir.path().join("peer.der");
    openssl_ok(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        s(&peer_key),
    ]);
    openssl_ok(&[
        "pkey",
        "-in",
        s(&peer_key),
        "-pubout",
        "-outform",
        "DER",
        "-out",
        s(&peer_pub),
    ]);
    let derived = cli.kms(
        1,
        &[
            "derive-shared-secret",
            "--key-id",
            &agree,
            "--key-agreement-algorithm",
            "ECDH",
            "--public-key",
            &format!("fileb://{}", peer_pub.display()),
        ],
    );
    let theirs = cli.dir.path().join("theirs.bin");
    let kms_pub = cli.public_pem(2, &agree);
    openssl_ok(&[
        "pkeyutl",
        "-derive",
        "-inkey",
        s(&peer_key),
        "-peerkey",
        s(&kms_pub),
        "-out",
        s(&theirs),
    ]);
    assert_eq!(
        b64(&derived["SharedSecret"]),
        std::fs::read(&theirs).unwrap()
    );

    // Bring your own key, by AWS's documented flow: wrap locally with
    // OpenSSL, import, and decrypt inside what was encrypted inside.
    let external = cli.create(0, &["--origin", "EXTERNAL"]);
    let state = cli.kms(2, &["describe-key", "--key-id", &external]);
    assert_eq!(state["KeyMetadata"]["KeyState"], "PendingImport");
    let params = cli.kms(
        1,
        &[
            "get-parameters-for-import",
            "--key-id",
            &external,
            "--wrapping-algorithm",
            "RSAES_OAEP_SHA_256",
            "--wrapping-key-spec",
            "RSA_3072",
        ],
    );
    let mut material = [0u8; 32];
    aws_lc_rs::rand::fill(&mut material).unwrap();
    let wrapped = oaep_sha256_encrypt(&b64(&params["PublicKey"]), &material);
    cli.kms(
        0,
        &[
            "import-key-material",
            "--key-id",
            &external,
            "--import-token",
            &cli.file(&b64(&params["ImportToken"])),
            "--encrypted-key-material",
            &cli.file(&wrapped),
            "--expiration-model",
            "KEY_MATERIAL_DOES_NOT_EXPIRE",
        ],
    );
    let ct = cli.kms(
        2,
        &[
            "encrypt",
            "--key-id",
            &external,
            "--plaintext",
            &cli.file(b"under imported material"),
        ],
    );
    let pt = cli.kms(
        1,
        &[
            "decrypt",
            "--ciphertext-blob",
            &cli.file(&b64(&ct["CiphertextBlob"])),
        ],
    );
    assert_eq!(b64(&pt["Plaintext"]), b"under imported material");

    // The key's last use, as the CLI's model reads it.
    let usage = cli.kms(2, &["get-key-last-usage", "--key-id", &external]);
    assert_eq!(usage["KeyLastUsage"]["Operation"], "Decrypt", "{usage}");
    assert!(usage["KeyLastUsage"]["KmsRequestId"].is_string(), "{usage}");

    // Listing follows the CLI's own paging, one key per page: every key.
    let listed = cli.kms(0, &["list-keys", "--page-size", "1"]);
    let ids: Vec<&str> = listed["Keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["KeyId"].as_str().unwrap())
        .collect();
    for k in [&sym, &mac_key, &ml_dsa, &agree, &external] {
        assert!(ids.contains(&k.as_str()), "{k} not in {ids:?}");
    }
    assert_eq!(
        ids.len(),
        ids.iter().collect::<std::collections::BTreeSet<_>>().len()
    );

    // Errors arrive as the codes the CLI knows.
    assert_eq!(
        cli.error(
            0,
            &[
                "describe-key",
                "--key-id",
                "00000000-0000-4000-8000-000000000000"
            ]
        ),
        "NotFoundException"
    );
    assert_eq!(
        cli.error(0, &["encrypt", "--key-id", &mac_key, "--plaintext", &msg]),
        "InvalidKeyUsageException"
    );
}
