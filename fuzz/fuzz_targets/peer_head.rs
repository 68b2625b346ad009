//! The peer authentication header (v3), checked before a peer request's
//! body is read: any text gives a typed refusal, never a panic.
#![no_main]

use arca_node::peer_auth::PeerAuth;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let auth = PeerAuth::new(b"fuzzing-cluster-secret-0123456789").expect("a long secret");
    let header = String::from_utf8_lossy(data);
    let _ = auth.verify_head(
        Some(&header),
        "POST",
        "/raft/append",
        1_767_225_600_000,
        Some(64),
        16 * 1024 * 1024,
    );
});
