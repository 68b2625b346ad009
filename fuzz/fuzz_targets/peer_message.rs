//! Peer messages: the postcard decoding of every request and response type
//! a node reads from another, and the body MAC (v3) against its signer.
//! Arbitrary bytes decode or are refused, never a panic; whatever decodes
//! re-encodes and decodes again; a signed body verifies and the same body
//! with one byte changed does not.
#![no_main]

use arca_node::election::{PreVoteRequest, PreVoteResponse};
use arca_node::lease::{
    BarrierRequest, BarrierResponse, ConfirmRequest, ConfirmResponse, LeaseRequest,
    LeaseResponse, QuietRequest, QuietResponse, SettledNotice,
};
use arca_node::peer_auth::{PeerAuth, RequestId, Route};
use arca_node::types::{ForwardRequest, ForwardResponse, NodeId, TypeConfig};
use libfuzzer_sys::fuzz_target;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(body: &[u8]) {
    if let Ok(v) = postcard::from_bytes::<T>(body) {
        let again = postcard::to_allocvec(&v).expect("a decoded message re-encodes");
        postcard::from_bytes::<T>(&again).expect("a re-encoded message decodes");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 21 {
        0 => round_trip::<AppendEntriesRequest<TypeConfig>>(body),
        1 => round_trip::<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>(body),
        2 => round_trip::<VoteRequest<NodeId>>(body),
        3 => round_trip::<Result<VoteResponse<NodeId>, RaftError<NodeId>>>(body),
        4 => round_trip::<InstallSnapshotRequest<TypeConfig>>(body),
        5 => round_trip::<
            Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
        >(body),
        6 => round_trip::<PreVoteRequest>(body),
        7 => round_trip::<PreVoteResponse>(body),
        8 => round_trip::<LeaseRequest>(body),
        9 => round_trip::<LeaseResponse>(body),
        10 => round_trip::<BarrierRequest>(body),
        11 => round_trip::<BarrierResponse>(body),
        12 => round_trip::<ConfirmRequest>(body),
        13 => round_trip::<ConfirmResponse>(body),
        14 => round_trip::<QuietRequest>(body),
        15 => round_trip::<QuietResponse>(body),
        16 => round_trip::<SettledNotice>(body),
        17 => round_trip::<ForwardRequest>(body),
        18 => round_trip::<ForwardResponse>(body),
        _ => mac(body),
    }
});

/// A body signed for a route verifies with its head; one changed byte, or a
/// different path, fails.
fn mac(body: &[u8]) {
    let auth = PeerAuth::new(b"fuzzing-cluster-secret-0123456789").expect("a long secret");
    let route = Route {
        cluster: None,
        from: Some(1),
        to: Some(2),
    };
    let id = RequestId {
        from: Some(1),
        epoch: 7,
        seq: 9,
    };
    let now = 1_767_225_600_000;
    let header = auth.sign("POST", "/raft/append", &route, &id, now, body);
    let len = body.len() as u64;
    let head = auth
        .verify_head(Some(&header), "POST", "/raft/append", now, Some(len), 1 << 24)
        .expect("a head we signed verifies");
    auth.verify_body(&head, "POST", "/raft/append", body)
        .expect("a body we signed verifies");
    assert!(auth
        .verify_head(Some(&header), "POST", "/raft/vote", now, Some(len), 1 << 24)
        .is_err());
    if let Some(i) = body.len().checked_sub(1) {
        let mut changed = body.to_vec();
        changed[i / 2] ^= 0x01;
        assert!(auth
            .verify_body(&head, "POST", "/raft/append", &changed)
            .is_err());
    }
}
