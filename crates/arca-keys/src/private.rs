//! Private keys: generation, loading and the private-key operations.

use arca_crypto::SecretBytes;
use der::Decode;

use crate::ed25519::Ed25519Private;
use crate::ml_dsa::MlDsaPrivate;
use crate::mlkem::MlKemPrivate;
use crate::nist::NistPrivate;
use crate::public::{PublicInner, PublicKey};
use crate::rsa::RsaPrivate;
use crate::secp256k1::K256Private;
use crate::sm2::Sm2Private;
use crate::{
    check_encapsulation, check_encryption, check_signing, EncapsulationAlgorithm,
    EncryptionAlgorithm, KeyAgreementAlgorithm, KeyError, KeySpec, MacAlgorithm, MessageType,
    SigningAlgorithm, MAX_MAC_MESSAGE_LEN, MAX_PEER_PUBLIC_KEY_LEN,
};

/// Fresh key material for `spec`, as stored: PKCS#8 DER for asymmetric specs, raw key
/// bytes for HMAC specs (28, 32, 48 or 64 bytes: the digest size).
/// `SYMMETRIC_DEFAULT` keys are AES keys, made by `arca-crypto`, not here.
pub fn generate(spec: KeySpec) -> Result<SecretBytes, KeyError> {
    match spec {
        KeySpec::SymmetricDefault => Err(KeyError::UnsupportedOperation {
            spec,
            operation: "asymmetric or HMAC key generation",
        }),
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => crate::rsa::generate(spec),
        KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 => {
            crate::nist::generate(spec)
        }
        KeySpec::EccSecgP256k1 => crate::secp256k1::generate(),
        KeySpec::Sm2 => crate::sm2::generate(),
        KeySpec::EccNistEdwards25519 => crate::ed25519::generate(),
        KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => crate::ml_dsa::generate(spec),
        KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024 => crate::mlkem::generate(spec),
        KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
            crate::hmac::generate(spec)
        }
    }
}

enum Inner {
    Rsa(RsaPrivate),
    Nist(NistPrivate),
    Secp256k1(K256Private),
    Sm2(Sm2Private),
    Ed25519(Ed25519Private),
    MlDsa(MlDsaPrivate),
    MlKem(MlKemPrivate),
    Hmac(SecretBytes),
}

/// A loaded private key or HMAC key: parse once, use many times. Not `Clone`; `Debug`
/// shows only the spec.
pub struct PrivateKey {
    spec: KeySpec,
    inner: Inner,
    public: Option<PublicKey>,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Loads key material of `spec` as [`generate`] returns it. Asymmetric keys must be
    /// unencrypted PKCS#8 DER (as `openssl pkcs8 -topk8 -nocrypt -outform DER` writes).
    pub fn load(spec: KeySpec, material: &[u8]) -> Result<Self, KeyError> {
        if let Some(expected) = crate::public::expected_oids(spec) {
            // One strict DER PrivateKeyInfo of the spec's algorithm, nothing after it.
            let bad = KeyError::InvalidKeyMaterial { spec };
            let info = pkcs8::PrivateKeyInfoRef::from_der(material).map_err(|_| bad.clone())?;
            if info.algorithm.oids().map_err(|_| bad.clone())? != expected {
                return Err(bad);
            }
        }
        let (inner, public) = match spec {
            KeySpec::SymmetricDefault => {
                return Err(KeyError::UnsupportedOperation {
                    spec,
                    operation: "asymmetric or HMAC keys",
                })
            }
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                let (k, p) = RsaPrivate::load(spec, material)?;
                (Inner::Rsa(k), Some(PublicInner::Rsa(p)))
            }
            KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 => {
                let (k, p) = NistPrivate::load(spec, material)?;
                (Inner::Nist(k), Some(PublicInner::Nist(p)))
            }
            KeySpec::EccSecgP256k1 => {
                let (k, p) = K256Private::load(material)?;
                (Inner::Secp256k1(k), Some(PublicInner::Secp256k1(p)))
            }
            KeySpec::Sm2 => {
                let (k, p) = Sm2Private::load(material)?;
                (Inner::Sm2(k), Some(PublicInner::Sm2(p)))
            }
            KeySpec::EccNistEdwards25519 => {
                let (k, p) = Ed25519Private::load(material)?;
                (Inner::Ed25519(k), Some(PublicInner::Ed25519(p)))
            }
            KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => {
                let (k, p) = MlDsaPrivate::load(spec, material)?;
                (Inner::MlDsa(k), Some(PublicInner::MlDsa(p)))
            }
            KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024 => {
                let (k, p) = MlKemPrivate::load(spec, material)?;
                (Inner::MlKem(k), Some(PublicInner::MlKem(p)))
            }
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
                // Generated keys have the digest's length; imported ones
                // may be longer (`import::hmac_import_lengths`).
                let ok = crate::import::hmac_import_lengths(spec)
                    .is_some_and(|r| r.contains(&material.len()));
                if !ok {
                    return Err(KeyError::InvalidKeyMaterial { spec });
                }
                (Inner::Hmac(SecretBytes::new(material.to_vec())), None)
            }
        };
        Ok(Self {
            spec,
            inner,
            public: public.map(|p| PublicKey::new(spec, p)),
        })
    }

    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The public half; `None` for HMAC keys.
    pub fn public_key(&self) -> Option<&PublicKey> {
        self.public.as_ref()
    }

    fn require_public(&self, operation: &'static str) -> Result<&PublicKey, KeyError> {
        self.public.as_ref().ok_or(KeyError::UnsupportedOperation {
            spec: self.spec,
            operation,
        })
    }

    /// SubjectPublicKeyInfo DER, as AWS KMS GetPublicKey returns it (SM2 as id-ecPublicKey
    /// with the SM2 curve OID, as OpenSSL 3 writes it). An error for HMAC keys.
    pub fn public_key_spki_der(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.require_public("public keys")?.spki_der().to_vec())
    }

    /// Signs `message` (at most 4096 bytes) or, for `MessageType::Digest`, a digest of
    /// exactly [`crate::digest_len`] bytes (for ML-DSA's `MessageType::ExternalMu`, the
    /// 64-byte mu). ECDSA and SM2 signatures are DER; RSA-PSS uses
    /// a salt as long as the digest.
    pub fn sign(
        &self,
        alg: SigningAlgorithm,
        message: &[u8],
        kind: MessageType,
    ) -> Result<Vec<u8>, KeyError> {
        check_signing(self.spec, alg, message, kind)?;
        match &self.inner {
            Inner::Rsa(k) => k.sign(alg, message, kind),
            Inner::Nist(k) => k.sign(alg, message, kind),
            Inner::Secp256k1(k) => k.sign(message, kind),
            Inner::Sm2(k) => k.sign(message, kind),
            Inner::Ed25519(k) => k.sign(alg, message),
            Inner::MlDsa(k) => k.sign(message, kind),
            Inner::MlKem(_) | Inner::Hmac(_) => Err(KeyError::UnsupportedOperation {
                spec: self.spec,
                operation: "signing",
            }),
        }
    }

    /// Verifies with the public half. A wrong or malformed signature is `Ok(false)`.
    pub fn verify(
        &self,
        alg: SigningAlgorithm,
        message: &[u8],
        kind: MessageType,
        signature: &[u8],
    ) -> Result<bool, KeyError> {
        check_signing(self.spec, alg, message, kind)?;
        self.require_public("signing")?
            .verify(alg, message, kind, signature)
    }

    /// Decrypts. Every failure is the one opaque [`KeyError::InvalidCiphertext`].
    pub fn decrypt(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, KeyError> {
        check_encryption(self.spec, alg)?;
        match &self.inner {
            Inner::Rsa(k) => k.decrypt(alg, ciphertext),
            Inner::Sm2(k) => k.decrypt(ciphertext),
            Inner::Nist(_)
            | Inner::Secp256k1(_)
            | Inner::Ed25519(_)
            | Inner::MlDsa(_)
            | Inner::MlKem(_)
            | Inner::Hmac(_) => Err(KeyError::UnsupportedOperation {
                spec: self.spec,
                operation: "encryption",
            }),
        }
    }

    /// Encrypts with the public half.
    pub fn encrypt(&self, alg: EncryptionAlgorithm, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        check_encryption(self.spec, alg)?;
        self.require_public("encryption")?.encrypt(alg, plaintext)
    }

    /// The raw ECDH shared secret (the x-coordinate of the shared point, as OpenSSL's
    /// `pkeyutl -derive` gives it) with a peer's SubjectPublicKeyInfo DER, which must
    /// be a key on this key's curve.
    pub fn derive_shared_secret(
        &self,
        alg: KeyAgreementAlgorithm,
        peer_spki: &[u8],
    ) -> Result<SecretBytes, KeyError> {
        let spec = self.spec;
        if spec.key_agreement_algorithms().is_empty() {
            return Err(KeyError::UnsupportedOperation {
                spec,
                operation: "key agreement",
            });
        }
        if !spec.key_agreement_algorithms().contains(&alg) {
            return Err(KeyError::UnsupportedAlgorithm {
                spec,
                alg: alg.as_aws(),
            });
        }
        if peer_spki.len() > MAX_PEER_PUBLIC_KEY_LEN {
            return Err(KeyError::InvalidPublicKey { spec });
        }
        let peer = PublicKey::from_spki_der(spec, peer_spki)?;
        match (&self.inner, &peer.inner) {
            (Inner::Nist(k), PublicInner::Nist(p)) => k.agree(p.spki()),
            (Inner::Sm2(k), PublicInner::Sm2(p)) => Ok(k.agree(p)),
            _ => Err(KeyError::UnsupportedOperation {
                spec,
                operation: "key agreement",
            }),
        }
    }

    /// A fresh 32-byte shared secret and its ciphertext, with the public half (ML-KEM).
    pub fn encapsulate(
        &self,
        alg: EncapsulationAlgorithm,
    ) -> Result<(Vec<u8>, SecretBytes), KeyError> {
        check_encapsulation(self.spec, alg)?;
        self.require_public("key encapsulation")?.encapsulate(alg)
    }

    /// The shared secret of an ML-KEM ciphertext, which must have the length of the
    /// key's parameter set (else [`KeyError::InvalidCiphertext`]). A ciphertext of
    /// the right length not made for this key gives an unrelated secret (implicit
    /// rejection, FIPS 203), never an error.
    pub fn decapsulate(
        &self,
        alg: EncapsulationAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, KeyError> {
        check_encapsulation(self.spec, alg)?;
        match &self.inner {
            Inner::MlKem(k) => k.decapsulate(ciphertext),
            _ => Err(KeyError::UnsupportedOperation {
                spec: self.spec,
                operation: "key encapsulation",
            }),
        }
    }

    fn mac_key(&self, alg: MacAlgorithm, message: &[u8]) -> Result<&SecretBytes, KeyError> {
        let Inner::Hmac(key) = &self.inner else {
            return Err(KeyError::UnsupportedOperation {
                spec: self.spec,
                operation: "MACs",
            });
        };
        if !self.spec.mac_algorithms().contains(&alg) {
            return Err(KeyError::UnsupportedAlgorithm {
                spec: self.spec,
                alg: alg.as_aws(),
            });
        }
        if message.len() > MAX_MAC_MESSAGE_LEN {
            return Err(KeyError::TooLong {
                what: "message",
                len: message.len(),
                max: MAX_MAC_MESSAGE_LEN,
            });
        }
        Ok(key)
    }

    /// HMAC of `message` (at most 4096 bytes).
    pub fn mac(&self, alg: MacAlgorithm, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = self.mac_key(alg, message)?;
        crate::hmac::compute(alg, key.expose(), message)
            .ok_or(KeyError::Backend { spec: self.spec })
    }

    /// Constant-time check of a MAC. A wrong MAC, of any length, is `Ok(false)`.
    pub fn verify_mac(
        &self,
        alg: MacAlgorithm,
        message: &[u8],
        mac: &[u8],
    ) -> Result<bool, KeyError> {
        let key = self.mac_key(alg, message)?;
        if mac.len() != alg.output_len() {
            return Ok(false);
        }
        crate::hmac::verify(alg, key.expose(), message, mac)
            .ok_or(KeyError::Backend { spec: self.spec })
    }
}
