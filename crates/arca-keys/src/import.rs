//! Imported key material ("bring your own key"): the wrapping algorithms of
//! `GetParametersForImport`, the unwrapping of what a client encrypted under
//! the import wrapping key, and what identifies imported material.
//!
//! A wrapping key is an RSA key pair (2048, 3072 or 4096 bits). The client
//! encrypts its material under the public half, with
//! - `RSAES_OAEP_SHA_1` / `RSAES_OAEP_SHA_256`: RSA-OAEP of the material
//!   itself (MGF1 with the same hash), or
//! - `RSA_AES_KEY_WRAP_SHA_1` / `RSA_AES_KEY_WRAP_SHA_256`: RSA-OAEP of a
//!   fresh AES-256 key, followed by the material wrapped under that key with
//!   AES Key Wrap with Padding (RFC 5649), as `openssl enc -id-aes256-wrap-pad`
//!   writes it. This is the only way to import an RSA private key, which is
//!   larger than what OAEP can carry.

use arca_crypto::SecretBytes;
use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{EncryptionAlgorithm, KeyError, KeySpec, PrivateKey};

/// How imported material is encrypted under the import wrapping key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrappingAlgorithm {
    RsaesOaepSha1,
    RsaesOaepSha256,
    RsaAesKeyWrapSha1,
    RsaAesKeyWrapSha256,
    /// SM2 public-key encryption (GB/T 32918.4, DER C1C3C2 as OpenSSL writes
    /// it) of the material under an SM2 wrapping key.
    Sm2Pke,
}

impl WrappingAlgorithm {
    pub const ALL: [WrappingAlgorithm; 5] = [
        WrappingAlgorithm::RsaesOaepSha1,
        WrappingAlgorithm::RsaesOaepSha256,
        WrappingAlgorithm::RsaAesKeyWrapSha1,
        WrappingAlgorithm::RsaAesKeyWrapSha256,
        WrappingAlgorithm::Sm2Pke,
    ];

    pub fn as_aws(&self) -> &'static str {
        match self {
            WrappingAlgorithm::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
            WrappingAlgorithm::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
            WrappingAlgorithm::RsaAesKeyWrapSha1 => "RSA_AES_KEY_WRAP_SHA_1",
            WrappingAlgorithm::RsaAesKeyWrapSha256 => "RSA_AES_KEY_WRAP_SHA_256",
            WrappingAlgorithm::Sm2Pke => "SM2PKE",
        }
    }

    pub fn from_aws(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_aws() == name)
    }

    /// A stable one-byte code (for import tokens).
    pub fn code(&self) -> u8 {
        match self {
            WrappingAlgorithm::RsaesOaepSha1 => 1,
            WrappingAlgorithm::RsaesOaepSha256 => 2,
            WrappingAlgorithm::RsaAesKeyWrapSha1 => 3,
            WrappingAlgorithm::RsaAesKeyWrapSha256 => 4,
            WrappingAlgorithm::Sm2Pke => 5,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.code() == code)
    }

    /// The public-key encryption it uses (for the RSA-AES ones, on the AES key).
    fn encryption(&self) -> EncryptionAlgorithm {
        match self {
            WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaAesKeyWrapSha1 => {
                EncryptionAlgorithm::RsaesOaepSha1
            }
            WrappingAlgorithm::RsaesOaepSha256 | WrappingAlgorithm::RsaAesKeyWrapSha256 => {
                EncryptionAlgorithm::RsaesOaepSha256
            }
            WrappingAlgorithm::Sm2Pke => EncryptionAlgorithm::Sm2Pke,
        }
    }

    /// Whether a wrapping key of `spec` serves it: SM2PKE an SM2 key, the
    /// others RSA keys (AWS pairs them the same way).
    pub fn takes(&self, spec: KeySpec) -> bool {
        match self {
            WrappingAlgorithm::Sm2Pke => spec == KeySpec::Sm2,
            _ => spec.rsa_bits().is_some(),
        }
    }
}

/// The key specs of an import wrapping key (`WrappingKeySpec`).
pub const WRAPPING_KEY_SPECS: [KeySpec; 4] = [
    KeySpec::Rsa2048,
    KeySpec::Rsa3072,
    KeySpec::Rsa4096,
    KeySpec::Sm2,
];

/// Decrypts material a client encrypted under `wrapping` (an RSA or SM2
/// private key) with `alg`. Every failure is the one opaque
/// [`KeyError::InvalidCiphertext`].
pub fn unwrap_material(
    wrapping: &PrivateKey,
    alg: WrappingAlgorithm,
    encrypted: &[u8],
) -> Result<SecretBytes, KeyError> {
    if !alg.takes(wrapping.spec()) {
        return Err(KeyError::InvalidCiphertext);
    }
    match alg {
        WrappingAlgorithm::RsaesOaepSha1
        | WrappingAlgorithm::RsaesOaepSha256
        | WrappingAlgorithm::Sm2Pke => wrapping
            .decrypt(alg.encryption(), encrypted)
            .map_err(|_| KeyError::InvalidCiphertext),
        WrappingAlgorithm::RsaAesKeyWrapSha1 | WrappingAlgorithm::RsaAesKeyWrapSha256 => {
            let bits = wrapping
                .spec()
                .rsa_bits()
                .ok_or(KeyError::InvalidCiphertext)?;
            let n = bits / 8;
            // At least one wrapped block pair (16 bytes) after the RSA part.
            if encrypted.len() < n + 16 {
                return Err(KeyError::InvalidCiphertext);
            }
            let (rsa_part, wrapped) = encrypted.split_at(n);
            let aes = wrapping
                .decrypt(alg.encryption(), rsa_part)
                .map_err(|_| KeyError::InvalidCiphertext)?;
            if aes.len() != 32 {
                return Err(KeyError::InvalidCiphertext);
            }
            let kek =
                AesKek::new(&AES_256, aes.expose()).map_err(|_| KeyError::InvalidCiphertext)?;
            let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
            let plain = kek
                .unwrap_with_padding(wrapped, &mut out)
                .map_err(|_| KeyError::InvalidCiphertext)?;
            Ok(SecretBytes::new(plain.to_vec()))
        }
    }
}

/// The lengths of HMAC key material that may be imported for `spec` (AWS's
/// rules: at least the digest size, at most the hash's block size).
pub fn hmac_import_lengths(spec: KeySpec) -> Option<std::ops::RangeInclusive<usize>> {
    match spec {
        KeySpec::Hmac224 => Some(28..=64),
        KeySpec::Hmac256 => Some(32..=64),
        KeySpec::Hmac384 => Some(48..=128),
        KeySpec::Hmac512 => Some(64..=128),
        _ => None,
    }
}

/// Checks imported material of an asymmetric or HMAC `spec` (PKCS#8 DER of
/// the spec's algorithm and size; HMAC: raw bytes of an allowed length).
/// Returns the public key (SPKI DER) of an asymmetric key, and the bytes
/// that identify the material: the public key, or the HMAC key itself.
pub fn check_material(
    spec: KeySpec,
    material: &[u8],
) -> Result<(Option<Vec<u8>>, SecretBytes), KeyError> {
    let key = PrivateKey::load(spec, material)?;
    if spec.is_asymmetric() {
        let spki = key.public_key_spki_der()?;
        let id = SecretBytes::new(spki.clone());
        Ok((Some(spki), id))
    } else {
        Ok((None, SecretBytes::new(material.to_vec())))
    }
}

/// What identifies imported material of a key, so that only the same
/// material is imported again: SHA-256 over a label, the key id and the
/// identifying bytes ([`check_material`]; a symmetric key's material itself).
pub fn material_digest(key_id: &[u8], identity: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"arca/imported-material/v1");
    h.update((key_id.len() as u32).to_be_bytes());
    h.update(key_id);
    h.update(identity);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};

    fn wrapping_key() -> PrivateKey {
        let m = crate::generate(KeySpec::Rsa2048).unwrap();
        PrivateKey::load(KeySpec::Rsa2048, m.expose()).unwrap()
    }

    fn oaep256(k: &PrivateKey, pt: &[u8]) -> Vec<u8> {
        let spki = k.public_key_spki_der().unwrap();
        let pk =
            OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(&spki).unwrap()).unwrap();
        let mut out = vec![0u8; pk.ciphertext_size()];
        pk.encrypt(&OAEP_SHA256_MGF1SHA256, pt, &mut out, None)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn oaep_and_aes_key_wrap_round_trip_and_fail_opaquely() {
        let k = wrapping_key();
        let material = [0x5a; 32];
        let ct = oaep256(&k, &material);
        let got = unwrap_material(&k, WrappingAlgorithm::RsaesOaepSha256, &ct).unwrap();
        assert_eq!(got.expose(), material);
        // The other hash does not open it.
        assert_eq!(
            unwrap_material(&k, WrappingAlgorithm::RsaesOaepSha1, &ct).unwrap_err(),
            KeyError::InvalidCiphertext
        );

        // RSA-OAEP(aes key) || KWP(aes key, material), 100 bytes (padded).
        let aes = [0x11; 32];
        let big = vec![0x77; 100];
        let mut wrapped = vec![0u8; big.len() + 15];
        let w = AesKek::new(&AES_256, &aes)
            .unwrap()
            .wrap_with_padding(&big, &mut wrapped)
            .unwrap()
            .to_vec();
        let mut blob = oaep256(&k, &aes);
        blob.extend_from_slice(&w);
        let got = unwrap_material(&k, WrappingAlgorithm::RsaAesKeyWrapSha256, &blob).unwrap();
        assert_eq!(got.expose(), big);
        for bad in [&blob[..blob.len() - 1], &blob[..256], &[][..]] {
            assert_eq!(
                unwrap_material(&k, WrappingAlgorithm::RsaAesKeyWrapSha256, bad).unwrap_err(),
                KeyError::InvalidCiphertext
            );
        }
        let mut flipped = blob.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            unwrap_material(&k, WrappingAlgorithm::RsaAesKeyWrapSha256, &flipped).unwrap_err(),
            KeyError::InvalidCiphertext
        );
    }

    #[test]
    fn sm2pke_unwraps_under_an_sm2_wrapping_key_only() {
        let m = crate::generate(KeySpec::Sm2).unwrap();
        let k = PrivateKey::load(KeySpec::Sm2, m.expose()).unwrap();
        let public =
            crate::PublicKey::from_spki_der(KeySpec::Sm2, &k.public_key_spki_der().unwrap())
                .unwrap();
        let material = [0x3c; 32];
        let ct = public
            .encrypt(EncryptionAlgorithm::Sm2Pke, &material)
            .unwrap();
        let got = unwrap_material(&k, WrappingAlgorithm::Sm2Pke, &ct).unwrap();
        assert_eq!(got.expose(), material);
        let mut flipped = ct.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            unwrap_material(&k, WrappingAlgorithm::Sm2Pke, &flipped).unwrap_err(),
            KeyError::InvalidCiphertext
        );
        // An RSA algorithm never runs on an SM2 wrapping key, nor SM2PKE on RSA.
        assert_eq!(
            unwrap_material(&k, WrappingAlgorithm::RsaesOaepSha256, &ct).unwrap_err(),
            KeyError::InvalidCiphertext
        );
        assert_eq!(
            unwrap_material(&wrapping_key(), WrappingAlgorithm::Sm2Pke, &ct).unwrap_err(),
            KeyError::InvalidCiphertext
        );
        assert!(WrappingAlgorithm::Sm2Pke.takes(KeySpec::Sm2));
        assert!(!WrappingAlgorithm::Sm2Pke.takes(KeySpec::Rsa2048));
        assert!(!WrappingAlgorithm::RsaesOaepSha1.takes(KeySpec::Sm2));
    }

    #[test]
    fn material_must_fit_the_spec() {
        assert!(check_material(KeySpec::Hmac256, &[1; 31]).is_err());
        assert!(check_material(KeySpec::Hmac256, &[1; 65]).is_err());
        let (public, id) = check_material(KeySpec::Hmac256, &[1; 64]).unwrap();
        assert!(public.is_none());
        assert_eq!(id.expose(), [1; 64]);
        let p256 = crate::generate(KeySpec::EccNistP256).unwrap();
        assert!(check_material(KeySpec::EccNistP384, p256.expose()).is_err());
        assert!(check_material(KeySpec::Rsa2048, p256.expose()).is_err());
        let (public, id) = check_material(KeySpec::EccNistP256, p256.expose()).unwrap();
        assert_eq!(public.as_deref(), Some(id.expose()));
        // Digests differ by key and by material.
        assert_ne!(material_digest(b"a", b"x"), material_digest(b"b", b"x"));
        assert_ne!(material_digest(b"a", b"x"), material_digest(b"a", b"y"));
    }

    #[test]
    fn algorithm_names_and_codes_round_trip() {
        for a in WrappingAlgorithm::ALL {
            assert_eq!(WrappingAlgorithm::from_aws(a.as_aws()), Some(a));
            assert_eq!(WrappingAlgorithm::from_code(a.code()), Some(a));
        }
        assert_eq!(
            WrappingAlgorithm::from_aws("SM2PKE"),
            Some(WrappingAlgorithm::Sm2Pke)
        );
        assert_eq!(WrappingAlgorithm::from_aws("SM2"), None);
    }
}
