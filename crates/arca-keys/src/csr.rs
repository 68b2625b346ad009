//! PKCS#10 certificate signing requests (RFC 2986) for keys whose private half
//! never leaves the key actor.
//!
//! The request is built in three steps so that signing can happen elsewhere:
//! [`CsrInput::parse`] checks the subject (an RFC 4514 string) and the subject
//! alternative names; [`CsrInput::request_info`] encodes the
//! `CertificationRequestInfo` around a SubjectPublicKeyInfo; [`signing_digest`]
//! gives the DIGEST message Sign takes for it; [`assemble_pem`] wraps the info
//! and the signature into the PEM `CERTIFICATE REQUEST`.

use std::net::IpAddr;

use der::asn1::{Any, BitString, Ia5String, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode, EncodePem};
use x509_cert::attr::{Attribute, AttributeTypeAndValue};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::spec::Hash;
use crate::{KeyError, KeySpec, MessageType, SigningAlgorithm};

/// Longest `Subject` string accepted.
pub const MAX_SUBJECT_LEN: usize = 1024;
/// Most subject alternative names in one request, all kinds together.
pub const MAX_SANS: usize = 100;
/// Longest single subject alternative name.
pub const MAX_SAN_LEN: usize = 255;

/// Why a CSR cannot be built. `field` names the request field at fault
/// (`Subject`, `SubjectAlternativeNames.Dns[0]`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The DER encoding failed on checked input (a bug, not bad input).
    #[error("the certificate signing request could not be encoded: {0}")]
    Encoding(String),
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CsrError {
    CsrError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn enc(e: der::Error) -> CsrError {
    CsrError::Encoding(e.to_string())
}

/// The subject alternative names a request asks for, as the API names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SanInput {
    pub dns: Vec<String>,
    pub email: Vec<String>,
    pub uri: Vec<String>,
    pub ip: Vec<String>,
}

/// A checked subject and its alternative names.
#[derive(Debug, Clone)]
pub struct CsrInput {
    subject: Name,
    sans: Vec<GeneralName>,
}

/// How an attribute's value is encoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum StringKind {
    Utf8,
    Printable,
    Ia5,
    /// Two letters (ISO 3166), as a PrintableString.
    Country,
}

/// The attribute types a subject may name: (names, OID, encoding, upper bound in characters).
const ATTRIBUTES: &[(&[&str], &str, StringKind, usize)] = &[
    (&["CN", "commonName"], "2.5.4.3", StringKind::Utf8, 64),
    (&["C", "countryName"], "2.5.4.6", StringKind::Country, 2),
    (&["L", "localityName"], "2.5.4.7", StringKind::Utf8, 128),
    (
        &["ST", "stateOrProvinceName"],
        "2.5.4.8",
        StringKind::Utf8,
        128,
    ),
    (
        &["STREET", "streetAddress"],
        "2.5.4.9",
        StringKind::Utf8,
        128,
    ),
    (&["O", "organizationName"], "2.5.4.10", StringKind::Utf8, 64),
    (
        &["OU", "organizationalUnitName"],
        "2.5.4.11",
        StringKind::Utf8,
        64,
    ),
    (&["serialNumber"], "2.5.4.5", StringKind::Printable, 64),
    (&["title"], "2.5.4.12", StringKind::Utf8, 64),
    (&["givenName", "GN"], "2.5.4.42", StringKind::Utf8, 64),
    (&["SN", "surname"], "2.5.4.4", StringKind::Utf8, 64),
    (
        &["DC", "domainComponent"],
        "0.9.2342.19200300.100.1.25",
        StringKind::Ia5,
        63,
    ),
    (
        &["UID", "userId"],
        "0.9.2342.19200300.100.1.1",
        StringKind::Utf8,
        64,
    ),
    (
        &["emailAddress", "E"],
        "1.2.840.113549.1.9.1",
        StringKind::Ia5,
        255,
    ),
];

/// The names of every attribute a subject may use, for error messages.
fn attribute_names() -> String {
    ATTRIBUTES
        .iter()
        .map(|(names, ..)| names[0])
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_printable(c: char) -> bool {
    c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c)
}

/// One attribute of the subject, parsed but not yet encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ava {
    /// Index into [`ATTRIBUTES`].
    attr: usize,
    value: String,
}

/// Parses an RFC 4514 string into RDNs, most specific first (as written).
/// Spaces around `,`, `+` and `=` are ignored; a value's own leading or
/// trailing space must be escaped (`\ `). Hex-encoded values (`#...`) and
/// dotted OIDs are not accepted.
fn parse_rfc4514(s: &str) -> Result<Vec<Vec<Ava>>, String> {
    if s.trim().is_empty() {
        return Err("must name at least one attribute, such as CN=example.com".into());
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut rdns = Vec::new();
    let mut rdn = Vec::new();
    loop {
        // The attribute type.
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && !matches!(bytes[i], b'=' | b',' | b'+') {
            i += 1;
        }
        let name = s[start..i].trim_end_matches(' ');
        if i >= bytes.len() || bytes[i] != b'=' {
            return Err(if name.is_empty() {
                "an attribute is empty (expected TYPE=value)".into()
            } else {
                format!("'{name}' has no value (expected {name}=value)")
            });
        }
        i += 1; // '='
        if name.is_empty() {
            return Err("an attribute has no type (expected TYPE=value)".into());
        }
        let attr = ATTRIBUTES
            .iter()
            .position(|(names, ..)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .ok_or_else(|| {
                format!(
                    "unknown attribute type '{name}' (known: {})",
                    attribute_names()
                )
            })?;
        // The value, up to an unescaped ',' or '+'.
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'#' {
            return Err(format!(
                "the value of {name} is hex-encoded (#...), which is not supported"
            ));
        }
        let mut value: Vec<u8> = Vec::new();
        // Length of `value` up to its last escaped byte: trailing spaces
        // after it were not escaped and are dropped.
        let mut kept = 0;
        while i < bytes.len() && !matches!(bytes[i], b',' | b'+') {
            match bytes[i] {
                b'\\' => {
                    let next = bytes
                        .get(i + 1)
                        .ok_or_else(|| format!("the value of {name} ends with a lone '\\'"))?;
                    if b",+\"\\<>;=# ".contains(next) {
                        value.push(*next);
                        i += 2;
                    } else {
                        let hex = bytes
                            .get(i + 1..i + 3)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                            .ok_or_else(|| {
                                format!("the value of {name} has an invalid escape sequence")
                            })?;
                        value.push(hex);
                        i += 3;
                    }
                    kept = value.len();
                }
                c @ (b'"' | b';' | b'<' | b'>') => {
                    return Err(format!(
                        "the value of {name} contains '{}', which must be escaped as '\\{}'",
                        c as char, c as char
                    ));
                }
                b' ' => {
                    value.push(b' ');
                    i += 1;
                }
                c => {
                    value.push(c);
                    i += 1;
                    kept = value.len();
                }
            }
        }
        value.truncate(kept);
        let value = String::from_utf8(value)
            .map_err(|_| format!("the value of {name} is not valid UTF-8"))?;
        if value.is_empty() {
            return Err(format!("the value of {name} is empty"));
        }
        rdn.push(Ava { attr, value });
        match bytes.get(i) {
            Some(b'+') => i += 1,
            Some(_) => {
                // ','
                i += 1;
                rdns.push(std::mem::take(&mut rdn));
            }
            None => {
                rdns.push(rdn);
                return Ok(rdns);
            }
        }
    }
}

/// Checks a value against its attribute's string type and bound, and encodes it.
fn encode_value(ava: &Ava) -> Result<AttributeTypeAndValue, String> {
    let (names, oid, kind, max) = ATTRIBUTES[ava.attr];
    let name = names[0];
    let v = ava.value.as_str();
    let chars = v.chars().count();
    if kind == StringKind::Country && (chars != 2 || !v.chars().all(|c| c.is_ascii_alphabetic())) {
        return Err(format!(
            "the value of {name} must be a two-letter country code, not '{v}'"
        ));
    }
    if chars > max {
        return Err(format!(
            "the value of {name} is {chars} characters long, at most {max} are allowed"
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("the value of {name} contains a control character"));
    }
    let value = match kind {
        StringKind::Utf8 => {
            Any::encode_from(&der::asn1::Utf8StringRef::new(v).map_err(|e| e.to_string())?)
        }
        StringKind::Country => {
            Any::encode_from(&der::asn1::PrintableStringRef::new(v).map_err(|e| e.to_string())?)
        }
        StringKind::Printable => {
            if !v.chars().all(is_printable) {
                return Err(format!(
                    "the value of {name} may contain only letters, digits, spaces and '()+,-./:=?"
                ));
            }
            Any::encode_from(&der::asn1::PrintableStringRef::new(v).map_err(|e| e.to_string())?)
        }
        StringKind::Ia5 => {
            if !v.is_ascii() {
                return Err(format!("the value of {name} must be ASCII"));
            }
            Any::encode_from(&der::asn1::Ia5StringRef::new(v).map_err(|e| e.to_string())?)
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(AttributeTypeAndValue {
        oid: ObjectIdentifier::new_unwrap(oid),
        value,
    })
}

/// Parses and encodes an RFC 4514 subject. DER lists the RDNs from the most
/// general to the most specific, the reverse of the string.
fn parse_subject(s: &str) -> Result<Name, CsrError> {
    const FIELD: &str = "Subject";
    if s.len() > MAX_SUBJECT_LEN {
        return Err(invalid(
            FIELD,
            format!(
                "is {} bytes long, at most {MAX_SUBJECT_LEN} are allowed",
                s.len()
            ),
        ));
    }
    let rdns = parse_rfc4514(s).map_err(|r| invalid(FIELD, r))?;
    let mut seq = Vec::with_capacity(rdns.len());
    for rdn in rdns.iter().rev() {
        // X.501: the attributes of one RDN have distinct types.
        for (i, a) in rdn.iter().enumerate() {
            if rdn[..i].iter().any(|b| b.attr == a.attr) {
                return Err(invalid(
                    FIELD,
                    format!("a multi-valued RDN names {} twice", ATTRIBUTES[a.attr].0[0]),
                ));
            }
        }
        let avas = rdn
            .iter()
            .map(encode_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|r| invalid(FIELD, r))?;
        let set = SetOfVec::try_from(avas).map_err(enc)?;
        seq.push(RelativeDistinguishedName::from(set));
    }
    let der = RdnSequence::from(seq).to_der().map_err(enc)?;
    Name::from_der(&der).map_err(enc)
}

/// A DNS name: labels of letters, digits and hyphens (not at either end),
/// at most 63 each and 253 in all; `*.` may start it.
fn valid_dns(name: &str) -> bool {
    let host = name.strip_prefix("*.").unwrap_or(name);
    !host.is_empty()
        && name.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn valid_email(addr: &str) -> bool {
    match addr.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"@()<>[]\\,;:\"".contains(&b))
                && !domain.starts_with("*.")
                && valid_dns(domain)
        }
        None => false,
    }
}

/// An absolute URI: a scheme, ':' and printable ASCII without spaces.
fn valid_uri(uri: &str) -> bool {
    match uri.split_once(':') {
        Some((scheme, rest)) => {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && !rest.is_empty()
                && rest.bytes().all(|b| b.is_ascii_graphic())
        }
        None => false,
    }
}

fn parse_sans(sans: &SanInput) -> Result<Vec<GeneralName>, CsrError> {
    let total = sans.dns.len() + sans.email.len() + sans.uri.len() + sans.ip.len();
    if total > MAX_SANS {
        return Err(invalid(
            "SubjectAlternativeNames",
            format!("names {total} names, at most {MAX_SANS} are allowed"),
        ));
    }
    let mut out = Vec::with_capacity(total);
    let kinds: [(&str, &Vec<String>); 4] = [
        ("Dns", &sans.dns),
        ("Email", &sans.email),
        ("Uri", &sans.uri),
        ("Ip", &sans.ip),
    ];
    for (kind, values) in kinds {
        for (i, v) in values.iter().enumerate() {
            let field = format!("SubjectAlternativeNames.{kind}[{i}]");
            if v.is_empty() {
                return Err(invalid(field, "is empty"));
            }
            if v.len() > MAX_SAN_LEN {
                return Err(invalid(
                    field,
                    format!(
                        "is {} bytes long, at most {MAX_SAN_LEN} are allowed",
                        v.len()
                    ),
                ));
            }
            let ia5 = |v: &str| Ia5String::new(v).map_err(|_| invalid(&field, "must be ASCII"));
            let name = match kind {
                "Dns" if valid_dns(v) => GeneralName::DnsName(ia5(v)?),
                "Dns" => return Err(invalid(field, format!("'{v}' is not a valid DNS name"))),
                "Email" if valid_email(v) => GeneralName::Rfc822Name(ia5(v)?),
                "Email" => {
                    return Err(invalid(
                        field,
                        format!("'{v}' is not a valid email address"),
                    ))
                }
                "Uri" if valid_uri(v) => GeneralName::UniformResourceIdentifier(ia5(v)?),
                "Uri" => return Err(invalid(field, format!("'{v}' is not an absolute URI"))),
                _ => {
                    let ip: IpAddr = v.parse().map_err(|_| {
                        invalid(&field, format!("'{v}' is not an IPv4 or IPv6 address"))
                    })?;
                    let octets = match ip {
                        IpAddr::V4(a) => a.octets().to_vec(),
                        IpAddr::V6(a) => a.octets().to_vec(),
                    };
                    GeneralName::IpAddress(OctetString::new(octets).map_err(enc)?)
                }
            };
            out.push(name);
        }
    }
    Ok(out)
}

impl CsrInput {
    /// Checks a subject and its alternative names. Errors name the field.
    pub fn parse(subject: &str, sans: &SanInput) -> Result<CsrInput, CsrError> {
        Ok(CsrInput {
            subject: parse_subject(subject)?,
            sans: parse_sans(sans)?,
        })
    }

    /// The subject in DER.
    pub fn subject_der(&self) -> Result<Vec<u8>, CsrError> {
        self.subject.to_der().map_err(enc)
    }

    /// The DER `CertificationRequestInfo` for a public key (SubjectPublicKeyInfo
    /// DER), with the alternative names as a requested extension.
    pub fn request_info(&self, spki_der: &[u8]) -> Result<Vec<u8>, CsrError> {
        let public_key = SubjectPublicKeyInfoOwned::from_der(spki_der).map_err(enc)?;
        let mut attributes = SetOfVec::new();
        if !self.sans.is_empty() {
            let san = SubjectAltName(self.sans.clone()).to_der().map_err(enc)?;
            let ext = Extension {
                extn_id: ObjectIdentifier::new_unwrap("2.5.29.17"),
                critical: false,
                extn_value: OctetString::new(san).map_err(enc)?,
            };
            let attr = Attribute::try_from(ExtensionReq(vec![ext])).map_err(enc)?;
            attributes.insert(attr).map_err(enc)?;
        }
        CertReqInfo {
            version: Version::V1,
            subject: self.subject.clone(),
            public_key,
            attributes,
        }
        .to_der()
        .map_err(enc)
    }
}

/// The DIGEST message Sign takes to sign `info` with `alg` (for SM2DSA,
/// SM3(Z || info) with the default distinguishing ID of the key `spki_der`).
pub fn signing_digest(
    spec: KeySpec,
    alg: SigningAlgorithm,
    spki_der: &[u8],
    info: &[u8],
) -> Result<Vec<u8>, KeyError> {
    use aws_lc_rs::digest;
    if !spec.signing_algorithms().contains(&alg) {
        return Err(KeyError::UnsupportedAlgorithm {
            spec,
            alg: alg.as_aws(),
        });
    }
    let algorithm = match alg.hash() {
        Hash::Sha256 => &digest::SHA256,
        Hash::Sha384 => &digest::SHA384,
        Hash::Sha512 => &digest::SHA512,
        Hash::Sm3 => return Ok(crate::sm2_digest(spki_der, info)?.to_vec()),
        // ML-DSA takes no DIGEST; `signing_input` gives its EXTERNAL_MU.
        Hash::Shake256 => {
            return Err(KeyError::UnsupportedAlgorithm {
                spec,
                alg: alg.as_aws(),
            })
        }
    };
    if alg.required_message_type() == Some(MessageType::Raw) {
        // PureEdDSA signs the message itself, never a digest.
        return Err(KeyError::UnsupportedAlgorithm {
            spec,
            alg: alg.as_aws(),
        });
    }
    Ok(digest::digest(algorithm, info).as_ref().to_vec())
}

/// What Sign takes to sign `info` with `alg`: the DIGEST of [`signing_digest`], or,
/// for Ed25519 (PureEdDSA, RFC 8410), the request info itself as a RAW message, or,
/// for ML-DSA (pure ML-DSA, empty context, RFC 9881), the EXTERNAL_MU mu of the
/// request info under the key `spki_der` (so the 4096-byte RAW limit does not apply).
/// `ED25519_PH_SHA_512` has no X.509 signature algorithm and is refused.
pub fn signing_input(
    spec: KeySpec,
    alg: SigningAlgorithm,
    spki_der: &[u8],
    info: &[u8],
) -> Result<(Vec<u8>, MessageType), KeyError> {
    match alg {
        SigningAlgorithm::Ed25519Sha512 if spec.signing_algorithms().contains(&alg) => {
            Ok((info.to_vec(), MessageType::Raw))
        }
        SigningAlgorithm::Ed25519Sha512 | SigningAlgorithm::Ed25519PhSha512 => {
            Err(KeyError::UnsupportedAlgorithm {
                spec,
                alg: alg.as_aws(),
            })
        }
        SigningAlgorithm::MlDsaShake256 if spec.signing_algorithms().contains(&alg) => {
            let mu = crate::PublicKey::from_spki_der(spec, spki_der)?.ml_dsa_mu(info)?;
            Ok((mu.to_vec(), MessageType::ExternalMu))
        }
        SigningAlgorithm::MlDsaShake256 => Err(KeyError::UnsupportedAlgorithm {
            spec,
            alg: alg.as_aws(),
        }),
        _ => Ok((
            signing_digest(spec, alg, spki_der, info)?,
            MessageType::Digest,
        )),
    }
}

/// DER of an AlgorithmIdentifier of a hash, with NULL parameters.
fn hash_alg_id(hash: Hash) -> Vec<u8> {
    let last = match hash {
        Hash::Sha256 => 1,
        Hash::Sha384 => 2,
        Hash::Sha512 => 3,
        Hash::Sm3 | Hash::Shake256 => 0, // not used with PSS
    };
    vec![
        0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, last, 0x05, 0x00,
    ]
}

/// RSASSA-PSS-params (RFC 4055) for `hash`: MGF1 with the same hash, salt as
/// long as the digest (as Sign uses), trailer field 1 (the default, left out).
fn pss_params(hash: Hash, salt: u8) -> Vec<u8> {
    let h = hash_alg_id(hash);
    let mut mgf = vec![
        0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08,
    ];
    mgf.extend_from_slice(&h);
    let mut out = vec![0x30, 0x34, 0xa0, 0x0f];
    out.extend_from_slice(&h);
    out.extend_from_slice(&[0xa1, 0x1c]);
    out.extend_from_slice(&mgf);
    out.extend_from_slice(&[0xa2, 0x03, 0x02, 0x01, salt]);
    out
}

/// The X.509 signature AlgorithmIdentifier of a signing algorithm with a key of `spec`.
fn signature_algorithm(
    spec: KeySpec,
    alg: SigningAlgorithm,
) -> Result<AlgorithmIdentifierOwned, CsrError> {
    use SigningAlgorithm as S;
    let null = || Any::from_der(&[0x05, 0x00]).map(Some).map_err(enc);
    let (oid, parameters) = match alg {
        S::RsassaPkcs1V15Sha256 => ("1.2.840.113549.1.1.11", null()?),
        S::RsassaPkcs1V15Sha384 => ("1.2.840.113549.1.1.12", null()?),
        S::RsassaPkcs1V15Sha512 => ("1.2.840.113549.1.1.13", null()?),
        S::RsassaPssSha256 | S::RsassaPssSha384 | S::RsassaPssSha512 => {
            let salt = crate::digest_len(alg) as u8;
            let params = Any::from_der(&pss_params(alg.hash(), salt)).map_err(enc)?;
            ("1.2.840.113549.1.1.10", Some(params))
        }
        S::EcdsaSha256 => ("1.2.840.10045.4.3.2", None),
        S::EcdsaSha384 => ("1.2.840.10045.4.3.3", None),
        S::EcdsaSha512 => ("1.2.840.10045.4.3.4", None),
        // SM2 signature with SM3 (GM/T 0006).
        S::Sm2Dsa => ("1.2.156.10197.1.501", None),
        // id-Ed25519 (RFC 8410): PureEdDSA, absent parameters.
        S::Ed25519Sha512 => ("1.3.101.112", None),
        S::Ed25519PhSha512 => {
            return Err(invalid(
                "SigningAlgorithm",
                "ED25519_PH_SHA_512 has no X.509 signature algorithm; use ED25519_SHA_512",
            ))
        }
        // id-ml-dsa-44/65/87 (RFC 9881): the key's parameter set, absent parameters.
        S::MlDsaShake256 => match spec {
            KeySpec::MlDsa44 => ("2.16.840.1.101.3.4.3.17", None),
            KeySpec::MlDsa65 => ("2.16.840.1.101.3.4.3.18", None),
            KeySpec::MlDsa87 => ("2.16.840.1.101.3.4.3.19", None),
            _ => {
                return Err(invalid(
                    "SigningAlgorithm",
                    "ML_DSA_SHAKE_256 signs with ML_DSA_44, ML_DSA_65 and ML_DSA_87 keys only",
                ))
            }
        },
    };
    Ok(AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap(oid),
        parameters,
    })
}

/// The PEM `CERTIFICATE REQUEST` of a request info signed with `alg` by a key of
/// `spec` (`signature` as Sign returns it: DER for ECDSA and SM2DSA, 64 bytes for
/// Ed25519, the FIPS 204 encoding for ML-DSA).
pub fn assemble_pem(
    info_der: &[u8],
    spec: KeySpec,
    alg: SigningAlgorithm,
    signature: &[u8],
) -> Result<String, CsrError> {
    let req = CertReq {
        info: CertReqInfo::from_der(info_der).map_err(enc)?,
        algorithm: signature_algorithm(spec, alg)?,
        signature: BitString::from_bytes(signature).map_err(enc)?,
    };
    req.to_pem(der::pem::LineEnding::LF).map_err(enc)
}

#[cfg(test)]
mod tests;
