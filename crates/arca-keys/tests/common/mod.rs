//! Keys shared by the tests of one test binary: each is generated once.

#![allow(dead_code)]

use std::sync::OnceLock;

use arca_keys::{KeySpec, MessageType, PrivateKey, SigningAlgorithm};
use sha2::Digest as _;

const N: usize = KeySpec::ALL.len();

fn index(spec: KeySpec) -> usize {
    KeySpec::ALL
        .iter()
        .position(|s| *s == spec)
        .expect("spec is listed")
}

struct Generated {
    material: Vec<u8>,
    key: PrivateKey,
}

fn generated(slot: usize, spec: KeySpec) -> &'static Generated {
    static KEYS: [[OnceLock<Generated>; N]; 2] = [const { [const { OnceLock::new() }; N] }; 2];
    KEYS[slot][index(spec)].get_or_init(|| {
        let material = arca_keys::generate(spec).expect("generate");
        let key = PrivateKey::load(spec, material.expose()).expect("load");
        Generated {
            material: material.expose().to_vec(),
            key,
        }
    })
}

/// The first key of `spec` in this test binary.
pub fn key(spec: KeySpec) -> &'static PrivateKey {
    &generated(0, spec).key
}

/// Its stored material (PKCS#8 DER or raw HMAC key).
pub fn material(spec: KeySpec) -> &'static [u8] {
    &generated(0, spec).material
}

/// A second, different key of `spec`.
pub fn other_key(spec: KeySpec) -> &'static PrivateKey {
    &generated(1, spec).key
}

/// The DIGEST message for `alg` over `message`.
pub fn digest_of(key: &PrivateKey, alg: SigningAlgorithm, message: &[u8]) -> Vec<u8> {
    use SigningAlgorithm as S;
    match alg {
        S::RsassaPssSha256 | S::RsassaPkcs1V15Sha256 | S::EcdsaSha256 => {
            sha2::Sha256::digest(message).to_vec()
        }
        S::RsassaPssSha384 | S::RsassaPkcs1V15Sha384 | S::EcdsaSha384 => {
            sha2::Sha384::digest(message).to_vec()
        }
        S::RsassaPssSha512
        | S::RsassaPkcs1V15Sha512
        | S::EcdsaSha512
        | S::Ed25519Sha512
        | S::Ed25519PhSha512 => sha2::Sha512::digest(message).to_vec(),
        S::Sm2Dsa => key
            .public_key()
            .expect("public key")
            .sm2_digest(message)
            .expect("sm2 digest")
            .to_vec(),
        // ML-DSA has no DIGEST; its 64-byte EXTERNAL_MU message is mu.
        S::MlDsaShake256 => key
            .public_key()
            .expect("public key")
            .ml_dsa_mu(message)
            .expect("mu")
            .to_vec(),
    }
}

/// The specs this crate holds material for: all but SYMMETRIC_DEFAULT.
pub fn keyed_specs() -> impl Iterator<Item = KeySpec> {
    KeySpec::ALL
        .iter()
        .copied()
        .filter(|s| *s != KeySpec::SymmetricDefault)
}

pub fn asymmetric_specs() -> impl Iterator<Item = KeySpec> {
    KeySpec::ALL.iter().copied().filter(|s| s.is_asymmetric())
}

pub fn hmac_specs() -> impl Iterator<Item = KeySpec> {
    KeySpec::ALL.iter().copied().filter(|s| s.is_hmac())
}

pub const KINDS: [MessageType; 2] = [MessageType::Raw, MessageType::Digest];

/// The message types `alg` takes: RAW and DIGEST, the one Ed25519 requires, or
/// RAW and EXTERNAL_MU (ML-DSA).
pub fn kinds(alg: SigningAlgorithm) -> Vec<MessageType> {
    alg.message_types().to_vec()
}

/// The message or its digest, per `kind`.
pub fn input(
    key: &PrivateKey,
    alg: SigningAlgorithm,
    message: &[u8],
    kind: MessageType,
) -> Vec<u8> {
    match kind {
        MessageType::Raw => message.to_vec(),
        MessageType::Digest | MessageType::ExternalMu => digest_of(key, alg, message),
    }
}
