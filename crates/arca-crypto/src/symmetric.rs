//! AES-256-GCM and the ciphertext format returned by Encrypt.
//!
//! ```text
//! offset size  field
//! 0      1     format version (0x01)
//! 1      16    key id (the UUID's 16 bytes)
//! 17     4     key material version, big-endian
//! 21     12    nonce (random per message)
//! 33     n+16  AES-256-GCM ciphertext and tag
//! ```
//! The AAD is the 33-byte header followed by the canonical encryption context, so
//! the key id, the version and the context are all authenticated, and Decrypt can
//! find its key from the blob alone.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use crate::{CryptoError, Secret, SecretBytes};

pub const FORMAT_V1: u8 = 0x01;
pub const HEADER_LEN: usize = 1 + 16 + 4 + NONCE_LEN;
pub const TAG_LEN: usize = 16;
/// The shortest valid blob: a header and a tag around an empty plaintext.
pub const MIN_CIPHERTEXT_LEN: usize = HEADER_LEN + TAG_LEN;
/// The longest plaintext Encrypt accepts (as AWS KMS).
pub const MAX_PLAINTEXT_LEN: usize = 4096;
/// The longest blob Decrypt accepts (as AWS KMS's CiphertextBlob limit).
pub const MAX_CIPHERTEXT_LEN: usize = 6144;

/// What a ciphertext says about itself before it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CiphertextHeader {
    pub key_id: [u8; 16],
    pub key_version: u32,
}

/// Reads the header. Every blob that is too short, too long or of an unknown
/// format is `InvalidCiphertext`; nothing here can panic.
pub fn parse_header(blob: &[u8]) -> Result<CiphertextHeader, CryptoError> {
    if blob.len() < MIN_CIPHERTEXT_LEN || blob.len() > MAX_CIPHERTEXT_LEN {
        return Err(CryptoError::InvalidCiphertext);
    }
    let (&version, rest) = blob.split_first().ok_or(CryptoError::InvalidCiphertext)?;
    if version != FORMAT_V1 {
        return Err(CryptoError::InvalidCiphertext);
    }
    let key_id: [u8; 16] = rest
        .get(..16)
        .and_then(|s| s.try_into().ok())
        .ok_or(CryptoError::InvalidCiphertext)?;
    let ver: [u8; 4] = rest
        .get(16..20)
        .and_then(|s| s.try_into().ok())
        .ok_or(CryptoError::InvalidCiphertext)?;
    Ok(CiphertextHeader {
        key_id,
        key_version: u32::from_be_bytes(ver),
    })
}

/// The canonical byte form of an encryption context: pairs sorted by key (the
/// `BTreeMap` order), each field length-prefixed so no two contexts share a form.
pub fn canonical_context(context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in context {
        for field in [k.as_bytes(), v.as_bytes()] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
    }
    out
}

/// An AES-256-GCM key with its key schedule prepared, for many messages.
pub struct AesKey(LessSafeKey);

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey([REDACTED])")
    }
}

impl AesKey {
    pub fn new(key: &Secret<32>) -> Self {
        // A 32-byte key is the one length AES_256_GCM takes, so this cannot fail.
        let unbound = UnboundKey::new(&AES_256_GCM, key.expose())
            .expect("AES-256-GCM accepts every 32-byte key");
        Self(LessSafeKey::new(unbound))
    }

    /// Seals `plaintext` with a random nonce; returns `nonce || ciphertext || tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random::fill(&mut nonce)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(NONCE_LEN);
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| CryptoError::TooLong {
                what: "plaintext",
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            })?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens `nonce || ciphertext || tag`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<SecretBytes, CryptoError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::InvalidCiphertext);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| CryptoError::InvalidCiphertext)?;
        open_into_secret(&self.0, nonce, aad, body)
    }

    /// Encrypts a message into the ciphertext format above.
    pub fn encrypt_blob(
        &self,
        key_id: [u8; 16],
        key_version: u32,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>, CryptoError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(CryptoError::TooLong {
                what: "plaintext",
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            });
        }
        let mut nonce = [0u8; NONCE_LEN];
        crate::random::fill(&mut nonce)?;
        let mut blob = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        blob.push(FORMAT_V1);
        blob.extend_from_slice(&key_id);
        blob.extend_from_slice(&key_version.to_be_bytes());
        blob.extend_from_slice(&nonce);
        let mut aad = blob.clone();
        aad.extend_from_slice(&canonical_context(context));
        let mut body = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut body,
            )
            .map_err(|_| CryptoError::InvalidCiphertext)?;
        blob.extend_from_slice(&body);
        // The plaintext copy in `body` was overwritten in place by the ciphertext.
        Ok(blob)
    }

    /// Decrypts a blob made by [`AesKey::encrypt_blob`] with the same context.
    pub fn decrypt_blob(
        &self,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<SecretBytes, CryptoError> {
        parse_header(blob)?;
        let header = blob
            .get(..HEADER_LEN)
            .ok_or(CryptoError::InvalidCiphertext)?;
        let nonce: [u8; NONCE_LEN] = header
            .get(HEADER_LEN - NONCE_LEN..)
            .and_then(|n| n.try_into().ok())
            .ok_or(CryptoError::InvalidCiphertext)?;
        let mut aad = header.to_vec();
        aad.extend_from_slice(&canonical_context(context));
        let body = blob
            .get(HEADER_LEN..)
            .ok_or(CryptoError::InvalidCiphertext)?;
        open_into_secret(&self.0, nonce, &aad, body)
    }
}

/// Opens `body` (ciphertext and tag) in a zeroizing buffer, so the plaintext
/// never sits in ordinary memory.
fn open_into_secret(
    key: &LessSafeKey,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    body: &[u8],
) -> Result<SecretBytes, CryptoError> {
    let mut buf = SecretBytes::new(body.to_vec());
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            buf.as_mut_vec(),
        )
        .map_err(|_| CryptoError::InvalidCiphertext)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> AesKey {
        AesKey::new(&Secret::new([7u8; 32]))
    }

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn round_trip_names_key_and_version() {
        let k = key();
        let id = [9u8; 16];
        let blob = k
            .encrypt_blob(id, 3, b"hello", &ctx(&[("a", "1")]))
            .unwrap();
        let h = parse_header(&blob).unwrap();
        assert_eq!(h.key_id, id);
        assert_eq!(h.key_version, 3);
        let pt = k.decrypt_blob(&blob, &ctx(&[("a", "1")])).unwrap();
        assert_eq!(pt.expose(), b"hello");
    }

    #[test]
    fn wrong_context_is_rejected() {
        let k = key();
        let blob = k
            .encrypt_blob([1; 16], 1, b"x", &ctx(&[("a", "1")]))
            .unwrap();
        for wrong in [ctx(&[]), ctx(&[("a", "2")]), ctx(&[("a", "1"), ("b", "")])] {
            assert_eq!(
                k.decrypt_blob(&blob, &wrong).unwrap_err(),
                CryptoError::InvalidCiphertext
            );
        }
    }

    #[test]
    fn canonical_context_is_unambiguous() {
        // "ab"="c" and "a"="bc" must not collide.
        assert_ne!(
            canonical_context(&ctx(&[("ab", "c")])),
            canonical_context(&ctx(&[("a", "bc")]))
        );
    }

    #[test]
    fn header_fields_are_authenticated() {
        let k = key();
        let blob = k.encrypt_blob([1; 16], 1, b"secret", &ctx(&[])).unwrap();
        for i in 0..blob.len() {
            let mut t = blob.clone();
            t[i] ^= 0x01;
            assert!(k.decrypt_blob(&t, &ctx(&[])).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn plaintext_limit() {
        let k = key();
        assert!(k
            .encrypt_blob([0; 16], 1, &[0u8; MAX_PLAINTEXT_LEN], &ctx(&[]))
            .is_ok());
        assert!(matches!(
            k.encrypt_blob([0; 16], 1, &[0u8; MAX_PLAINTEXT_LEN + 1], &ctx(&[])),
            Err(CryptoError::TooLong { .. })
        ));
    }

    #[test]
    fn seal_open_round_trip() {
        let k = key();
        let s = k.seal(b"material", b"aad").unwrap();
        assert_eq!(k.open(&s, b"aad").unwrap().expose(), b"material");
        assert!(k.open(&s, b"other").is_err());
        assert!(k.open(&s[..10], b"aad").is_err());
    }

    /// NIST GCM test vector (gcmEncryptExtIV256.rsp, Count 0 with 128-bit
    /// plaintext): key, IV, PT, CT and tag as published.
    #[test]
    fn nist_aes_256_gcm_vector() {
        let key = hex::decode("31bdadd96698c204aa9ce1448ea94ae1fb4a9a0b3c9d773b51bb1822666b8f22")
            .unwrap();
        let iv: [u8; 12] = hex::decode("0d18e06c7c725ac9e362e1ce")
            .unwrap()
            .try_into()
            .unwrap();
        let pt = hex::decode("2db5168e932556f8089a0622981d017d").unwrap();
        let expected =
            hex::decode("fa4362189661d163fcd6a56d8bf0405ad636ac1bbedd5cc3ee727dc2ab4a9489")
                .unwrap();
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
        let mut buf = pt.clone();
        k.seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut buf)
            .unwrap();
        assert_eq!(buf, expected);
    }

    proptest! {
        #[test]
        fn arbitrary_blobs_never_panic(blob in proptest::collection::vec(any::<u8>(), 0..200)) {
            let k = key();
            let _ = parse_header(&blob);
            prop_assert!(k.decrypt_blob(&blob, &BTreeMap::new()).is_err());
        }

        #[test]
        fn truncations_are_rejected(pt in proptest::collection::vec(any::<u8>(), 0..64), cut in 0usize..200) {
            let k = key();
            let blob = k.encrypt_blob([2; 16], 1, &pt, &BTreeMap::new()).unwrap();
            let cut = cut % blob.len();
            prop_assert_eq!(k.decrypt_blob(&blob[..cut], &BTreeMap::new()).unwrap_err(), CryptoError::InvalidCiphertext);
        }

        #[test]
        fn round_trips(pt in proptest::collection::vec(any::<u8>(), 0..512),
                       c in proptest::collection::btree_map(".{0,8}", ".{0,8}", 0..4)) {
            let k = key();
            let blob = k.encrypt_blob([3; 16], 7, &pt, &c).unwrap();
            let opened = k.decrypt_blob(&blob, &c).unwrap();
            prop_assert_eq!(opened.expose(), &pt[..]);
        }
    }
}
