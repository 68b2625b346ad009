//! API errors in AWS's JSON shape, and the one mapping from node errors to
//! AWS error codes.

use arca_node::NodeError;
use arca_sigv4::AuthError;

/// An error as the client sees it: `{"__type": code, "message": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(400, "ValidationException", message)
    }

    /// A required member is absent, in AWS's words.
    pub fn missing(field: &str) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(field)
        ))
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(400, "SerializationException", message)
    }

    pub fn unknown_operation(op: &str) -> Self {
        Self::new(
            400,
            "UnknownOperationException",
            format!("Unknown operation {op}"),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "KMSInternalException", message)
    }

    pub fn is_server_error(&self) -> bool {
        self.status >= 500
    }

    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "__type": self.code, "message": self.message }))
            .unwrap_or_default()
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let msg = e.to_string();
        match e {
            NodeError::NotFound(_) => ApiError::new(400, "NotFoundException", msg),
            NodeError::InvalidCiphertext => ApiError::new(400, "InvalidCiphertextException", msg),
            NodeError::IncorrectKey(_) => ApiError::new(400, "IncorrectKeyException", msg),
            NodeError::Throttled | NodeError::Busy(_) => {
                ApiError::new(400, "ThrottlingException", msg)
            }
            NodeError::Validation(_) => ApiError::new(400, "ValidationException", msg),
            NodeError::AlreadyExists(_) | NodeError::AlreadyInitialized => {
                ApiError::new(400, "AlreadyExistsException", msg)
            }
            NodeError::Disabled(_) => ApiError::new(400, "DisabledException", msg),
            NodeError::InvalidState(_) => ApiError::new(400, "KMSInvalidStateException", msg),
            NodeError::LimitExceeded(_) => ApiError::new(400, "LimitExceededException", msg),
            NodeError::InvalidAliasName(_) => ApiError::new(400, "InvalidAliasNameException", msg),
            NodeError::InvalidTag(_) => ApiError::new(400, "TagException", msg),
            NodeError::Unsupported(_) => ApiError::new(400, "UnsupportedOperationException", msg),
            NodeError::InvalidKeyUsage(_) => ApiError::new(400, "InvalidKeyUsageException", msg),
            NodeError::InvalidSignature => ApiError::new(400, "KMSInvalidSignatureException", msg),
            NodeError::InvalidMac => ApiError::new(400, "KMSInvalidMacException", msg),
            NodeError::InvalidGrantToken(_) => {
                ApiError::new(400, "InvalidGrantTokenException", msg)
            }
            NodeError::IncorrectKeyMaterial(_) => {
                ApiError::new(400, "IncorrectKeyMaterialException", msg)
            }
            NodeError::ExpiredImportToken(_) => {
                ApiError::new(400, "ExpiredImportTokenException", msg)
            }
            NodeError::InvalidImportToken(_) => {
                ApiError::new(400, "InvalidImportTokenException", msg)
            }
            // Both are temporary: 503 tells SDKs to retry.
            NodeError::NotInitialized | NodeError::Unavailable(_) => {
                ApiError::new(503, "DependencyTimeoutException", msg)
            }
            NodeError::Internal(_) => ApiError::new(500, "KMSInternalException", msg),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = match e {
            AuthError::Missing => 403,
            _ => 400,
        };
        ApiError::new(status, e.aws_code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write the cluster refuses for now says why, not "for this key".
    #[test]
    fn a_refused_write_says_why() {
        let why = "more than 1000000 distinct writes in the last 10 minutes; retry later";
        let e = ApiError::from(NodeError::from(arca_state::Rejection::Busy(why.into())));
        assert_eq!((e.status, e.code), (400, "ThrottlingException"));
        assert_eq!(e.message, why);
    }

    #[test]
    fn every_node_error_has_one_code() {
        let cases = [
            (NodeError::NotFound("x".into()), 400, "NotFoundException"),
            (
                NodeError::InvalidCiphertext,
                400,
                "InvalidCiphertextException",
            ),
            (
                NodeError::IncorrectKey("x".into()),
                400,
                "IncorrectKeyException",
            ),
            (NodeError::Throttled, 400, "ThrottlingException"),
            (NodeError::Busy("x".into()), 400, "ThrottlingException"),
            (
                NodeError::Validation("x".into()),
                400,
                "ValidationException",
            ),
            (
                NodeError::AlreadyExists("x".into()),
                400,
                "AlreadyExistsException",
            ),
            (NodeError::AlreadyInitialized, 400, "AlreadyExistsException"),
            (NodeError::NotInitialized, 503, "DependencyTimeoutException"),
            (
                NodeError::Unavailable("x".into()),
                503,
                "DependencyTimeoutException",
            ),
            (NodeError::Internal("x".into()), 500, "KMSInternalException"),
            (NodeError::Disabled("x".into()), 400, "DisabledException"),
            (
                NodeError::InvalidState("x".into()),
                400,
                "KMSInvalidStateException",
            ),
            (
                NodeError::LimitExceeded("x".into()),
                400,
                "LimitExceededException",
            ),
            (
                NodeError::InvalidAliasName("x".into()),
                400,
                "InvalidAliasNameException",
            ),
            (NodeError::InvalidTag("x".into()), 400, "TagException"),
            (
                NodeError::Unsupported("x".into()),
                400,
                "UnsupportedOperationException",
            ),
            (
                NodeError::IncorrectKeyMaterial("x".into()),
                400,
                "IncorrectKeyMaterialException",
            ),
            (
                NodeError::ExpiredImportToken("x".into()),
                400,
                "ExpiredImportTokenException",
            ),
            (
                NodeError::InvalidImportToken("x".into()),
                400,
                "InvalidImportTokenException",
            ),
        ];
        for (e, status, code) in cases {
            let a = ApiError::from(e);
            assert_eq!((a.status, a.code), (status, code));
        }
    }

    #[test]
    fn auth_errors_use_aws_codes() {
        assert_eq!(
            ApiError::from(AuthError::Missing).code,
            "MissingAuthenticationTokenException"
        );
        assert_eq!(
            ApiError::from(AuthError::SignatureMismatch).code,
            "InvalidSignatureException"
        );
    }

    #[test]
    fn body_shape() {
        let v: serde_json::Value =
            serde_json::from_slice(&ApiError::missing("KeyId").body()).unwrap();
        assert_eq!(v["__type"], "ValidationException");
        assert!(v["message"].as_str().unwrap().contains("'keyId'"));
    }
}
