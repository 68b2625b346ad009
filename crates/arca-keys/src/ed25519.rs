//! Ed25519 (RFC 8032) for `ECC_NIST_EDWARDS25519` keys.
//!
//! - `ED25519_SHA_512` is PureEdDSA over a RAW message, through aws-lc-rs.
//! - `ED25519_PH_SHA_512` is HashEdDSA (Ed25519ph, empty context) over a DIGEST
//!   message, through `ed25519-dalek`: aws-lc-rs does not expose Ed25519ph. As AWS
//!   KMS defines it, the 64-byte DIGEST is itself the message HashEdDSA hashes
//!   (FIPS 186-5 section 7.8.1, step 1): the signature is Ed25519ph(DIGEST).
//!
//! Keys are PKCS#8 (RFC 8410, the 32-byte seed); public keys are the 44-byte
//! SubjectPublicKeyInfo with the id-Ed25519 OID. Signatures are the raw 64 bytes.

use arca_crypto::SecretBytes;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::Digest;

use crate::{KeyError, KeySpec, SigningAlgorithm};

const SPEC: KeySpec = KeySpec::EccNistEdwards25519;

/// Length of an Ed25519 signature in bytes.
pub(crate) const SIGNATURE_LEN: usize = 64;

/// A fresh key as PKCS#8 v1 DER (RFC 8410), as OpenSSL writes it.
pub(crate) fn generate() -> Result<SecretBytes, KeyError> {
    let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Backend { spec: SPEC })?;
    let doc = pair
        .to_pkcs8v1()
        .map_err(|_| KeyError::Backend { spec: SPEC })?;
    Ok(SecretBytes::new(doc.as_ref().to_vec()))
}

/// The SHA-512 state HashEdDSA signs: PH(M) with M the DIGEST message.
fn prehash(message: &[u8]) -> ed25519_dalek::Sha512 {
    let mut h = ed25519_dalek::Sha512::new();
    h.update(message);
    h
}

/// A loaded Ed25519 private key: the same seed in both backends.
pub(crate) struct Ed25519Private {
    pure: Ed25519KeyPair,
    /// Zeroizes its seed on drop.
    prehash: ed25519_dalek::SigningKey,
}

impl Ed25519Private {
    pub(crate) fn load(pkcs8: &[u8]) -> Result<(Self, Ed25519Public), KeyError> {
        let bad = KeyError::InvalidKeyMaterial { spec: SPEC };
        let pure = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| bad.clone())?;
        let prehash = ed25519_dalek::SigningKey::from_pkcs8_der(pkcs8).map_err(|_| bad.clone())?;
        if prehash.verifying_key().as_bytes().as_slice() != pure.public_key().as_ref() {
            return Err(bad);
        }
        let spki = pure
            .public_key()
            .as_der()
            .map_err(|_| KeyError::Backend { spec: SPEC })?;
        let public = Ed25519Public::from_spki(spki.as_ref())?;
        Ok((Self { pure, prehash }, public))
    }

    pub(crate) fn sign(&self, alg: SigningAlgorithm, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match alg {
            SigningAlgorithm::Ed25519Sha512 => Ok(self
                .pure
                .try_sign(message)
                .map_err(|_| KeyError::Backend { spec: SPEC })?
                .as_ref()
                .to_vec()),
            SigningAlgorithm::Ed25519PhSha512 => Ok(self
                .prehash
                .sign_prehashed(prehash(message), None)
                .map_err(|_| KeyError::Backend { spec: SPEC })?
                .to_bytes()
                .to_vec()),
            other => Err(KeyError::UnsupportedAlgorithm {
                spec: SPEC,
                alg: other.as_aws(),
            }),
        }
    }
}

/// An Ed25519 public key.
pub(crate) struct Ed25519Public {
    spki: Vec<u8>,
    raw: [u8; 32],
    prehash: ed25519_dalek::VerifyingKey,
}

impl Ed25519Public {
    /// Parses a SubjectPublicKeyInfo whose algorithm was already checked.
    pub(crate) fn from_spki(spki: &[u8]) -> Result<Self, KeyError> {
        let prehash = ed25519_dalek::VerifyingKey::from_public_key_der(spki)
            .map_err(|_| KeyError::InvalidPublicKey { spec: SPEC })?;
        Ok(Self {
            spki: spki.to_vec(),
            raw: prehash.to_bytes(),
            prehash,
        })
    }

    pub(crate) fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// `false` for any signature that does not verify.
    pub(crate) fn verify(&self, alg: SigningAlgorithm, message: &[u8], sig: &[u8]) -> bool {
        if sig.len() != SIGNATURE_LEN {
            return false;
        }
        match alg {
            SigningAlgorithm::Ed25519Sha512 => {
                UnparsedPublicKey::new(&signature::ED25519, self.raw)
                    .verify(message, sig)
                    .is_ok()
            }
            SigningAlgorithm::Ed25519PhSha512 => {
                let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
                    return false;
                };
                self.prehash
                    .verify_prehashed_strict(prehash(message), None, &sig)
                    .is_ok()
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// PKCS#8 v1 of a raw RFC 8032 seed.
    fn pkcs8(seed: &[u8]) -> Vec<u8> {
        let mut der = unhex("302e020100300506032b657004220420");
        der.extend_from_slice(seed);
        der
    }

    /// RFC 8032 section 7.1, TEST 3 (Ed25519, a 2-byte message).
    #[test]
    fn pure_matches_rfc8032() {
        let seed = unhex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7");
        let (k, p) = Ed25519Private::load(&pkcs8(&seed)).unwrap();
        let sig = k
            .sign(SigningAlgorithm::Ed25519Sha512, &[0xaf, 0x82])
            .unwrap();
        let want = unhex(
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac
             18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        );
        assert_eq!(sig, want);
        assert!(p.verify(SigningAlgorithm::Ed25519Sha512, &[0xaf, 0x82], &sig));
        assert!(!p.verify(SigningAlgorithm::Ed25519Sha512, &[0xaf, 0x83], &sig));
        assert!(!p.verify(SigningAlgorithm::Ed25519PhSha512, &[0xaf, 0x82], &sig));
    }

    /// RFC 8032 section 7.3 (Ed25519ph, message "abc").
    #[test]
    fn prehash_matches_rfc8032() {
        let seed = unhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42");
        let (k, p) = Ed25519Private::load(&pkcs8(&seed)).unwrap();
        let sig = k.sign(SigningAlgorithm::Ed25519PhSha512, b"abc").unwrap();
        let want = unhex(
            "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41
             31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
        );
        assert_eq!(sig, want);
        assert!(p.verify(SigningAlgorithm::Ed25519PhSha512, b"abc", &sig));
        assert!(!p.verify(SigningAlgorithm::Ed25519PhSha512, b"abd", &sig));
        assert!(!p.verify(SigningAlgorithm::Ed25519Sha512, b"abc", &sig));
    }

    #[test]
    fn generated_keys_round_trip() {
        let m = generate().unwrap();
        let (k, p) = Ed25519Private::load(m.expose()).unwrap();
        assert_eq!(p.spki().len(), 44);
        let digest = [7u8; 64];
        for (alg, msg) in [
            (SigningAlgorithm::Ed25519Sha512, &b"hello"[..]),
            (SigningAlgorithm::Ed25519PhSha512, &digest[..]),
        ] {
            let sig = k.sign(alg, msg).unwrap();
            assert_eq!(sig.len(), SIGNATURE_LEN);
            assert!(p.verify(alg, msg, &sig));
            let mut bad = sig.clone();
            bad[10] ^= 1;
            assert!(!p.verify(alg, msg, &bad));
            assert!(!p.verify(alg, msg, &sig[..63]));
        }
        assert!(Ed25519Private::load(&m.expose()[..40]).is_err());
    }
}
