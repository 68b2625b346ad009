//! Key specs, key usages and algorithm names, spelled as the AWS KMS API spells them.

use std::fmt;

macro_rules! aws_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $aws:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The AWS KMS API name.
            pub fn as_aws(&self) -> &'static str {
                match self {
                    $($name::$variant => $aws),+
                }
            }

            /// Parses an AWS KMS API name (exact match).
            pub fn from_aws(name: &str) -> Option<Self> {
                match name {
                    $($aws => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_aws())
            }
        }
    };
}

aws_enum! {
    /// The type of key material (AWS `KeySpec`).
    KeySpec {
        Rsa2048 => "RSA_2048",
        Rsa3072 => "RSA_3072",
        Rsa4096 => "RSA_4096",
        EccNistP256 => "ECC_NIST_P256",
        EccNistP384 => "ECC_NIST_P384",
        EccNistP521 => "ECC_NIST_P521",
        EccSecgP256k1 => "ECC_SECG_P256K1",
        Sm2 => "SM2",
        EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
        MlDsa44 => "ML_DSA_44",
        MlDsa65 => "ML_DSA_65",
        MlDsa87 => "ML_DSA_87",
        Hmac224 => "HMAC_224",
        Hmac256 => "HMAC_256",
        Hmac384 => "HMAC_384",
        Hmac512 => "HMAC_512",
        MlKem512 => "ML_KEM_512",
        MlKem768 => "ML_KEM_768",
        MlKem1024 => "ML_KEM_1024",
    }
}

aws_enum! {
    /// What a key may be used for (AWS `KeyUsage`).
    KeyUsage {
        EncryptDecrypt => "ENCRYPT_DECRYPT",
        SignVerify => "SIGN_VERIFY",
        GenerateVerifyMac => "GENERATE_VERIFY_MAC",
        KeyAgreement => "KEY_AGREEMENT",
        EncapsulateDecapsulate => "ENCAPSULATE_DECAPSULATE",
    }
}

aws_enum! {
    /// Signature algorithms (AWS `SigningAlgorithmSpec`).
    SigningAlgorithm {
        RsassaPssSha256 => "RSASSA_PSS_SHA_256",
        RsassaPssSha384 => "RSASSA_PSS_SHA_384",
        RsassaPssSha512 => "RSASSA_PSS_SHA_512",
        RsassaPkcs1V15Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
        RsassaPkcs1V15Sha384 => "RSASSA_PKCS1_V1_5_SHA_384",
        RsassaPkcs1V15Sha512 => "RSASSA_PKCS1_V1_5_SHA_512",
        EcdsaSha256 => "ECDSA_SHA_256",
        EcdsaSha384 => "ECDSA_SHA_384",
        EcdsaSha512 => "ECDSA_SHA_512",
        Sm2Dsa => "SM2DSA",
        Ed25519Sha512 => "ED25519_SHA_512",
        Ed25519PhSha512 => "ED25519_PH_SHA_512",
        MlDsaShake256 => "ML_DSA_SHAKE_256",
    }
}

aws_enum! {
    /// Asymmetric encryption algorithms (AWS `EncryptionAlgorithmSpec`, asymmetric values).
    EncryptionAlgorithm {
        RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
        RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        Sm2Pke => "SM2PKE",
    }
}

aws_enum! {
    /// Key agreement algorithms (AWS `KeyAgreementAlgorithmSpec`).
    KeyAgreementAlgorithm {
        Ecdh => "ECDH",
    }
}

aws_enum! {
    /// Key encapsulation algorithms (AWS `EncapsulationAlgorithmSpec`).
    EncapsulationAlgorithm {
        MlKem => "ML_KEM",
    }
}

aws_enum! {
    /// MAC algorithms (AWS `MacAlgorithmSpec`).
    MacAlgorithm {
        HmacSha224 => "HMAC_SHA_224",
        HmacSha256 => "HMAC_SHA_256",
        HmacSha384 => "HMAC_SHA_384",
        HmacSha512 => "HMAC_SHA_512",
    }
}

aws_enum! {
    /// Whether a Sign/Verify message is the message itself, its digest, or (ML-DSA) the
    /// 64-byte message representative mu of FIPS 204 (AWS `MessageType`).
    MessageType {
        Raw => "RAW",
        Digest => "DIGEST",
        ExternalMu => "EXTERNAL_MU",
    }
}

use SigningAlgorithm as S;

const RSA_SIGNING: &[SigningAlgorithm] = &[
    S::RsassaPssSha256,
    S::RsassaPssSha384,
    S::RsassaPssSha512,
    S::RsassaPkcs1V15Sha256,
    S::RsassaPkcs1V15Sha384,
    S::RsassaPkcs1V15Sha512,
];
const RSA_ENCRYPTION: &[EncryptionAlgorithm] = &[
    EncryptionAlgorithm::RsaesOaepSha1,
    EncryptionAlgorithm::RsaesOaepSha256,
];

impl KeySpec {
    /// The signing algorithms AWS KMS allows for this spec.
    pub fn signing_algorithms(&self) -> &'static [SigningAlgorithm] {
        match self {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => RSA_SIGNING,
            KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => &[S::EcdsaSha256],
            KeySpec::EccNistP384 => &[S::EcdsaSha384],
            KeySpec::EccNistP521 => &[S::EcdsaSha512],
            KeySpec::Sm2 => &[S::Sm2Dsa],
            KeySpec::EccNistEdwards25519 => &[S::Ed25519Sha512, S::Ed25519PhSha512],
            KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => &[S::MlDsaShake256],
            KeySpec::Hmac224
            | KeySpec::Hmac256
            | KeySpec::Hmac384
            | KeySpec::Hmac512
            | KeySpec::MlKem512
            | KeySpec::MlKem768
            | KeySpec::MlKem1024 => &[],
        }
    }

    /// The encryption algorithms AWS KMS allows for this spec.
    pub fn encryption_algorithms(&self) -> &'static [EncryptionAlgorithm] {
        match self {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => RSA_ENCRYPTION,
            KeySpec::Sm2 => &[EncryptionAlgorithm::Sm2Pke],
            _ => &[],
        }
    }

    /// The MAC algorithms AWS KMS allows for this spec.
    pub fn mac_algorithms(&self) -> &'static [MacAlgorithm] {
        match self {
            KeySpec::Hmac224 => &[MacAlgorithm::HmacSha224],
            KeySpec::Hmac256 => &[MacAlgorithm::HmacSha256],
            KeySpec::Hmac384 => &[MacAlgorithm::HmacSha384],
            KeySpec::Hmac512 => &[MacAlgorithm::HmacSha512],
            _ => &[],
        }
    }

    /// The key agreement algorithms AWS KMS allows for this spec (KEY_AGREEMENT keys).
    pub fn key_agreement_algorithms(&self) -> &'static [KeyAgreementAlgorithm] {
        match self {
            KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 | KeySpec::Sm2 => {
                &[KeyAgreementAlgorithm::Ecdh]
            }
            _ => &[],
        }
    }

    /// The key encapsulation algorithms AWS KMS allows for this spec
    /// (ENCAPSULATE_DECAPSULATE keys).
    pub fn encapsulation_algorithms(&self) -> &'static [EncapsulationAlgorithm] {
        if self.is_ml_kem() {
            &[EncapsulationAlgorithm::MlKem]
        } else {
            &[]
        }
    }

    /// True for the ML-KEM specs (FIPS 203).
    pub fn is_ml_kem(&self) -> bool {
        matches!(
            self,
            KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024
        )
    }

    /// Whether AWS KMS allows a key of this spec to have `usage`.
    pub fn supports_usage(&self, usage: KeyUsage) -> bool {
        match usage {
            KeyUsage::EncryptDecrypt => !self.encryption_algorithms().is_empty(),
            KeyUsage::SignVerify => !self.signing_algorithms().is_empty(),
            KeyUsage::GenerateVerifyMac => !self.mac_algorithms().is_empty(),
            KeyUsage::KeyAgreement => !self.key_agreement_algorithms().is_empty(),
            KeyUsage::EncapsulateDecapsulate => !self.encapsulation_algorithms().is_empty(),
        }
    }

    /// True for the ML-DSA (FIPS 204) specs.
    pub fn is_ml_dsa(&self) -> bool {
        matches!(self, KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87)
    }

    /// True for RSA, ECC, SM2 and ML-DSA specs.
    pub fn is_asymmetric(&self) -> bool {
        !self.is_hmac()
    }

    /// True for the HMAC specs.
    pub fn is_hmac(&self) -> bool {
        matches!(
            self,
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512
        )
    }

    /// RSA modulus size in bits, for the RSA specs.
    pub fn rsa_bits(&self) -> Option<usize> {
        match self {
            KeySpec::Rsa2048 => Some(2048),
            KeySpec::Rsa3072 => Some(3072),
            KeySpec::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// HMAC key length in bytes (the digest size), for the HMAC specs.
    pub fn hmac_key_len(&self) -> Option<usize> {
        match self {
            KeySpec::Hmac224 => Some(28),
            KeySpec::Hmac256 => Some(32),
            KeySpec::Hmac384 => Some(48),
            KeySpec::Hmac512 => Some(64),
            _ => None,
        }
    }
}

impl MacAlgorithm {
    /// Length of the MAC in bytes.
    pub fn output_len(&self) -> usize {
        match self {
            MacAlgorithm::HmacSha224 => 28,
            MacAlgorithm::HmacSha256 => 32,
            MacAlgorithm::HmacSha384 => 48,
            MacAlgorithm::HmacSha512 => 64,
        }
    }
}

/// The hash functions behind the signing algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
    Sm3,
    /// ML-DSA's own SHAKE256; its DIGEST-like input is the 64-byte mu.
    Shake256,
}

impl SigningAlgorithm {
    pub(crate) fn hash(&self) -> Hash {
        match self {
            S::RsassaPssSha256 | S::RsassaPkcs1V15Sha256 | S::EcdsaSha256 => Hash::Sha256,
            S::RsassaPssSha384 | S::RsassaPkcs1V15Sha384 | S::EcdsaSha384 => Hash::Sha384,
            S::RsassaPssSha512
            | S::RsassaPkcs1V15Sha512
            | S::EcdsaSha512
            | S::Ed25519Sha512
            | S::Ed25519PhSha512 => Hash::Sha512,
            S::Sm2Dsa => Hash::Sm3,
            S::MlDsaShake256 => Hash::Shake256,
        }
    }
}

impl SigningAlgorithm {
    /// The one message type an algorithm takes, for those that take only one (AWS KMS:
    /// `ED25519_SHA_512` signs RAW messages, `ED25519_PH_SHA_512` DIGEST messages).
    pub fn required_message_type(&self) -> Option<MessageType> {
        match self.message_types() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// The message types AWS KMS accepts with this algorithm: RAW and DIGEST, except
    /// Ed25519 (one each) and ML-DSA (RAW and EXTERNAL_MU; no DIGEST).
    pub fn message_types(&self) -> &'static [MessageType] {
        match self {
            S::Ed25519Sha512 => &[MessageType::Raw],
            S::Ed25519PhSha512 => &[MessageType::Digest],
            S::MlDsaShake256 => &[MessageType::Raw, MessageType::ExternalMu],
            _ => &[MessageType::Raw, MessageType::Digest],
        }
    }
}

/// Digest length a DIGEST message must have for `alg`, in bytes (for ML-DSA, the
/// length of an EXTERNAL_MU message: mu is 64 bytes).
///
/// For SM2DSA the digest is SM3(Z || M), where Z is the SM2 identity hash of the
/// public key with the default distinguishing ID "1234567812345678".
pub fn digest_len(alg: SigningAlgorithm) -> usize {
    match alg.hash() {
        Hash::Sha256 | Hash::Sm3 => 32,
        Hash::Sha384 => 48,
        Hash::Sha512 | Hash::Shake256 => 64,
    }
}

/// The largest plaintext Encrypt accepts for `spec` and `alg`, as AWS KMS documents it;
/// `None` if `alg` does not belong to `spec`.
pub fn max_plaintext_len(spec: KeySpec, alg: EncryptionAlgorithm) -> Option<usize> {
    if !spec.encryption_algorithms().contains(&alg) {
        return None;
    }
    match alg {
        EncryptionAlgorithm::Sm2Pke => Some(1024),
        // OAEP: k - 2 * hLen - 2.
        EncryptionAlgorithm::RsaesOaepSha1 => spec.rsa_bits().map(|bits| bits / 8 - 2 * 20 - 2),
        EncryptionAlgorithm::RsaesOaepSha256 => spec.rsa_bits().map(|bits| bits / 8 - 2 * 32 - 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_names_round_trip() {
        for s in KeySpec::ALL {
            assert_eq!(KeySpec::from_aws(s.as_aws()), Some(*s));
        }
        for u in KeyUsage::ALL {
            assert_eq!(KeyUsage::from_aws(u.as_aws()), Some(*u));
        }
        for a in SigningAlgorithm::ALL {
            assert_eq!(SigningAlgorithm::from_aws(a.as_aws()), Some(*a));
        }
        for a in EncryptionAlgorithm::ALL {
            assert_eq!(EncryptionAlgorithm::from_aws(a.as_aws()), Some(*a));
        }
        for a in MacAlgorithm::ALL {
            assert_eq!(MacAlgorithm::from_aws(a.as_aws()), Some(*a));
        }
        for a in KeyAgreementAlgorithm::ALL {
            assert_eq!(KeyAgreementAlgorithm::from_aws(a.as_aws()), Some(*a));
        }
        for a in EncapsulationAlgorithm::ALL {
            assert_eq!(EncapsulationAlgorithm::from_aws(a.as_aws()), Some(*a));
        }
        for m in MessageType::ALL {
            assert_eq!(MessageType::from_aws(m.as_aws()), Some(*m));
        }
        assert_eq!(KeySpec::from_aws("rsa_2048"), None);
        assert_eq!(KeySpec::from_aws("SYMMETRIC_DEFAULT"), None);
        assert_eq!(
            SigningAlgorithm::RsassaPkcs1V15Sha384.as_aws(),
            "RSASSA_PKCS1_V1_5_SHA_384"
        );
        assert_eq!(KeySpec::EccSecgP256k1.to_string(), "ECC_SECG_P256K1");
    }

    #[test]
    fn usages_follow_aws() {
        use KeyUsage::*;
        for s in [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096] {
            assert!(s.supports_usage(EncryptDecrypt) && s.supports_usage(SignVerify));
            assert!(!s.supports_usage(GenerateVerifyMac));
        }
        for s in [
            KeySpec::EccNistP256,
            KeySpec::EccNistP384,
            KeySpec::EccNistP521,
            KeySpec::EccSecgP256k1,
        ] {
            assert!(s.supports_usage(SignVerify));
            assert!(!s.supports_usage(EncryptDecrypt) && !s.supports_usage(GenerateVerifyMac));
        }
        assert!(KeySpec::Sm2.supports_usage(SignVerify));
        assert!(KeySpec::Sm2.supports_usage(EncryptDecrypt));
        assert!(!KeySpec::Sm2.supports_usage(GenerateVerifyMac));
        for s in [
            KeySpec::EccNistP256,
            KeySpec::EccNistP384,
            KeySpec::EccNistP521,
            KeySpec::Sm2,
        ] {
            assert!(s.supports_usage(KeyAgreement), "{s}");
        }
        for s in [
            KeySpec::Rsa2048,
            KeySpec::EccSecgP256k1,
            KeySpec::EccNistEdwards25519,
            KeySpec::Hmac256,
        ] {
            assert!(!s.supports_usage(KeyAgreement), "{s}");
        }
        for s in [KeySpec::MlDsa44, KeySpec::MlDsa65, KeySpec::MlDsa87] {
            assert!(s.is_ml_dsa() && s.is_asymmetric());
            assert!(s.supports_usage(SignVerify), "{s}");
            assert!(!s.supports_usage(EncryptDecrypt) && !s.supports_usage(GenerateVerifyMac));
            assert!(!s.supports_usage(KeyAgreement));
            assert_eq!(s.signing_algorithms(), &[SigningAlgorithm::MlDsaShake256]);
        }
        assert_eq!(
            SigningAlgorithm::MlDsaShake256.message_types(),
            &[MessageType::Raw, MessageType::ExternalMu]
        );
        assert_eq!(
            SigningAlgorithm::MlDsaShake256.required_message_type(),
            None
        );
        assert_eq!(
            MessageType::from_aws("EXTERNAL_MU"),
            Some(MessageType::ExternalMu)
        );
        let ed = KeySpec::EccNistEdwards25519;
        assert!(ed.supports_usage(SignVerify));
        assert!(!ed.supports_usage(EncryptDecrypt) && !ed.supports_usage(GenerateVerifyMac));
        assert_eq!(
            ed.signing_algorithms(),
            &[
                SigningAlgorithm::Ed25519Sha512,
                SigningAlgorithm::Ed25519PhSha512
            ]
        );
        for s in [
            KeySpec::Hmac224,
            KeySpec::Hmac256,
            KeySpec::Hmac384,
            KeySpec::Hmac512,
        ] {
            assert!(s.supports_usage(GenerateVerifyMac));
            assert!(!s.supports_usage(SignVerify) && !s.supports_usage(EncryptDecrypt));
        }
        // ML-KEM keys only encapsulate and decapsulate; nothing else does.
        for s in KeySpec::ALL {
            let kem = matches!(
                s,
                KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024
            );
            assert_eq!(s.is_ml_kem(), kem, "{s}");
            assert_eq!(s.supports_usage(EncapsulateDecapsulate), kem, "{s}");
            if kem {
                assert_eq!(
                    s.encapsulation_algorithms(),
                    &[EncapsulationAlgorithm::MlKem]
                );
                for u in [SignVerify, EncryptDecrypt, GenerateVerifyMac, KeyAgreement] {
                    assert!(!s.supports_usage(u), "{s} {u}");
                }
            }
        }
    }

    #[test]
    fn documented_plaintext_limits() {
        use EncryptionAlgorithm::*;
        let cases = [
            (KeySpec::Rsa2048, RsaesOaepSha1, 214),
            (KeySpec::Rsa2048, RsaesOaepSha256, 190),
            (KeySpec::Rsa3072, RsaesOaepSha1, 342),
            (KeySpec::Rsa3072, RsaesOaepSha256, 318),
            (KeySpec::Rsa4096, RsaesOaepSha1, 470),
            (KeySpec::Rsa4096, RsaesOaepSha256, 446),
            (KeySpec::Sm2, Sm2Pke, 1024),
        ];
        for (spec, alg, max) in cases {
            assert_eq!(max_plaintext_len(spec, alg), Some(max), "{spec} {alg}");
        }
        assert_eq!(max_plaintext_len(KeySpec::Rsa2048, Sm2Pke), None);
        assert_eq!(max_plaintext_len(KeySpec::Sm2, RsaesOaepSha1), None);
        assert_eq!(max_plaintext_len(KeySpec::EccNistP256, RsaesOaepSha1), None);
    }

    #[test]
    fn digest_lengths() {
        assert_eq!(digest_len(SigningAlgorithm::RsassaPssSha256), 32);
        assert_eq!(digest_len(SigningAlgorithm::RsassaPkcs1V15Sha384), 48);
        assert_eq!(digest_len(SigningAlgorithm::EcdsaSha512), 64);
        assert_eq!(digest_len(SigningAlgorithm::Sm2Dsa), 32);
        assert_eq!(digest_len(SigningAlgorithm::Ed25519PhSha512), 64);
    }
}
