//! The AWS JSON request of every operation, through the code every request
//! runs before anything asks the node: the API model's constraints, the
//! decoding of the fields authorization reads (blobs, contexts, tags, grant
//! constraints), the keys the operation names, and then the decoding of the
//! body into the typed input the operation's handler reads. Any body gives
//! `Ok` or a typed AWS error, never a panic.
#![no_main]

use arca_gateway::api::decode;
use arca_gateway::authz::precheck;
use arca_gateway::ops::Op;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let op = Op::ALL[usize::from(which) % Op::ALL.len()];
    if let Err(e) = precheck(op, body).and_then(|()| decode(op, body)) {
        assert!(
            matches!(
                e.code,
                "ValidationException"
                    | "SerializationException"
                    | "InvalidCiphertextException"
                    | "UnsupportedOperationException"
                    | "CustomKeyStoreNotFoundException"
                    | "LimitExceededException"
                    | "TagException"
                    | "MalformedPolicyDocumentException"
                    | "InvalidGrantTokenException"
            ),
            "{op:?}: unexpected {} ({})",
            e.code,
            e.message
        );
        assert_eq!(e.status, 400, "{op:?}: {}", e.code);
    }
});
