//! API access keys: generation, wrapping and the unwrapped-secret cache used
//! to verify SigV4 signatures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arca_crypto::wrap::{RootKey, RootKeyRing, WrapContext};
use arca_crypto::{CryptoError, SecretBytes};
use arca_state::AccessKeyRecord;

pub const ACCESS_KEY_PURPOSE: &str = "access-key";

/// What an access key's secret is wrapped for.
pub fn wrap_context(access_key_id: &str) -> WrapContext<'_> {
    WrapContext {
        purpose: ACCESS_KEY_PURPOSE,
        id: access_key_id.as_bytes(),
        version: 1,
    }
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A new access key: an AWS-shaped id (`AKIA` + 16 characters) and a 40-character secret.
pub fn generate(
    root: &RootKey,
    user: &str,
    created_ms: u64,
) -> Result<(AccessKeyRecord, SecretBytes), CryptoError> {
    let id_bytes = arca_crypto::random::bytes16()?;
    let mut id = String::from("AKIA");
    id.extend(
        id_bytes
            .iter()
            .map(|b| ID_ALPHABET[(b % 32) as usize] as char),
    );
    let raw = SecretBytes::random(40)?;
    // 256 is a multiple of 64, so `b % 64` is uniform.
    let secret = SecretBytes::new(
        raw.expose()
            .iter()
            .map(|b| SECRET_ALPHABET[(b % 64) as usize])
            .collect(),
    );
    let wrapped_secret = root.wrap(secret.expose(), wrap_context(&id))?;
    Ok((
        AccessKeyRecord {
            access_key_id: id,
            wrapped_secret,
            user: user.to_string(),
            created_ms,
        },
        secret,
    ))
}

/// The secret of an access key, unwrapped from its record.
pub fn unwrap_secret(
    root: &RootKeyRing,
    record: &AccessKeyRecord,
) -> Result<SecretBytes, CryptoError> {
    root.unwrap(&record.wrapped_secret, wrap_context(&record.access_key_id))
}

/// Unwrapped access-key secrets, kept for signature checks.
#[derive(Default)]
pub struct SecretCache {
    map: Mutex<HashMap<String, Arc<SecretBytes>>>,
}

impl SecretCache {
    /// The cached secret of an access key, if it was unwrapped before.
    pub fn get(&self, access_key_id: &str) -> Option<Arc<SecretBytes>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(access_key_id).cloned()
    }

    /// Keeps only the secrets of the access keys `exists` names; the others
    /// are dropped (and wiped: `SecretBytes` zeroizes on drop once the last
    /// request holding it is done).
    pub fn retain(&self, mut exists: impl FnMut(&str) -> bool) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|id, _| exists(id));
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get_or_unwrap(
        &self,
        root: &RootKeyRing,
        record: &AccessKeyRecord,
    ) -> Result<Arc<SecretBytes>, CryptoError> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get(&record.access_key_id) {
            return Ok(s.clone());
        }
        let s = Arc::new(unwrap_secret(root, record)?);
        // Bounded by the number of access keys in the state.
        map.insert(record.access_key_id.clone(), s.clone());
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_look_like_aws_and_unwrap() {
        let (key, _) = RootKey::generate().unwrap();
        let (rec, secret) = generate(&key, "app", 1).unwrap();
        let root = RootKeyRing::new(vec![key]).unwrap();
        assert_eq!(rec.access_key_id.len(), 20);
        assert!(rec.access_key_id.starts_with("AKIA"));
        assert_eq!(secret.len(), 40);
        let cache = SecretCache::default();
        let s = cache.get_or_unwrap(&root, &rec).unwrap();
        assert_eq!(s.expose(), secret.expose());
        let other = RootKeyRing::new(vec![RootKey::generate().unwrap().0]).unwrap();
        assert!(SecretCache::default().get_or_unwrap(&other, &rec).is_err());
    }
}
