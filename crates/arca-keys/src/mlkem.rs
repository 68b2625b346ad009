//! ML-KEM (FIPS 203) for `ML_KEM_512`, `ML_KEM_768` and `ML_KEM_1024` keys.
//!
//! A private key is the 64-byte seed `d || z` of FIPS 203's `ML-KEM.KeyGen_internal`,
//! stored as PKCS#8 in the seed form of RFC 9935 (`ML-KEM-PrivateKey ::= CHOICE {
//! seed [0] IMPLICIT OCTET STRING (SIZE (64)), ... }`): 86 bytes for every parameter
//! set. Public keys are SubjectPublicKeyInfo with the NIST OIDs id-alg-ml-kem-512/768/1024
//! (2.16.840.1.101.3.4.4.1/2/3, absent parameters) around the raw encapsulation key.
//!
//! The seed is expanded into the key pair by RustCrypto's `ml-kem` (aws-lc-rs 1.19
//! cannot derive a key from a seed); encapsulation and decapsulation run on
//! aws-lc-rs (`aws_lc_rs::kem`), loaded from the expanded form. Decapsulation
//! uses implicit rejection: a ciphertext of the right length that was not made
//! for this key gives a pseudorandom secret, not an error (FIPS 203 §6.3).

use arca_crypto::SecretBytes;
use aws_lc_rs::kem::{self, Ciphertext};
use der::asn1::BitStringRef;
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierRef, ObjectIdentifier, SubjectPublicKeyInfoRef};
use zeroize::Zeroize;

use crate::{KeyError, KeySpec};

/// id-alg-ml-kem-512 (NIST CSOR, RFC 9935).
pub(crate) const ML_KEM_512: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.4.1");
/// id-alg-ml-kem-768.
pub(crate) const ML_KEM_768: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.4.2");
/// id-alg-ml-kem-1024.
pub(crate) const ML_KEM_1024: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.4.3");

/// Length of the seed `d || z`, for every parameter set.
pub const SEED_LEN: usize = 64;
/// Length of the shared secret, for every parameter set.
pub const SHARED_SECRET_LEN: usize = 32;

/// The DER of a seed-form PKCS#8 key before the seed: SEQUENCE (84 bytes) { INTEGER 0,
/// SEQUENCE { OID id-alg-ml-kem-* }, OCTET STRING (66 bytes) { [0] IMPLICIT (64 bytes) } }.
/// The last byte of the OID (index 17) is the parameter set.
const PKCS8_SEED_PREFIX: [u8; 22] = [
    0x30, 0x54, 0x02, 0x01, 0x00, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
    0x04, 0x00, 0x04, 0x42, 0x80, 0x40,
];
const PKCS8_OID_LAST: usize = 17;

/// The OID of an ML-KEM spec.
pub(crate) fn oid(spec: KeySpec) -> Option<ObjectIdentifier> {
    match spec {
        KeySpec::MlKem512 => Some(ML_KEM_512),
        KeySpec::MlKem768 => Some(ML_KEM_768),
        KeySpec::MlKem1024 => Some(ML_KEM_1024),
        _ => None,
    }
}

fn algorithm(spec: KeySpec) -> Result<&'static kem::Algorithm, KeyError> {
    match spec {
        KeySpec::MlKem512 => Ok(&kem::ML_KEM_512),
        KeySpec::MlKem768 => Ok(&kem::ML_KEM_768),
        KeySpec::MlKem1024 => Ok(&kem::ML_KEM_1024),
        _ => Err(KeyError::UnsupportedOperation {
            spec,
            operation: "key encapsulation",
        }),
    }
}

/// Length of the encapsulation key (the public key inside the SPKI) of `spec`.
pub fn encapsulation_key_len(spec: KeySpec) -> Option<usize> {
    match spec {
        KeySpec::MlKem512 => Some(800),
        KeySpec::MlKem768 => Some(1184),
        KeySpec::MlKem1024 => Some(1568),
        _ => None,
    }
}

/// Length of a ciphertext (`SharedSecretCiphertextBlob`) of `spec`.
pub fn ciphertext_len(spec: KeySpec) -> Option<usize> {
    match spec {
        KeySpec::MlKem512 => Some(768),
        KeySpec::MlKem768 => Some(1088),
        KeySpec::MlKem1024 => Some(1568),
        _ => None,
    }
}

/// The seed-form PKCS#8 DER of `seed` for `spec`.
pub(crate) fn pkcs8_from_seed(
    spec: KeySpec,
    seed: &[u8; SEED_LEN],
) -> Result<SecretBytes, KeyError> {
    let last = match spec {
        KeySpec::MlKem512 => 0x01,
        KeySpec::MlKem768 => 0x02,
        KeySpec::MlKem1024 => 0x03,
        _ => return Err(KeyError::InvalidKeyMaterial { spec }),
    };
    let mut der = Vec::with_capacity(PKCS8_SEED_PREFIX.len() + SEED_LEN);
    der.extend_from_slice(&PKCS8_SEED_PREFIX);
    der[PKCS8_OID_LAST] = last;
    der.extend_from_slice(seed);
    Ok(SecretBytes::new(der))
}

/// A fresh key: a seed from the OS CSPRNG, as seed-form PKCS#8.
pub(crate) fn generate(spec: KeySpec) -> Result<SecretBytes, KeyError> {
    let mut seed = [0u8; SEED_LEN];
    crate::rng::fill(&mut seed)?;
    let der = pkcs8_from_seed(spec, &seed);
    seed.zeroize();
    der
}

/// The seed inside a seed-form PKCS#8 key whose algorithm is already checked.
/// Only the seed form is accepted: the expanded and "both" forms of RFC 9935 are not.
fn seed_of(spec: KeySpec, pkcs8: &[u8]) -> Result<[u8; SEED_LEN], KeyError> {
    let bad = KeyError::InvalidKeyMaterial { spec };
    let info = pkcs8::PrivateKeyInfoRef::from_der(pkcs8).map_err(|_| bad.clone())?;
    if info.algorithm.oid != oid(spec).ok_or(bad.clone())? || info.algorithm.parameters.is_some() {
        return Err(bad);
    }
    let inner = info.private_key.as_bytes();
    match inner {
        [0x80, 0x40, seed @ ..] if seed.len() == SEED_LEN => {
            let mut out = [0u8; SEED_LEN];
            out.copy_from_slice(seed);
            Ok(out)
        }
        _ => Err(bad),
    }
}

/// The SubjectPublicKeyInfo DER of an encapsulation key.
fn spki_of(spec: KeySpec, ek: &[u8]) -> Result<Vec<u8>, KeyError> {
    let backend = KeyError::Backend { spec };
    let info = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: oid(spec).ok_or(backend.clone())?,
            parameters: None,
        },
        subject_public_key: BitStringRef::from_bytes(ek).map_err(|_| backend.clone())?,
    };
    info.to_der().map_err(|_| backend)
}

/// Expands a seed with `ml-kem`: the expanded decapsulation key (FIPS 203 `dk`) and the
/// encapsulation key `ek`.
#[allow(deprecated)] // The expanded form is what aws-lc-rs loads.
fn expand(spec: KeySpec, seed: &[u8; SEED_LEN]) -> Result<(SecretBytes, Vec<u8>), KeyError> {
    use ml_kem::{ExpandedKeyEncoding, KeyExport};
    macro_rules! expand_with {
        ($p:ty) => {{
            let mut s = ml_kem::Seed::default();
            s.copy_from_slice(seed);
            // Zeroizes its secrets when dropped (`zeroize` feature).
            let dk = ml_kem::DecapsulationKey::<$p>::from_seed(s);
            s.as_mut_slice().zeroize();
            let mut expanded = dk.to_expanded_bytes();
            let dk_bytes = SecretBytes::new(expanded.as_slice().to_vec());
            expanded.as_mut_slice().zeroize();
            let ek = dk.encapsulation_key().to_bytes().as_slice().to_vec();
            (dk_bytes, ek)
        }};
    }
    Ok(match spec {
        KeySpec::MlKem512 => expand_with!(ml_kem::MlKem512),
        KeySpec::MlKem768 => expand_with!(ml_kem::MlKem768),
        KeySpec::MlKem1024 => expand_with!(ml_kem::MlKem1024),
        _ => return Err(KeyError::InvalidKeyMaterial { spec }),
    })
}

/// A loaded ML-KEM private (decapsulation) key. aws-lc-rs frees it with
/// `OPENSSL_free`, which clears the memory first.
pub(crate) struct MlKemPrivate {
    spec: KeySpec,
    dk: kem::DecapsulationKey,
}

impl MlKemPrivate {
    pub(crate) fn load(spec: KeySpec, pkcs8: &[u8]) -> Result<(Self, MlKemPublic), KeyError> {
        let mut seed = seed_of(spec, pkcs8)?;
        let expanded = expand(spec, &seed);
        seed.zeroize();
        let (dk_bytes, ek) = expanded?;
        let alg = algorithm(spec)?;
        let dk = kem::DecapsulationKey::new(alg, dk_bytes.expose())
            .map_err(|_| KeyError::Backend { spec })?;
        let public = MlKemPublic::from_encapsulation_key(spec, &ek)?;
        Ok((Self { spec, dk }, public))
    }

    /// The shared secret in `ciphertext`, which must be exactly [`ciphertext_len`] bytes.
    pub(crate) fn decapsulate(&self, ciphertext: &[u8]) -> Result<SecretBytes, KeyError> {
        if Some(ciphertext.len()) != ciphertext_len(self.spec) {
            return Err(KeyError::InvalidCiphertext);
        }
        let secret = self
            .dk
            .decapsulate(Ciphertext::from(ciphertext))
            .map_err(|_| KeyError::InvalidCiphertext)?;
        // aws-lc-rs's SharedSecret clears itself when dropped.
        Ok(SecretBytes::new(secret.as_ref().to_vec()))
    }
}

/// An ML-KEM public (encapsulation) key.
pub(crate) struct MlKemPublic {
    spec: KeySpec,
    spki: Vec<u8>,
    ek: kem::EncapsulationKey,
}

impl MlKemPublic {
    fn from_encapsulation_key(spec: KeySpec, ek: &[u8]) -> Result<Self, KeyError> {
        let bad = KeyError::InvalidPublicKey { spec };
        if Some(ek.len()) != encapsulation_key_len(spec) {
            return Err(bad);
        }
        // FIPS 203 §7.2's modulus check: ml-kem rejects an encapsulation key whose
        // coefficients are not reduced mod q.
        macro_rules! check_with {
            ($p:ty) => {{
                let key = ml_kem::array::Array::try_from(ek).map_err(|_| bad.clone())?;
                ml_kem::EncapsulationKey::<$p>::new(&key).map_err(|_| bad.clone())?;
            }};
        }
        match spec {
            KeySpec::MlKem512 => check_with!(ml_kem::MlKem512),
            KeySpec::MlKem768 => check_with!(ml_kem::MlKem768),
            KeySpec::MlKem1024 => check_with!(ml_kem::MlKem1024),
            _ => return Err(bad),
        }
        let ek_lc = kem::EncapsulationKey::new(algorithm(spec)?, ek).map_err(|_| bad.clone())?;
        Ok(Self {
            spec,
            spki: spki_of(spec, ek)?,
            ek: ek_lc,
        })
    }

    /// Parses a SubjectPublicKeyInfo whose algorithm identifier is already checked.
    pub(crate) fn from_spki(spec: KeySpec, spki_der: &[u8]) -> Result<Self, KeyError> {
        let bad = KeyError::InvalidPublicKey { spec };
        let info = SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|_| bad.clone())?;
        let ek = info.subject_public_key.as_bytes().ok_or(bad.clone())?;
        let key = Self::from_encapsulation_key(spec, ek)?;
        // One canonical encoding: what we would write ourselves.
        if key.spki != spki_der {
            return Err(bad);
        }
        Ok(key)
    }

    pub(crate) fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// A fresh shared secret and its ciphertext.
    pub(crate) fn encapsulate(&self) -> Result<(Vec<u8>, SecretBytes), KeyError> {
        let (ct, secret) = self
            .ek
            .encapsulate()
            .map_err(|_| KeyError::Backend { spec: self.spec })?;
        Ok((
            ct.as_ref().to_vec(),
            SecretBytes::new(secret.as_ref().to_vec()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: [KeySpec; 3] = [KeySpec::MlKem512, KeySpec::MlKem768, KeySpec::MlKem1024];

    #[test]
    fn seed_form_pkcs8_is_86_bytes_and_parses() {
        for spec in SPECS {
            let der = generate(spec).unwrap();
            assert_eq!(der.expose().len(), 86);
            let info = pkcs8::PrivateKeyInfoRef::from_der(der.expose()).unwrap();
            assert_eq!(info.algorithm.oid, oid(spec).unwrap());
            assert!(info.algorithm.parameters.is_none());
            assert_eq!(info.private_key.as_bytes().len(), 66);
            let seed = seed_of(spec, der.expose()).unwrap();
            assert_eq!(&der.expose()[22..], &seed);
            // Another parameter set's OID is refused.
            for other in SPECS.into_iter().filter(|o| *o != spec) {
                assert!(seed_of(other, der.expose()).is_err());
            }
        }
    }

    #[test]
    fn round_trip_and_sizes() {
        for spec in SPECS {
            let der = generate(spec).unwrap();
            let (private, public) = MlKemPrivate::load(spec, der.expose()).unwrap();
            let (ct, secret) = public.encapsulate().unwrap();
            assert_eq!(Some(ct.len()), ciphertext_len(spec));
            assert_eq!(secret.expose().len(), SHARED_SECRET_LEN);
            assert_eq!(private.decapsulate(&ct).unwrap().expose(), secret.expose());
            // Implicit rejection: an altered ciphertext gives another secret, no error.
            let mut altered = ct.clone();
            altered[0] ^= 1;
            assert_ne!(
                private.decapsulate(&altered).unwrap().expose(),
                secret.expose()
            );
            // A ciphertext of another length is invalid.
            assert_eq!(
                private.decapsulate(&ct[1..]).unwrap_err(),
                KeyError::InvalidCiphertext
            );
            let mut long = ct.clone();
            long.push(0);
            assert!(private.decapsulate(&long).is_err());
            // The SPKI parses back to the same key.
            let again = MlKemPublic::from_spki(spec, public.spki()).unwrap();
            assert_eq!(again.spki(), public.spki());
            // SEQUENCE { SEQUENCE { OID }, BIT STRING { 0 unused bits, ek } }.
            let info = SubjectPublicKeyInfoRef::from_der(public.spki()).unwrap();
            assert_eq!(info.algorithm.oid, oid(spec).unwrap());
            assert!(info.algorithm.parameters.is_none());
            assert_eq!(
                info.subject_public_key.as_bytes().map(<[u8]>::len),
                encapsulation_key_len(spec)
            );
        }
    }

    #[test]
    fn known_seed_gives_the_same_key_each_time() {
        // Keys are a function of the seed alone: loading twice gives one public key.
        let seed = [7u8; SEED_LEN];
        for spec in SPECS {
            let der = pkcs8_from_seed(spec, &seed).unwrap();
            let (_, a) = MlKemPrivate::load(spec, der.expose()).unwrap();
            let (_, b) = MlKemPrivate::load(spec, der.expose()).unwrap();
            assert_eq!(a.spki(), b.spki());
        }
    }

    #[test]
    fn malformed_keys_are_refused() {
        let spec = KeySpec::MlKem768;
        let der = generate(spec).unwrap();
        let mut short = der.expose().to_vec();
        short.pop();
        assert!(MlKemPrivate::load(spec, &short).is_err());
        // An expanded-form key (a bare OCTET STRING) is not accepted.
        let mut expanded_form = der.expose().to_vec();
        expanded_form[20] = 0x04;
        assert!(MlKemPrivate::load(spec, &expanded_form).is_err());
        // An encapsulation key with a coefficient not reduced mod q is refused.
        let (_, public) = MlKemPrivate::load(spec, der.expose()).unwrap();
        let mut ek = public.spki()[public.spki().len() - 1184..].to_vec();
        ek[0] = 0xff;
        ek[1] = 0xff;
        assert!(MlKemPublic::from_encapsulation_key(spec, &ek).is_err());
        assert!(MlKemPublic::from_encapsulation_key(spec, &ek[1..]).is_err());
    }
}
