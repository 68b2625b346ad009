//! An Arca node: Raft (openraft) over durable redb storage, the peer transport,
//! the per-key actors, and the operations the gateway calls.
//!
//! This crate does the I/O; the rules live in `arca-state` and the crypto in
//! `arca-crypto`.

pub mod actors;
pub mod backup;
pub mod batch;
pub mod counters;
pub mod credentials;
pub mod election;
pub mod grants;
pub mod import;
pub mod keys;
pub mod lease;
pub mod limits;
pub mod membership;
pub mod network;
pub mod node;
pub mod peer;
pub mod peer_auth;
pub mod pool;
pub mod rotation;
mod serving;
pub mod store;
mod tasks;
pub mod tls;
pub mod types;
pub mod usage;
pub mod users;
pub mod writes;

pub use node::{Node, NodeConfig, RaftTuning};
pub use types::{ClusterStatus, MemberStatus, NodeId, NodeInfo};

use arca_crypto::CryptoError;
use arca_state::Rejection;

/// Errors of node operations. The gateway maps each to one AWS error code.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum NodeError {
    #[error("{0}")]
    NotFound(String),
    #[error("the ciphertext is invalid, was altered, or the encryption context does not match")]
    InvalidCiphertext,
    #[error("{0}")]
    IncorrectKey(String),
    #[error("too many requests for this key; slow down")]
    Throttled,
    /// The cluster refuses a write for now (ThrottlingException): the
    /// message says why (`Rejection::Busy`).
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Validation(String),
    #[error("the cluster is not initialized")]
    NotInitialized,
    #[error("the cluster is already initialized")]
    AlreadyInitialized,
    #[error("{0}")]
    AlreadyExists(String),
    /// The key is disabled (DisabledException).
    #[error("{0}")]
    Disabled(String),
    /// The key's state forbids the operation (KMSInvalidStateException).
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    InvalidAliasName(String),
    #[error("{0}")]
    InvalidTag(String),
    #[error("{0}")]
    Unsupported(String),
    /// The key's usage or spec does not fit the operation or algorithm.
    #[error("{0}")]
    InvalidKeyUsage(String),
    #[error("the signature is not valid")]
    InvalidSignature,
    #[error("the MAC is not valid")]
    InvalidMac,
    /// InvalidGrantTokenException.
    #[error("{0}")]
    InvalidGrantToken(String),
    /// Other material than the key's, or material that does not fit its
    /// spec (IncorrectKeyMaterialException).
    #[error("{0}")]
    IncorrectKeyMaterial(String),
    /// ExpiredImportTokenException.
    #[error("{0}")]
    ExpiredImportToken(String),
    /// InvalidImportTokenException.
    #[error("{0}")]
    InvalidImportToken(String),
    /// The cluster cannot take the request now (no leader, leader unreachable); retry.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<CryptoError> for NodeError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::InvalidCiphertext => NodeError::InvalidCiphertext,
            CryptoError::TooLong { what, len, max } => {
                NodeError::Validation(format!("{what} is {len} bytes; at most {max} are allowed"))
            }
            e => NodeError::Internal(e.to_string()),
        }
    }
}

impl From<arca_keys::KeyError> for NodeError {
    fn from(e: arca_keys::KeyError) -> Self {
        use arca_keys::KeyError as K;
        let m = e.to_string();
        match e {
            K::UnsupportedAlgorithm { .. } | K::UnsupportedOperation { .. } => {
                NodeError::InvalidKeyUsage(m)
            }
            K::InvalidDigestLength { .. }
            | K::WrongMessageType { .. }
            | K::UnsupportedMessageType { .. }
            | K::TooLong { .. }
            | K::Empty { .. } => NodeError::Validation(m),
            K::InvalidCiphertext => NodeError::InvalidCiphertext,
            K::InvalidPublicKey { .. } => NodeError::Validation(m),
            _ => NodeError::Internal(m),
        }
    }
}

impl From<Rejection> for NodeError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::AlreadyInitialized => NodeError::AlreadyInitialized,
            Rejection::NotInitialized => NodeError::NotInitialized,
            Rejection::AlreadyExists(m) => NodeError::AlreadyExists(m),
            Rejection::NotFound(m) => NodeError::NotFound(m),
            Rejection::InvalidState(m) | Rejection::NotDue(m) => NodeError::InvalidState(m),
            Rejection::Disabled(m) => NodeError::Disabled(m),
            Rejection::LimitExceeded(m) => NodeError::LimitExceeded(m),
            Rejection::InvalidAliasName(m) => NodeError::InvalidAliasName(m),
            Rejection::InvalidTag(m) => NodeError::InvalidTag(m),
            Rejection::Unsupported(m) => NodeError::Unsupported(m),
            Rejection::Invalid(m) => NodeError::Validation(m),
            Rejection::Busy(m) => NodeError::Busy(m),
            Rejection::IncorrectKeyMaterial(m) => NodeError::IncorrectKeyMaterial(m),
            Rejection::ExpiredImportToken(m) => NodeError::ExpiredImportToken(m),
        }
    }
}
