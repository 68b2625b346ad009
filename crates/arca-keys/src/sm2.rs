//! SM2 through the `sm2` crate: SM2DSA with SM3 and the default distinguishing ID
//! (RAW and DIGEST, DER signatures), and SM2PKE with DER C1C3C2 ciphertexts.
//!
//! A DIGEST message for SM2DSA is SM3(Z || M), computed by the caller, as AWS KMS defines it.

use arca_crypto::SecretBytes;
use pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use signature::hazmat::{PrehashSigner, PrehashVerifier};
use signature::{Signer, Verifier};
use sm2::dsa::{Signature, SigningKey, VerifyingKey};
use sm2::elliptic_curve::sec1::ToSec1Point;
use sm2::pke::{DecryptingKey, EncryptingKey};

use crate::{KeyError, KeySpec, MessageType, SM2_DEFAULT_DISTID};

const SPEC: KeySpec = KeySpec::Sm2;

/// Longest SM2PKE ciphertext accepted: 1024 bytes of C2 plus the DER-encoded point and hash.
pub(crate) const MAX_CIPHERTEXT_LEN: usize = 1024 + 160;

/// A fresh key as PKCS#8 DER.
pub(crate) fn generate() -> Result<SecretBytes, KeyError> {
    for _ in 0..8 {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        crate::rng::fill(bytes.as_mut())?;
        if let Ok(secret) = sm2::SecretKey::from_slice(bytes.as_ref()) {
            let doc = secret
                .to_pkcs8_der()
                .map_err(|_| KeyError::Backend { spec: SPEC })?;
            return Ok(SecretBytes::new(doc.as_bytes().to_vec()));
        }
    }
    Err(KeyError::Rng)
}

/// A loaded SM2 private key.
///
/// `sm2`'s key types do not zeroize themselves; on drop their secret scalars are
/// overwritten with the scalar one.
pub(crate) struct Sm2Private {
    signing: SigningKey,
    decrypting: DecryptingKey,
}

impl Sm2Private {
    pub(crate) fn load(pkcs8: &[u8]) -> Result<(Self, Sm2Public), KeyError> {
        let bad = KeyError::InvalidKeyMaterial { spec: SPEC };
        let secret = sm2::SecretKey::from_pkcs8_der(pkcs8).map_err(|_| bad.clone())?;
        let signing = SigningKey::new(SM2_DEFAULT_DISTID, &secret).map_err(|_| bad.clone())?;
        let decrypting = DecryptingKey::new(secret);
        let public = Sm2Public::from_key(secret_public(&signing))?;
        Ok((
            Self {
                signing,
                decrypting,
            },
            public,
        ))
    }

    pub(crate) fn sign(&self, message: &[u8], kind: MessageType) -> Result<Vec<u8>, KeyError> {
        let sig: Signature = match kind {
            MessageType::Raw => self.signing.try_sign(message),
            MessageType::Digest => self.signing.sign_prehash(message),
            // Refused by `check_signing` before this point.
            MessageType::ExternalMu => {
                return Err(KeyError::UnsupportedMessageType {
                    alg: crate::SigningAlgorithm::Sm2Dsa,
                    actual: kind,
                })
            }
        }
        .map_err(|_| KeyError::Backend { spec: SPEC })?;
        Ok(sig.to_der().to_vec())
    }

    /// Raw ECDH on the SM2 curve (not the SM2 key exchange protocol): the
    /// x-coordinate of d * Q, as OpenSSL's `pkeyutl -derive` gives it.
    pub(crate) fn agree(&self, peer: &Sm2Public) -> SecretBytes {
        let shared = sm2::elliptic_curve::ecdh::diffie_hellman(
            self.signing.as_nonzero_scalar(),
            peer.key.as_affine(),
        );
        SecretBytes::new(shared.raw_secret_bytes().to_vec())
    }

    pub(crate) fn decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, KeyError> {
        if ciphertext.len() > MAX_CIPHERTEXT_LEN {
            return Err(KeyError::InvalidCiphertext);
        }
        let plain = self
            .decrypting
            .decrypt_der(ciphertext)
            .map_err(|_| KeyError::InvalidCiphertext)?;
        Ok(SecretBytes::new(plain))
    }
}

fn secret_public(signing: &SigningKey) -> sm2::PublicKey {
    sm2::PublicKey::from(signing.verifying_key())
}

impl Drop for Sm2Private {
    fn drop(&mut self) {
        let mut one = sm2::FieldBytes::default();
        if let Some(last) = one.last_mut() {
            *last = 1;
        }
        if let Some(scalar) = sm2::NonZeroScalar::from_repr(one).into_option() {
            if let Ok(wiped) = SigningKey::from_nonzero_scalar(SM2_DEFAULT_DISTID, scalar) {
                self.signing = wiped;
            }
            self.decrypting = DecryptingKey::new_with_mode(scalar, sm2::pke::Mode::C1C3C2);
        }
        // Keep the overwrites from being treated as dead stores.
        std::hint::black_box(&self.signing);
        std::hint::black_box(&self.decrypting);
    }
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("not an upper-case hex digit"),
    }
}

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    assert!(b.len() == 64);
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// Curve parameters hashed into Z (GB/T 32918.5).
const CURVE_A: [u8; 32] = hex32("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC");
const CURVE_B: [u8; 32] = hex32("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93");
const GENERATOR_X: [u8; 32] =
    hex32("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7");
const GENERATOR_Y: [u8; 32] =
    hex32("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0");

/// Z = SM3(ENTL || ID || a || b || Gx || Gy || Px || Py) with the default distinguishing ID.
fn identity_hash(key: &sm2::PublicKey) -> Result<[u8; 32], KeyError> {
    use sm3::Digest;
    let point = key.to_sec1_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(KeyError::InvalidPublicKey { spec: SPEC });
    };
    let id = SM2_DEFAULT_DISTID.as_bytes();
    let entl = u16::try_from(id.len() * 8).map_err(|_| KeyError::Backend { spec: SPEC })?;
    let mut h = sm3::Sm3::new();
    h.update(entl.to_be_bytes());
    h.update(id);
    for part in [&CURVE_A, &CURVE_B, &GENERATOR_X, &GENERATOR_Y] {
        h.update(part);
    }
    h.update(x);
    h.update(y);
    Ok(h.finalize().into())
}

/// An SM2 public key.
pub(crate) struct Sm2Public {
    key: sm2::PublicKey,
    spki: Vec<u8>,
    z: [u8; 32],
    verifying: VerifyingKey,
    encrypting: EncryptingKey,
}

impl Sm2Public {
    pub(crate) fn from_spki(spki: &[u8]) -> Result<Self, KeyError> {
        let key = sm2::PublicKey::from_public_key_der(spki)
            .map_err(|_| KeyError::InvalidPublicKey { spec: SPEC })?;
        Self::from_key(key)
    }

    fn from_key(key: sm2::PublicKey) -> Result<Self, KeyError> {
        let spki = key
            .to_public_key_der()
            .map_err(|_| KeyError::Backend { spec: SPEC })?
            .into_vec();
        let verifying = VerifyingKey::new(SM2_DEFAULT_DISTID, key)
            .map_err(|_| KeyError::InvalidPublicKey { spec: SPEC })?;
        Ok(Self {
            key,
            spki,
            z: identity_hash(&key)?,
            verifying,
            encrypting: EncryptingKey::new(key),
        })
    }

    /// SM3(Z || message): the DIGEST message for SM2DSA.
    pub(crate) fn digest(&self, message: &[u8]) -> [u8; 32] {
        use sm3::Digest;
        let mut h = sm3::Sm3::new();
        h.update(self.z);
        h.update(message);
        h.finalize().into()
    }

    pub(crate) fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// `false` for any signature that does not verify.
    pub(crate) fn verify(&self, message: &[u8], kind: MessageType, sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_der(sig) else {
            return false;
        };
        match kind {
            MessageType::Raw => self.verifying.verify(message, &sig).is_ok(),
            MessageType::Digest => self.verifying.verify_prehash(message, &sig).is_ok(),
            MessageType::ExternalMu => false,
        }
    }

    pub(crate) fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut rng = crate::rng::OsRng::default();
        let result = self.encrypting.encrypt_der(&mut rng, plaintext);
        if rng.failed {
            return Err(KeyError::Rng);
        }
        result.map_err(|_| KeyError::Backend { spec: SPEC })
    }
}
