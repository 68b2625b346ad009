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
    /// The type of key material (AWS `KeySpec`); fixed at creation.
    ///
    /// This is the one model of a key spec: the replicated state stores it
    /// (postcard writes the variant's index, so the order below is the stored
    /// order: new variants go last), and the API parses and prints it.
    #[derive(serde::Serialize, serde::Deserialize)]
    KeySpec {
        SymmetricDefault => "SYMMETRIC_DEFAULT",
        Rsa2048 => "RSA_2048",
        Rsa3072 => "RSA_3072",
        Rsa4096 => "RSA_4096",
        EccNistP256 => "ECC_NIST_P256",
        EccNistP384 => "ECC_NIST_P384",
        EccNistP521 => "ECC_NIST_P521",
        EccSecgP256k1 => "ECC_SECG_P256K1",
        Sm2 => "SM2",
        Hmac224 => "HMAC_224",
        Hmac256 => "HMAC_256",
        Hmac384 => "HMAC_384",
        Hmac512 => "HMAC_512",
        EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
        MlDsa44 => "ML_DSA_44",
        MlDsa65 => "ML_DSA_65",
        MlDsa87 => "ML_DSA_87",
        MlKem512 => "ML_KEM_512",
        MlKem768 => "ML_KEM_768",
        MlKem1024 => "ML_KEM_1024",
    }
}

aws_enum! {
    /// What a key may be used for (AWS `KeyUsage`); fixed at creation. Stored
    /// by the replicated state like [`KeySpec`]: new variants go last.
    #[derive(serde::Serialize, serde::Deserialize)]
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
            KeySpec::SymmetricDefault
            | KeySpec::Hmac224
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

    /// The usages AWS KMS allows a key of this spec to be created for.
    pub fn usages(&self) -> &'static [KeyUsage] {
        use KeySpec::*;
        match self {
            SymmetricDefault => &[KeyUsage::EncryptDecrypt],
            Rsa2048 | Rsa3072 | Rsa4096 => &[KeyUsage::EncryptDecrypt, KeyUsage::SignVerify],
            Sm2 => &[
                KeyUsage::EncryptDecrypt,
                KeyUsage::SignVerify,
                KeyUsage::KeyAgreement,
            ],
            EccNistP256 | EccNistP384 | EccNistP521 => {
                &[KeyUsage::SignVerify, KeyUsage::KeyAgreement]
            }
            EccSecgP256k1 | EccNistEdwards25519 | MlDsa44 | MlDsa65 | MlDsa87 => {
                &[KeyUsage::SignVerify]
            }
            Hmac224 | Hmac256 | Hmac384 | Hmac512 => &[KeyUsage::GenerateVerifyMac],
            MlKem512 | MlKem768 | MlKem1024 => &[KeyUsage::EncapsulateDecapsulate],
        }
    }

    /// Whether AWS KMS allows a key of this spec to have `usage`.
    pub fn allows(&self, usage: KeyUsage) -> bool {
        self.usages().contains(&usage)
    }

    /// Whether automatic and on-demand rotation apply (AWS: symmetric
    /// encryption keys).
    pub fn rotatable(&self) -> bool {
        *self == KeySpec::SymmetricDefault
    }

    /// The algorithms DescribeKey and GetPublicKey list for a key of this
    /// spec created for `usage`: the response field and its AWS names; `None`
    /// when the spec has none for that usage.
    pub fn listed_algorithms(&self, usage: KeyUsage) -> Option<(&'static str, Vec<&'static str>)> {
        fn names<T: Copy>(all: &[T], name: fn(&T) -> &'static str) -> Vec<&'static str> {
            all.iter().map(name).collect()
        }
        let names = match usage {
            KeyUsage::EncryptDecrypt if *self == KeySpec::SymmetricDefault => {
                ("EncryptionAlgorithms", vec!["SYMMETRIC_DEFAULT"])
            }
            KeyUsage::EncryptDecrypt => (
                "EncryptionAlgorithms",
                names(self.encryption_algorithms(), EncryptionAlgorithm::as_aws),
            ),
            KeyUsage::SignVerify => (
                "SigningAlgorithms",
                names(self.signing_algorithms(), SigningAlgorithm::as_aws),
            ),
            KeyUsage::GenerateVerifyMac => (
                "MacAlgorithms",
                names(self.mac_algorithms(), MacAlgorithm::as_aws),
            ),
            KeyUsage::KeyAgreement => (
                "KeyAgreementAlgorithms",
                names(
                    self.key_agreement_algorithms(),
                    KeyAgreementAlgorithm::as_aws,
                ),
            ),
            KeyUsage::EncapsulateDecapsulate => (
                "EncapsulationAlgorithms",
                names(
                    self.encapsulation_algorithms(),
                    EncapsulationAlgorithm::as_aws,
                ),
            ),
        };
        (!names.1.is_empty()).then_some(names)
    }

    /// True for the ML-DSA (FIPS 204) specs.
    pub fn is_ml_dsa(&self) -> bool {
        matches!(self, KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87)
    }

    /// True for the RSA, ECC, SM2, Ed25519, ML-DSA and ML-KEM specs: those
    /// with a public key.
    pub fn is_asymmetric(&self) -> bool {
        !self.is_hmac() && *self != KeySpec::SymmetricDefault
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
        assert_eq!(
            KeySpec::from_aws("SYMMETRIC_DEFAULT"),
            Some(KeySpec::SymmetricDefault)
        );
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
            assert!(s.allows(EncryptDecrypt) && s.allows(SignVerify));
            assert!(!s.allows(GenerateVerifyMac));
        }
        for s in [
            KeySpec::EccNistP256,
            KeySpec::EccNistP384,
            KeySpec::EccNistP521,
            KeySpec::EccSecgP256k1,
        ] {
            assert!(s.allows(SignVerify));
            assert!(!s.allows(EncryptDecrypt) && !s.allows(GenerateVerifyMac));
        }
        assert!(KeySpec::Sm2.allows(SignVerify));
        assert!(KeySpec::Sm2.allows(EncryptDecrypt));
        assert!(!KeySpec::Sm2.allows(GenerateVerifyMac));
        for s in [
            KeySpec::EccNistP256,
            KeySpec::EccNistP384,
            KeySpec::EccNistP521,
            KeySpec::Sm2,
        ] {
            assert!(s.allows(KeyAgreement), "{s}");
        }
        for s in [
            KeySpec::Rsa2048,
            KeySpec::EccSecgP256k1,
            KeySpec::EccNistEdwards25519,
            KeySpec::Hmac256,
        ] {
            assert!(!s.allows(KeyAgreement), "{s}");
        }
        for s in [KeySpec::MlDsa44, KeySpec::MlDsa65, KeySpec::MlDsa87] {
            assert!(s.is_ml_dsa() && s.is_asymmetric());
            assert!(s.allows(SignVerify), "{s}");
            assert!(!s.allows(EncryptDecrypt) && !s.allows(GenerateVerifyMac));
            assert!(!s.allows(KeyAgreement));
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
        assert!(ed.allows(SignVerify));
        assert!(!ed.allows(EncryptDecrypt) && !ed.allows(GenerateVerifyMac));
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
            assert!(s.allows(GenerateVerifyMac));
            assert!(!s.allows(SignVerify) && !s.allows(EncryptDecrypt));
        }
        // ML-KEM keys only encapsulate and decapsulate; nothing else does.
        for s in KeySpec::ALL {
            let kem = matches!(
                s,
                KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024
            );
            assert_eq!(s.is_ml_kem(), kem, "{s}");
            assert_eq!(s.allows(EncapsulateDecapsulate), kem, "{s}");
            if kem {
                assert_eq!(
                    s.encapsulation_algorithms(),
                    &[EncapsulationAlgorithm::MlKem]
                );
                for u in [SignVerify, EncryptDecrypt, GenerateVerifyMac, KeyAgreement] {
                    assert!(!s.allows(u), "{s} {u}");
                }
            }
        }
    }

    /// The state stores specs and usages by variant index (postcard): an
    /// index, once given, keeps its meaning.
    #[test]
    fn stored_order_is_fixed() {
        let specs: Vec<(u8, &str)> = KeySpec::ALL
            .iter()
            .map(|s| (*s as u8, s.as_aws()))
            .collect();
        let expected = [
            "SYMMETRIC_DEFAULT",
            "RSA_2048",
            "RSA_3072",
            "RSA_4096",
            "ECC_NIST_P256",
            "ECC_NIST_P384",
            "ECC_NIST_P521",
            "ECC_SECG_P256K1",
            "SM2",
            "HMAC_224",
            "HMAC_256",
            "HMAC_384",
            "HMAC_512",
            "ECC_NIST_EDWARDS25519",
            "ML_DSA_44",
            "ML_DSA_65",
            "ML_DSA_87",
            "ML_KEM_512",
            "ML_KEM_768",
            "ML_KEM_1024",
        ];
        let expected: Vec<(u8, &str)> = (0..).zip(expected).collect();
        assert_eq!(specs, expected);
        let usages: Vec<(u8, &str)> = KeyUsage::ALL
            .iter()
            .map(|u| (*u as u8, u.as_aws()))
            .collect();
        let expected = [
            "ENCRYPT_DECRYPT",
            "SIGN_VERIFY",
            "GENERATE_VERIFY_MAC",
            "KEY_AGREEMENT",
            "ENCAPSULATE_DECAPSULATE",
        ];
        let expected: Vec<(u8, &str)> = (0..).zip(expected).collect();
        assert_eq!(usages, expected);
    }

    /// The usage table agrees with the algorithm lists: a spec allows a
    /// usage exactly when it has algorithms for it.
    #[test]
    fn usages_match_the_algorithms() {
        for spec in KeySpec::ALL {
            assert!(!spec.usages().is_empty(), "{spec}");
            for usage in KeyUsage::ALL {
                assert_eq!(
                    spec.allows(*usage),
                    spec.listed_algorithms(*usage).is_some(),
                    "{spec} {usage}"
                );
            }
        }
        let s = KeySpec::SymmetricDefault;
        assert!(!s.is_asymmetric() && !s.is_hmac() && s.rotatable());
        for spec in &KeySpec::ALL[1..] {
            assert!(!spec.rotatable(), "{spec}");
        }
    }

    /// What DescribeKey lists, by field, for a few specs and usages.
    #[test]
    fn listed_algorithms_follow_aws() {
        let listed = |spec: KeySpec, usage| spec.listed_algorithms(usage);
        assert_eq!(
            listed(KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt),
            Some(("EncryptionAlgorithms", vec!["SYMMETRIC_DEFAULT"]))
        );
        assert_eq!(
            listed(KeySpec::Sm2, KeyUsage::EncryptDecrypt),
            Some(("EncryptionAlgorithms", vec!["SM2PKE"]))
        );
        assert_eq!(listed(KeySpec::Rsa2048, KeyUsage::GenerateVerifyMac), None);
        assert_eq!(
            listed(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt),
            Some((
                "EncryptionAlgorithms",
                vec!["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
            ))
        );
        for spec in [
            KeySpec::EccNistP256,
            KeySpec::EccNistP384,
            KeySpec::EccNistP521,
            KeySpec::Sm2,
        ] {
            assert_eq!(
                listed(spec, KeyUsage::KeyAgreement),
                Some(("KeyAgreementAlgorithms", vec!["ECDH"]))
            );
        }
        assert_eq!(
            listed(KeySpec::EccNistEdwards25519, KeyUsage::SignVerify),
            Some((
                "SigningAlgorithms",
                vec!["ED25519_SHA_512", "ED25519_PH_SHA_512"]
            ))
        );
        assert_eq!(
            listed(KeySpec::MlDsa65, KeyUsage::SignVerify),
            Some(("SigningAlgorithms", vec!["ML_DSA_SHAKE_256"]))
        );
        assert_eq!(
            listed(KeySpec::MlKem768, KeyUsage::EncapsulateDecapsulate),
            Some(("EncapsulationAlgorithms", vec!["ML_KEM"]))
        );
        assert_eq!(
            listed(KeySpec::Hmac384, KeyUsage::GenerateVerifyMac),
            Some(("MacAlgorithms", vec!["HMAC_SHA_384"]))
        );
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
