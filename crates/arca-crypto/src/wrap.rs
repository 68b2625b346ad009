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
//! Every root key has an id ([`RootKeyId`]): the first 8 bytes of its check
//! value, so a key file of any age has one, and it says nothing about the key.
//!
//! A wrapped secret is `0x02 || root key id(8) || nonce(12) || ciphertext ||
//! tag(16)`: it names the root key it is wrapped under, so a node that holds
//! several root keys (during a root-key rotation, see [`RootKeyRing`]) knows
//! which one opens it, and so does anyone reading a backup. Releases before
//! root-key ids wrote `0x01 || nonce(12) || ciphertext || tag(16)`, which
//! still opens. The AAD binds what the secret is (purpose), whose it is (id),
//! which version it is and (format `0x02`) the root key id, so a wrapped blob
//! moved to another key, version or header does not open.

use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};

use crate::symmetric::AesKey;
use crate::{CryptoError, Secret, SecretBytes};

const WRAP_FORMAT_V1: u8 = 0x01;
const WRAP_FORMAT_V2: u8 = 0x02;
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
        self.aad_with(b"arca-wrap-v1", None)
    }

    fn aad_v2(&self, root: &RootKeyId) -> Vec<u8> {
        self.aad_with(b"arca-wrap-v2", Some(root))
    }

    fn aad_with(&self, label: &[u8], root: Option<&RootKeyId>) -> Vec<u8> {
        let mut aad = label.to_vec();
        if let Some(id) = root {
            aad.extend_from_slice(&id.0);
        }
        for field in [self.purpose.as_bytes(), self.id] {
            aad.extend_from_slice(&(field.len() as u32).to_be_bytes());
            aad.extend_from_slice(field);
        }
        aad.extend_from_slice(&self.version.to_be_bytes());
        aad
    }
}

/// The length of a root key id in bytes.
pub const ROOT_KEY_ID_LEN: usize = 8;

/// Names a root key: the first 8 bytes of its check value (so it reveals
/// nothing about the key, and a key file written before ids existed has one
/// too). Shown as 16 hex digits.
/// Serialized as its 16 hex digits in human-readable formats (JSON), as
/// its 8 bytes in binary ones (postcard).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RootKeyId(pub [u8; ROOT_KEY_ID_LEN]);

impl serde::Serialize for RootKeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> serde::Deserialize<'de> for RootKeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            RootKeyId::parse(&s)
                .ok_or_else(|| serde::de::Error::custom("a root key id is 16 hex digits"))
        } else {
            <[u8; ROOT_KEY_ID_LEN]>::deserialize(d).map(RootKeyId)
        }
    }
}

impl RootKeyId {
    /// The id of the root key whose check value this is.
    pub fn from_check_value(check: &[u8; 16]) -> Self {
        let mut id = [0u8; ROOT_KEY_ID_LEN];
        id.copy_from_slice(&check[..ROOT_KEY_ID_LEN]);
        Self(id)
    }

    /// Parses 16 hex digits (either case).
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.trim().as_bytes();
        if b.len() != 2 * ROOT_KEY_ID_LEN {
            return None;
        }
        let mut id = [0u8; ROOT_KEY_ID_LEN];
        for (out, pair) in id.iter_mut().zip(b.chunks_exact(2)) {
            *out = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(Self(id))
    }
}

impl std::fmt::Display for RootKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for RootKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RootKeyId({self})")
    }
}

/// How a wrapped blob names the root key it is wrapped under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrappedUnder {
    /// Format `0x02`: this root key.
    Key(RootKeyId),
    /// Format `0x01`, written before root keys had ids: the root key the
    /// cluster was created with (no other existed then).
    Legacy,
    /// Not a wrapped blob.
    Unknown,
}

/// Which root key `wrapped` names (without opening it).
pub fn wrapped_under(wrapped: &[u8]) -> WrappedUnder {
    match wrapped.split_first() {
        Some((&WRAP_FORMAT_V2, rest)) if rest.len() >= ROOT_KEY_ID_LEN => {
            let mut id = [0u8; ROOT_KEY_ID_LEN];
            id.copy_from_slice(&rest[..ROOT_KEY_ID_LEN]);
            WrappedUnder::Key(RootKeyId(id))
        }
        Some((&WRAP_FORMAT_V1, _)) => WrappedUnder::Legacy,
        _ => WrappedUnder::Unknown,
    }
}

/// The cluster's root key. Holds only derived keys.
pub struct RootKey {
    wrapping: AesKey,
    check: [u8; 16],
    id: RootKeyId,
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
            id: RootKeyId::from_check_value(check.expose()),
            subkeys: derive::<32>(root, SUBKEYS_INFO),
        }
    }

    /// Reads a root key file. Its form since root keys have ids is two lines,
    /// `id <16 hex digits>` and the key's 64 hex digits; the id line must name
    /// the key's own id (a file whose id line was edited is refused). The
    /// older forms, 64 hex digits alone (surrounding white space allowed) or
    /// exactly 32 raw bytes, are read as before: their id is derived from the
    /// key like every id. Anything else is an error that says which.
    ///
    /// The key is decoded straight into a zeroizing buffer; `contents` itself
    /// is the caller's to wipe (the binary reads it into a zeroizing buffer).
    pub fn from_file_contents(contents: &[u8]) -> Result<Self, RootKeyFileError> {
        if contents.len() == ROOT_KEY_LEN {
            let s = Secret::<32>::from_slice(contents).map_err(|_| RootKeyFileError::Length)?;
            return Ok(Self::new(&s));
        }
        let text = contents.trim_ascii();
        if let Some(rest) = text.strip_prefix(b"id ") {
            let split = rest
                .iter()
                .position(|c| *c == b'\n')
                .ok_or(RootKeyFileError::Length)?;
            let (line, key) = rest.split_at(split);
            let named = std::str::from_utf8(line)
                .ok()
                .and_then(RootKeyId::parse)
                .ok_or(RootKeyFileError::IdLine)?;
            let k = Self::from_hex(key.trim_ascii(), contents)?;
            if k.id != named {
                return Err(RootKeyFileError::IdMismatch {
                    named: named.to_string(),
                    actual: k.id.to_string(),
                });
            }
            return Ok(k);
        }
        Self::from_hex(text, contents)
    }

    /// 64 hex digits (`contents`: the whole file, to tell a wrong length
    /// from other characters).
    fn from_hex(text: &[u8], contents: &[u8]) -> Result<Self, RootKeyFileError> {
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

    /// A new random root key and its file form: `id <id>`, a newline, 64 hex
    /// digits and a newline.
    pub fn generate() -> Result<(Self, SecretBytes), CryptoError> {
        let s = Secret::<32>::random()?;
        let key = Self::new(&s);
        let id_line = format!("id {}\n", key.id);
        // Written into its final buffer, sized up front: no copy is left behind
        // by a reallocation or a temporary string.
        let mut text = Vec::with_capacity(id_line.len() + 2 * ROOT_KEY_LEN + 1);
        text.extend_from_slice(id_line.as_bytes());
        for b in s.expose() {
            text.push(HEX_DIGITS[usize::from(b >> 4)]);
            text.push(HEX_DIGITS[usize::from(b & 0x0f)]);
        }
        text.push(b'\n');
        Ok((key, SecretBytes::new(text)))
    }

    /// This root key's id.
    pub fn id(&self) -> RootKeyId {
        self.id
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

    /// Wraps `secret` in format `0x02`, naming this root key.
    pub fn wrap(&self, secret: &[u8], ctx: WrapContext<'_>) -> Result<Vec<u8>, CryptoError> {
        let sealed = self.wrapping.seal(secret, &ctx.aad_v2(&self.id))?;
        let mut out = Vec::with_capacity(1 + ROOT_KEY_ID_LEN + sealed.len());
        out.push(WRAP_FORMAT_V2);
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a blob wrapped under this root key (format `0x02` naming it, or
    /// the id-less format `0x01`).
    pub fn unwrap(&self, wrapped: &[u8], ctx: WrapContext<'_>) -> Result<SecretBytes, CryptoError> {
        match wrapped.split_first() {
            Some((&WRAP_FORMAT_V1, sealed)) => self
                .wrapping
                .open(sealed, &ctx.aad())
                .map_err(|_| CryptoError::UnwrapFailed),
            Some((&WRAP_FORMAT_V2, rest))
                if rest.len() >= ROOT_KEY_ID_LEN && rest[..ROOT_KEY_ID_LEN] == self.id.0 =>
            {
                self.wrapping
                    .open(&rest[ROOT_KEY_ID_LEN..], &ctx.aad_v2(&self.id))
                    .map_err(|_| CryptoError::UnwrapFailed)
            }
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

/// The root keys a node holds: one normally, two (or more) while the cluster
/// moves its material from one root key to another. A blob names the key it
/// is wrapped under, so the ring opens it with that key; a blob of the id-less
/// format `0x01` is tried under each key (it opens under at most one).
pub struct RootKeyRing {
    /// Never empty; in the order the node was given them.
    keys: Vec<RootKey>,
}

impl std::fmt::Debug for RootKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ids()).finish()
    }
}

impl RootKeyRing {
    /// A ring of `keys`; `None` if there are none. A key given twice is kept once.
    pub fn new(keys: Vec<RootKey>) -> Option<Self> {
        let mut kept: Vec<RootKey> = Vec::with_capacity(keys.len());
        for k in keys {
            if !kept.iter().any(|x| x.id == k.id) {
                kept.push(k);
            }
        }
        (!kept.is_empty()).then_some(Self { keys: kept })
    }

    /// The first key the node was given (it signs what is local to the node,
    /// such as audit checkpoints).
    pub fn first(&self) -> &RootKey {
        &self.keys[0]
    }

    /// The ids of the keys held, in the order given.
    pub fn ids(&self) -> Vec<RootKeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }

    pub fn holds(&self, id: &RootKeyId) -> bool {
        self.get(id).is_some()
    }

    pub fn get(&self, id: &RootKeyId) -> Option<&RootKey> {
        self.keys.iter().find(|k| &k.id == id)
    }

    /// Every key held, in the order given.
    pub fn keys(&self) -> &[RootKey] {
        &self.keys
    }

    /// Opens `wrapped` with the key it names (any key for format `0x01`).
    pub fn unwrap(&self, wrapped: &[u8], ctx: WrapContext<'_>) -> Result<SecretBytes, CryptoError> {
        match wrapped_under(wrapped) {
            WrappedUnder::Key(id) => self
                .get(&id)
                .ok_or(CryptoError::UnwrapFailed)?
                .unwrap(wrapped, ctx),
            WrappedUnder::Legacy => self
                .keys
                .iter()
                .find_map(|k| k.unwrap(wrapped, ctx).ok())
                .ok_or(CryptoError::UnwrapFailed),
            WrappedUnder::Unknown => Err(CryptoError::UnwrapFailed),
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
    #[error("a root key file's first line is `id ` and 16 hex digits; this one's is not")]
    IdLine,
    #[error(
        "the root key file names id {named}, but its key's id is {actual}: the file was altered"
    )]
    IdMismatch { named: String, actual: String },
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
        let upper = String::from_utf8(key_hex(&text)).unwrap().to_uppercase();
        let padded = format!("  {}\r\n\n", upper.trim());
        assert_eq!(
            RootKey::from_file_contents(padded.as_bytes())
                .unwrap()
                .check_value(),
            k.check_value()
        );
        // 64 characters, one of them not a hex digit.
        let mut bad = key_hex(&text);
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
    /// file form `generate` writes is its id line, 64 lower-case hex digits
    /// and a newline.
    #[test]
    fn hex_and_raw_forms_agree() {
        let (k, text) = RootKey::generate().unwrap();
        let t = text.expose();
        let id_line = format!("id {}\n", k.id());
        assert!(t.starts_with(id_line.as_bytes()));
        let t = &t[id_line.len()..];
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
        // The old form (the hex digits alone) is the same key, with the same id.
        let old = RootKey::from_file_contents(&t[..64]).unwrap();
        assert_eq!(old.id(), k.id());
        assert_eq!(old.id(), RootKeyId::from_check_value(&k.check_value()));
    }

    fn key_hex(text: &SecretBytes) -> Vec<u8> {
        let t = text.expose();
        let nl = t.iter().position(|c| *c == b'\n').unwrap();
        t[nl + 1..nl + 65].to_vec()
    }

    #[test]
    fn an_id_line_must_name_the_key() {
        let (a, text) = RootKey::generate().unwrap();
        let (b, _) = RootKey::generate().unwrap();
        let mut forged = format!("id {}\n", b.id()).into_bytes();
        forged.extend_from_slice(&key_hex(&text));
        assert_eq!(
            RootKey::from_file_contents(&forged).unwrap_err(),
            RootKeyFileError::IdMismatch {
                named: b.id().to_string(),
                actual: a.id().to_string()
            }
        );
        let mut bad = b"id xyz\n".to_vec();
        bad.extend_from_slice(&key_hex(&text));
        assert_eq!(
            RootKey::from_file_contents(&bad).unwrap_err(),
            RootKeyFileError::IdLine
        );
        assert!(RootKey::from_file_contents(format!("id {}", a.id()).as_bytes()).is_err());
        assert_eq!(RootKeyId::parse(&a.id().to_string()), Some(a.id()));
        assert_eq!(RootKeyId::parse("00"), None);
    }

    /// A blob of format `0x01` as releases before root-key ids wrote it.
    fn wrap_v1(root: &RootKey, secret: &[u8], ctx: WrapContext<'_>) -> Vec<u8> {
        let mut out = vec![WRAP_FORMAT_V1];
        out.extend_from_slice(&root.wrapping.seal(secret, &ctx.aad()).unwrap());
        out
    }

    #[test]
    fn a_wrapped_blob_names_its_root_key_and_the_name_is_authenticated() {
        let (a, _) = RootKey::generate().unwrap();
        let w = a.wrap(b"secret", ctx(b"k", 1)).unwrap();
        assert_eq!(w[0], WRAP_FORMAT_V2);
        assert_eq!(wrapped_under(&w), WrappedUnder::Key(a.id()));
        // Another id in the header: not opened, not even by the right key.
        let mut renamed = w.clone();
        renamed[1] ^= 1;
        assert!(a.unwrap(&renamed, ctx(b"k", 1)).is_err());
        assert_eq!(wrapped_under(&[]), WrappedUnder::Unknown);
        assert_eq!(wrapped_under(&[2, 1, 2]), WrappedUnder::Unknown);
        assert_eq!(wrapped_under(&[9; 40]), WrappedUnder::Unknown);
    }

    #[test]
    fn a_ring_opens_blobs_under_any_key_it_holds_and_legacy_blobs() {
        let (a, ta) = RootKey::generate().unwrap();
        let (b, tb) = RootKey::generate().unwrap();
        let under_a = a.wrap(b"one", ctx(b"k", 1)).unwrap();
        let under_b = b.wrap(b"two", ctx(b"k", 2)).unwrap();
        let legacy = wrap_v1(&a, b"three", ctx(b"k", 3));
        assert_eq!(wrapped_under(&legacy), WrappedUnder::Legacy);
        let ring = RootKeyRing::new(vec![
            RootKey::from_file_contents(tb.expose()).unwrap(),
            RootKey::from_file_contents(ta.expose()).unwrap(),
            RootKey::from_file_contents(tb.expose()).unwrap(),
        ])
        .unwrap();
        assert_eq!(ring.ids(), vec![b.id(), a.id()]);
        assert_eq!(ring.first().id(), b.id());
        assert_eq!(
            ring.unwrap(&under_a, ctx(b"k", 1)).unwrap().expose(),
            b"one"
        );
        assert_eq!(
            ring.unwrap(&under_b, ctx(b"k", 2)).unwrap().expose(),
            b"two"
        );
        assert_eq!(
            ring.unwrap(&legacy, ctx(b"k", 3)).unwrap().expose(),
            b"three"
        );
        // With the old key gone, what was wrapped under it no longer opens.
        let only_b =
            RootKeyRing::new(vec![RootKey::from_file_contents(tb.expose()).unwrap()]).unwrap();
        assert!(only_b.unwrap(&under_a, ctx(b"k", 1)).is_err());
        assert!(only_b.unwrap(&legacy, ctx(b"k", 3)).is_err());
        assert!(only_b.unwrap(&under_b, ctx(b"k", 2)).is_ok());
        assert!(RootKeyRing::new(Vec::new()).is_none());
    }
}
