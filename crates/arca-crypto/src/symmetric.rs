//! AES-256-GCM and the ciphertext format returned by Encrypt.
//!
//! Encrypt writes format 0x02. Each message gets a key of its own, derived from
//! the key version's 256-bit key and a fresh random 256-bit salt with
//! HKDF-SHA256 (RFC 5869), and is sealed under that key with AES-256-GCM and a
//! random 96-bit nonce:
//!
//! ```text
//! message key = HKDF-SHA256(salt = salt, IKM = version key,
//!                           info = "arca/encrypt/v2" || key id || key version, L = 32)
//!
//! offset size  field
//! 0      1     format version (0x02)
//! 1      16    key id (the UUID's 16 bytes)
//! 17     4     key material version, big-endian
//! 21     32    salt (random per message)
//! 53     12    nonce (random per message)
//! 65     n+16  AES-256-GCM ciphertext and tag
//! ```
//!
//! A message key seals one message, so the NIST SP 800-38D limit of 2^32
//! random-nonce messages per key no longer applies to the version key: the
//! version key is only an HKDF input, and two messages share an AES key only
//! if their 256-bit salts collide.
//!
//! Format 0x01, written before, sealed every message directly under the
//! version key and is still read:
//!
//! ```text
//! 0      1     format version (0x01)
//! 1      16    key id
//! 17     4     key material version, big-endian
//! 21     12    nonce
//! 33     n+16  AES-256-GCM ciphertext and tag
//! ```
//!
//! In both formats the AAD is the whole header (everything before the
//! ciphertext: version byte, key id, key version, salt, nonce) followed by the
//! canonical encryption context, so every header field and the context are
//! authenticated, and Decrypt can find its key from the blob alone.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};

use crate::{CryptoError, Secret, SecretBytes};

/// Format 0x01: every message sealed directly under the version key. Read only.
pub const FORMAT_V1: u8 = 0x01;
/// Format 0x02: every message sealed under its own HKDF-derived key. Written by Encrypt.
pub const FORMAT_V2: u8 = 0x02;
/// The per-message HKDF salt of format 0x02.
pub const SALT_LEN: usize = 32;
/// Version byte, key id, key version.
const PREFIX_LEN: usize = 1 + 16 + 4;
pub const HEADER_LEN_V1: usize = PREFIX_LEN + NONCE_LEN;
pub const HEADER_LEN_V2: usize = PREFIX_LEN + SALT_LEN + NONCE_LEN;
pub const TAG_LEN: usize = 16;
/// The shortest valid blob of any format: a format 0x01 header and a tag
/// around an empty plaintext.
pub const MIN_CIPHERTEXT_LEN: usize = HEADER_LEN_V1 + TAG_LEN;
/// The longest plaintext Encrypt accepts (as AWS KMS).
pub const MAX_PLAINTEXT_LEN: usize = 4096;
/// The longest blob Decrypt accepts (as AWS KMS's CiphertextBlob limit).
pub const MAX_CIPHERTEXT_LEN: usize = 6144;
/// The HKDF info label of format 0x02's message keys.
const MESSAGE_KEY_INFO: &[u8] = b"arca/encrypt/v2";

// The largest plaintext fits the largest blob in every format.
const _: () = assert!(HEADER_LEN_V2 + MAX_PLAINTEXT_LEN + TAG_LEN <= MAX_CIPHERTEXT_LEN);

/// The ciphertext formats Decrypt reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiphertextFormat {
    /// 0x01: sealed directly under the version key.
    V1,
    /// 0x02: sealed under a per-message key derived with HKDF-SHA256.
    V2,
}

impl CiphertextFormat {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            FORMAT_V1 => Some(Self::V1),
            FORMAT_V2 => Some(Self::V2),
            _ => None,
        }
    }

    /// The header's length: everything before the AES-GCM ciphertext.
    pub fn header_len(self) -> usize {
        match self {
            Self::V1 => HEADER_LEN_V1,
            Self::V2 => HEADER_LEN_V2,
        }
    }
}

/// What a ciphertext says about itself before it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CiphertextHeader {
    pub format: CiphertextFormat,
    pub key_id: [u8; 16],
    pub key_version: u32,
}

/// A blob split into its fields; every length has been checked.
struct Parsed<'a> {
    header: CiphertextHeader,
    /// The header bytes, authenticated as the start of the AAD.
    header_bytes: &'a [u8],
    /// Format 0x02's salt; `None` for format 0x01.
    salt: Option<[u8; SALT_LEN]>,
    nonce: [u8; NONCE_LEN],
    /// Ciphertext and tag.
    body: &'a [u8],
}

fn parse(blob: &[u8]) -> Result<Parsed<'_>, CryptoError> {
    if blob.len() > MAX_CIPHERTEXT_LEN {
        return Err(CryptoError::InvalidCiphertext);
    }
    let format = blob
        .first()
        .and_then(|&b| CiphertextFormat::from_byte(b))
        .ok_or(CryptoError::InvalidCiphertext)?;
    let header_len = format.header_len();
    if blob.len() < header_len + TAG_LEN {
        return Err(CryptoError::InvalidCiphertext);
    }
    let (header_bytes, body) = blob.split_at(header_len);
    let field = |from: usize, len: usize| {
        header_bytes
            .get(from..from + len)
            .ok_or(CryptoError::InvalidCiphertext)
    };
    let key_id: [u8; 16] = field(1, 16)?
        .try_into()
        .map_err(|_| CryptoError::InvalidCiphertext)?;
    let version: [u8; 4] = field(17, 4)?
        .try_into()
        .map_err(|_| CryptoError::InvalidCiphertext)?;
    let salt = match format {
        CiphertextFormat::V1 => None,
        CiphertextFormat::V2 => Some(
            field(PREFIX_LEN, SALT_LEN)?
                .try_into()
                .map_err(|_| CryptoError::InvalidCiphertext)?,
        ),
    };
    let nonce: [u8; NONCE_LEN] = field(header_len - NONCE_LEN, NONCE_LEN)?
        .try_into()
        .map_err(|_| CryptoError::InvalidCiphertext)?;
    Ok(Parsed {
        header: CiphertextHeader {
            format,
            key_id,
            key_version: u32::from_be_bytes(version),
        },
        header_bytes,
        salt,
        nonce,
        body,
    })
}

/// Reads the header. Every blob that is too short, too long or of an unknown
/// format is `InvalidCiphertext`; nothing here can panic.
pub fn parse_header(blob: &[u8]) -> Result<CiphertextHeader, CryptoError> {
    parse(blob).map(|p| p.header)
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

struct Len32;
impl aws_lc_rs::hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// An AES-256 key for many messages: the key schedule for sealing directly
/// under it ([`AesKey::seal`], and format 0x01 blobs), and the key itself as
/// the HKDF input of format 0x02's per-message keys.
pub struct AesKey {
    direct: LessSafeKey,
    ikm: Secret<32>,
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey([REDACTED])")
    }
}

/// An AES-256-GCM key from 32 bytes.
fn gcm_key(key: &[u8; 32]) -> LessSafeKey {
    // A 32-byte key is the one length AES_256_GCM takes, so this cannot fail.
    let unbound =
        UnboundKey::new(&AES_256_GCM, key).expect("AES-256-GCM accepts every 32-byte key");
    LessSafeKey::new(unbound)
}

impl AesKey {
    pub fn new(key: &Secret<32>) -> Self {
        Self {
            direct: gcm_key(key.expose()),
            ikm: Secret::new(*key.expose()),
        }
    }

    /// The key that seals exactly one format 0x02 message: HKDF-SHA256 with the
    /// message's salt, this key as input keying material, and an info that
    /// names the format, the key id and the key version.
    fn message_key(
        &self,
        salt: &[u8; SALT_LEN],
        key_id: &[u8; 16],
        key_version: u32,
    ) -> Result<LessSafeKey, CryptoError> {
        let prk = Salt::new(HKDF_SHA256, salt).extract(self.ikm.expose());
        let version = key_version.to_be_bytes();
        let info: [&[u8]; 3] = [MESSAGE_KEY_INFO, &key_id[..], &version[..]];
        let mut derived = Secret::<32>::new([0u8; 32]);
        prk.expand(&info, Len32)
            .and_then(|okm| okm.fill(derived.expose_mut()))
            .map_err(|_| CryptoError::KeyDerivation)?;
        Ok(gcm_key(derived.expose()))
    }

    /// Seals `plaintext` directly under this key with a random nonce; returns
    /// `nonce || ciphertext || tag`. For low-volume uses (wrapping key material
    /// under the root key), far below 2^32 messages per key.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random::fill(&mut nonce)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(NONCE_LEN);
        self.direct
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
        open_into_secret(&self.direct, nonce, aad, body)
    }

    /// Encrypts a message into the current ciphertext format (0x02), with a
    /// fresh random salt and nonce.
    pub fn encrypt_blob(
        &self,
        key_id: [u8; 16],
        key_version: u32,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>, CryptoError> {
        // One draw for both: each call to the CSPRNG costs about as much as
        // the key derivation.
        let mut fresh = [0u8; SALT_LEN + NONCE_LEN];
        crate::random::fill(&mut fresh)?;
        let (salt, nonce) = fresh.split_at(SALT_LEN);
        let salt: [u8; SALT_LEN] = salt.try_into().map_err(|_| CryptoError::Rng)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Rng)?;
        self.encrypt_blob_with(key_id, key_version, plaintext, context, salt, nonce)
    }

    /// [`AesKey::encrypt_blob`] with the salt and nonce given, so tests can
    /// pin known-answer vectors.
    fn encrypt_blob_with(
        &self,
        key_id: [u8; 16],
        key_version: u32,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
        salt: [u8; SALT_LEN],
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>, CryptoError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(CryptoError::TooLong {
                what: "plaintext",
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            });
        }
        let key = self.message_key(&salt, &key_id, key_version)?;
        let mut blob = Vec::with_capacity(HEADER_LEN_V2 + plaintext.len() + TAG_LEN);
        blob.push(FORMAT_V2);
        blob.extend_from_slice(&key_id);
        blob.extend_from_slice(&key_version.to_be_bytes());
        blob.extend_from_slice(&salt);
        blob.extend_from_slice(&nonce);
        debug_assert_eq!(blob.len(), HEADER_LEN_V2);
        let mut aad = blob.clone();
        aad.extend_from_slice(&canonical_context(context));
        // The plaintext is copied into the blob and overwritten there, in place,
        // by the ciphertext: no other copy of it is made.
        blob.extend_from_slice(plaintext);
        // The header is exactly HEADER_LEN_V2 bytes long (asserted above).
        let sealed = key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad),
            &mut blob[HEADER_LEN_V2..],
        );
        let Ok(tag) = sealed else {
            // Sealing failed: the blob may still hold the plaintext.
            zeroize::Zeroize::zeroize(&mut blob);
            return Err(CryptoError::InvalidCiphertext);
        };
        blob.extend_from_slice(tag.as_ref());
        Ok(blob)
    }

    /// Decrypts a blob of either format made by [`AesKey::encrypt_blob`]
    /// (today's or an earlier release's) with the same context.
    pub fn decrypt_blob(
        &self,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<SecretBytes, CryptoError> {
        let p = parse(blob)?;
        let mut aad = p.header_bytes.to_vec();
        aad.extend_from_slice(&canonical_context(context));
        match p.salt {
            None => open_into_secret(&self.direct, p.nonce, &aad, p.body),
            Some(salt) => {
                let key = self.message_key(&salt, &p.header.key_id, p.header.key_version)?;
                open_into_secret(&key, p.nonce, &aad, p.body)
            }
        }
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
        assert_eq!(h.format, CiphertextFormat::V2);
        assert_eq!(blob[0], FORMAT_V2);
        assert_eq!(blob.len(), HEADER_LEN_V2 + 5 + TAG_LEN);
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
    fn every_byte_is_authenticated() {
        let k = key();
        let v2 = k.encrypt_blob([1; 16], 1, b"secret", &ctx(&[])).unwrap();
        let (v1_key, v1, v1_ctx) = v1_vector();
        for (k, blob, c) in [(&k, v2, ctx(&[])), (&v1_key, v1, v1_ctx)] {
            assert!(k.decrypt_blob(&blob, &c).is_ok());
            for i in 0..blob.len() {
                for bit in [0x01, 0x80] {
                    let mut t = blob.clone();
                    t[i] ^= bit;
                    assert_eq!(
                        k.decrypt_blob(&t, &c).unwrap_err(),
                        CryptoError::InvalidCiphertext,
                        "flip {bit:#x} at {i}"
                    );
                }
            }
        }
    }

    /// The key, blob and context of a format 0x01 ciphertext, made by the
    /// release that wrote that format. It must decrypt forever.
    fn v1_vector() -> (AesKey, Vec<u8>, BTreeMap<String, String>) {
        let blob = hex::decode(
            "016f1c2a0e8d4b4f7a9e3c5b1d2f4a6c8e00000003f7678caa795809b5120fead3\
             80fa96c20844e304fe9426fa731e022b377f4ec6dc11c337c7a5d39c77e6dc6b4d\
             3d28e4495ab127aa05d3",
        )
        .unwrap();
        (
            vector_key(),
            blob,
            ctx(&[("purpose", "test-vector"), ("tenant", "a")]),
        )
    }

    /// Bytes 0x00..=0x1f: the version key of both known-answer vectors.
    fn vector_key() -> AesKey {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        AesKey::new(&Secret::new(k))
    }

    const VECTOR_KEY_ID: &str = "6f1c2a0e8d4b4f7a9e3c5b1d2f4a6c8e";

    #[test]
    fn format_v1_vector_still_decrypts() {
        let (k, blob, c) = v1_vector();
        let h = parse_header(&blob).unwrap();
        assert_eq!(h.format, CiphertextFormat::V1);
        assert_eq!(hex::encode(h.key_id), VECTOR_KEY_ID);
        assert_eq!(h.key_version, 3);
        assert_eq!(
            k.decrypt_blob(&blob, &c).unwrap().expose(),
            b"a ciphertext in format 0x01"
        );
        // Format 0x01 is the version key used directly: the tag checks with
        // plain AES-256-GCM, AAD = the 33-byte header and the context.
        let mut aad = blob[..HEADER_LEN_V1].to_vec();
        aad.extend_from_slice(&canonical_context(&c));
        let nonce: [u8; NONCE_LEN] = blob[HEADER_LEN_V1 - NONCE_LEN..HEADER_LEN_V1]
            .try_into()
            .unwrap();
        let mut raw = [0u8; 32];
        raw.copy_from_slice(vector_key().ikm.expose());
        let mut body = blob[HEADER_LEN_V1..].to_vec();
        let pt = gcm_key(&raw)
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut body,
            )
            .unwrap();
        assert_eq!(pt, b"a ciphertext in format 0x01");
        assert!(k.decrypt_blob(&blob, &ctx(&[])).is_err());
    }

    /// A format 0x02 known-answer vector: fixed salt (0xa0..=0xbf) and nonce
    /// (0x00..=0x0b). Freezes the format and the derivation.
    const V2_VECTOR: &str = "026f1c2a0e8d4b4f7a9e3c5b1d2f4a6c8e00000003a0a1a2a3a4a5a6a7a8a9aa\
        abacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf000102030405060708090a0b2abcf2d9be\
        c1f088316a24605359dd78db5ca7c499eef83284f9ee84b2eb46436edb77cc0cf1a496139800";

    fn v2_parts() -> ([u8; 16], [u8; SALT_LEN], [u8; NONCE_LEN]) {
        let id: [u8; 16] = hex::decode(VECTOR_KEY_ID).unwrap().try_into().unwrap();
        let mut salt = [0u8; SALT_LEN];
        for (i, b) in salt.iter_mut().enumerate() {
            *b = 0xa0 + i as u8;
        }
        let nonce: [u8; NONCE_LEN] = hex::decode("000102030405060708090a0b")
            .unwrap()
            .try_into()
            .unwrap();
        (id, salt, nonce)
    }

    #[test]
    fn format_v2_known_answer() {
        let k = vector_key();
        let c = ctx(&[("purpose", "test-vector"), ("tenant", "a")]);
        let (id, salt, nonce) = v2_parts();
        let blob = k
            .encrypt_blob_with(id, 3, b"a ciphertext in format 0x02", &c, salt, nonce)
            .unwrap();
        assert_eq!(
            hex::encode(&blob),
            V2_VECTOR.replace(char::is_whitespace, "")
        );
        assert_eq!(
            k.decrypt_blob(&blob, &c).unwrap().expose(),
            b"a ciphertext in format 0x02"
        );
    }

    /// The derivation is what the module documentation says, computed here
    /// step by step with aws-lc-rs' HKDF and AES-GCM.
    #[test]
    fn format_v2_derivation_matches_the_description() {
        let blob = hex::decode(V2_VECTOR.replace(char::is_whitespace, "")).unwrap();
        let c = ctx(&[("purpose", "test-vector"), ("tenant", "a")]);
        let (id, salt, nonce) = v2_parts();
        let mut version_key = [0u8; 32];
        version_key.copy_from_slice(vector_key().ikm.expose());
        let prk = Salt::new(HKDF_SHA256, &salt).extract(&version_key);
        let info: [&[u8]; 3] = [b"arca/encrypt/v2", &id, &3u32.to_be_bytes()];
        let mut message_key = [0u8; 32];
        prk.expand(&info, Len32)
            .unwrap()
            .fill(&mut message_key)
            .unwrap();
        assert_eq!(&blob[21..53], &salt);
        assert_eq!(&blob[53..65], &nonce);
        let mut aad = blob[..HEADER_LEN_V2].to_vec();
        aad.extend_from_slice(&canonical_context(&c));
        let mut body = blob[HEADER_LEN_V2..].to_vec();
        let pt = gcm_key(&message_key)
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut body,
            )
            .unwrap();
        assert_eq!(pt, b"a ciphertext in format 0x02");
        // The version key alone does not open it.
        let mut body = blob[HEADER_LEN_V2..].to_vec();
        assert!(gcm_key(&version_key)
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut body
            )
            .is_err());
    }

    #[test]
    fn every_message_gets_a_fresh_salt_and_nonce() {
        let k = key();
        let a = k.encrypt_blob([1; 16], 1, b"same", &ctx(&[])).unwrap();
        let b = k.encrypt_blob([1; 16], 1, b"same", &ctx(&[])).unwrap();
        assert_ne!(
            a[PREFIX_LEN..PREFIX_LEN + SALT_LEN],
            b[PREFIX_LEN..PREFIX_LEN + SALT_LEN]
        );
        assert_ne!(
            a[HEADER_LEN_V2 - NONCE_LEN..HEADER_LEN_V2],
            b[HEADER_LEN_V2 - NONCE_LEN..HEADER_LEN_V2]
        );
        assert_ne!(a[HEADER_LEN_V2..], b[HEADER_LEN_V2..]);
    }

    #[test]
    fn salt_tampering_is_rejected() {
        let k = key();
        let blob = k.encrypt_blob([4; 16], 2, b"salted", &ctx(&[])).unwrap();
        // Another message's salt in this message's header.
        let other = k.encrypt_blob([4; 16], 2, b"salted", &ctx(&[])).unwrap();
        let mut t = blob.clone();
        t[PREFIX_LEN..PREFIX_LEN + SALT_LEN]
            .copy_from_slice(&other[PREFIX_LEN..PREFIX_LEN + SALT_LEN]);
        assert_eq!(
            k.decrypt_blob(&t, &ctx(&[])).unwrap_err(),
            CryptoError::InvalidCiphertext
        );
        // An all-zero salt.
        let mut t = blob.clone();
        t[PREFIX_LEN..PREFIX_LEN + SALT_LEN].fill(0);
        assert_eq!(
            k.decrypt_blob(&t, &ctx(&[])).unwrap_err(),
            CryptoError::InvalidCiphertext
        );
    }

    #[test]
    fn format_byte_tampering_is_rejected() {
        let k = key();
        let v2 = k.encrypt_blob([5; 16], 1, b"format", &ctx(&[])).unwrap();
        let (v1_key, v1, v1_ctx) = v1_vector();
        // A format 0x02 blob relabelled 0x01 and the reverse parse as the other
        // format (the lengths allow it) but do not open.
        let mut t = v2.clone();
        t[0] = FORMAT_V1;
        assert_eq!(parse_header(&t).unwrap().format, CiphertextFormat::V1);
        assert_eq!(
            k.decrypt_blob(&t, &ctx(&[])).unwrap_err(),
            CryptoError::InvalidCiphertext
        );
        let mut t = v1.clone();
        t[0] = FORMAT_V2;
        assert_eq!(
            v1_key.decrypt_blob(&t, &v1_ctx).unwrap_err(),
            CryptoError::InvalidCiphertext
        );
        // Unknown formats do not even parse.
        for b in [0x00, 0x03, 0x7f, 0xff] {
            let mut t = v2.clone();
            t[0] = b;
            assert_eq!(
                parse_header(&t).unwrap_err(),
                CryptoError::InvalidCiphertext
            );
            assert_eq!(
                k.decrypt_blob(&t, &ctx(&[])).unwrap_err(),
                CryptoError::InvalidCiphertext
            );
        }
    }

    #[test]
    fn lengths_are_checked_per_format() {
        // Shortest blobs: a header and a tag.
        let mut v1 = vec![FORMAT_V1];
        v1.resize(HEADER_LEN_V1 + TAG_LEN, 0);
        assert!(parse_header(&v1).is_ok());
        assert!(parse_header(&v1[..v1.len() - 1]).is_err());
        let mut v2 = vec![FORMAT_V2];
        v2.resize(HEADER_LEN_V2 + TAG_LEN, 0);
        assert!(parse_header(&v2).is_ok());
        // Long enough for format 0x01, too short for 0x02.
        assert!(parse_header(&v2[..HEADER_LEN_V1 + TAG_LEN]).is_err());
        assert!(parse_header(&v2[..v2.len() - 1]).is_err());
        // Longest blob.
        v2.resize(MAX_CIPHERTEXT_LEN, 0);
        assert!(parse_header(&v2).is_ok());
        v2.push(0);
        assert!(parse_header(&v2).is_err());
        assert!(parse_header(&[]).is_err());
        assert_eq!(MIN_CIPHERTEXT_LEN, HEADER_LEN_V1 + TAG_LEN);
    }

    #[test]
    fn another_key_cannot_decrypt() {
        let blob = key().encrypt_blob([6; 16], 1, b"mine", &ctx(&[])).unwrap();
        let other = AesKey::new(&Secret::new([8u8; 32]));
        assert_eq!(
            other.decrypt_blob(&blob, &ctx(&[])).unwrap_err(),
            CryptoError::InvalidCiphertext
        );
    }

    #[test]
    fn largest_plaintext_fits_the_largest_blob() {
        let k = key();
        let blob = k
            .encrypt_blob([0; 16], 1, &[1u8; MAX_PLAINTEXT_LEN], &ctx(&[]))
            .unwrap();
        assert!(blob.len() <= MAX_CIPHERTEXT_LEN);
        assert_eq!(
            k.decrypt_blob(&blob, &ctx(&[])).unwrap().len(),
            MAX_PLAINTEXT_LEN
        );
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

        /// Blobs with a known format byte reach the field parser and the key
        /// derivation; they too are errors, never panics.
        #[test]
        fn blobs_of_known_formats_never_panic(
            format in prop_oneof![Just(FORMAT_V1), Just(FORMAT_V2)],
            rest in proptest::collection::vec(any::<u8>(), 0..MAX_CIPHERTEXT_LEN + 8),
        ) {
            let k = key();
            let mut blob = vec![format];
            blob.extend_from_slice(&rest);
            let header = parse_header(&blob);
            let len_ok = blob.len() <= MAX_CIPHERTEXT_LEN
                && blob.len() >= if format == FORMAT_V1 { HEADER_LEN_V1 } else { HEADER_LEN_V2 } + TAG_LEN;
            prop_assert_eq!(header.is_ok(), len_ok);
            prop_assert_eq!(k.decrypt_blob(&blob, &BTreeMap::new()).unwrap_err(), CryptoError::InvalidCiphertext);
        }

        #[test]
        fn v1_truncations_are_rejected(cut in 0usize..200) {
            let (k, blob, c) = v1_vector();
            let cut = cut % blob.len();
            prop_assert_eq!(k.decrypt_blob(&blob[..cut], &c).unwrap_err(), CryptoError::InvalidCiphertext);
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
            prop_assert_eq!(blob[0], FORMAT_V2);
            prop_assert_eq!(blob.len(), HEADER_LEN_V2 + pt.len() + TAG_LEN);
            let opened = k.decrypt_blob(&blob, &c).unwrap();
            prop_assert_eq!(opened.expose(), &pt[..]);
        }
    }
}
