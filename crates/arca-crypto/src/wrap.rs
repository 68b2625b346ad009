//! The root key, and the wrapping of every secret under it.
//!
//! Two keys are derived from the 256-bit root key with HKDF-SHA256, so the root
//! key itself is never used directly:
//! - the *wrapping key* (AES-256-GCM) seals key material and access-key secrets;
//! - the *check value* (16 bytes) tells whether a root key is the one some data
//!   was written under, without revealing anything about the key.
//!
//! Other subsystems get their own keys from [`RootKey::derive_subkey`], each
//! under a label of its own (`"arca/audit-checkpoint/v1"`), so no two uses share
//! a key and none of them can reveal the wrapping key.
//!
//! A wrapped secret is `0x01 || nonce(12) || ciphertext || tag(16)`. Its AAD binds
//! what the secret is (purpose), whose it is (id) and which version it is, so a
//! wrapped blob moved to another key or version does not open.

use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};

use crate::symmetric::AesKey;
use crate::{CryptoError, Secret, SecretBytes};

const WRAP_FORMAT_V1: u8 = 0x01;
const WRAP_INFO: &[u8] = b"arca/root/wrapping-key/v1";
const CHECK_INFO: &[u8] = b"arca/root/check-value/v1";
const SUBKEYS_INFO: &[u8] = b"arca/root/subkeys/v1";

/// The length of a root key in bytes.
pub const ROOT_KEY_LEN: usize = 32;

/// What a wrapped secret belongs to; authenticated as AAD.
#[derive(Debug, Clone, Copy)]
pub struct WrapContext<'a> {
    /// What kind of secret: `"key-material"`, `"access-key"`.
    pub purpose: &'a str,
    /// Whose: a key id, an access key id.
    pub id: &'a [u8],
    /// Which version of it.
    pub version: u32,
}

impl WrapContext<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut aad = b"arca-wrap-v1".to_vec();
        for field in [self.purpose.as_bytes(), self.id] {
            aad.extend_from_slice(&(field.len() as u32).to_be_bytes());
            aad.extend_from_slice(field);
        }
        aad.extend_from_slice(&self.version.to_be_bytes());
        aad
    }
}

/// The cluster's root key. Holds only derived keys.
pub struct RootKey {
    wrapping: AesKey,
    check: [u8; 16],
    /// The base from which [`RootKey::derive_subkey`] expands labelled keys.
    subkeys: Secret<32>,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey([REDACTED])")
    }
}

struct Len(usize);
impl aws_lc_rs::hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive<const N: usize>(root: &Secret<32>, info: &[u8]) -> Secret<N> {
    let prk = Salt::new(HKDF_SHA256, b"arca").extract(root.expose());
    // Filled in place: the derived bytes exist only inside the secret.
    let mut out = Secret::new([0u8; N]);
    // `expand` fails only for lengths over 255 * 32 bytes; N is 16 or 32.
    prk.expand(&[info], Len(N))
        .and_then(|okm| okm.fill(out.expose_mut()))
        .expect("HKDF-SHA256 expands to 32 bytes");
    out
}

impl RootKey {
    pub fn new(root: &Secret<32>) -> Self {
        let wrapping = derive::<32>(root, WRAP_INFO);
        let check = derive::<16>(root, CHECK_INFO);
        Self {
            wrapping: AesKey::new(&wrapping),
            check: *check.expose(),
            subkeys: derive::<32>(root, SUBKEYS_INFO),
        }
    }

    /// Reads a root key file: 64 hex digits (surrounding white space allowed) or
    /// exactly 32 raw bytes. Anything else is an error that says which.
    ///
    /// The key is decoded straight into a zeroizing buffer; `contents` itself
    /// is the caller's to wipe (the binary reads it into a zeroizing buffer).
    pub fn from_file_contents(contents: &[u8]) -> Result<Self, RootKeyFileError> {
        if contents.len() == ROOT_KEY_LEN {
            let s = Secret::<32>::from_slice(contents).map_err(|_| RootKeyFileError::Length)?;
            return Ok(Self::new(&s));
        }
        let text = contents.trim_ascii();
        if text.len() != ROOT_KEY_LEN * 2 {
            return Err(if std::str::from_utf8(contents).is_err() {
                RootKeyFileError::Encoding
            } else {
                RootKeyFileError::Length
            });
        }
        let mut key = Secret::new([0u8; ROOT_KEY_LEN]);
        for (b, pair) in key.expose_mut().iter_mut().zip(text.chunks_exact(2)) {
            match (hex_value(pair[0]), hex_value(pair[1])) {
                (Some(hi), Some(lo)) => *b = (hi << 4) | lo,
                // `key` is wiped on drop, the digits read so far with it.
                _ => return Err(RootKeyFileError::Encoding),
            }
        }
        Ok(Self::new(&key))
    }

    /// A new random root key and its file form (64 hex digits and a newline).
    pub fn generate() -> Result<(Self, SecretBytes), CryptoError> {
        let s = Secret::<32>::random()?;
        // Written into its final buffer, sized up front: no copy is left behind
        // by a reallocation or a temporary string.
        let mut text = Vec::with_capacity(2 * ROOT_KEY_LEN + 1);
        for b in s.expose() {
            text.push(HEX_DIGITS[usize::from(b >> 4)]);
            text.push(HEX_DIGITS[usize::from(b & 0x0f)]);
        }
        text.push(b'\n');
        Ok((Self::new(&s), SecretBytes::new(text)))
    }

    /// The key check value: equal for equal root keys, and says nothing else.
    pub fn check_value(&self) -> [u8; 16] {
        self.check
    }

    /// A 256-bit key for one purpose, named by `label` (e.g.
    /// `b"arca/audit-checkpoint/v1"`): the same for equal root keys and labels,
    /// unrelated for different labels, and independent of the wrapping key.
    pub fn derive_subkey(&self, label: &[u8]) -> Secret<32> {
        derive::<32>(&self.subkeys, label)
    }

    pub fn wrap(&self, secret: &[u8], ctx: WrapContext<'_>) -> Result<Vec<u8>, CryptoError> {
        let sealed = self.wrapping.seal(secret, &ctx.aad())?;
        let mut out = Vec::with_capacity(1 + sealed.len());
        out.push(WRAP_FORMAT_V1);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn unwrap(&self, wrapped: &[u8], ctx: WrapContext<'_>) -> Result<SecretBytes, CryptoError> {
        match wrapped.split_first() {
            Some((&WRAP_FORMAT_V1, sealed)) => self
                .wrapping
                .open(sealed, &ctx.aad())
                .map_err(|_| CryptoError::UnwrapFailed),
            _ => Err(CryptoError::UnwrapFailed),
        }
    }

    /// Unwraps a 256-bit key.
    pub fn unwrap_key32(
        &self,
        wrapped: &[u8],
        ctx: WrapContext<'_>,
    ) -> Result<Secret<32>, CryptoError> {
        let s = self.unwrap(wrapped, ctx)?;
        Secret::<32>::from_slice(s.expose())
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The value of one hex digit (either case).
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Why a root key file could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RootKeyFileError {
    #[error(
        "a root key file holds 64 hex digits (or 32 raw bytes); this one has the wrong length"
    )]
    Length,
    #[error(
        "a root key file holds 64 hex digits (or 32 raw bytes); this one has other characters"
    )]
    Encoding,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(id: &[u8], version: u32) -> WrapContext<'_> {
        WrapContext {
            purpose: "key-material",
            id,
            version,
        }
    }

    #[test]
    fn wrap_binds_id_version_and_purpose() {
        let (root, _) = RootKey::generate().unwrap();
        let w = root.wrap(&[5u8; 32], ctx(b"k1", 1)).unwrap();
        assert_eq!(root.unwrap(&w, ctx(b"k1", 1)).unwrap().expose(), &[5u8; 32]);
        assert!(root.unwrap(&w, ctx(b"k2", 1)).is_err());
        assert!(root.unwrap(&w, ctx(b"k1", 2)).is_err());
        let other = WrapContext {
            purpose: "access-key",
            id: b"k1",
            version: 1,
        };
        assert!(root.unwrap(&w, other).is_err());
        // The wrapped form does not contain the secret.
        assert!(!w.windows(32).any(|x| x == [5u8; 32]));
    }

    #[test]
    fn other_root_key_cannot_unwrap_and_has_other_check_value() {
        let (a, _) = RootKey::generate().unwrap();
        let (b, _) = RootKey::generate().unwrap();
        let w = a.wrap(b"secret", ctx(b"k", 1)).unwrap();
        assert_eq!(
            b.unwrap(&w, ctx(b"k", 1)).unwrap_err(),
            CryptoError::UnwrapFailed
        );
        assert_ne!(a.check_value(), b.check_value());
    }

    #[test]
    fn subkeys_depend_on_root_key_and_label() {
        let (a, text) = RootKey::generate().unwrap();
        let again = RootKey::from_file_contents(text.expose()).unwrap();
        let (b, _) = RootKey::generate().unwrap();
        let label = b"arca/audit-checkpoint/v1";
        assert_eq!(
            a.derive_subkey(label).expose(),
            again.derive_subkey(label).expose()
        );
        assert_ne!(
            a.derive_subkey(label).expose(),
            b.derive_subkey(label).expose()
        );
        assert_ne!(
            a.derive_subkey(label).expose(),
            a.derive_subkey(b"arca/other/v1").expose()
        );
    }

    #[test]
    fn file_forms() {
        let (k, text) = RootKey::generate().unwrap();
        let again = RootKey::from_file_contents(text.expose()).unwrap();
        assert_eq!(k.check_value(), again.check_value());
        assert!(RootKey::from_file_contents(&[1u8; 32]).is_ok());
        assert_eq!(
            RootKey::from_file_contents(b"abcd").unwrap_err(),
            RootKeyFileError::Length
        );
        assert_eq!(
            RootKey::from_file_contents(&[b'z'; 64]).unwrap_err(),
            RootKeyFileError::Encoding
        );
        assert!(RootKey::from_file_contents(b"").is_err());
        // Upper-case digits and surrounding white space are the same key.
        let upper = String::from_utf8(text.expose().to_vec())
            .unwrap()
            .to_uppercase();
        let padded = format!("  {}\r\n\n", upper.trim());
        assert_eq!(
            RootKey::from_file_contents(padded.as_bytes())
                .unwrap()
                .check_value(),
            k.check_value()
        );
        // 64 characters, one of them not a hex digit.
        let mut bad = text.expose()[..64].to_vec();
        bad[63] = b'g';
        assert_eq!(
            RootKey::from_file_contents(&bad).unwrap_err(),
            RootKeyFileError::Encoding
        );
        assert_eq!(
            RootKey::from_file_contents(&[0xffu8; 64]).unwrap_err(),
            RootKeyFileError::Encoding
        );
    }

    /// The hex form and the raw form of one key are the same key, and the
    /// file form `generate` writes is 64 lower-case hex digits and a newline.
    #[test]
    fn hex_and_raw_forms_agree() {
        let (k, text) = RootKey::generate().unwrap();
        let t = text.expose();
        assert_eq!(t.len(), 65);
        assert_eq!(t[64], b'\n');
        assert!(t[..64]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)));
        let raw: Vec<u8> = t[..64]
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect();
        assert_eq!(
            RootKey::from_file_contents(&raw).unwrap().check_value(),
            k.check_value()
        );
    }
}
