//! Arca's crypto core: pure functions over bytes. No I/O, no clock.
//!
//! - [`secret`]: types that hold secret bytes, zeroize on drop and never print them.
//! - [`symmetric`]: AES-256-GCM and the versioned ciphertext format that Encrypt returns.
//! - [`wrap`]: the root key and the wrapping of key material under it.
//! - [`random`]: the one source of randomness (the operating system's CSPRNG).

pub mod random;
pub mod secret;
pub mod symmetric;
pub mod wrap;

pub use secret::{Secret, SecretBytes};

/// Errors of the crypto core. None of them carries secret bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The blob is not a ciphertext this key produced, or was changed, or the
    /// encryption context differs. Deliberately says nothing more.
    #[error("the ciphertext is invalid, was altered, or the encryption context does not match")]
    InvalidCiphertext,
    /// A wrapped secret did not open under the root key.
    #[error("wrapped key material did not open under the root key")]
    UnwrapFailed,
    /// A key of the wrong length was supplied.
    #[error("invalid key length: expected {expected} bytes, got {actual}")]
    InvalidKeyLength { expected: usize, actual: usize },
    /// An input is longer than the format can carry.
    #[error("{what} is too long: {len} bytes, at most {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// Deriving a per-message key failed (HKDF refused its input).
    #[error("deriving a message key failed")]
    KeyDerivation,
    /// The operating system's random source failed.
    #[error("the random number generator failed")]
    Rng,
}
