//! Randomness comes from one place: the operating system's CSPRNG via aws-lc-rs.

use crate::CryptoError;

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| CryptoError::Rng)
}

/// Sixteen random bytes, for identifiers.
pub fn bytes16() -> Result<[u8; 16], CryptoError> {
    let mut b = [0u8; 16];
    fill(&mut b)?;
    Ok(b)
}
