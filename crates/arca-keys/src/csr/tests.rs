use super::*;
use crate::{generate, MessageType, PrivateKey};
use der::{DecodePem, Tagged};

fn subject_error(s: &str) -> String {
    match CsrInput::parse(s, &SanInput::default()) {
        Err(CsrError::Invalid { field, reason }) => {
            assert_eq!(field, "Subject", "{s}");
            reason
        }
        other => panic!("{s:?} was accepted: {other:?}"),
    }
}

fn san_error(sans: SanInput) -> (String, String) {
    match CsrInput::parse("CN=x", &sans) {
        Err(CsrError::Invalid { field, reason }) => (field, reason),
        other => panic!("{sans:?} was accepted: {other:?}"),
    }
}

/// The subject as OpenSSL's one-line form would list it, in DER order.
fn rdns(s: &str) -> Vec<Vec<(String, String)>> {
    let input = CsrInput::parse(s, &SanInput::default()).unwrap();
    input
        .subject
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|ava| {
                    let value = match ava.value.tag() {
                        der::Tag::Utf8String => ava.value.decode_as::<String>().unwrap(),
                        der::Tag::PrintableString => ava
                            .value
                            .decode_as::<der::asn1::PrintableString>()
                            .unwrap()
                            .to_string(),
                        der::Tag::Ia5String => ava
                            .value
                            .decode_as::<der::asn1::Ia5String>()
                            .unwrap()
                            .to_string(),
                        t => panic!("unexpected tag {t:?}"),
                    };
                    (ava.oid.to_string(), value)
                })
                .collect()
        })
        .collect()
}

fn one(oid: &str, v: &str) -> Vec<(String, String)> {
    vec![(oid.to_string(), v.to_string())]
}

#[test]
fn subjects_are_encoded_most_general_first() {
    assert_eq!(
        rdns("CN=api.example.com,O=Example,C=CN"),
        vec![
            one("2.5.4.6", "CN"),
            one("2.5.4.10", "Example"),
            one("2.5.4.3", "api.example.com"),
        ]
    );
    // Spaces around separators are ignored; names are case-insensitive.
    assert_eq!(
        rdns(" cn = a , o = b "),
        vec![one("2.5.4.10", "b"), one("2.5.4.3", "a")]
    );
    // A multi-valued RDN.
    assert_eq!(rdns("CN=a+O=b").len(), 1);
    assert_eq!(rdns("CN=a+O=b")[0].len(), 2);
    assert_eq!(
        rdns("emailAddress=a@example.com,DC=example"),
        vec![
            one("0.9.2342.19200300.100.1.25", "example"),
            one("1.2.840.113549.1.9.1", "a@example.com"),
        ]
    );
}

#[test]
fn rfc4514_escapes_are_decoded() {
    assert_eq!(rdns(r"CN=a\,b"), vec![one("2.5.4.3", "a,b")]);
    assert_eq!(rdns(r"CN=a\+b\=c"), vec![one("2.5.4.3", "a+b=c")]);
    assert_eq!(
        rdns(r#"CN=\"q\"\\\<\>\;"#),
        vec![one("2.5.4.3", r#""q"\<>;"#)]
    );
    assert_eq!(rdns(r"CN=\#1"), vec![one("2.5.4.3", "#1")]);
    // Escaped spaces are kept at either end; unescaped ones are not.
    assert_eq!(rdns(r"CN=\ a\ "), vec![one("2.5.4.3", " a ")]);
    assert_eq!(rdns("CN=a b  "), vec![one("2.5.4.3", "a b")]);
    // Hex pairs, including UTF-8 sequences.
    assert_eq!(rdns(r"CN=\41\42"), vec![one("2.5.4.3", "AB")]);
    assert_eq!(rdns(r"O=\E4\B8\AD\E6\96\87"), vec![one("2.5.4.10", "中文")]);
    assert_eq!(rdns("O=中文"), vec![one("2.5.4.10", "中文")]);
}

#[test]
fn bad_subjects_are_refused_with_a_reason() {
    for (s, want) in [
        ("", "at least one attribute"),
        ("   ", "at least one attribute"),
        ("XX=a", "unknown attribute type 'XX'"),
        ("2.5.4.3=a", "unknown attribute type '2.5.4.3'"),
        ("CN", "'CN' has no value"),
        ("CN=a,", "attribute is empty"),
        ("CN=a,,O=b", "attribute is empty"),
        ("=a", "no type"),
        ("CN=", "value of CN is empty"),
        ("CN= ,O=b", "value of CN is empty"),
        ("CN=a+", "attribute is empty"),
        ("CN=#0403616263", "hex-encoded"),
        (r"CN=a\", "lone '\\'"),
        (r"CN=a\zz", "invalid escape"),
        (r"CN=a\4", "invalid escape"),
        (r"CN=\FF", "not valid UTF-8"),
        ("CN=a;b", "must be escaped"),
        ("CN=a\"b", "must be escaped"),
        ("CN=<a>", "must be escaped"),
        ("C=China", "two-letter country code"),
        ("C=1A", "two-letter country code"),
        ("serialNumber=a_b", "may contain only"),
        ("DC=é", "must be ASCII"),
        (r"CN=a\0Ab", "control character"),
        ("CN=a+CN=b", "names CN twice"),
    ] {
        let reason = subject_error(s);
        assert!(reason.contains(want), "{s:?}: {reason}");
    }
    let long = format!("CN={}", "a".repeat(65));
    assert!(subject_error(&long).contains("at most 64"));
    let huge = format!("O={}", "a".repeat(MAX_SUBJECT_LEN));
    assert!(subject_error(&huge).contains("bytes long"));
}

#[test]
fn alternative_names_are_checked_and_named_by_field() {
    let ok = SanInput {
        dns: vec![
            "api.example.com".into(),
            "*.example.com".into(),
            "localhost".into(),
        ],
        email: vec!["ops@example.com".into()],
        uri: vec!["spiffe://example.com/api".into()],
        ip: vec!["192.0.2.1".into(), "2001:db8::1".into()],
    };
    let input = CsrInput::parse("CN=x", &ok).unwrap();
    assert_eq!(input.sans.len(), 7);
    assert_eq!(
        input.sans[5],
        GeneralName::IpAddress(OctetString::new(vec![192, 0, 2, 1]).unwrap())
    );

    let dns = |v: &str| SanInput {
        dns: vec!["ok.example".into(), v.into()],
        ..SanInput::default()
    };
    for bad in [
        "",
        "-a.example",
        "a-.example",
        "a..example",
        "a_b.example",
        "exa mple.com",
        "*",
        "a.*.example",
        "é.example",
    ] {
        let (field, _) = san_error(dns(bad));
        assert_eq!(field, "SubjectAlternativeNames.Dns[1]", "{bad:?}");
    }
    let long_label = format!("{}.example", "a".repeat(64));
    assert_eq!(
        san_error(dns(&long_label)).0,
        "SubjectAlternativeNames.Dns[1]"
    );
    for bad in [
        "",
        "no-at",
        "@example.com",
        "a@",
        "a b@example.com",
        "a@b@c.example",
    ] {
        let (field, _) = san_error(SanInput {
            email: vec![bad.into()],
            ..SanInput::default()
        });
        assert_eq!(field, "SubjectAlternativeNames.Email[0]", "{bad:?}");
    }
    for bad in ["example.com", "://x", "1http://x", "http:", "http://a b"] {
        let (field, _) = san_error(SanInput {
            uri: vec![bad.into()],
            ..SanInput::default()
        });
        assert_eq!(field, "SubjectAlternativeNames.Uri[0]", "{bad:?}");
    }
    for bad in [
        "256.0.0.1",
        "1.2.3",
        "::g",
        "localhost",
        "10.0.0.1/8",
        " 10.0.0.1",
    ] {
        let (field, reason) = san_error(SanInput {
            ip: vec![bad.into()],
            ..SanInput::default()
        });
        assert_eq!(field, "SubjectAlternativeNames.Ip[0]", "{bad:?}");
        assert!(reason.contains("IPv4 or IPv6"), "{reason}");
    }
    let many = SanInput {
        dns: vec!["a.example".into(); MAX_SANS + 1],
        ..SanInput::default()
    };
    assert_eq!(san_error(many).0, "SubjectAlternativeNames");
}

/// Every signing spec and algorithm: the CSR parses back, carries the key and
/// the names, and its signature verifies over the request info.
#[test]
fn csrs_are_signed_over_their_request_info() {
    let sans = SanInput {
        dns: vec!["api.example.com".into()],
        ip: vec!["10.1.2.3".into()],
        ..SanInput::default()
    };
    let input = CsrInput::parse("CN=api.example.com,O=Example,C=CN", &sans).unwrap();
    for spec in [
        KeySpec::Rsa2048,
        KeySpec::EccNistP256,
        KeySpec::EccNistP384,
        KeySpec::EccNistP521,
        KeySpec::EccSecgP256k1,
        KeySpec::Sm2,
        KeySpec::EccNistEdwards25519,
        KeySpec::MlDsa44,
        KeySpec::MlDsa65,
        KeySpec::MlDsa87,
    ] {
        let key = PrivateKey::load(spec, generate(spec).unwrap().expose()).unwrap();
        let spki = key.public_key_spki_der().unwrap();
        let info = input.request_info(&spki).unwrap();
        for &alg in spec.signing_algorithms() {
            if alg == SigningAlgorithm::Ed25519PhSha512 {
                // No X.509 algorithm: refused before anything is signed.
                assert!(signing_input(spec, alg, &spki, &info).is_err());
                assert!(assemble_pem(&info, spec, alg, &[0; 64]).is_err());
                continue;
            }
            let (message, kind) = signing_input(spec, alg, &spki, &info).unwrap();
            let sig = key.sign(alg, &message, kind).unwrap();
            let pem = assemble_pem(&info, spec, alg, &sig).unwrap();
            let req = CertReq::from_pem(pem.as_bytes()).unwrap();
            assert_eq!(req.info.to_der().unwrap(), info);
            if spec.is_ml_dsa() {
                // RFC 9881: the parameter set's OID, parameters absent; signed over mu.
                assert_eq!(kind, MessageType::ExternalMu);
                let oid = req.algorithm.oid.to_string();
                let want = match spec {
                    KeySpec::MlDsa44 => "2.16.840.1.101.3.4.3.17",
                    KeySpec::MlDsa65 => "2.16.840.1.101.3.4.3.18",
                    _ => "2.16.840.1.101.3.4.3.19",
                };
                assert_eq!(oid, want);
                assert!(req.algorithm.parameters.is_none());
                assert_eq!(req.info.public_key.algorithm.oid.to_string(), want);
            }
            assert_eq!(req.info.public_key.to_der().unwrap(), spki);
            // Display is RFC 4514 order again.
            assert_eq!(
                req.info.subject.to_string(),
                "CN=api.example.com,O=Example,C=CN"
            );
            assert_eq!(req.info.attributes.len(), 1);
            let raw = req.signature.as_bytes().unwrap();
            assert!(
                crate::verify_with_spki(spec, &spki, alg, &info, MessageType::Raw, raw).unwrap(),
                "{spec:?} {alg:?}"
            );
        }
    }
    // An algorithm of another spec is refused before anything is signed.
    assert!(signing_input(
        KeySpec::EccNistP256,
        SigningAlgorithm::MlDsaShake256,
        &[],
        b"x"
    )
    .is_err());
    assert!(signing_digest(KeySpec::MlDsa44, SigningAlgorithm::MlDsaShake256, &[], b"x").is_err());
    assert!(assemble_pem(
        &[],
        KeySpec::EccNistP256,
        SigningAlgorithm::MlDsaShake256,
        &[]
    )
    .is_err());
    assert!(signing_digest(KeySpec::Sm2, SigningAlgorithm::EcdsaSha256, &[], b"x").is_err());
    assert!(signing_digest(
        KeySpec::EccNistEdwards25519,
        SigningAlgorithm::Ed25519Sha512,
        &[],
        b"x"
    )
    .is_err());
}

#[test]
fn no_alternative_names_means_no_attributes() {
    let spec = KeySpec::EccNistP256;
    let key = PrivateKey::load(spec, generate(spec).unwrap().expose()).unwrap();
    let spki = key.public_key_spki_der().unwrap();
    let info = CsrInput::parse("CN=x", &SanInput::default())
        .unwrap()
        .request_info(&spki)
        .unwrap();
    assert!(CertReqInfo::from_der(&info).unwrap().attributes.is_empty());
}
