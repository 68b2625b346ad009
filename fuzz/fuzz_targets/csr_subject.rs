//! CSR subjects (RFC 4514 strings) and subject alternative names from the
//! request: any text gives a typed `ValidationException`-style error or a
//! subject that encodes to DER, never a panic.
#![no_main]

use arca_keys::csr::{CsrInput, SanInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\u{0}');
    let subject = parts.next().unwrap_or_default();
    let mut sans = SanInput::default();
    for (i, p) in parts.enumerate() {
        let list = match i % 4 {
            0 => &mut sans.dns,
            1 => &mut sans.email,
            2 => &mut sans.uri,
            _ => &mut sans.ip,
        };
        list.push(p.to_string());
    }
    if let Ok(input) = CsrInput::parse(subject, &sans) {
        let _ = input.subject_der();
        let _ = input.request_info(&[0x30, 0x00]);
    }
});
