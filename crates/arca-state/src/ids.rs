//! Key identifiers: UUIDs, held as 16 bytes and shown in the canonical
//! lower-case hyphenated form that AWS KMS uses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyId([u8; 16]);

impl KeyId {
    pub fn from_bytes(b: [u8; 16]) -> Self {
        Self(b)
    }

    /// A random (version 4) UUID from 16 random bytes.
    pub fn from_random(mut b: [u8; 16]) -> Self {
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Self(b)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl KeyId {
    /// The canonical text form (`8-4-4-4-12` lower-case hex), on the stack
    /// and without the formatting machinery: key ids are written several
    /// times per request.
    pub fn encode(&self) -> KeyIdText {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut o = 0;
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                o += 1;
            }
            out[o] = HEX[usize::from(b >> 4)];
            out[o + 1] = HEX[usize::from(b & 0xf)];
            o += 2;
        }
        KeyIdText(out)
    }
}

/// A key id's text ([`KeyId::encode`]): read it as a `&str`.
#[derive(Clone, Copy)]
pub struct KeyIdText([u8; 36]);

impl std::ops::Deref for KeyIdText {
    type Target = str;

    fn deref(&self) -> &str {
        // Only ASCII hex digits and dashes are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a key id")]
pub struct InvalidKeyId;

impl FromStr for KeyId {
    type Err = InvalidKeyId;

    /// Accepts the 36-character hyphenated form, in either case.
    fn from_str(s: &str) -> Result<Self, InvalidKeyId> {
        let s = s.as_bytes();
        if s.len() != 36 {
            return Err(InvalidKeyId);
        }
        let mut out = [0u8; 16];
        let mut n = 0;
        let mut i = 0;
        while i < 36 {
            if matches!(i, 8 | 13 | 18 | 23) {
                if s[i] != b'-' {
                    return Err(InvalidKeyId);
                }
                i += 1;
                continue;
            }
            let hi = hex_val(s[i]).ok_or(InvalidKeyId)?;
            let lo = hex_val(*s.get(i + 1).ok_or(InvalidKeyId)?).ok_or(InvalidKeyId)?;
            *out.get_mut(n).ok_or(InvalidKeyId)? = hi << 4 | lo;
            n += 1;
            i += 2;
        }
        if n != 16 {
            return Err(InvalidKeyId);
        }
        Ok(Self(out))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_and_parse() {
        let counting: [u8; 16] = std::array::from_fn(|i| i as u8 * 17);
        assert_eq!(
            KeyId::from_bytes(counting).to_string(),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
        let id = KeyId::from_random([0xab; 16]);
        let s = id.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4", "version nibble");
        assert_eq!(s.parse::<KeyId>().unwrap(), id);
        assert_eq!(s.to_uppercase().parse::<KeyId>().unwrap(), id);
        assert!("1234abcd-12ab-34cd-56ef-1234567890a"
            .parse::<KeyId>()
            .is_err());
        assert!("1234abcd-12ab-34cd-56ef+1234567890ab"
            .parse::<KeyId>()
            .is_err());
    }

    /// A canonical UUID is held as bytes, any other text as it is; both
    /// encode exactly as the text did when the field was a `String`.
    #[test]
    fn version_ids_keep_their_text() {
        let uuid = KeyId::from_random([0x5c; 16]).to_string();
        let upper = uuid.to_uppercase();
        for (text, held_as_bytes) in [
            (uuid.as_str(), true),
            (upper.as_str(), false),
            ("v1", false),
        ] {
            let v = VersionId::new(text);
            assert_eq!(matches!(v, VersionId::Uuid(_)), held_as_bytes, "{text}");
            assert_eq!(v.to_string(), text);
            assert!(v.matches(text));
            assert!(!v.matches("v2"));
            let encoded = postcard::to_allocvec(&v).unwrap();
            assert_eq!(encoded, postcard::to_allocvec(&text.to_string()).unwrap());
            let back: VersionId = postcard::from_bytes(&encoded).unwrap();
            assert_eq!(back, v);
        }
        assert!(!VersionId::new(&uuid).matches(&upper));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = s.parse::<KeyId>();
        }

        #[test]
        fn round_trip(b in any::<[u8; 16]>()) {
            let id = KeyId::from_bytes(b);
            prop_assert_eq!(id.to_string().parse::<KeyId>().unwrap(), id);
        }
    }
}

/// A key version's public id (`KeyVersionId`). Nodes make them as UUIDs,
/// held here as their 16 bytes (a `String` of the text cost a 48-byte
/// allocation per version: tens of megabytes at a million keys); any other
/// text a record holds is kept as it is. Encoded and shown as the text, so
/// a record's encoding is the same either way.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum VersionId {
    Uuid(KeyId),
    Text(Box<str>),
}

impl VersionId {
    /// The id for `text`: a UUID in canonical form is held as its bytes.
    pub fn new(text: &str) -> Self {
        match text.parse::<KeyId>() {
            Ok(k) if *k.encode() == *text => VersionId::Uuid(k),
            _ => VersionId::Text(text.into()),
        }
    }

    /// Whether `text` names this version.
    pub fn matches(&self, text: &str) -> bool {
        match self {
            VersionId::Uuid(k) => *k.encode() == *text,
            VersionId::Text(t) => &**t == text,
        }
    }
}

impl From<KeyId> for VersionId {
    fn from(k: KeyId) -> Self {
        VersionId::Uuid(k)
    }
}

impl From<&str> for VersionId {
    fn from(text: &str) -> Self {
        VersionId::new(text)
    }
}

impl From<String> for VersionId {
    fn from(text: String) -> Self {
        VersionId::new(&text)
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionId::Uuid(k) => fmt::Display::fmt(k, f),
            VersionId::Text(t) => f.write_str(t),
        }
    }
}

impl fmt::Debug for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for VersionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            VersionId::Uuid(k) => s.serialize_str(&k.encode()),
            VersionId::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for VersionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = VersionId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key version id")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<VersionId, E> {
                Ok(VersionId::new(v))
            }
        }
        d.deserialize_str(Text)
    }
}
