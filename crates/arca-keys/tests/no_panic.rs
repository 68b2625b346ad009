//! Arbitrary bytes never panic: key loading, SPKI parsing, verification and decryption.

mod common;

use arca_keys::{
    verify_with_spki, EncapsulationAlgorithm, EncryptionAlgorithm, KeySpec, MacAlgorithm,
    MessageType, PrivateKey, PublicKey, SigningAlgorithm,
};
use common::{key, material};
use proptest::prelude::*;

fn spec() -> impl Strategy<Value = KeySpec> {
    proptest::sample::select(common::keyed_specs().collect::<Vec<_>>())
}

fn signing_alg() -> impl Strategy<Value = SigningAlgorithm> {
    proptest::sample::select(SigningAlgorithm::ALL.to_vec())
}

fn kind() -> impl Strategy<Value = MessageType> {
    proptest::sample::select(MessageType::ALL.to_vec())
}

/// Valid DER with a few bytes changed: reaches deeper into the parsers than random bytes.
fn mutate(valid: &[u8], edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut v = valid.to_vec();
    for &(i, b) in edits {
        let n = v.len();
        if n > 0 {
            v[i % n] ^= b;
        }
    }
    let keep = v.len().saturating_sub(cut % 4);
    v.truncate(keep);
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn load_never_panics(spec in spec(), bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = PrivateKey::load(spec, &bytes);
        let _ = PublicKey::from_spki_der(spec, &bytes);
    }

    #[test]
    fn load_of_mutated_material_never_panics(
        spec in spec(),
        edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..4),
        cut in any::<usize>(),
    ) {
        let m = mutate(material(spec), &edits, cut);
        if let Ok(k) = PrivateKey::load(spec, &m) {
            // A mutated key that still parses must still behave.
            for &alg in spec.signing_algorithms() {
                if let Ok(sig) = k.sign(alg, b"m", MessageType::Raw) {
                    let _ = k.verify(alg, b"m", MessageType::Raw, &sig);
                }
            }
        }
        if spec.is_asymmetric() {
            let spki = key(spec).public_key_spki_der().unwrap();
            let _ = PublicKey::from_spki_der(spec, &mutate(&spki, &edits, cut));
        }
    }

    #[test]
    fn verify_never_panics(
        spec in spec(),
        alg in signing_alg(),
        kind in kind(),
        message in proptest::collection::vec(any::<u8>(), 0..100),
        signature in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let k = key(spec);
        let result = k.verify(alg, &message, kind, &signature);
        prop_assert!(!matches!(result, Ok(true)));
        if let Ok(spki) = k.public_key_spki_der() {
            let _ = verify_with_spki(spec, &spki, alg, &message, kind, &signature);
            let _ = verify_with_spki(spec, &signature, alg, &message, kind, &message);
        }
    }

    #[test]
    fn verify_of_mutated_signature_never_panics(
        spec in proptest::sample::select(KeySpec::ALL.iter().copied().filter(|s| !s.signing_algorithms().is_empty()).collect::<Vec<_>>()),
        edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..3),
        cut in any::<usize>(),
    ) {
        let k = key(spec);
        let alg = spec.signing_algorithms()[0];
        let sig = k.sign(alg, b"message", MessageType::Raw).unwrap();
        let bad = mutate(&sig, &edits, cut);
        prop_assert!(!k.verify(alg, b"message", MessageType::Raw, &bad).unwrap());
    }

    #[test]
    fn decapsulate_never_panics(
        spec in spec(),
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..3),
        cut in any::<usize>(),
    ) {
        let k = key(spec);
        let _ = k.decapsulate(EncapsulationAlgorithm::MlKem, &bytes);
        if let Ok((ct, secret)) = k.encapsulate(EncapsulationAlgorithm::MlKem) {
            // Altered or cut: an unrelated secret (implicit rejection) or an error.
            let bad = mutate(&ct, &edits, cut);
            if let Ok(other) = k.decapsulate(EncapsulationAlgorithm::MlKem, &bad) {
                prop_assert_ne!(other.expose(), secret.expose());
            }
        }
    }

    #[test]
    fn decrypt_and_mac_never_panic(
        spec in spec(),
        alg in proptest::sample::select(EncryptionAlgorithm::ALL.to_vec()),
        mac_alg in proptest::sample::select(MacAlgorithm::ALL.to_vec()),
        bytes in proptest::collection::vec(any::<u8>(), 0..1200),
    ) {
        let k = key(spec);
        let _ = k.decrypt(alg, &bytes);
        let _ = k.encrypt(alg, &bytes);
        let _ = k.mac(mac_alg, &bytes);
        let _ = k.verify_mac(mac_alg, &bytes, &bytes);
    }
}
