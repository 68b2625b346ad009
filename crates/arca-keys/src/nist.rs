//! ECDSA on NIST P-256/P-384/P-521 through aws-lc-rs (RAW and DIGEST), DER signatures.

use arca_crypto::SecretBytes;
use aws_lc_rs::agreement;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, KeyPair, ParsedPublicKey,
};

use crate::{KeyError, KeySpec, MessageType, SigningAlgorithm};

fn algorithms(
    spec: KeySpec,
) -> Result<
    (
        &'static EcdsaSigningAlgorithm,
        &'static EcdsaVerificationAlgorithm,
    ),
    KeyError,
> {
    match spec {
        KeySpec::EccNistP256 => Ok((
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &signature::ECDSA_P256_SHA256_ASN1,
        )),
        KeySpec::EccNistP384 => Ok((
            &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            &signature::ECDSA_P384_SHA384_ASN1,
        )),
        KeySpec::EccNistP521 => Ok((
            &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
            &signature::ECDSA_P521_SHA512_ASN1,
        )),
        _ => Err(KeyError::Backend { spec }),
    }
}

/// A fresh key as PKCS#8 DER.
pub(crate) fn generate(spec: KeySpec) -> Result<SecretBytes, KeyError> {
    let (signing, _) = algorithms(spec)?;
    let pair = EcdsaKeyPair::generate(signing).map_err(|_| KeyError::Backend { spec })?;
    let doc = pair.to_pkcs8v1().map_err(|_| KeyError::Backend { spec })?;
    Ok(SecretBytes::new(doc.as_ref().to_vec()))
}

/// A loaded NIST-curve private key.
pub(crate) struct NistPrivate {
    spec: KeySpec,
    pair: EcdsaKeyPair,
    /// The same scalar, for ECDH.
    agreement: agreement::PrivateKey,
}

fn ecdh(spec: KeySpec) -> Result<&'static agreement::Algorithm, KeyError> {
    match spec {
        KeySpec::EccNistP256 => Ok(&agreement::ECDH_P256),
        KeySpec::EccNistP384 => Ok(&agreement::ECDH_P384),
        KeySpec::EccNistP521 => Ok(&agreement::ECDH_P521),
        _ => Err(KeyError::Backend { spec }),
    }
}

impl NistPrivate {
    pub(crate) fn load(spec: KeySpec, pkcs8: &[u8]) -> Result<(Self, NistPublic), KeyError> {
        let (signing, _) = algorithms(spec)?;
        let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8)
            .map_err(|_| KeyError::InvalidKeyMaterial { spec })?;
        let spki = pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::Backend { spec })?;
        let public = NistPublic::from_spki(spec, spki.as_ref())?;
        let agreement = agreement::PrivateKey::from_private_key_der(ecdh(spec)?, pkcs8)
            .map_err(|_| KeyError::InvalidKeyMaterial { spec })?;
        Ok((
            Self {
                spec,
                pair,
                agreement,
            },
            public,
        ))
    }

    /// ECDH with a peer SubjectPublicKeyInfo already checked to be on this curve.
    pub(crate) fn agree(&self, peer_spki: &[u8]) -> Result<SecretBytes, KeyError> {
        let spec = self.spec;
        let peer = agreement::UnparsedPublicKey::new(ecdh(spec)?, peer_spki);
        agreement::agree(
            &self.agreement,
            peer,
            KeyError::InvalidPublicKey { spec },
            |secret| Ok(SecretBytes::new(secret.to_vec())),
        )
    }

    pub(crate) fn sign(
        &self,
        alg: SigningAlgorithm,
        message: &[u8],
        kind: MessageType,
    ) -> Result<Vec<u8>, KeyError> {
        let spec = self.spec;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = match kind {
            MessageType::Raw => self.pair.sign(&rng, message),
            MessageType::Digest => {
                let d = crate::import_digest(alg, message)?;
                self.pair.sign_digest(&d)
            }
            // Refused by `check_signing` before this point.
            MessageType::ExternalMu => {
                return Err(KeyError::UnsupportedMessageType { alg, actual: kind })
            }
        }
        .map_err(|_| KeyError::Backend { spec })?;
        Ok(sig.as_ref().to_vec())
    }
}

/// A NIST-curve public key, parsed once.
pub(crate) struct NistPublic {
    spki: Vec<u8>,
    parsed: ParsedPublicKey,
}

impl NistPublic {
    /// Parses a SubjectPublicKeyInfo whose algorithm and curve were already checked.
    pub(crate) fn from_spki(spec: KeySpec, spki: &[u8]) -> Result<Self, KeyError> {
        let (_, verification) = algorithms(spec)?;
        let parsed = ParsedPublicKey::new(verification, spki)
            .map_err(|_| KeyError::InvalidPublicKey { spec })?;
        Ok(Self {
            spki: spki.to_vec(),
            parsed,
        })
    }

    pub(crate) fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// `Ok(false)` for any signature that does not verify.
    pub(crate) fn verify(
        &self,
        alg: SigningAlgorithm,
        message: &[u8],
        kind: MessageType,
        sig: &[u8],
    ) -> bool {
        match kind {
            MessageType::Raw => self.parsed.verify_sig(message, sig).is_ok(),
            MessageType::Digest => match crate::import_digest(alg, message) {
                Ok(d) => self.parsed.verify_digest_sig(&d, sig).is_ok(),
                Err(_) => false,
            },
            MessageType::ExternalMu => false,
        }
    }
}
