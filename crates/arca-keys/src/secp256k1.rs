//! ECDSA on secp256k1 with SHA-256 through `k256` (RAW and DIGEST), DER signatures.
//!
//! Signing is deterministic (RFC 6979) and yields low-S signatures. Verification also
//! accepts high-S signatures, as OpenSSL and AWS KMS do.

use arca_crypto::SecretBytes;
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};
use pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use signature::hazmat::{PrehashSigner, PrehashVerifier};
use signature::{Signer, Verifier};

use crate::{KeyError, KeySpec, MessageType};

const SPEC: KeySpec = KeySpec::EccSecgP256k1;

/// A fresh key as PKCS#8 DER.
pub(crate) fn generate() -> Result<SecretBytes, KeyError> {
    // A uniformly random 32-byte string is a valid scalar except with probability ~2^-128.
    for _ in 0..8 {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        crate::rng::fill(bytes.as_mut())?;
        if let Ok(secret) = k256::SecretKey::from_slice(bytes.as_ref()) {
            let doc = secret
                .to_pkcs8_der()
                .map_err(|_| KeyError::Backend { spec: SPEC })?;
            return Ok(SecretBytes::new(doc.as_bytes().to_vec()));
        }
    }
    Err(KeyError::Rng)
}

/// A loaded secp256k1 private key (zeroized on drop by `k256`).
pub(crate) struct K256Private {
    key: SigningKey,
}

impl K256Private {
    pub(crate) fn load(pkcs8: &[u8]) -> Result<(Self, K256Public), KeyError> {
        let secret = k256::SecretKey::from_pkcs8_der(pkcs8)
            .map_err(|_| KeyError::InvalidKeyMaterial { spec: SPEC })?;
        let key = SigningKey::from(&secret);
        let public = K256Public::from_key(*key.verifying_key())?;
        Ok((Self { key }, public))
    }

    pub(crate) fn sign(&self, message: &[u8], kind: MessageType) -> Result<Vec<u8>, KeyError> {
        let sig: Signature = match kind {
            MessageType::Raw => self.key.try_sign(message),
            MessageType::Digest => self.key.sign_prehash(message),
            // Refused by `check_signing` before this point.
            MessageType::ExternalMu => {
                return Err(KeyError::UnsupportedMessageType {
                    alg: crate::SigningAlgorithm::EcdsaSha256,
                    actual: kind,
                })
            }
        }
        .map_err(|_| KeyError::Backend { spec: SPEC })?;
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

/// A secp256k1 public key.
pub(crate) struct K256Public {
    spki: Vec<u8>,
    key: VerifyingKey,
}

impl K256Public {
    pub(crate) fn from_spki(spki: &[u8]) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_der(spki)
            .map_err(|_| KeyError::InvalidPublicKey { spec: SPEC })?;
        Self::from_key(key)
    }

    fn from_key(key: VerifyingKey) -> Result<Self, KeyError> {
        let spki = key
            .to_public_key_der()
            .map_err(|_| KeyError::Backend { spec: SPEC })?
            .into_vec();
        Ok(Self { spki, key })
    }

    pub(crate) fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// `false` for any signature that does not verify.
    pub(crate) fn verify(&self, message: &[u8], kind: MessageType, sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_der(sig) else {
            return false;
        };
        let sig = sig.normalize_s();
        match kind {
            MessageType::Raw => self.key.verify(message, &sig).is_ok(),
            MessageType::Digest => self.key.verify_prehash(message, &sig).is_ok(),
            MessageType::ExternalMu => false,
        }
    }
}
