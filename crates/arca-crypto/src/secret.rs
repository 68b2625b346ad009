//! Secret bytes: zeroized on drop, redacted in `Debug`, no `Display`, no `Clone`.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A fixed-size secret (a 256-bit key, say).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Secret<const N: usize>([u8; N]);

impl<const N: usize> Secret<N> {
    pub fn new(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    /// Copies from a slice; the length must be exactly `N`.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, crate::CryptoError> {
        let arr: [u8; N] = bytes
            .try_into()
            .map_err(|_| crate::CryptoError::InvalidKeyLength {
                expected: N,
                actual: bytes.len(),
            })?;
        Ok(Self(arr))
    }

    /// A fresh secret from the operating system's CSPRNG.
    pub fn random() -> Result<Self, crate::CryptoError> {
        let mut b = [0u8; N];
        crate::random::fill(&mut b)?;
        Ok(Self(b))
    }

    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }

    /// For filling a secret in place (from a KDF, say), so the bytes never
    /// exist outside it.
    pub(crate) fn expose_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }
}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret<{N}>([REDACTED])")
    }
}

/// A variable-length secret (a plaintext, a data key, an access key secret).
#[derive(Zeroize, ZeroizeOnDrop, Default)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn random(len: usize) -> Result<Self, crate::CryptoError> {
        let mut v = vec![0u8; len];
        crate::random::fill(&mut v)?;
        Ok(Self(v))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn as_mut_vec(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }

    /// Shortens the secret; the bytes cut off were not secret (a tag, say).
    pub(crate) fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    /// An explicit copy: secrets are not `Clone`, so every copy is visible in the code.
    pub fn duplicate(&self) -> Self {
        Self(self.0.clone())
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {}])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_bytes() {
        let s = Secret::<4>::new([0xde, 0xad, 0xbe, 0xef]);
        let b = SecretBytes::new(vec![0x41; 8]);
        let out = format!("{s:?} {b:?}");
        assert!(!out.contains("222") && !out.contains("de") && !out.contains("65"));
        assert!(out.contains("REDACTED"));
    }

    #[test]
    fn from_slice_checks_length() {
        assert!(Secret::<32>::from_slice(&[0u8; 31]).is_err());
        assert!(Secret::<32>::from_slice(&[0u8; 32]).is_ok());
    }
}
