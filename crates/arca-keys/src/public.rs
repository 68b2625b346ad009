//! Public keys: SubjectPublicKeyInfo parsing, verification and encryption.

use arca_crypto::SecretBytes;
use der::Decode;
use spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};

use crate::ed25519::Ed25519Public;
use crate::ml_dsa::MlDsaPublic;
use crate::mlkem::MlKemPublic;
use crate::nist::NistPublic;
use crate::rsa::RsaPublic;
use crate::secp256k1::K256Public;
use crate::sm2::Sm2Public;
use crate::{
    check_encapsulation, check_plaintext, check_signing, EncapsulationAlgorithm,
    EncryptionAlgorithm, KeyError, KeySpec, MessageType, SigningAlgorithm, MAX_SIGNATURE_LEN,
};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");
const SM2_CURVE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");
/// id-Ed25519 (RFC 8410), with absent parameters.
pub(crate) const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// id-ml-dsa-44/65/87 (FIPS 204, RFC 9881), with absent parameters.
pub(crate) const ML_DSA_44: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.17");
pub(crate) const ML_DSA_65: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.18");
pub(crate) const ML_DSA_87: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.19");

/// The (algorithm, parameters) OIDs a SubjectPublicKeyInfo of `spec` carries.
pub(crate) fn expected_oids(spec: KeySpec) -> Option<(ObjectIdentifier, Option<ObjectIdentifier>)> {
    Some(match spec {
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => (RSA_ENCRYPTION, None),
        KeySpec::EccNistP256 => (EC_PUBLIC_KEY, Some(SECP256R1)),
        KeySpec::EccNistP384 => (EC_PUBLIC_KEY, Some(SECP384R1)),
        KeySpec::EccNistP521 => (EC_PUBLIC_KEY, Some(SECP521R1)),
        KeySpec::EccSecgP256k1 => (EC_PUBLIC_KEY, Some(SECP256K1)),
        KeySpec::Sm2 => (EC_PUBLIC_KEY, Some(SM2_CURVE)),
        KeySpec::EccNistEdwards25519 => (ED25519, None),
        KeySpec::MlDsa44 => (ML_DSA_44, None),
        KeySpec::MlDsa65 => (ML_DSA_65, None),
        KeySpec::MlDsa87 => (ML_DSA_87, None),
        KeySpec::MlKem512 => (crate::mlkem::ML_KEM_512, None),
        KeySpec::MlKem768 => (crate::mlkem::ML_KEM_768, None),
        KeySpec::MlKem1024 => (crate::mlkem::ML_KEM_1024, None),
        KeySpec::SymmetricDefault
        | KeySpec::Hmac224
        | KeySpec::Hmac256
        | KeySpec::Hmac384
        | KeySpec::Hmac512 => return None,
    })
}

pub(crate) enum PublicInner {
    Rsa(RsaPublic),
    Nist(NistPublic),
    Secp256k1(K256Public),
    Sm2(Sm2Public),
    Ed25519(Ed25519Public),
    MlDsa(MlDsaPublic),
    MlKem(MlKemPublic),
}

/// A parsed asymmetric public key of a known spec. Not `Clone`: parse once, use many times.
pub struct PublicKey {
    spec: KeySpec,
    pub(crate) inner: PublicInner,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    pub(crate) fn new(spec: KeySpec, inner: PublicInner) -> Self {
        Self { spec, inner }
    }

    /// Parses a DER SubjectPublicKeyInfo of `spec`. The algorithm identifier must be the one
    /// OpenSSL 3 and AWS KMS write (rsaEncryption, or id-ecPublicKey with the named curve).
    pub fn from_spki_der(spec: KeySpec, spki_der: &[u8]) -> Result<Self, KeyError> {
        let Some(expected) = expected_oids(spec) else {
            return Err(KeyError::UnsupportedOperation {
                spec,
                operation: "public keys",
            });
        };
        let bad = KeyError::InvalidPublicKey { spec };
        let info = SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|_| bad.clone())?;
        if info.algorithm.oids().map_err(|_| bad.clone())? != expected {
            return Err(bad);
        }
        let inner = match spec {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                PublicInner::Rsa(RsaPublic::from_spki(spec, spki_der)?)
            }
            KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 => {
                PublicInner::Nist(NistPublic::from_spki(spec, spki_der)?)
            }
            KeySpec::EccSecgP256k1 => PublicInner::Secp256k1(K256Public::from_spki(spki_der)?),
            KeySpec::Sm2 => PublicInner::Sm2(Sm2Public::from_spki(spki_der)?),
            KeySpec::EccNistEdwards25519 => {
                PublicInner::Ed25519(Ed25519Public::from_spki(spki_der)?)
            }
            KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => {
                PublicInner::MlDsa(MlDsaPublic::from_spki(spec, spki_der)?)
            }
            KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024 => {
                PublicInner::MlKem(MlKemPublic::from_spki(spec, spki_der)?)
            }
            KeySpec::SymmetricDefault
            | KeySpec::Hmac224
            | KeySpec::Hmac256
            | KeySpec::Hmac384
            | KeySpec::Hmac512 => return Err(bad),
        };
        Ok(Self { spec, inner })
    }

    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The SubjectPublicKeyInfo DER, as AWS KMS GetPublicKey returns it.
    pub fn spki_der(&self) -> &[u8] {
        match &self.inner {
            PublicInner::Rsa(k) => k.spki(),
            PublicInner::Nist(k) => k.spki(),
            PublicInner::Secp256k1(k) => k.spki(),
            PublicInner::Sm2(k) => k.spki(),
            PublicInner::Ed25519(k) => k.spki(),
            PublicInner::MlKem(k) => k.spki(),
            PublicInner::MlDsa(k) => k.spki(),
        }
    }

    /// The ML-DSA EXTERNAL_MU message for a RAW `message`: mu = SHAKE256(tr || 0x00 ||
    /// 0x00 || message, 64) with tr = SHAKE256(public key, 64) (FIPS 204 Algorithm 2,
    /// empty context). An error for other specs.
    pub fn ml_dsa_mu(&self, message: &[u8]) -> Result<[u8; 64], KeyError> {
        match &self.inner {
            PublicInner::MlDsa(k) => k.mu(message),
            _ => Err(KeyError::UnsupportedAlgorithm {
                spec: self.spec,
                alg: SigningAlgorithm::MlDsaShake256.as_aws(),
            }),
        }
    }

    /// The SM2DSA DIGEST of `message`: SM3(Z || message), where Z is the identity hash of
    /// this key with the default distinguishing ID. An error for other specs.
    pub fn sm2_digest(&self, message: &[u8]) -> Result<[u8; 32], KeyError> {
        match &self.inner {
            PublicInner::Sm2(k) => Ok(k.digest(message)),
            _ => Err(KeyError::UnsupportedAlgorithm {
                spec: self.spec,
                alg: SigningAlgorithm::Sm2Dsa.as_aws(),
            }),
        }
    }

    /// Verifies `signature` over `message` (or its digest, for `MessageType::Digest`).
    /// Invalid input is an `Err`; a wrong or malformed signature is `Ok(false)`.
    pub fn verify(
        &self,
        alg: SigningAlgorithm,
        message: &[u8],
        kind: MessageType,
        signature: &[u8],
    ) -> Result<bool, KeyError> {
        check_signing(self.spec, alg, message, kind)?;
        if signature.is_empty() || signature.len() > MAX_SIGNATURE_LEN {
            return Ok(false);
        }
        Ok(match &self.inner {
            PublicInner::Rsa(k) => k.verify(alg, message, kind, signature)?,
            PublicInner::Nist(k) => k.verify(alg, message, kind, signature),
            PublicInner::Secp256k1(k) => k.verify(message, kind, signature),
            PublicInner::Sm2(k) => k.verify(message, kind, signature),
            PublicInner::Ed25519(k) => k.verify(alg, message, signature),
            PublicInner::MlDsa(k) => k.verify(message, kind, signature),
            PublicInner::MlKem(_) => false,
        })
    }

    /// Encrypts `plaintext` (1 byte up to [`crate::max_plaintext_len`]).
    pub fn encrypt(&self, alg: EncryptionAlgorithm, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        check_plaintext(self.spec, alg, plaintext)?;
        match &self.inner {
            PublicInner::Rsa(k) => k.encrypt(alg, plaintext),
            PublicInner::Sm2(k) => k.encrypt(plaintext),
            PublicInner::Nist(_)
            | PublicInner::Secp256k1(_)
            | PublicInner::Ed25519(_)
            | PublicInner::MlDsa(_)
            | PublicInner::MlKem(_) => Err(KeyError::UnsupportedOperation {
                spec: self.spec,
                operation: "encryption",
            }),
        }
    }
}

impl PublicKey {
    /// A fresh 32-byte shared secret and its ciphertext (ML-KEM keys).
    pub fn encapsulate(
        &self,
        alg: EncapsulationAlgorithm,
    ) -> Result<(Vec<u8>, SecretBytes), KeyError> {
        check_encapsulation(self.spec, alg)?;
        match &self.inner {
            PublicInner::MlKem(k) => k.encapsulate(),
            _ => Err(KeyError::UnsupportedOperation {
                spec: self.spec,
                operation: "key encapsulation",
            }),
        }
    }
}

/// Verifies a signature with a SubjectPublicKeyInfo DER of `spec`.
pub fn verify_with_spki(
    spec: KeySpec,
    spki_der: &[u8],
    alg: SigningAlgorithm,
    message: &[u8],
    kind: MessageType,
    signature: &[u8],
) -> Result<bool, KeyError> {
    check_signing(spec, alg, message, kind)?;
    PublicKey::from_spki_der(spec, spki_der)?.verify(alg, message, kind, signature)
}

/// Encrypts with a SubjectPublicKeyInfo DER of `spec`.
pub fn encrypt_with_spki(
    spec: KeySpec,
    spki_der: &[u8],
    alg: EncryptionAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>, KeyError> {
    check_plaintext(spec, alg, plaintext)?;
    PublicKey::from_spki_der(spec, spki_der)?.encrypt(alg, plaintext)
}

/// The SM2DSA DIGEST of `message` for an SM2 SubjectPublicKeyInfo: SM3(Z || message).
pub fn sm2_digest(spki_der: &[u8], message: &[u8]) -> Result<[u8; 32], KeyError> {
    PublicKey::from_spki_der(KeySpec::Sm2, spki_der)?.sm2_digest(message)
}
