//! Authentication between nodes with the cluster secret.
//!
//! Each peer request carries
//! `x-arca-peer-auth: v2 <unix seconds> <body length> <head MAC> <body MAC>`:
//! HMAC-SHA256s under a key derived from the cluster secret, the first over
//! the method, path, timestamp and length, the second over those and the
//! body's hash. A receiver checks the head MAC (and that the length is the
//! request's `Content-Length`, within its limit) *before* it reads any of the
//! body, so a sender without the secret cannot make it buffer anything; then
//! the body MAC. It accepts timestamps within [`MAX_SKEW_SECS`] of its own
//! clock. The body is not encrypted: everything secret that crosses the peer
//! port is already wrapped under the root key.

use aws_lc_rs::{digest, hmac};
use subtle::ConstantTimeEq;

pub const HEADER: &str = "x-arca-peer-auth";
pub const MAX_SKEW_SECS: i64 = 300;
/// The shortest cluster secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

pub struct PeerAuth {
    key: hmac::Key,
}

impl std::fmt::Debug for PeerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerAuth([REDACTED])")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeerAuthError {
    #[error("missing or malformed {HEADER} header")]
    Malformed,
    #[error("peer request timestamp is more than {MAX_SKEW_SECS} s away from this node's clock")]
    Skew,
    #[error(
        "peer request signature does not match (is the cluster secret the same on every node?)"
    )]
    Mismatch,
    #[error("peer request body length does not match its signature or exceeds the limit")]
    Length,
}

/// A request head whose MAC verified: what the body must match.
#[derive(Debug, Clone)]
pub struct VerifiedHead {
    ts: i64,
    len: u64,
    body_mac: Vec<u8>,
}

impl VerifiedHead {
    /// The body length the sender signed.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl PeerAuth {
    /// `secret` is the cluster secret as read from its file (surrounding white space is ignored).
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        let trimmed = secret.trim_ascii();
        if trimmed.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the cluster secret must be at least {MIN_SECRET_LEN} bytes (got {})",
                trimmed.len()
            ));
        }
        let derive = hmac::Key::new(hmac::HMAC_SHA256, trimmed);
        let k = hmac::sign(&derive, b"arca/peer-auth/v1");
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()),
        })
    }

    fn head_mac(&self, method: &str, path: &str, ts: i64, len: u64) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"v2-head\n");
        for part in [method, path, &ts.to_string(), &len.to_string()] {
            ctx.update(part.as_bytes());
            ctx.update(b"\n");
        }
        ctx.sign()
    }

    fn body_mac(&self, method: &str, path: &str, ts: i64, body: &[u8]) -> hmac::Tag {
        let body_hash = digest::digest(&digest::SHA256, body);
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"v2-body\n");
        for part in [method, path, &ts.to_string(), &body.len().to_string()] {
            ctx.update(part.as_bytes());
            ctx.update(b"\n");
        }
        ctx.update(body_hash.as_ref());
        ctx.sign()
    }

    /// The header value for a request.
    pub fn sign(&self, method: &str, path: &str, now: i64, body: &[u8]) -> String {
        let len = body.len() as u64;
        format!(
            "v2 {now} {len} {} {}",
            hex::encode(self.head_mac(method, path, now, len)),
            hex::encode(self.body_mac(method, path, now, body))
        )
    }

    /// Checks the header against the request line and its `Content-Length`
    /// before the body is read; the length must be at most `max_len`.
    pub fn verify_head(
        &self,
        header: Option<&str>,
        method: &str,
        path: &str,
        now: i64,
        content_length: Option<u64>,
        max_len: u64,
    ) -> Result<VerifiedHead, PeerAuthError> {
        let mut parts = header.ok_or(PeerAuthError::Malformed)?.split(' ');
        let (Some("v2"), Some(ts), Some(len), Some(head), Some(body), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(PeerAuthError::Malformed);
        };
        let ts: i64 = ts.parse().map_err(|_| PeerAuthError::Malformed)?;
        let len: u64 = len.parse().map_err(|_| PeerAuthError::Malformed)?;
        let head = hex::decode(head).map_err(|_| PeerAuthError::Malformed)?;
        let body_mac = hex::decode(body).map_err(|_| PeerAuthError::Malformed)?;
        if (now - ts).abs() > MAX_SKEW_SECS {
            return Err(PeerAuthError::Skew);
        }
        let expected = self.head_mac(method, path, ts, len);
        if !bool::from(expected.as_ref().ct_eq(&head)) {
            return Err(PeerAuthError::Mismatch);
        }
        if content_length != Some(len) || len > max_len {
            return Err(PeerAuthError::Length);
        }
        Ok(VerifiedHead { ts, len, body_mac })
    }

    /// Checks the body against a verified head.
    pub fn verify_body(
        &self,
        head: &VerifiedHead,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(), PeerAuthError> {
        if body.len() as u64 != head.len {
            return Err(PeerAuthError::Length);
        }
        let expected = self.body_mac(method, path, head.ts, body);
        if bool::from(expected.as_ref().ct_eq(&head.body_mac)) {
            Ok(())
        } else {
            Err(PeerAuthError::Mismatch)
        }
    }

    /// Both checks at once, for a body already in hand.
    pub fn verify(
        &self,
        header: Option<&str>,
        method: &str,
        path: &str,
        now: i64,
        body: &[u8],
    ) -> Result<(), PeerAuthError> {
        let len = body.len() as u64;
        let head = self.verify_head(header, method, path, now, Some(len), len)?;
        self.verify_body(&head, method, path, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify() {
        let a = PeerAuth::new(b"a cluster secret of enough length\n").unwrap();
        let h = a.sign("POST", "/raft/vote", 1000, b"body");
        assert_eq!(
            a.verify(Some(&h), "POST", "/raft/vote", 1010, b"body"),
            Ok(())
        );
        assert_eq!(
            a.verify(Some(&h), "POST", "/raft/vote", 1010, b"bodY"),
            Err(PeerAuthError::Mismatch)
        );
        assert_eq!(
            a.verify(Some(&h), "POST", "/raft/vote", 1010, b"other"),
            Err(PeerAuthError::Length)
        );
        assert_eq!(
            a.verify(Some(&h), "POST", "/forward", 1010, b"body"),
            Err(PeerAuthError::Mismatch)
        );
        assert_eq!(
            a.verify(Some(&h), "POST", "/raft/vote", 2000, b"body"),
            Err(PeerAuthError::Skew)
        );
        let b = PeerAuth::new(b"another cluster secret, long enough").unwrap();
        assert_eq!(
            b.verify(Some(&h), "POST", "/raft/vote", 1000, b"body"),
            Err(PeerAuthError::Mismatch)
        );
        for bad in [
            None,
            Some(""),
            Some("v1 x y"),
            Some("v2 1 00"),
            Some("v1 1 zz"),
            Some("v1 1 00 extra"),
        ] {
            assert!(a.verify(bad, "POST", "/", 1, b"").is_err());
        }
    }

    #[test]
    fn the_head_is_checked_before_any_body_byte() {
        let a = PeerAuth::new(b"a cluster secret of enough length").unwrap();
        let h = a.sign("POST", "/forward", 1000, &[7u8; 100]);
        let head = a
            .verify_head(Some(&h), "POST", "/forward", 1000, Some(100), 1000)
            .unwrap();
        assert_eq!(head.len(), 100);
        assert!(a
            .verify_body(&head, "POST", "/forward", &[7u8; 100])
            .is_ok());
        assert_eq!(
            a.verify_body(&head, "POST", "/forward", &[8u8; 100])
                .unwrap_err(),
            PeerAuthError::Mismatch
        );
        // A Content-Length other than the signed one, or over the limit.
        assert_eq!(
            a.verify_head(
                Some(&h),
                "POST",
                "/forward",
                1000,
                Some(10_000_000),
                1 << 30
            )
            .unwrap_err(),
            PeerAuthError::Length
        );
        assert_eq!(
            a.verify_head(Some(&h), "POST", "/forward", 1000, Some(100), 99)
                .unwrap_err(),
            PeerAuthError::Length
        );
        // Without the secret, a head never verifies, whatever it claims.
        let forged = format!("v2 1000 100 {} {}", "00".repeat(32), "00".repeat(32));
        assert_eq!(
            a.verify_head(Some(&forged), "POST", "/forward", 1000, Some(100), 1000)
                .unwrap_err(),
            PeerAuthError::Mismatch
        );
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(PeerAuth::new(b"short").is_err());
    }
}
