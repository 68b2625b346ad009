//! RSA 2048/3072/4096 through aws-lc-rs: PSS and PKCS#1 v1.5 signatures with
//! SHA-256/384/512 (RAW and DIGEST), OAEP with SHA-1 and SHA-256.

use arca_crypto::SecretBytes;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
};
use aws_lc_rs::signature::{self, KeyPair, RsaEncoding, RsaKeyPair, RsaParameters};
use zeroize::Zeroizing;

use crate::{EncryptionAlgorithm, KeyError, KeySpec, MessageType, SigningAlgorithm};

fn key_size(spec: KeySpec) -> Result<KeySize, KeyError> {
    match spec {
        KeySpec::Rsa2048 => Ok(KeySize::Rsa2048),
        KeySpec::Rsa3072 => Ok(KeySize::Rsa3072),
        KeySpec::Rsa4096 => Ok(KeySize::Rsa4096),
        _ => Err(KeyError::Backend { spec }),
    }
}

fn spec_bits(spec: KeySpec) -> Result<usize, KeyError> {
    spec.rsa_bits().ok_or(KeyError::Backend { spec })
}

fn signing_encoding(alg: SigningAlgorithm) -> Option<&'static dyn RsaEncoding> {
    use SigningAlgorithm as S;
    Some(match alg {
        S::RsassaPssSha256 => &signature::RSA_PSS_SHA256,
        S::RsassaPssSha384 => &signature::RSA_PSS_SHA384,
        S::RsassaPssSha512 => &signature::RSA_PSS_SHA512,
        S::RsassaPkcs1V15Sha256 => &signature::RSA_PKCS1_SHA256,
        S::RsassaPkcs1V15Sha384 => &signature::RSA_PKCS1_SHA384,
        S::RsassaPkcs1V15Sha512 => &signature::RSA_PKCS1_SHA512,
        _ => return None,
    })
}

/// Verification parameters. PSS salt length is the digest length, as AWS KMS uses.
fn verification_params(alg: SigningAlgorithm) -> Option<&'static RsaParameters> {
    use SigningAlgorithm as S;
    Some(match alg {
        S::RsassaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
        S::RsassaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
        S::RsassaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
        S::RsassaPkcs1V15Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        S::RsassaPkcs1V15Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        S::RsassaPkcs1V15Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        _ => return None,
    })
}

fn oaep(alg: EncryptionAlgorithm) -> Option<&'static OaepAlgorithm> {
    match alg {
        EncryptionAlgorithm::RsaesOaepSha1 => Some(&OAEP_SHA1_MGF1SHA1),
        EncryptionAlgorithm::RsaesOaepSha256 => Some(&OAEP_SHA256_MGF1SHA256),
        EncryptionAlgorithm::Sm2Pke => None,
    }
}

/// A fresh key as PKCS#8 DER.
pub(crate) fn generate(spec: KeySpec) -> Result<SecretBytes, KeyError> {
    let pair = RsaKeyPair::generate(key_size(spec)?).map_err(|_| KeyError::Backend { spec })?;
    let der = pair.as_der().map_err(|_| KeyError::Backend { spec })?;
    Ok(SecretBytes::new(der.as_ref().to_vec()))
}

/// A loaded RSA private key.
pub(crate) struct RsaPrivate {
    spec: KeySpec,
    pair: RsaKeyPair,
    decrypting: OaepPrivateDecryptingKey,
}

impl RsaPrivate {
    pub(crate) fn load(spec: KeySpec, pkcs8: &[u8]) -> Result<(Self, RsaPublic), KeyError> {
        let bad = KeyError::InvalidKeyMaterial { spec };
        let bits = spec_bits(spec)?;
        let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| bad.clone())?;
        if pair.public_modulus_len() * 8 != bits {
            return Err(bad);
        }
        let private = PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|_| bad.clone())?;
        if private.key_size_bits() != bits {
            return Err(bad);
        }
        let public = private.public_key();
        let decrypting = OaepPrivateDecryptingKey::new(private).map_err(|_| bad.clone())?;
        let spki = pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::Backend { spec })?;
        let public = RsaPublic::from_parts(spec, spki.as_ref().to_vec(), public)?;
        Ok((
            Self {
                spec,
                pair,
                decrypting,
            },
            public,
        ))
    }

    pub(crate) fn sign(
        &self,
        alg: SigningAlgorithm,
        message: &[u8],
        kind: MessageType,
    ) -> Result<Vec<u8>, KeyError> {
        let spec = self.spec;
        let encoding = signing_encoding(alg).ok_or(KeyError::UnsupportedAlgorithm {
            spec,
            alg: alg.as_aws(),
        })?;
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match kind {
            MessageType::Raw => self.pair.sign(encoding, &rng, message, &mut sig),
            MessageType::Digest => {
                let d = crate::import_digest(alg, message)?;
                self.pair.sign_digest(encoding, &d, &mut sig)
            }
            // Refused by `check_signing` before this point.
            MessageType::ExternalMu => {
                return Err(KeyError::UnsupportedMessageType { alg, actual: kind })
            }
        }
        .map_err(|_| KeyError::Backend { spec })?;
        Ok(sig)
    }

    pub(crate) fn decrypt(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, KeyError> {
        let algorithm = oaep(alg).ok_or(KeyError::UnsupportedAlgorithm {
            spec: self.spec,
            alg: alg.as_aws(),
        })?;
        if ciphertext.len() != self.decrypting.key_size_bytes() {
            return Err(KeyError::InvalidCiphertext);
        }
        let mut buf = Zeroizing::new(vec![0u8; self.decrypting.min_output_size()]);
        let plain = self
            .decrypting
            .decrypt(algorithm, ciphertext, &mut buf, None)
            .map_err(|_| KeyError::InvalidCiphertext)?;
        Ok(SecretBytes::new(plain.to_vec()))
    }
}

/// An RSA public key.
pub(crate) struct RsaPublic {
    spec: KeySpec,
    spki: Vec<u8>,
    encrypting: OaepPublicEncryptingKey,
}

impl RsaPublic {
    /// Parses a SubjectPublicKeyInfo whose algorithm was already checked to be rsaEncryption.
    pub(crate) fn from_spki(spec: KeySpec, spki: &[u8]) -> Result<Self, KeyError> {
        let public =
            PublicEncryptingKey::from_der(spki).map_err(|_| KeyError::InvalidPublicKey { spec })?;
        Self::from_parts(spec, spki.to_vec(), public)
    }

    fn from_parts(
        spec: KeySpec,
        spki: Vec<u8>,
        public: PublicEncryptingKey,
    ) -> Result<Self, KeyError> {
        if public.key_size_bits() != spec_bits(spec)? {
            return Err(KeyError::InvalidPublicKey { spec });
        }
        let encrypting = OaepPublicEncryptingKey::new(public)
            .map_err(|_| KeyError::InvalidPublicKey { spec })?;
        Ok(Self {
            spec,
            spki,
            encrypting,
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
    ) -> Result<bool, KeyError> {
        let params = verification_params(alg).ok_or(KeyError::UnsupportedAlgorithm {
            spec: self.spec,
            alg: alg.as_aws(),
        })?;
        if sig.len() != self.encrypting.key_size_bytes() {
            return Ok(false);
        }
        let key = signature::UnparsedPublicKey::new(params, &self.spki);
        let ok = match kind {
            MessageType::Raw => key.verify(message, sig).is_ok(),
            MessageType::Digest => match crate::import_digest(alg, message) {
                Ok(d) => key.verify_digest(&d, sig).is_ok(),
                Err(_) => false,
            },
            MessageType::ExternalMu => false,
        };
        Ok(ok)
    }

    pub(crate) fn encrypt(
        &self,
        alg: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let spec = self.spec;
        let algorithm = oaep(alg).ok_or(KeyError::UnsupportedAlgorithm {
            spec,
            alg: alg.as_aws(),
        })?;
        if plaintext.len() > self.encrypting.max_plaintext_size(algorithm) {
            return Err(KeyError::TooLong {
                what: "plaintext",
                len: plaintext.len(),
                max: self.encrypting.max_plaintext_size(algorithm),
            });
        }
        let mut out = vec![0u8; self.encrypting.ciphertext_size()];
        let n = self
            .encrypting
            .encrypt(algorithm, plaintext, &mut out, None)
            .map_err(|_| KeyError::Backend { spec })?
            .len();
        out.truncate(n);
        Ok(out)
    }
}
