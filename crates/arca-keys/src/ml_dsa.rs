//! ML-DSA (FIPS 204) for `ML_DSA_44`, `ML_DSA_65` and `ML_DSA_87` keys, with the one
//! algorithm AWS KMS names `ML_DSA_SHAKE_256`.
//!
//! - RAW messages (at most 4096 bytes) are signed with ML-DSA's pure mode and an empty
//!   context string (FIPS 204 Algorithm 2), through aws-lc-rs.
//! - EXTERNAL_MU messages are the 64-byte message representative
//!   mu = SHAKE256(SHAKE256(pk, 64) || 0x00 || 0x00 || M, 64) the caller computed
//!   (FIPS 204 section 6.2); signing and verifying them goes through RustCrypto's
//!   `ml-dsa`, since aws-lc-rs exposes no external-mu API (its C functions are
//!   reachable only through `unsafe` FFI, which the workspace forbids). A signature
//!   over mu is the signature over M: either verifies the other way.
//!
//! Both signers are hedged (fresh randomness per signature). Keys are PKCS#8 v1 whose
//! private key is the 32-byte seed (`seed [0] IMPLICIT OCTET STRING`, RFC 9881), loaded
//! into both backends and checked to give the same public key. Public keys are the
//! SubjectPublicKeyInfo with the NIST OID (id-ml-dsa-44/65/87), signatures the raw
//! FIPS 204 encoding.

use arca_crypto::SecretBytes;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self as lc, KeyPair, PqdsaKeyPair, UnparsedPublicKey};
use ml_dsa::common::{array::Array, typenum::U64};
use ml_dsa::{EncodedVerifyingKey, MlDsa44, MlDsa65, MlDsa87, MlDsaParams, Signature};
use pkcs8::{DecodePrivateKey, EncodePrivateKey};
use spki::DecodePublicKey;
use zeroize::Zeroize;

use crate::rng::OsRng;
use crate::{KeyError, KeySpec, MessageType, SigningAlgorithm};

/// mu as `ml-dsa` takes it.
type B64 = Array<u8, U64>;

/// Length of mu, the EXTERNAL_MU message, in bytes.
pub(crate) const MU_LEN: usize = 64;

/// The aws-lc-rs signing algorithm of a spec.
fn lc_signing(spec: KeySpec) -> Option<&'static lc::PqdsaSigningAlgorithm> {
    match spec {
        KeySpec::MlDsa44 => Some(&lc::ML_DSA_44_SIGNING),
        KeySpec::MlDsa65 => Some(&lc::ML_DSA_65_SIGNING),
        KeySpec::MlDsa87 => Some(&lc::ML_DSA_87_SIGNING),
        _ => None,
    }
}

/// The aws-lc-rs verification algorithm of a spec.
fn lc_verification(spec: KeySpec) -> Option<&'static lc::PqdsaVerificationAlgorithm> {
    match spec {
        KeySpec::MlDsa44 => Some(&lc::ML_DSA_44),
        KeySpec::MlDsa65 => Some(&lc::ML_DSA_65),
        KeySpec::MlDsa87 => Some(&lc::ML_DSA_87),
        _ => None,
    }
}

/// Length of a signature of `spec` in bytes (FIPS 204 Table 2).
pub(crate) fn signature_len(spec: KeySpec) -> Option<usize> {
    lc_signing(spec).map(|a| a.signature_len())
}

/// A fresh key of `spec` as PKCS#8 v1 DER holding the 32-byte seed.
pub(crate) fn generate(spec: KeySpec) -> Result<SecretBytes, KeyError> {
    let mut seed = [0u8; 32];
    crate::rng::fill(&mut seed)?;
    let doc = match spec {
        KeySpec::MlDsa44 => seed_pkcs8::<MlDsa44>(&seed),
        KeySpec::MlDsa65 => seed_pkcs8::<MlDsa65>(&seed),
        KeySpec::MlDsa87 => seed_pkcs8::<MlDsa87>(&seed),
        _ => None,
    };
    seed.zeroize();
    doc.ok_or(KeyError::Backend { spec })
}

/// PKCS#8 v1 DER of the key of `seed` (seed-only, as RFC 9881 recommends).
fn seed_pkcs8<P>(seed: &[u8; 32]) -> Option<SecretBytes>
where
    P: MlDsaParams + pkcs8::spki::AssociatedAlgorithmIdentifier<Params = der::AnyRef<'static>>,
{
    let mut xi = ml_dsa::B32::from(*seed);
    let key = ml_dsa::SigningKey::<P>::from_seed(&xi);
    xi.zeroize();
    // A `SecretDocument`: zeroized on drop.
    let doc = key.to_pkcs8_der().ok()?;
    Some(SecretBytes::new(doc.as_bytes().to_vec()))
}

/// The `ml-dsa` signing key of one parameter set; each zeroizes its seed and
/// expanded key on drop.
enum MuSigner {
    L44(Box<ml_dsa::SigningKey<MlDsa44>>),
    L65(Box<ml_dsa::SigningKey<MlDsa65>>),
    L87(Box<ml_dsa::SigningKey<MlDsa87>>),
}

fn sign_mu<P: MlDsaParams>(
    key: &ml_dsa::SigningKey<P>,
    mu: &[u8],
    spec: KeySpec,
) -> Result<Vec<u8>, KeyError> {
    let mu = B64::try_from(mu).map_err(|_| KeyError::InvalidDigestLength {
        alg: SigningAlgorithm::MlDsaShake256,
        expected: MU_LEN,
        actual: mu.len(),
    })?;
    let mut rng = OsRng::default();
    let sig = key
        .expanded_key()
        .sign_mu_randomized(&mu, &mut rng)
        .map_err(|_| {
            if rng.failed {
                KeyError::Rng
            } else {
                KeyError::Backend { spec }
            }
        })?;
    Ok(sig.encode().to_vec())
}

/// A loaded ML-DSA private key: the same seed in both backends.
pub(crate) struct MlDsaPrivate {
    spec: KeySpec,
    pure: PqdsaKeyPair,
    mu: MuSigner,
}

impl MlDsaPrivate {
    pub(crate) fn load(spec: KeySpec, pkcs8: &[u8]) -> Result<(Self, MlDsaPublic), KeyError> {
        let bad = KeyError::InvalidKeyMaterial { spec };
        let alg = lc_signing(spec).ok_or(bad.clone())?;
        let pure = PqdsaKeyPair::from_pkcs8(alg, pkcs8).map_err(|_| bad.clone())?;
        let (mu, encoded) = match spec {
            KeySpec::MlDsa44 => {
                let k = ml_dsa::SigningKey::<MlDsa44>::from_pkcs8_der(pkcs8)
                    .map_err(|_| bad.clone())?;
                let enc = k.expanded_key().verifying_key().encode().to_vec();
                (MuSigner::L44(Box::new(k)), enc)
            }
            KeySpec::MlDsa65 => {
                let k = ml_dsa::SigningKey::<MlDsa65>::from_pkcs8_der(pkcs8)
                    .map_err(|_| bad.clone())?;
                let enc = k.expanded_key().verifying_key().encode().to_vec();
                (MuSigner::L65(Box::new(k)), enc)
            }
            KeySpec::MlDsa87 => {
                let k = ml_dsa::SigningKey::<MlDsa87>::from_pkcs8_der(pkcs8)
                    .map_err(|_| bad.clone())?;
                let enc = k.expanded_key().verifying_key().encode().to_vec();
                (MuSigner::L87(Box::new(k)), enc)
            }
            _ => return Err(bad),
        };
        // Both backends must have read the same key.
        if encoded.as_slice() != pure.public_key().as_ref() {
            return Err(bad);
        }
        let spki = pure
            .public_key()
            .as_der()
            .map_err(|_| KeyError::Backend { spec })?;
        let public = MlDsaPublic::from_spki(spec, spki.as_ref())?;
        Ok((Self { spec, pure, mu }, public))
    }

    /// Signs a RAW message (pure ML-DSA, empty context) or an EXTERNAL_MU mu; the
    /// caller checked the algorithm, the message type and the length.
    pub(crate) fn sign(&self, message: &[u8], kind: MessageType) -> Result<Vec<u8>, KeyError> {
        let spec = self.spec;
        match kind {
            MessageType::Raw => {
                let len = signature_len(spec).ok_or(KeyError::Backend { spec })?;
                let mut sig = vec![0u8; len];
                let n = self
                    .pure
                    .sign(message, &mut sig)
                    .map_err(|_| KeyError::Backend { spec })?;
                sig.truncate(n);
                Ok(sig)
            }
            MessageType::ExternalMu => match &self.mu {
                MuSigner::L44(k) => sign_mu(k, message, spec),
                MuSigner::L65(k) => sign_mu(k, message, spec),
                MuSigner::L87(k) => sign_mu(k, message, spec),
            },
            MessageType::Digest => Err(KeyError::UnsupportedMessageType {
                alg: SigningAlgorithm::MlDsaShake256,
                actual: kind,
            }),
        }
    }
}

/// The `ml-dsa` verifying key of one parameter set.
enum MuVerifier {
    L44(Box<ml_dsa::VerifyingKey<MlDsa44>>),
    L65(Box<ml_dsa::VerifyingKey<MlDsa65>>),
    L87(Box<ml_dsa::VerifyingKey<MlDsa87>>),
}

fn verify_mu<P: MlDsaParams>(key: &ml_dsa::VerifyingKey<P>, mu: &[u8], sig: &[u8]) -> bool {
    let Ok(mu) = B64::try_from(mu) else {
        return false;
    };
    let Ok(sig) = Signature::<P>::try_from(sig) else {
        return false;
    };
    key.verify_mu(&mu, &sig)
}

/// mu of a RAW `message` under `key`, with an empty context.
fn mu_of<P: MlDsaParams>(
    key: &ml_dsa::VerifyingKey<P>,
    message: &[u8],
) -> Result<B64, ml_dsa::Error> {
    use ml_dsa::signature::digest::Update;
    key.compute_mu(
        |h| {
            h.update(message);
            Ok(())
        },
        &[],
    )
}

/// An ML-DSA public key.
pub(crate) struct MlDsaPublic {
    spec: KeySpec,
    spki: Vec<u8>,
    /// The FIPS 204 encoding (pkEncode), as aws-lc-rs verifies with it.
    raw: Vec<u8>,
    mu: MuVerifier,
}

fn decode_public<P>(
    spki: &[u8],
    spec: KeySpec,
) -> Result<(ml_dsa::VerifyingKey<P>, Vec<u8>), KeyError>
where
    P: MlDsaParams + pkcs8::spki::AssociatedAlgorithmIdentifier<Params = der::AnyRef<'static>>,
{
    let key = ml_dsa::VerifyingKey::<P>::from_public_key_der(spki)
        .map_err(|_| KeyError::InvalidPublicKey { spec })?;
    let enc: EncodedVerifyingKey<P> = key.encode();
    Ok((key, enc.to_vec()))
}

impl MlDsaPublic {
    /// Parses a SubjectPublicKeyInfo whose algorithm was already checked.
    pub(crate) fn from_spki(spec: KeySpec, spki: &[u8]) -> Result<Self, KeyError> {
        let (mu, raw) = match spec {
            KeySpec::MlDsa44 => {
                let (k, raw) = decode_public::<MlDsa44>(spki, spec)?;
                (MuVerifier::L44(Box::new(k)), raw)
            }
            KeySpec::MlDsa65 => {
                let (k, raw) = decode_public::<MlDsa65>(spki, spec)?;
                (MuVerifier::L65(Box::new(k)), raw)
            }
            KeySpec::MlDsa87 => {
                let (k, raw) = decode_public::<MlDsa87>(spki, spec)?;
                (MuVerifier::L87(Box::new(k)), raw)
            }
            _ => return Err(KeyError::InvalidPublicKey { spec }),
        };
        Ok(Self {
            spec,
            spki: spki.to_vec(),
            raw,
            mu,
        })
    }

    pub(crate) fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// `false` for any signature that does not verify.
    pub(crate) fn verify(&self, message: &[u8], kind: MessageType, sig: &[u8]) -> bool {
        if Some(sig.len()) != signature_len(self.spec) {
            return false;
        }
        match kind {
            MessageType::Raw => match lc_verification(self.spec) {
                Some(alg) => UnparsedPublicKey::new(alg, &self.raw)
                    .verify(message, sig)
                    .is_ok(),
                None => false,
            },
            MessageType::ExternalMu => match &self.mu {
                MuVerifier::L44(k) => verify_mu(k, message, sig),
                MuVerifier::L65(k) => verify_mu(k, message, sig),
                MuVerifier::L87(k) => verify_mu(k, message, sig),
            },
            MessageType::Digest => false,
        }
    }

    /// mu for a RAW `message` under this key (pure ML-DSA, empty context): what an
    /// EXTERNAL_MU caller computes. Used by CSRs and tests.
    pub(crate) fn mu(&self, message: &[u8]) -> Result<[u8; MU_LEN], KeyError> {
        let spec = self.spec;
        let mu = match &self.mu {
            MuVerifier::L44(k) => mu_of(k, message),
            MuVerifier::L65(k) => mu_of(k, message),
            MuVerifier::L87(k) => mu_of(k, message),
        }
        .map_err(|_| KeyError::Backend { spec })?;
        Ok(mu.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_dsa::signature::Verifier;

    const SPECS: [KeySpec; 3] = [KeySpec::MlDsa44, KeySpec::MlDsa65, KeySpec::MlDsa87];

    fn load(spec: KeySpec) -> (MlDsaPrivate, MlDsaPublic) {
        MlDsaPrivate::load(spec, generate(spec).unwrap().expose()).unwrap()
    }

    /// The other implementation's view of `pkcs8` (`ml-dsa`'s own signer and
    /// verifier, not the code paths under test).
    fn check_with_rustcrypto<P>(spec: KeySpec)
    where
        P: MlDsaParams + pkcs8::spki::AssociatedAlgorithmIdentifier<Params = der::AnyRef<'static>>,
    {
        let material = generate(spec).unwrap();
        let (k, p) = MlDsaPrivate::load(spec, material.expose()).unwrap();
        let theirs = ml_dsa::SigningKey::<P>::from_pkcs8_der(material.expose()).unwrap();
        let vk = theirs.expanded_key().verifying_key();
        let msg = b"a message for ML-DSA";
        // Ours (aws-lc-rs, RAW) verifies with theirs (pure, empty context).
        let sig = k.sign(msg, MessageType::Raw).unwrap();
        assert_eq!(Some(sig.len()), signature_len(spec));
        let parsed = Signature::<P>::try_from(sig.as_slice()).unwrap();
        assert!(vk.verify(msg, &parsed).is_ok(), "{spec}");
        assert!(vk.verify(b"another message", &parsed).is_err(), "{spec}");
        // Ours over mu (EXTERNAL_MU) is a signature over the message itself.
        let mu = p.mu(msg).unwrap();
        let sig = k.sign(&mu, MessageType::ExternalMu).unwrap();
        let parsed = Signature::<P>::try_from(sig.as_slice()).unwrap();
        assert!(vk.verify(msg, &parsed).is_ok(), "{spec}");
        assert!(p.verify(msg, MessageType::Raw, &sig), "{spec}");
        // Theirs verifies with ours, over RAW and over mu.
        let sig = theirs
            .expanded_key()
            .sign_deterministic(msg, &[])
            .unwrap()
            .encode()
            .to_vec();
        assert!(p.verify(msg, MessageType::Raw, &sig), "{spec}");
        assert!(p.verify(&mu, MessageType::ExternalMu, &sig), "{spec}");
        assert!(
            !p.verify(b"another message", MessageType::Raw, &sig),
            "{spec}"
        );
        // A non-empty context is another message.
        let sig = theirs
            .expanded_key()
            .sign_deterministic(msg, b"ctx")
            .unwrap()
            .encode()
            .to_vec();
        assert!(!p.verify(msg, MessageType::Raw, &sig), "{spec}");
        // The SubjectPublicKeyInfo is theirs.
        use pkcs8::EncodePublicKey;
        assert_eq!(
            vk.to_public_key_der().unwrap().as_bytes(),
            p.spki(),
            "{spec}"
        );
    }

    #[test]
    fn interoperates_with_rustcrypto_ml_dsa() {
        check_with_rustcrypto::<MlDsa44>(KeySpec::MlDsa44);
        check_with_rustcrypto::<MlDsa65>(KeySpec::MlDsa65);
        check_with_rustcrypto::<MlDsa87>(KeySpec::MlDsa87);
    }

    #[test]
    fn keys_are_seed_pkcs8_with_the_nist_oids() {
        for (spec, last, pk_len, sig_len) in [
            (KeySpec::MlDsa44, 17u8, 1312, 2420),
            (KeySpec::MlDsa65, 18, 1952, 3309),
            (KeySpec::MlDsa87, 19, 2592, 4627),
        ] {
            let m = generate(spec).unwrap();
            // PrivateKeyInfo { v1, id-ml-dsa-*, OCTET STRING { [0] 32-byte seed } }.
            let der = m.expose();
            assert_eq!(der.len(), 54, "{spec}");
            let oid = [
                0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, last,
            ];
            assert_eq!(&der[7..18], &oid, "{spec}");
            assert_eq!(&der[18..22], &[0x04, 0x22, 0x80, 0x20], "{spec}");
            let (_, p) = MlDsaPrivate::load(spec, der).unwrap();
            // SPKI: the OID, absent parameters, the encoded key.
            assert_eq!(&p.spki()[..2], &[0x30, 0x82], "{spec}");
            assert!(p.spki().windows(oid.len()).any(|w| w == oid), "{spec}");
            assert_eq!(p.raw.len(), pk_len, "{spec}");
            assert!(p.spki().ends_with(&p.raw), "{spec}");
            assert_eq!(signature_len(spec), Some(sig_len));
            // Two keys are never the same.
            let (_, q) = load(spec);
            assert_ne!(p.spki(), q.spki());
        }
    }

    #[test]
    fn wrong_keys_lengths_and_types_fail() {
        for spec in SPECS {
            let (k, p) = load(spec);
            let (_, other) = load(spec);
            let msg = b"m";
            let mu = p.mu(msg).unwrap();
            for (kind, input) in [
                (MessageType::Raw, &msg[..]),
                (MessageType::ExternalMu, &mu[..]),
            ] {
                let sig = k.sign(input, kind).unwrap();
                assert!(p.verify(input, kind, &sig), "{spec} {kind}");
                assert!(!other.verify(input, kind, &sig), "{spec} {kind}");
                let mut bad = sig.clone();
                bad[10] ^= 1;
                assert!(!p.verify(input, kind, &bad), "{spec} {kind}");
                assert!(
                    !p.verify(input, kind, &sig[..sig.len() - 1]),
                    "{spec} {kind}"
                );
                assert!(!p.verify(input, MessageType::Digest, &sig), "{spec} {kind}");
            }
            // mu depends on the key (tr = H(pk)).
            assert_ne!(mu, other.mu(msg).unwrap());
            assert!(matches!(
                k.sign(&mu[..63], MessageType::ExternalMu),
                Err(KeyError::InvalidDigestLength {
                    expected: 64,
                    actual: 63,
                    ..
                })
            ));
            assert!(matches!(
                k.sign(&mu, MessageType::Digest),
                Err(KeyError::UnsupportedMessageType { .. })
            ));
        }
        // Material of one parameter set is not a key of another.
        let m44 = generate(KeySpec::MlDsa44).unwrap();
        assert!(MlDsaPrivate::load(KeySpec::MlDsa65, m44.expose()).is_err());
        assert!(MlDsaPrivate::load(KeySpec::MlDsa44, &m44.expose()[..53]).is_err());
    }
}
