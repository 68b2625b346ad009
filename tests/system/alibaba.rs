//! The Alibaba Cloud KMS API of a real three-node cluster, driven by the
//! official Alibaba Cloud SDK for Python (`tests/alibaba/flow.py`, run with
//! the virtual environment `scripts/test.sh` creates from
//! `tests/alibaba/requirements.txt`), with the AWS SDK and OpenSSL as the
//! counterparts: one set of keys, two APIs.

use std::path::PathBuf;
use std::process::Command;

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::aws_sdk_kms::types::{
    EncryptionAlgorithmSpec, KeySpec, KeyUsageType, MessageType, OriginType, SigningAlgorithmSpec,
};
use arca_system_tests::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

/// The Python of the virtual environment with the pinned Alibaba SDK:
/// `ARCA_ALIBABA_PYTHON`, or the one `scripts/test.sh` creates.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("ARCA_ALIBABA_PYTHON") {
        return p.into();
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("alibaba/.venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/test.sh (it creates the virtual environment from \
         tests/alibaba/requirements.txt), or set ARCA_ALIBABA_PYTHON",
        p.display()
    );
    p
}

fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().expect("a base64 string")).unwrap()
}

/// OpenSSL `pkeyutl` options for an Alibaba signing algorithm.
fn sign_options(alg: &str) -> Vec<&'static str> {
    match alg {
        "RSA_PSS_SHA_256" => vec![
            "-digest",
            "sha256",
            "-pkeyopt",
            "rsa_padding_mode:pss",
            "-pkeyopt",
            "rsa_pss_saltlen:32",
        ],
        "RSA_PKCS1_SHA_256" => vec!["-digest", "sha256", "-pkeyopt", "rsa_padding_mode:pkcs1"],
        "ECDSA_SHA_256" => vec!["-digest", "sha256"],
        "SM2DSA" => vec!["-digest", "sm3", "-pkeyopt", "distid:1234567812345678"],
        other => panic!("no OpenSSL options for {other}"),
    }
}

/// The AWS name of an Alibaba signing algorithm.
fn aws_signing(alg: &str) -> &'static str {
    match alg {
        "RSA_PSS_SHA_256" => "RSASSA_PSS_SHA_256",
        "RSA_PKCS1_SHA_256" => "RSASSA_PKCS1_V1_5_SHA_256",
        "ECDSA_SHA_256" => "ECDSA_SHA_256",
        "SM2DSA" => "SM2DSA",
        other => panic!("unknown algorithm {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_alibaba_sdk_works_against_a_cluster() {
    let python = python();
    let mut c = Cluster::start(3).await;
    c.wait_leader().await;

    // Made through the AWS API, used through the Alibaba one.
    let aws_sym = c.new_key(0).await;
    let aws_ct = c
        .client(1)
        .encrypt()
        .key_id(&aws_sym)
        .plaintext(Blob::new(b"from aws".to_vec()))
        .encryption_context("from", "aws")
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let aws_sign_key = c
        .client(2)
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();

    let endpoints: Vec<String> = (0..3)
        .map(|i| {
            c.nodes[i]
                .endpoint()
                .trim_start_matches("http://")
                .to_string()
        })
        .collect();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("alibaba/flow.py");
    let run = Command::new(&python)
        .arg(&script)
        .env("ARCA_ENDPOINTS", endpoints.join(","))
        .env("ARCA_ACCESS_KEY_ID", &c.creds.access_key_id)
        .env("ARCA_SECRET", &c.creds.secret_access_key)
        .env("ARCA_AWS_CIPHERTEXT", B64.encode(aws_ct.as_ref()))
        .env("ARCA_AWS_SIGN_KEY", &aws_sign_key)
        .output()
        .expect("the virtual environment's python runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the Alibaba SDK flow failed:\n{stderr}"
    );
    let out: Value = serde_json::from_slice(&run.stdout).expect("the flow's JSON result");

    // A ciphertext from Alibaba Encrypt decrypts through AWS Decrypt.
    let pt = c
        .client(0)
        .decrypt()
        .ciphertext_blob(Blob::new(b64(&out["alibaba_ciphertext"])))
        .encryption_context("purpose", "test")
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"hello alibaba");
    assert!(pt
        .key_id()
        .unwrap()
        .ends_with(out["symmetric_key"].as_str().unwrap()));

    // Every signature made through AsymmetricSign verifies with OpenSSL
    // (over the message, from the PEM GetPublicKey gave) and through AWS
    // Verify (over the digest, naming the version).
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let sigs = out["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 6, "every signing spec and algorithm");
    for (n, s) in sigs.iter().enumerate() {
        let alg = s["alg"].as_str().unwrap();
        let pem = file("pub.pem", s["pem"].as_str().unwrap().as_bytes());
        let msg = file("msg.bin", &b64(&s["message"]));
        let sig_bytes = b64(&s["signature"]);
        let sig = file("sig.bin", &sig_bytes);
        let mut args = vec![
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            pem.as_str(),
            "-rawin",
            "-in",
            msg.as_str(),
            "-sigfile",
            sig.as_str(),
        ];
        args.extend(sign_options(alg));
        let (ok, err) = openssl(&args);
        assert!(
            ok,
            "OpenSSL refused the {} {alg} signature: {err}",
            s["spec"]
        );
        // Any other message fails, so the check above could fail.
        let other = file("other.bin", b"another message");
        args[7] = other.as_str();
        assert!(
            !openssl(&args).0,
            "OpenSSL accepted a signature of another message"
        );

        let digest = match alg {
            "SM2DSA" => {
                let spki = pem_der(s["pem"].as_str().unwrap());
                arca_keys::sm2_digest(&spki, &b64(&s["message"]))
                    .unwrap()
                    .to_vec()
            }
            _ => aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &b64(&s["message"]))
                .as_ref()
                .to_vec(),
        };
        let (status, v) = c.call(
            n % 3,
            "TrentService.Verify",
            &json!({
                "KeyId": s["key_id"],
                "KeyVersionId": s["version"],
                "Message": B64.encode(&digest),
                "MessageType": "DIGEST",
                "Signature": s["signature"],
                "SigningAlgorithm": aws_signing(alg),
            }),
        );
        assert_eq!((status, &v["SignatureValid"]), (200, &json!(true)), "{v}");
    }

    // A signature made through the Alibaba API with a key made through the
    // AWS API verifies through the AWS SDK.
    let a = &out["aws_key_signature"];
    let v = c
        .client(1)
        .verify()
        .key_id(&aws_sign_key)
        .message(Blob::new(b64(&a["digest"])))
        .message_type(MessageType::Digest)
        .signature(Blob::new(b64(&a["signature"])))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    assert!(v.signature_valid());

    // OpenSSL encrypts with the PEM GetPublicKey gave; AWS Decrypt decrypts.
    let encs = out["encryptions"].as_array().unwrap();
    assert_eq!(encs.len(), 4, "every encryption spec and algorithm");
    for (n, e) in encs.iter().enumerate() {
        let alg = e["alg"].as_str().unwrap();
        let pem = file("enc.pem", e["pem"].as_str().unwrap().as_bytes());
        let pt = format!("openssl to {alg}").into_bytes();
        let pt_path = file("pt.bin", &pt);
        let ct_path = dir.path().join("ct.bin");
        let mut args = vec![
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            pem.as_str(),
            "-in",
            pt_path.as_str(),
            "-out",
            ct_path.to_str().unwrap(),
        ];
        let md = if alg.ends_with("SHA_1") {
            "rsa_oaep_md:sha1"
        } else {
            "rsa_oaep_md:sha256"
        };
        if alg.starts_with("RSAES") {
            args.extend(["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", md]);
        }
        let (ok, err) = openssl(&args);
        assert!(ok, "openssl encrypt: {err}");
        let d = c
            .client(n % 3)
            .decrypt()
            .key_id(e["key_id"].as_str().unwrap())
            .ciphertext_blob(Blob::new(std::fs::read(&ct_path).unwrap()))
            .encryption_algorithm(EncryptionAlgorithmSpec::from(alg))
            .send()
            .await
            .unwrap();
        assert_eq!(d.plaintext().unwrap().as_ref(), pt.as_slice());
    }

    // Keys made through the Alibaba API are listed, with AWS's names,
    // through the AWS API.
    let k = c
        .client(2)
        .describe_key()
        .key_id(out["signatures"][4]["key_id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let md = k.key_metadata().unwrap();
    assert_eq!(md.key_spec(), Some(&KeySpec::EccSecgP256K1));
    assert_eq!(md.key_usage(), Some(&KeyUsageType::SignVerify));

    // Material imported through the Alibaba API: the key is EXTERNAL
    // through the AWS API too, and what it encrypted decrypts there.
    let imported = &out["imported"];
    let kms = c.client(1);
    let md = kms
        .describe_key()
        .key_id(imported["key_id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        md.key_metadata().unwrap().origin(),
        Some(&OriginType::External)
    );
    let pt = kms
        .decrypt()
        .ciphertext_blob(Blob::new(b64(&imported["ciphertext"])))
        .encryption_context("byok", "alibaba")
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"imported material");
}

/// The DER inside a `PUBLIC KEY` PEM.
fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    B64.decode(body).unwrap()
}
