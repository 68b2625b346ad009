//! Imported key material, as ImportKeyMaterial reads it: the encrypted
//! material under every wrapping algorithm (arbitrary bytes never unwrap:
//! a forgery would need the wrapping private key), the unwrapped material
//! checked against every key spec (PKCS#8 of the spec's algorithm and size,
//! HMAC lengths), and public keys as SubjectPublicKeyInfo. Round trip:
//! material wrapped with RSA-OAEP under the wrapping public key unwraps to
//! itself.
#![no_main]

use std::sync::OnceLock;

use arca_keys::import::{check_material, unwrap_material, WrappingAlgorithm};
use arca_keys::{encrypt_with_spki, EncryptionAlgorithm, KeySpec, PrivateKey, PublicKey};
use libfuzzer_sys::fuzz_target;

/// One RSA-2048 wrapping key for the whole run (generating one per input
/// would make the target measure key generation).
fn wrapping() -> &'static (PrivateKey, Vec<u8>) {
    static KEY: OnceLock<(PrivateKey, Vec<u8>)> = OnceLock::new();
    KEY.get_or_init(|| {
        let m = arca_keys::generate(KeySpec::Rsa2048).unwrap();
        let k = PrivateKey::load(KeySpec::Rsa2048, m.expose()).unwrap();
        let spki = k.public_key_spki_der().unwrap();
        (k, spki)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let spec = KeySpec::ALL[usize::from(selector) % KeySpec::ALL.len()];
    let alg = WrappingAlgorithm::ALL[usize::from(selector >> 4) % WrappingAlgorithm::ALL.len()];
    let (key, spki) = wrapping();

    assert!(unwrap_material(key, alg, rest).is_err());
    if let Ok((public, _identity)) = check_material(spec, rest) {
        // Accepted material has a public key that parses as the spec's.
        if let Some(p) = public {
            PublicKey::from_spki_der(spec, &p).expect("the accepted material's public key");
        }
    }
    let _ = PublicKey::from_spki_der(spec, rest);

    if !rest.is_empty() && rest.len() <= 190 {
        let wrapped =
            encrypt_with_spki(KeySpec::Rsa2048, spki, EncryptionAlgorithm::RsaesOaepSha256, rest)
                .unwrap();
        let back = unwrap_material(key, WrappingAlgorithm::RsaesOaepSha256, &wrapped).unwrap();
        assert_eq!(back.expose(), rest);
    }
});
