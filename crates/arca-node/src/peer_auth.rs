//! Authentication between nodes with the cluster secret.
//!
//! Each peer request carries `x-arca-peer-auth: v1 <unix seconds> <hex HMAC>`,
//! the HMAC-SHA256 under a key derived from the cluster secret over the method,
//! path, timestamp and body hash. A receiver accepts it within
//! [`MAX_SKEW_SECS`] of its own clock. The body is not encrypted: everything
//! secret that crosses the peer port is already wrapped under the root key.

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

    fn mac(&self, method: &str, path: &str, ts: i64, body: &[u8]) -> hmac::Tag {
        let body_hash = digest::digest(&digest::SHA256, body);
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"v1\n");
        ctx.update(method.as_bytes());
        ctx.update(b"\n");
        ctx.update(path.as_bytes());
        ctx.update(b"\n");
        ctx.update(ts.to_string().as_bytes());
        ctx.update(b"\n");
        ctx.update(body_hash.as_ref());
        ctx.sign()
    }

    /// The header value for a request.
    pub fn sign(&self, method: &str, path: &str, now: i64, body: &[u8]) -> String {
        format!(
            "v1 {now} {}",
            hex::encode(self.mac(method, path, now, body))
        )
    }

    pub fn verify(
        &self,
        header: Option<&str>,
        method: &str,
        path: &str,
        now: i64,
        body: &[u8],
    ) -> Result<(), PeerAuthError> {
        let mut parts = header.ok_or(PeerAuthError::Malformed)?.split(' ');
        let (Some("v1"), Some(ts), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(PeerAuthError::Malformed);
        };
        let ts: i64 = ts.parse().map_err(|_| PeerAuthError::Malformed)?;
        let given = hex::decode(mac).map_err(|_| PeerAuthError::Malformed)?;
        if (now - ts).abs() > MAX_SKEW_SECS {
            return Err(PeerAuthError::Skew);
        }
        let expected = self.mac(method, path, ts, body);
        if bool::from(expected.as_ref().ct_eq(&given)) {
            Ok(())
        } else {
            Err(PeerAuthError::Mismatch)
        }
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
            a.verify(Some(&h), "POST", "/raft/vote", 1010, b"other"),
            Err(PeerAuthError::Mismatch)
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
    fn short_secret_is_refused() {
        assert!(PeerAuth::new(b"short").is_err());
    }
}
