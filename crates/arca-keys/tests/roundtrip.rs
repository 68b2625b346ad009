//! Round trips, negative cases and input validation through the public API.

mod common;

use arca_keys::import::hmac_import_lengths;
use arca_keys::{
    digest_len, encrypt_with_spki, max_plaintext_len, verify_with_spki, EncryptionAlgorithm,
    KeyError, KeySpec, MacAlgorithm, MessageType, PrivateKey, PublicKey, SigningAlgorithm,
    MAX_RAW_MESSAGE_LEN,
};
use common::{
    asymmetric_specs, digest_of, hmac_specs, input, key, keyed_specs, kinds, material, other_key,
};

const MESSAGE: &[u8] = b"arca: a message to sign";

#[test]
fn sign_verify_every_spec_algorithm_and_message_type() {
    for spec in asymmetric_specs() {
        let k = key(spec);
        let spki = k.public_key_spki_der().unwrap();
        for &alg in spec.signing_algorithms() {
            for sign_kind in kinds(alg) {
                let sig = k
                    .sign(alg, &input(k, alg, MESSAGE, sign_kind), sign_kind)
                    .unwrap();
                // A signature made over RAW verifies over DIGEST and vice versa.
                for verify_kind in kinds(alg) {
                    let msg = input(k, alg, MESSAGE, verify_kind);
                    let ctx = format!("{spec} {alg} signed {sign_kind} verified {verify_kind}");
                    assert!(k.verify(alg, &msg, verify_kind, &sig).unwrap(), "{ctx}");
                    assert!(
                        verify_with_spki(spec, &spki, alg, &msg, verify_kind, &sig).unwrap(),
                        "{ctx}"
                    );
                }
            }
        }
    }
}

#[test]
fn wrong_key_wrong_message_and_tampered_signatures_fail() {
    for spec in asymmetric_specs() {
        let k = key(spec);
        let other = other_key(spec);
        let other_spki = other.public_key_spki_der().unwrap();
        for &alg in spec.signing_algorithms() {
            for kind in kinds(alg) {
                let msg = input(k, alg, MESSAGE, kind);
                let sig = k.sign(alg, &msg, kind).unwrap();
                let ctx = format!("{spec} {alg} {kind}");
                assert!(!other.verify(alg, &msg, kind, &sig).unwrap(), "{ctx}");
                assert!(
                    !verify_with_spki(spec, &other_spki, alg, &msg, kind, &sig).unwrap(),
                    "{ctx}"
                );
                let other_msg = input(k, alg, b"another message", kind);
                assert!(!k.verify(alg, &other_msg, kind, &sig).unwrap(), "{ctx}");
                for i in [0, sig.len() / 2, sig.len() - 1] {
                    let mut bad = sig.clone();
                    bad[i] ^= 0x01;
                    assert!(!k.verify(alg, &msg, kind, &bad).unwrap(), "{ctx} byte {i}");
                }
                let mut longer = sig.clone();
                longer.push(0);
                assert!(!k.verify(alg, &msg, kind, &longer).unwrap(), "{ctx}");
                assert!(
                    !k.verify(alg, &msg, kind, &sig[..sig.len() - 1]).unwrap(),
                    "{ctx}"
                );
                for garbage in [&[][..], &[0u8][..], &[0x30, 0x00][..], &[0xff; 4000][..]] {
                    assert!(!k.verify(alg, &msg, kind, garbage).unwrap(), "{ctx}");
                }
            }
        }
    }
}

#[test]
fn rsa_pss_and_pkcs1_signatures_are_not_interchangeable() {
    use SigningAlgorithm as S;
    let k = key(KeySpec::Rsa2048);
    let pss = k
        .sign(S::RsassaPssSha256, MESSAGE, MessageType::Raw)
        .unwrap();
    let pkcs1 = k
        .sign(S::RsassaPkcs1V15Sha256, MESSAGE, MessageType::Raw)
        .unwrap();
    assert!(!k
        .verify(S::RsassaPkcs1V15Sha256, MESSAGE, MessageType::Raw, &pss)
        .unwrap());
    assert!(!k
        .verify(S::RsassaPssSha256, MESSAGE, MessageType::Raw, &pkcs1)
        .unwrap());
    assert!(!k
        .verify(S::RsassaPkcs1V15Sha384, MESSAGE, MessageType::Raw, &pkcs1)
        .unwrap());
    // PKCS#1 v1.5 is deterministic, PSS is randomized.
    let pkcs1_again = k
        .sign(S::RsassaPkcs1V15Sha256, MESSAGE, MessageType::Raw)
        .unwrap();
    assert_eq!(pkcs1, pkcs1_again);
    let pss_again = k
        .sign(S::RsassaPssSha256, MESSAGE, MessageType::Raw)
        .unwrap();
    assert_ne!(pss, pss_again);
    assert_eq!(pss.len(), 256);
}

#[test]
fn signing_input_is_validated() {
    for spec in asymmetric_specs() {
        let k = key(spec);
        for alg in SigningAlgorithm::ALL {
            if !spec.signing_algorithms().contains(alg) {
                let err = k.sign(*alg, MESSAGE, MessageType::Raw).unwrap_err();
                assert!(
                    matches!(err, KeyError::UnsupportedAlgorithm { .. }),
                    "{spec} {alg}"
                );
                let err = k.verify(*alg, MESSAGE, MessageType::Raw, b"x").unwrap_err();
                assert!(matches!(err, KeyError::UnsupportedAlgorithm { .. }));
                continue;
            }
            let required = alg.required_message_type();
            let n = digest_len(*alg);
            if let Some(r) = required {
                // Ed25519: each algorithm takes one message type only.
                let other = match r {
                    MessageType::Raw => MessageType::Digest,
                    MessageType::Digest | MessageType::ExternalMu => MessageType::Raw,
                };
                let err = k.sign(*alg, &vec![7; n], other).unwrap_err();
                assert!(
                    matches!(err, KeyError::WrongMessageType { .. }),
                    "{spec} {alg}"
                );
                assert!(k.verify(*alg, &vec![7; n], other, b"sig").is_err());
            }
            for kind in [MessageType::Digest, MessageType::ExternalMu] {
                if !alg.message_types().contains(&kind) && required.is_none() {
                    // DIGEST with ML-DSA, EXTERNAL_MU with anything else.
                    let err = k.sign(*alg, &vec![7; n], kind).unwrap_err();
                    assert_eq!(
                        err,
                        KeyError::UnsupportedMessageType {
                            alg: *alg,
                            actual: kind
                        },
                        "{spec} {alg}"
                    );
                    assert!(k.verify(*alg, &vec![7; n], kind, b"sig").is_err());
                }
            }
            // The fixed-length message type (DIGEST or EXTERNAL_MU), if any.
            let fixed = alg
                .message_types()
                .iter()
                .copied()
                .find(|k| *k != MessageType::Raw);
            if let Some(fixed) = fixed {
                for len in [0, 1, n - 1, n + 1, 2 * n] {
                    let err = k.sign(*alg, &vec![7; len], fixed).unwrap_err();
                    assert_eq!(
                        err,
                        KeyError::InvalidDigestLength {
                            alg: *alg,
                            expected: n,
                            actual: len
                        }
                    );
                    assert!(k.verify(*alg, &vec![7; len], fixed, b"sig").is_err());
                }
            }
            if required == Some(MessageType::Digest) {
                continue;
            }
            let long = vec![1u8; MAX_RAW_MESSAGE_LEN + 1];
            assert!(matches!(
                k.sign(*alg, &long, MessageType::Raw).unwrap_err(),
                KeyError::TooLong { .. }
            ));
            assert!(k.verify(*alg, &long, MessageType::Raw, b"sig").is_err());
            let max = vec![1u8; MAX_RAW_MESSAGE_LEN];
            let sig = k.sign(*alg, &max, MessageType::Raw).unwrap();
            assert!(k.verify(*alg, &max, MessageType::Raw, &sig).unwrap());
            let sig = k.sign(*alg, b"", MessageType::Raw).unwrap();
            assert!(k.verify(*alg, b"", MessageType::Raw, &sig).unwrap());
        }
        for alg in MacAlgorithm::ALL {
            assert!(matches!(
                k.mac(*alg, MESSAGE).unwrap_err(),
                KeyError::UnsupportedOperation { .. }
            ));
        }
    }
    for spec in hmac_specs() {
        let k = key(spec);
        let err = k
            .sign(SigningAlgorithm::EcdsaSha256, MESSAGE, MessageType::Raw)
            .unwrap_err();
        assert!(matches!(err, KeyError::UnsupportedOperation { .. }));
        assert!(k.public_key_spki_der().is_err());
        assert!(k.public_key().is_none());
        assert!(k
            .decrypt(EncryptionAlgorithm::RsaesOaepSha256, &[0; 256])
            .is_err());
    }
}

#[test]
fn encrypt_decrypt_every_spec_and_algorithm() {
    for spec in asymmetric_specs() {
        let k = key(spec);
        let spki = k.public_key_spki_der().unwrap();
        for &alg in spec.encryption_algorithms() {
            let max = max_plaintext_len(spec, alg).unwrap();
            for len in [1, 32, max] {
                let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let ct = k.encrypt(alg, &pt).unwrap();
                assert_eq!(
                    k.decrypt(alg, &ct).unwrap().expose(),
                    &pt[..],
                    "{spec} {alg}"
                );
                let ct = encrypt_with_spki(spec, &spki, alg, &pt).unwrap();
                assert_eq!(
                    k.decrypt(alg, &ct).unwrap().expose(),
                    &pt[..],
                    "{spec} {alg}"
                );
            }
            let err = k.encrypt(alg, &vec![0; max + 1]).unwrap_err();
            assert_eq!(
                err,
                KeyError::TooLong {
                    what: "plaintext",
                    len: max + 1,
                    max
                }
            );
            assert!(encrypt_with_spki(spec, &spki, alg, &vec![0; max + 1]).is_err());
            assert_eq!(
                k.encrypt(alg, b"").unwrap_err(),
                KeyError::Empty { what: "plaintext" }
            );

            // Every decryption failure is the same opaque error.
            let ct = k.encrypt(alg, b"secret").unwrap();
            for i in [0, ct.len() / 2, ct.len() - 1] {
                let mut bad = ct.clone();
                bad[i] ^= 0x80;
                assert_eq!(
                    k.decrypt(alg, &bad).unwrap_err(),
                    KeyError::InvalidCiphertext
                );
            }
            assert_eq!(
                other_key(spec).decrypt(alg, &ct).unwrap_err(),
                KeyError::InvalidCiphertext
            );
            for garbage in [&[][..], &[0u8][..], &ct[..ct.len() - 1], &[0xff; 6000][..]] {
                assert_eq!(
                    k.decrypt(alg, garbage).unwrap_err(),
                    KeyError::InvalidCiphertext
                );
            }
        }
        for alg in EncryptionAlgorithm::ALL {
            if spec.encryption_algorithms().contains(alg) {
                continue;
            }
            assert!(k.encrypt(*alg, b"x").is_err(), "{spec} {alg}");
            assert!(k.decrypt(*alg, &[0; 64]).is_err(), "{spec} {alg}");
        }
    }
}

#[test]
fn oaep_digests_are_not_interchangeable() {
    for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096] {
        let k = key(spec);
        let ct = k
            .encrypt(EncryptionAlgorithm::RsaesOaepSha1, b"data")
            .unwrap();
        assert_eq!(
            k.decrypt(EncryptionAlgorithm::RsaesOaepSha256, &ct)
                .unwrap_err(),
            KeyError::InvalidCiphertext
        );
        assert_eq!(ct.len(), spec.rsa_bits().unwrap() / 8);
    }
}

#[test]
fn mac_round_trips_and_failures() {
    for spec in hmac_specs() {
        let k = key(spec);
        assert_eq!(material(spec).len(), spec.hmac_key_len().unwrap());
        for alg in MacAlgorithm::ALL {
            if !spec.mac_algorithms().contains(alg) {
                assert!(matches!(
                    k.mac(*alg, MESSAGE).unwrap_err(),
                    KeyError::UnsupportedAlgorithm { .. }
                ));
                assert!(k.verify_mac(*alg, MESSAGE, &[0; 32]).is_err());
                continue;
            }
            let mac = k.mac(*alg, MESSAGE).unwrap();
            assert_eq!(mac.len(), alg.output_len());
            assert_eq!(mac, k.mac(*alg, MESSAGE).unwrap());
            assert!(k.verify_mac(*alg, MESSAGE, &mac).unwrap());
            assert!(!k.verify_mac(*alg, b"other", &mac).unwrap());
            assert!(!other_key(spec).verify_mac(*alg, MESSAGE, &mac).unwrap());
            let mut bad = mac.clone();
            bad[mac.len() - 1] ^= 1;
            assert!(!k.verify_mac(*alg, MESSAGE, &bad).unwrap());
            assert!(!k.verify_mac(*alg, MESSAGE, &mac[..mac.len() - 1]).unwrap());
            assert!(!k.verify_mac(*alg, MESSAGE, &[]).unwrap());
            let mut longer = mac.clone();
            longer.push(0);
            assert!(!k.verify_mac(*alg, MESSAGE, &longer).unwrap());
            let max = vec![9u8; 4096];
            let m = k.mac(*alg, &max).unwrap();
            assert!(k.verify_mac(*alg, &max, &m).unwrap());
            assert!(matches!(
                k.mac(*alg, &vec![9u8; 4097]).unwrap_err(),
                KeyError::TooLong { .. }
            ));
            // The MAC is plain HMAC over the stored key.
            let again = PrivateKey::load(spec, material(spec)).unwrap();
            assert_eq!(again.mac(*alg, MESSAGE).unwrap(), mac);
        }
        let sign = k.sign(SigningAlgorithm::EcdsaSha256, MESSAGE, MessageType::Raw);
        assert!(sign.is_err());
    }
}

#[test]
fn load_rejects_material_of_another_spec() {
    let all: Vec<KeySpec> = keyed_specs().collect();
    for &from in &all {
        for &to in &all {
            if from == to {
                continue;
            }
            // HMAC keys of equal length are indistinguishable, as raw bytes must be.
            if from.is_hmac() && to.is_hmac() {
                continue;
            }
            // Any bytes of a length an HMAC key may have are one (Ed25519's
            // 48-byte PKCS#8 is an HMAC_384 key's length).
            if hmac_import_lengths(to).is_some_and(|r| r.contains(&material(from).len())) {
                continue;
            }
            let result = PrivateKey::load(to, material(from));
            assert_eq!(
                result.unwrap_err(),
                KeyError::InvalidKeyMaterial { spec: to },
                "{from} material loaded as {to}"
            );
        }
    }
    for spec in hmac_specs() {
        // Generated keys have the digest's length; imported ones up to the
        // hash's block size.
        let n = spec.hmac_key_len().unwrap();
        let lengths = hmac_import_lengths(spec).unwrap();
        assert_eq!(*lengths.start(), n);
        assert!(PrivateKey::load(spec, &vec![1; n - 1]).is_err());
        assert!(PrivateKey::load(spec, &vec![1; n]).is_ok());
        assert!(PrivateKey::load(spec, &vec![1; *lengths.end()]).is_ok());
        assert!(PrivateKey::load(spec, &vec![1; lengths.end() + 1]).is_err());
    }
    for spec in asymmetric_specs() {
        assert!(PrivateKey::load(spec, b"").is_err());
        let m = material(spec);
        assert!(PrivateKey::load(spec, &m[..m.len() - 1]).is_err(), "{spec}");
        let mut longer = m.to_vec();
        longer.push(0);
        assert!(PrivateKey::load(spec, &longer).is_err(), "{spec}");
    }
}

#[test]
fn spki_of_another_spec_is_rejected() {
    for from in asymmetric_specs() {
        let spki = key(from).public_key_spki_der().unwrap();
        for to in asymmetric_specs() {
            let parsed = PublicKey::from_spki_der(to, &spki);
            if from == to {
                let p = parsed.unwrap();
                assert_eq!(p.spki_der(), &spki[..]);
                assert_eq!(p.spec(), to);
            } else {
                assert_eq!(
                    parsed.unwrap_err(),
                    KeyError::InvalidPublicKey { spec: to },
                    "{from} SPKI as {to}"
                );
            }
        }
        assert!(PublicKey::from_spki_der(KeySpec::Hmac256, &spki).is_err());
        let mut longer = spki.clone();
        longer.push(0);
        assert!(PublicKey::from_spki_der(from, &longer).is_err());
    }
}

#[test]
fn generated_material_round_trips_through_load() {
    for spec in keyed_specs() {
        let a = key(spec);
        let b = PrivateKey::load(spec, material(spec)).unwrap();
        assert_eq!(a.spec(), spec);
        if spec.is_asymmetric() {
            assert_eq!(
                a.public_key_spki_der().unwrap(),
                b.public_key_spki_der().unwrap()
            );
            assert_ne!(
                a.public_key_spki_der().unwrap(),
                other_key(spec).public_key_spki_der().unwrap()
            );
        }
    }
}

#[test]
fn debug_output_is_redacted() {
    for spec in keyed_specs() {
        let k = key(spec);
        let shown = format!("{k:?}");
        assert!(shown.contains(spec.as_aws()) || shown.contains(&format!("{spec:?}")));
        assert!(shown.len() < 80, "{shown}");
        let m = arca_keys::generate(spec).unwrap();
        assert!(format!("{m:?}").contains("REDACTED"));
    }
}

#[test]
fn sm2_digest_matches_raw_signing() {
    let k = key(KeySpec::Sm2);
    let spki = k.public_key_spki_der().unwrap();
    let d = arca_keys::sm2_digest(&spki, MESSAGE).unwrap();
    assert_eq!(d.to_vec(), digest_of(k, SigningAlgorithm::Sm2Dsa, MESSAGE));
    assert!(arca_keys::sm2_digest(
        &key(KeySpec::EccNistP256).public_key_spki_der().unwrap(),
        MESSAGE
    )
    .is_err());
}
