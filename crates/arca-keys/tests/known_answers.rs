//! Published known-answer vectors, checked through the public API.

use arca_keys::{verify_with_spki, KeySpec, MessageType, PrivateKey, SigningAlgorithm};
use sha2::Digest as _;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// DER of a short (< 128 bytes) TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    assert!(content.len() < 128);
    let mut out = vec![tag, content.len() as u8];
    out.extend_from_slice(content);
    out
}

fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    tlv(0x02, &v)
}

fn ecdsa_der(r: &str, s: &str) -> Vec<u8> {
    let mut body = der_uint(&h(r));
    body.extend(der_uint(&h(s)));
    tlv(0x30, &body)
}

const EC_PUBLIC_KEY: &str = "06072a8648ce3d0201";

fn algorithm_id(curve_oid: &str) -> Vec<u8> {
    let mut body = h(EC_PUBLIC_KEY);
    body.extend(h(curve_oid));
    tlv(0x30, &body)
}

/// PKCS#8 holding an ECPrivateKey without the optional public key.
fn ec_pkcs8(curve_oid: &str, d: &str) -> Vec<u8> {
    let mut ec = h("020101");
    ec.extend(tlv(0x04, &h(d)));
    let ec = tlv(0x30, &ec);
    let mut body = h("020100");
    body.extend(algorithm_id(curve_oid));
    body.extend(tlv(0x04, &ec));
    tlv(0x30, &body)
}

fn ec_spki(curve_oid: &str, x: &str, y: &str) -> Vec<u8> {
    let mut bits = vec![0u8, 0x04];
    bits.extend(h(x));
    bits.extend(h(y));
    let mut body = algorithm_id(curve_oid);
    body.extend(tlv(0x03, &bits));
    tlv(0x30, &body)
}

/// RFC 6979 A.2.5: P-256, SHA-256, message "sample". aws-lc-rs signs with random nonces,
/// so the vector is checked on the key and verification side.
#[test]
fn rfc6979_a25_p256_sha256() {
    let curve = "06082a8648ce3d030107";
    let d = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721";
    let ux = "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6";
    let uy = "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299";
    let r = "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716";
    let s = "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8";
    let spec = KeySpec::EccNistP256;
    let alg = SigningAlgorithm::EcdsaSha256;

    let key = PrivateKey::load(spec, &ec_pkcs8(curve, d)).unwrap();
    let spki = ec_spki(curve, ux, uy);
    assert_eq!(key.public_key_spki_der().unwrap(), spki);

    let sig = ecdsa_der(r, s);
    let digest = sha2::Sha256::digest(b"sample").to_vec();
    assert!(verify_with_spki(spec, &spki, alg, b"sample", MessageType::Raw, &sig).unwrap());
    assert!(verify_with_spki(spec, &spki, alg, &digest, MessageType::Digest, &sig).unwrap());
    assert!(!verify_with_spki(spec, &spki, alg, b"samplf", MessageType::Raw, &sig).unwrap());
    // The RFC's s is high; the low-S twin (n - s) is an equally valid signature.
    let low_s = "0834E36AD29A83BF2BC9385E491D6099C8FDF9D1ED67AA7EA5F51F93782857A9";
    let sig_low = ecdsa_der(r, low_s);
    assert!(key
        .verify(alg, b"sample", MessageType::Raw, &sig_low)
        .unwrap());

    // Our own signatures with the RFC key verify too.
    let ours = key.sign(alg, b"sample", MessageType::Raw).unwrap();
    assert!(verify_with_spki(spec, &spki, alg, &digest, MessageType::Digest, &ours).unwrap());
}

/// RFC 6979 nonces on secp256k1: private key 1, SHA-256, "Satoshi Nakamoto" (the widely
/// published vector; `k256` signs deterministically and low-S normalizes).
#[test]
fn rfc6979_secp256k1_deterministic_signature() {
    let curve = "06052b8104000a";
    let d = "0000000000000000000000000000000000000000000000000000000000000001";
    let spec = KeySpec::EccSecgP256k1;
    let alg = SigningAlgorithm::EcdsaSha256;
    let key = PrivateKey::load(spec, &ec_pkcs8(curve, d)).unwrap();
    // d = 1, so the public key is the generator.
    let g = ec_spki(
        curve,
        "79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798",
        "483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8",
    );
    assert_eq!(key.public_key_spki_der().unwrap(), g);

    let expected = h(concat!(
        "3045022100934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d8",
        "02202442ce9d2b916064108014783e923ec36b49743e2ffa1c4496f01a512aafd9e5"
    ));
    let msg = b"Satoshi Nakamoto";
    assert_eq!(key.sign(alg, msg, MessageType::Raw).unwrap(), expected);
    let digest = sha2::Sha256::digest(msg).to_vec();
    assert_eq!(
        key.sign(alg, &digest, MessageType::Digest).unwrap(),
        expected
    );

    // The high-S form (s' = n - s) verifies as well, as it does in OpenSSL.
    let high = ecdsa_der(
        "934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d8",
        "dbbd3162d46e9f9bef7feb87c16dc13b4f6568a87f4e83f728e2443ba586675c",
    );
    assert!(verify_with_spki(spec, &g, alg, msg, MessageType::Raw, &high).unwrap());
    assert!(verify_with_spki(spec, &g, alg, msg, MessageType::Raw, &expected).unwrap());
}

/// GB/T 32918 (GM/T 0003.5) example on the recommended curve: ZA, e = SM3(ZA || M) and
/// the signature (r, s), which was made with a fixed nonce and so is checked by verifying.
#[test]
fn gbt32918_sm2_signature_and_digest() {
    let curve = "06082a811ccf5501822d";
    let d = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
    let px = "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020";
    let py = "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";
    let e = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640";
    let za = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3";
    let r = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3";
    let s = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";
    let spec = KeySpec::Sm2;
    let alg = SigningAlgorithm::Sm2Dsa;
    let msg = b"message digest";

    let key = PrivateKey::load(spec, &ec_pkcs8(curve, d)).unwrap();
    let spki = ec_spki(curve, px, py);
    assert_eq!(key.public_key_spki_der().unwrap(), spki);

    // e = SM3(ZA || M); with an empty message the digest is SM3(ZA).
    assert_eq!(arca_keys::sm2_digest(&spki, msg).unwrap().to_vec(), h(e));
    let mut za_only = sm3_of(&h(za));
    za_only.truncate(32);
    assert_eq!(arca_keys::sm2_digest(&spki, b"").unwrap().to_vec(), za_only);

    let sig = ecdsa_der(r, s);
    assert!(verify_with_spki(spec, &spki, alg, msg, MessageType::Raw, &sig).unwrap());
    assert!(verify_with_spki(spec, &spki, alg, &h(e), MessageType::Digest, &sig).unwrap());
    assert!(
        !verify_with_spki(spec, &spki, alg, b"message digesT", MessageType::Raw, &sig).unwrap()
    );

    let ours = key.sign(alg, &h(e), MessageType::Digest).unwrap();
    assert!(key.verify(alg, msg, MessageType::Raw, &ours).unwrap());
}

fn sm3_of(data: &[u8]) -> Vec<u8> {
    use sm3::Digest as _;
    sm3::Sm3::digest(data).to_vec()
}
