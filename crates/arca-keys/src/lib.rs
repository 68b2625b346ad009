//! Asymmetric and HMAC keys for the AWS KMS key specs: generation, loading, signing,
//! verification, encryption, decryption, key agreement, key encapsulation and MACs.
//!
//! Backends:
//! - RSA 2048/3072/4096, ECDSA and ECDH on NIST P-256/P-384/P-521: aws-lc-rs.
//! - ECDSA on secp256k1: `k256`.
//! - SM2DSA and SM2PKE: `sm2`; ECDH on the SM2 curve: `elliptic-curve` over `sm2`.
//! - Ed25519: aws-lc-rs; Ed25519ph (`ED25519_PH_SHA_512`): `ed25519-dalek`.
//! - ML-DSA-44/65/87 (FIPS 204): aws-lc-rs for RAW messages; `ml-dsa` for EXTERNAL_MU.
//! - HMAC-SHA-224/256/384/512: `hmac` with `sha2`.
//! - ML-KEM-512/768/1024: seeds expanded by `ml-kem`, encapsulation and
//!   decapsulation on aws-lc-rs (`mlkem.rs`).
//!
//! Key material is stored as PKCS#8 DER for asymmetric specs and as raw bytes for HMAC
//! specs (ML-KEM: the 64-byte seed form). Public keys are SubjectPublicKeyInfo DER. ECDSA and SM2 signatures are DER;
//! Ed25519 signatures are the raw 64 bytes, ML-DSA signatures the FIPS 204 encoding
//! (2420, 3309 or 4627 bytes). ML-DSA keys are PKCS#8 holding the 32-byte seed.
//! Every input is checked before it reaches a backend.

pub mod csr;
mod ed25519;
mod hmac;
pub mod import;
mod ml_dsa;
mod mlkem;
mod nist;
mod private;
mod public;
mod rng;
mod rsa;
mod secp256k1;
mod sm2;
mod spec;

pub use mlkem::{
    ciphertext_len as ml_kem_ciphertext_len, encapsulation_key_len as ml_kem_encapsulation_key_len,
    SHARED_SECRET_LEN,
};
pub use private::{generate, PrivateKey};
pub use public::{encrypt_with_spki, sm2_digest, verify_with_spki, PublicKey};
pub use spec::{
    digest_len, max_plaintext_len, EncapsulationAlgorithm, EncryptionAlgorithm,
    KeyAgreementAlgorithm, KeySpec, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm,
};

/// Largest RAW message Sign and Verify accept, in bytes (the AWS KMS limit).
pub const MAX_RAW_MESSAGE_LEN: usize = 4096;
/// Largest message GenerateMac and VerifyMac accept, in bytes (the AWS KMS limit).
pub const MAX_MAC_MESSAGE_LEN: usize = 4096;
/// Largest peer public key DeriveSharedSecret accepts, in bytes (an SPKI of P-521 is 158).
pub const MAX_PEER_PUBLIC_KEY_LEN: usize = 8192;
/// Signatures longer than this cannot be valid for any spec; verify returns false for them
/// (an ML-DSA-87 signature, the longest, is 4627 bytes).
pub const MAX_SIGNATURE_LEN: usize = 4627;
/// The SM2 distinguishing ID used for SM2DSA (the GB/T default, as AWS KMS uses).
pub const SM2_DEFAULT_DISTID: &str = "1234567812345678";

/// Errors of key operations. None carries secret bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The algorithm does not belong to the key spec.
    #[error("algorithm {alg} is not valid for key spec {spec}")]
    UnsupportedAlgorithm { spec: KeySpec, alg: &'static str },
    /// The key spec does not support the operation at all (signing with an HMAC key, say).
    #[error("key spec {spec} does not support {operation}")]
    UnsupportedOperation {
        spec: KeySpec,
        operation: &'static str,
    },
    /// A DIGEST message is not exactly the digest length of the algorithm.
    #[error("digest for {alg} must be {expected} bytes, got {actual}")]
    InvalidDigestLength {
        alg: SigningAlgorithm,
        expected: usize,
        actual: usize,
    },
    /// The algorithm takes only the other message type (RAW or DIGEST).
    #[error("signing algorithm {alg} requires MessageType {required}, not {actual}")]
    WrongMessageType {
        alg: SigningAlgorithm,
        required: MessageType,
        actual: MessageType,
    },
    /// The algorithm does not take this message type at all (DIGEST with ML-DSA,
    /// EXTERNAL_MU with anything but ML-DSA).
    #[error("signing algorithm {alg} does not accept MessageType {actual}")]
    UnsupportedMessageType {
        alg: SigningAlgorithm,
        actual: MessageType,
    },
    /// An input is longer than allowed.
    #[error("{what} is too long: {len} bytes, at most {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// An input that must not be empty is empty.
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    /// Decryption failed. Deliberately says nothing more.
    #[error("the ciphertext is invalid")]
    InvalidCiphertext,
    /// The private key material is not a valid encoding of a key of the spec.
    #[error("key material is not a valid {spec} key")]
    InvalidKeyMaterial { spec: KeySpec },
    /// The public key is not a valid SubjectPublicKeyInfo of a key of the spec.
    #[error("public key is not a valid {spec} SubjectPublicKeyInfo")]
    InvalidPublicKey { spec: KeySpec },
    /// The operating system's random source failed.
    #[error("the random number generator failed")]
    Rng,
    /// A backend failed on valid input.
    #[error("the {spec} key operation failed")]
    Backend { spec: KeySpec },
}

/// Checks a Sign/Verify request against the spec; shared by private and public keys.
pub(crate) fn check_signing(
    spec: KeySpec,
    alg: SigningAlgorithm,
    message: &[u8],
    kind: MessageType,
) -> Result<(), KeyError> {
    if spec.is_hmac() {
        return Err(KeyError::UnsupportedOperation {
            spec,
            operation: "signing",
        });
    }
    if !spec.signing_algorithms().contains(&alg) {
        return Err(KeyError::UnsupportedAlgorithm {
            spec,
            alg: alg.as_aws(),
        });
    }
    if !alg.message_types().contains(&kind) {
        return Err(match alg.required_message_type() {
            Some(required) => KeyError::WrongMessageType {
                alg,
                required,
                actual: kind,
            },
            None => KeyError::UnsupportedMessageType { alg, actual: kind },
        });
    }
    match kind {
        MessageType::Raw if message.len() > MAX_RAW_MESSAGE_LEN => Err(KeyError::TooLong {
            what: "message",
            len: message.len(),
            max: MAX_RAW_MESSAGE_LEN,
        }),
        MessageType::Digest | MessageType::ExternalMu if message.len() != digest_len(alg) => {
            Err(KeyError::InvalidDigestLength {
                alg,
                expected: digest_len(alg),
                actual: message.len(),
            })
        }
        _ => Ok(()),
    }
}

/// A DIGEST message as an aws-lc-rs digest of `alg`'s SHA-2 hash.
pub(crate) fn import_digest(
    alg: SigningAlgorithm,
    digest: &[u8],
) -> Result<aws_lc_rs::digest::Digest, KeyError> {
    use aws_lc_rs::digest;
    let algorithm = match alg.hash() {
        spec::Hash::Sha256 => &digest::SHA256,
        spec::Hash::Sha384 => &digest::SHA384,
        spec::Hash::Sha512 => &digest::SHA512,
        spec::Hash::Sm3 | spec::Hash::Shake256 => {
            return Err(KeyError::UnsupportedAlgorithm {
                spec: KeySpec::Sm2,
                alg: alg.as_aws(),
            })
        }
    };
    digest::Digest::import_less_safe(digest, algorithm).map_err(|_| KeyError::InvalidDigestLength {
        alg,
        expected: digest_len(alg),
        actual: digest.len(),
    })
}

/// Checks an encryption algorithm against the spec.
pub(crate) fn check_encryption(spec: KeySpec, alg: EncryptionAlgorithm) -> Result<(), KeyError> {
    if spec.encryption_algorithms().is_empty() {
        return Err(KeyError::UnsupportedOperation {
            spec,
            operation: "encryption",
        });
    }
    if !spec.encryption_algorithms().contains(&alg) {
        return Err(KeyError::UnsupportedAlgorithm {
            spec,
            alg: alg.as_aws(),
        });
    }
    Ok(())
}

/// Checks a key encapsulation algorithm against the spec.
pub(crate) fn check_encapsulation(
    spec: KeySpec,
    alg: EncapsulationAlgorithm,
) -> Result<(), KeyError> {
    if spec.encapsulation_algorithms().is_empty() {
        return Err(KeyError::UnsupportedOperation {
            spec,
            operation: "key encapsulation",
        });
    }
    if !spec.encapsulation_algorithms().contains(&alg) {
        return Err(KeyError::UnsupportedAlgorithm {
            spec,
            alg: alg.as_aws(),
        });
    }
    Ok(())
}

/// Checks an Encrypt plaintext against the spec and algorithm.
pub(crate) fn check_plaintext(
    spec: KeySpec,
    alg: EncryptionAlgorithm,
    plaintext: &[u8],
) -> Result<(), KeyError> {
    check_encryption(spec, alg)?;
    let max = max_plaintext_len(spec, alg).ok_or(KeyError::UnsupportedAlgorithm {
        spec,
        alg: alg.as_aws(),
    })?;
    if plaintext.is_empty() {
        return Err(KeyError::Empty { what: "plaintext" });
    }
    if plaintext.len() > max {
        return Err(KeyError::TooLong {
            what: "plaintext",
            len: plaintext.len(),
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<PrivateKey>();
        check::<PublicKey>();
        check::<KeyError>();
    }

    #[test]
    fn errors_name_the_spec_and_algorithm() {
        let e = KeyError::UnsupportedAlgorithm {
            spec: KeySpec::EccNistP256,
            alg: "RSAES_OAEP_SHA_1",
        };
        assert_eq!(
            e.to_string(),
            "algorithm RSAES_OAEP_SHA_1 is not valid for key spec ECC_NIST_P256"
        );
        assert_eq!(
            KeyError::InvalidCiphertext.to_string(),
            "the ciphertext is invalid"
        );
    }
}
