//! The operating system's CSPRNG (through `arca_crypto::random`) as a `rand_core` RNG,
//! for the RustCrypto backends.

use arca_crypto::CryptoError;

/// Draws from `arca_crypto::random::fill`; remembers whether a draw failed.
#[derive(Default)]
pub(crate) struct OsRng {
    pub(crate) failed: bool,
}

impl rand_core::TryRng for OsRng {
    type Error = CryptoError;

    fn try_next_u32(&mut self) -> Result<u32, CryptoError> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, CryptoError> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), CryptoError> {
        arca_crypto::random::fill(dst).inspect_err(|_| self.failed = true)
    }
}

impl rand_core::TryCryptoRng for OsRng {}

/// Fills `buf` from the OS CSPRNG.
pub(crate) fn fill(buf: &mut [u8]) -> Result<(), crate::KeyError> {
    arca_crypto::random::fill(buf).map_err(|_| crate::KeyError::Rng)
}
