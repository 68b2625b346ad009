//! Interoperability with the `openssl` command (OpenSSL 3): it verifies our signatures
//! from our SubjectPublicKeyInfo, encrypts to our keys, reads our PKCS#8, signs with it,
//! and its own keys load here.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use arca_keys::{EncryptionAlgorithm, KeySpec, MessageType, PrivateKey, SigningAlgorithm};
use common::{asymmetric_specs, input, key, kinds, material};

const MESSAGE: &[u8] = b"interop message for arca";

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().expect("tempdir"))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, bytes).expect("write temp file");
        p
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Runs openssl; returns (success, stdout, stderr).
fn openssl(args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the `openssl` command (OpenSSL 3) must be on PATH for these tests");
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn openssl_ok(args: &[&str]) -> Vec<u8> {
    let (ok, stdout, stderr) = openssl(args);
    assert!(ok, "openssl {args:?} failed: {stderr}");
    stdout
}

/// `pkeyutl` options selecting the digest and padding of `alg`.
fn sign_options(alg: SigningAlgorithm) -> Vec<&'static str> {
    use SigningAlgorithm as S;
    let digest = match alg {
        // PureEdDSA hashes inside; OpenSSL 3.0 has no Ed25519ph (see `openssl_checks`).
        S::Ed25519Sha512 | S::Ed25519PhSha512 | S::MlDsaShake256 => return vec!["-rawin"],
        S::RsassaPssSha256 | S::RsassaPkcs1V15Sha256 | S::EcdsaSha256 => "sha256",
        S::RsassaPssSha384 | S::RsassaPkcs1V15Sha384 | S::EcdsaSha384 => "sha384",
        S::RsassaPssSha512 | S::RsassaPkcs1V15Sha512 | S::EcdsaSha512 => "sha512",
        S::Sm2Dsa => "sm3",
    };
    let mut v = vec!["-rawin", "-digest", digest];
    match alg {
        S::RsassaPssSha256 => v.extend([
            "-pkeyopt",
            "rsa_padding_mode:pss",
            "-pkeyopt",
            "rsa_pss_saltlen:32",
        ]),
        S::RsassaPssSha384 => v.extend([
            "-pkeyopt",
            "rsa_padding_mode:pss",
            "-pkeyopt",
            "rsa_pss_saltlen:48",
        ]),
        S::RsassaPssSha512 => v.extend([
            "-pkeyopt",
            "rsa_padding_mode:pss",
            "-pkeyopt",
            "rsa_pss_saltlen:64",
        ]),
        S::RsassaPkcs1V15Sha256 | S::RsassaPkcs1V15Sha384 | S::RsassaPkcs1V15Sha512 => {
            v.extend(["-pkeyopt", "rsa_padding_mode:pkcs1"])
        }
        S::Sm2Dsa => v.extend(["-pkeyopt", "distid:1234567812345678"]),
        S::EcdsaSha256
        | S::EcdsaSha384
        | S::EcdsaSha512
        | S::Ed25519Sha512
        | S::Ed25519PhSha512
        | S::MlDsaShake256 => {}
    }
    v
}

/// Whether OpenSSL 3.0 implements `alg` (it has no Ed25519ph, which the known-answer
/// tests of RFC 8032 section 7.3 cover, and no ML-DSA, which RustCrypto's `ml-dsa`
/// checks in `ml_dsa.rs`).
fn openssl_checks(alg: SigningAlgorithm) -> bool {
    !matches!(
        alg,
        SigningAlgorithm::Ed25519PhSha512 | SigningAlgorithm::MlDsaShake256
    )
}

fn openssl_verify(dir: &Dir, spki: &Path, alg: SigningAlgorithm, msg: &Path, sig: &[u8]) -> bool {
    let sig = dir.write("sig.bin", sig);
    let mut args = vec![
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        s(spki),
        "-keyform",
        "DER",
        "-in",
        s(msg),
        "-sigfile",
        s(&sig),
    ];
    args.extend(sign_options(alg));
    openssl(&args).0
}

#[test]
fn openssl_verifies_our_signatures() {
    for spec in asymmetric_specs() {
        let dir = Dir::new();
        let k = key(spec);
        let spki = dir.write("pub.der", &k.public_key_spki_der().unwrap());
        let msg = dir.write("msg.bin", MESSAGE);
        for &alg in spec
            .signing_algorithms()
            .iter()
            .filter(|a| openssl_checks(**a))
        {
            for kind in kinds(alg) {
                let sig = k.sign(alg, &input(k, alg, MESSAGE, kind), kind).unwrap();
                assert!(
                    openssl_verify(&dir, &spki, alg, &msg, &sig),
                    "OpenSSL rejected our {spec} {alg} signature over {kind}"
                );
                let mut bad = sig.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                assert!(
                    !openssl_verify(&dir, &spki, alg, &msg, &bad),
                    "OpenSSL accepted a tampered {spec} {alg} signature"
                );
            }
        }
    }
}

#[test]
fn sm2_signature_needs_the_distinguishing_id_in_openssl() {
    let dir = Dir::new();
    let k = key(KeySpec::Sm2);
    let spki = dir.write("pub.der", &k.public_key_spki_der().unwrap());
    let msg = dir.write("msg.bin", MESSAGE);
    let sig = dir.write(
        "sig.bin",
        &k.sign(SigningAlgorithm::Sm2Dsa, MESSAGE, MessageType::Raw)
            .unwrap(),
    );
    let (ok, _, _) = openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        s(&spki),
        "-keyform",
        "DER",
        "-in",
        s(&msg),
        "-sigfile",
        s(&sig),
        "-rawin",
        "-digest",
        "sm3",
        "-pkeyopt",
        "distid:another-id",
    ]);
    assert!(!ok);
}

fn oaep_md(alg: EncryptionAlgorithm) -> Option<&'static str> {
    match alg {
        EncryptionAlgorithm::RsaesOaepSha1 => Some("rsa_oaep_md:sha1"),
        EncryptionAlgorithm::RsaesOaepSha256 => Some("rsa_oaep_md:sha256"),
        EncryptionAlgorithm::Sm2Pke => None,
    }
}

#[test]
fn openssl_encrypts_and_we_decrypt() {
    for spec in asymmetric_specs() {
        let k = key(spec);
        for &alg in spec.encryption_algorithms() {
            let dir = Dir::new();
            let spki = dir.write("pub.der", &k.public_key_spki_der().unwrap());
            let max = arca_keys::max_plaintext_len(spec, alg).unwrap();
            for len in [1, 100, max] {
                let pt: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let pt_path = dir.write("pt.bin", &pt);
                let ct_path = dir.path("ct.bin");
                let mut args = vec![
                    "pkeyutl",
                    "-encrypt",
                    "-pubin",
                    "-inkey",
                    s(&spki),
                    "-keyform",
                    "DER",
                    "-in",
                    s(&pt_path),
                    "-out",
                    s(&ct_path),
                ];
                if let Some(md) = oaep_md(alg) {
                    args.extend(["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", md]);
                }
                openssl_ok(&args);
                let ct = std::fs::read(&ct_path).unwrap();
                let got = k.decrypt(alg, &ct).unwrap();
                assert_eq!(got.expose(), &pt[..], "{spec} {alg} {len}");
            }
        }
    }
}

#[test]
fn openssl_decrypts_what_we_encrypt() {
    for spec in asymmetric_specs() {
        let k = key(spec);
        for &alg in spec.encryption_algorithms() {
            let dir = Dir::new();
            let key_path = dir.write("key.der", material(spec));
            let pt = b"data key bytes, 32 of them here!";
            let ct_path = dir.write("ct.bin", &k.encrypt(alg, pt).unwrap());
            let mut args = vec![
                "pkeyutl",
                "-decrypt",
                "-inkey",
                s(&key_path),
                "-keyform",
                "DER",
                "-in",
                s(&ct_path),
            ];
            if let Some(md) = oaep_md(alg) {
                args.extend(["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", md]);
            }
            assert_eq!(openssl_ok(&args), pt, "{spec} {alg}");
        }
    }
}

#[test]
fn openssl_reads_our_pkcs8_and_signs_with_it() {
    // OpenSSL 3.0 cannot read ML-DSA keys, and has no ML-KEM (checked against
    // RustCrypto's ml-kem in tests/system/ml_kem.rs instead).
    for spec in asymmetric_specs().filter(|s| !s.is_ml_dsa() && !s.is_ml_kem()) {
        let dir = Dir::new();
        let k = key(spec);
        let key_path = dir.write("key.der", material(spec));
        openssl_ok(&[
            "pkey",
            "-inform",
            "DER",
            "-in",
            s(&key_path),
            "-check",
            "-noout",
        ]);
        // OpenSSL derives the same SubjectPublicKeyInfo, byte for byte.
        let spki = openssl_ok(&[
            "pkey",
            "-inform",
            "DER",
            "-in",
            s(&key_path),
            "-pubout",
            "-outform",
            "DER",
        ]);
        assert_eq!(spki, k.public_key_spki_der().unwrap(), "{spec}");

        let msg = dir.write("msg.bin", MESSAGE);
        for &alg in spec
            .signing_algorithms()
            .iter()
            .filter(|a| openssl_checks(**a))
        {
            let sig_path = dir.path("openssl-sig.bin");
            let mut args = vec![
                "pkeyutl",
                "-sign",
                "-inkey",
                s(&key_path),
                "-keyform",
                "DER",
                "-in",
                s(&msg),
                "-out",
                s(&sig_path),
            ];
            args.extend(sign_options(alg));
            openssl_ok(&args);
            let sig = std::fs::read(&sig_path).unwrap();
            for kind in kinds(alg) {
                assert!(
                    k.verify(alg, &input(k, alg, MESSAGE, kind), kind, &sig)
                        .unwrap(),
                    "our verify rejected OpenSSL's {spec} {alg} signature ({kind})"
                );
            }
        }
    }
}

#[test]
fn keys_generated_by_openssl_load_and_work() {
    let cases: [(KeySpec, &[&str]); 7] = [
        (
            KeySpec::Rsa2048,
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        ),
        (
            KeySpec::EccNistP256,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ),
        (
            KeySpec::EccNistP384,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        ),
        (
            KeySpec::EccNistP521,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
        ),
        (
            KeySpec::EccSecgP256k1,
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:secp256k1",
            ],
        ),
        (KeySpec::Sm2, &["-algorithm", "SM2"]),
        (KeySpec::EccNistEdwards25519, &["-algorithm", "ED25519"]),
    ];
    for (spec, opts) in cases {
        let dir = Dir::new();
        let key_path = dir.path("key.der");
        let mut args = vec!["genpkey"];
        args.extend(opts);
        args.extend(["-outform", "DER", "-out", s(&key_path)]);
        openssl_ok(&args);
        // genpkey writes RSA and EC keys in their traditional DER forms; convert to PKCS#8.
        let der = openssl_ok(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-inform",
            "DER",
            "-in",
            s(&key_path),
            "-outform",
            "DER",
        ]);
        let traditional = std::fs::read(&key_path).unwrap();
        if traditional != der {
            assert!(PrivateKey::load(spec, &traditional).is_err(), "{spec}");
        }
        let k = PrivateKey::load(spec, &der).unwrap_or_else(|e| panic!("{spec}: {e}"));
        let spki = openssl_ok(&[
            "pkey",
            "-inform",
            "DER",
            "-in",
            s(&key_path),
            "-pubout",
            "-outform",
            "DER",
        ]);
        assert_eq!(k.public_key_spki_der().unwrap(), spki, "{spec}");
        let pub_path = dir.write("pub.der", &spki);
        let msg = dir.write("msg.bin", MESSAGE);
        for &alg in spec
            .signing_algorithms()
            .iter()
            .filter(|a| openssl_checks(**a))
        {
            let sig = k.sign(alg, MESSAGE, MessageType::Raw).unwrap();
            assert!(
                openssl_verify(&dir, &pub_path, alg, &msg, &sig),
                "{spec} {alg}"
            );
        }
    }
}

/// ECDH: OpenSSL's `pkeyutl -derive` with our PKCS#8 key and the peer's
/// SubjectPublicKeyInfo gives the secret we derive, on every NIST curve.
#[test]
fn ecdh_secrets_match_openssl() {
    use arca_keys::{KeyAgreementAlgorithm, KeyError};
    for (spec, len) in [
        (KeySpec::EccNistP256, 32),
        (KeySpec::EccNistP384, 48),
        (KeySpec::EccNistP521, 66),
    ] {
        let dir = Dir::new();
        let ours = dir.write("ours.der", material(spec));
        let peer = common::other_key(spec);
        let peer_spki = peer.public_key_spki_der().unwrap();
        let peer_path = dir.write("peer.der", &peer_spki);
        let secret = key(spec)
            .derive_shared_secret(KeyAgreementAlgorithm::Ecdh, &peer_spki)
            .unwrap();
        assert_eq!(secret.expose().len(), len, "{spec}");
        let theirs = openssl_ok(&[
            "pkeyutl",
            "-derive",
            "-inkey",
            s(&ours),
            "-keyform",
            "DER",
            "-peerkey",
            s(&peer_path),
            "-peerform",
            "DER",
        ]);
        assert_eq!(theirs, secret.expose(), "{spec}");
        // The peer derives the same secret with our public key.
        let back = peer
            .derive_shared_secret(
                KeyAgreementAlgorithm::Ecdh,
                &key(spec).public_key_spki_der().unwrap(),
            )
            .unwrap();
        assert_eq!(back.expose(), secret.expose(), "{spec}");
    }
    // SM2 (OpenSSL 3.0 has no ECDH on it): both sides agree.
    let (a, b) = (key(KeySpec::Sm2), common::other_key(KeySpec::Sm2));
    let ab = a
        .derive_shared_secret(
            KeyAgreementAlgorithm::Ecdh,
            &b.public_key_spki_der().unwrap(),
        )
        .unwrap();
    let ba = b
        .derive_shared_secret(
            KeyAgreementAlgorithm::Ecdh,
            &a.public_key_spki_der().unwrap(),
        )
        .unwrap();
    assert_eq!(ab.expose(), ba.expose());
    assert_eq!(ab.expose().len(), 32);
    // A key on another curve, or of a spec without key agreement, is refused.
    let p384 = key(KeySpec::EccNistP384).public_key_spki_der().unwrap();
    assert_eq!(
        key(KeySpec::EccNistP256)
            .derive_shared_secret(KeyAgreementAlgorithm::Ecdh, &p384)
            .unwrap_err(),
        KeyError::InvalidPublicKey {
            spec: KeySpec::EccNistP256
        }
    );
    assert!(key(KeySpec::Sm2)
        .derive_shared_secret(KeyAgreementAlgorithm::Ecdh, &p384)
        .is_err());
    for spec in [
        KeySpec::Rsa2048,
        KeySpec::EccSecgP256k1,
        KeySpec::EccNistEdwards25519,
    ] {
        assert!(matches!(
            key(spec)
                .derive_shared_secret(KeyAgreementAlgorithm::Ecdh, &p384)
                .unwrap_err(),
            KeyError::UnsupportedOperation { .. }
        ));
    }
}
