//! The ciphertext blob parser, every format version: arbitrary bytes give a
//! typed error, never a panic; and encrypt → decrypt round-trips for any
//! plaintext and context (a changed context fails).
#![no_main]

use std::collections::BTreeMap;

use arca_crypto::symmetric::{parse_header, AesKey};
use arca_crypto::Secret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_header(data);
    let key = AesKey::new(&Secret::new([7u8; 32]));
    let mut ctx = BTreeMap::new();
    ctx.insert("purpose".to_string(), "fuzz".to_string());
    // Arbitrary bytes never decrypt (a forgery would need the key).
    assert!(key.decrypt_blob(data, &ctx).is_err());
    // Round trip.
    if data.is_empty() || data.len() > 4096 {
        return;
    }
    let blob = key
        .encrypt_blob([1; 16], 1, data, &ctx)
        .expect("encrypting a valid plaintext");
    let header = parse_header(&blob).expect("our own blob parses");
    assert_eq!(header.key_id, [1; 16]);
    let back = key.decrypt_blob(&blob, &ctx).expect("our own blob decrypts");
    assert_eq!(back.expose(), data);
    ctx.insert("purpose".to_string(), "other".to_string());
    assert!(key.decrypt_blob(&blob, &ctx).is_err());
});
