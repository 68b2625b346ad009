//! Grants: replicated like every change, and usable at once through a grant
//! token — the grant itself, authenticated with a key derived from the root
//! key, so that any node can check it before the grant has replicated there.
//! A token whose grant this node knows to be retired or revoked is refused,
//! and so is one whose grant it does not know once the token is older than
//! `rules::GRANT_TOKEN_ALONE_MS`: removed grants are remembered only for
//! `rules::REMOVED_GRANT_KEPT_MS` (the leader's scheduler then forgets them).

use arca_state::{rules, Command, GrantRecord, GrantRow, KeyId, Outcome, Rejection, RequestKey};
use aws_lc_rs::hmac;

use crate::{Node, NodeError};

const TOKEN_LABEL: &[u8] = b"arca/grant-token/v1";
const TAG_LEN: usize = 32;
/// AWS's limit on a grant token's length.
pub const MAX_TOKEN_LEN: usize = 8192;

impl Node {
    fn token_key(root: &arca_crypto::wrap::RootKey) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, root.derive_subkey(TOKEN_LABEL).expose())
    }

    /// The token for `grant`: hex of its encoding and a MAC over it, under
    /// the root key new secrets are wrapped under.
    pub fn grant_token(&self, grant: &GrantRecord) -> Result<String, NodeError> {
        let mut body =
            postcard::to_allocvec(grant).map_err(|e| NodeError::Internal(e.to_string()))?;
        let tag = hmac::sign(&Self::token_key(self.wrap_key()?), &body);
        body.extend_from_slice(tag.as_ref());
        Ok(hex::encode(body))
    }

    /// The grant a token carries, if the token is authentic and this node
    /// does not know the grant to be removed.
    pub fn verify_grant_token(&self, token: &str) -> Result<GrantRecord, NodeError> {
        let invalid = || NodeError::InvalidGrantToken("the grant token is not valid".into());
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid());
        }
        let bytes = hex::decode(token).map_err(|_| invalid())?;
        if bytes.len() <= TAG_LEN {
            return Err(invalid());
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        // Any root key this node holds: a token made during a root-key
        // rotation verifies on every node holding the key it was made under.
        if !self
            .root
            .keys()
            .iter()
            .any(|k| hmac::verify(&Self::token_key(k), body, tag).is_ok())
        {
            return Err(invalid());
        }
        let grant: GrantRecord = postcard::from_bytes(body).map_err(|_| invalid())?;
        match self.shared.read().state.grants.get(&grant.grant_id) {
            Some(GrantRow::Active(_)) => {}
            Some(GrantRow::Removed { .. }) => {
                return Err(NodeError::InvalidGrantToken(format!(
                    "grant {} was retired or revoked",
                    grant.grant_id
                )))
            }
            // Not applied here yet — the moment a token is for — or removed
            // so long ago that its row was forgotten: past the window, the
            // token does not stand alone (`rules::GRANT_TOKEN_ALONE_MS`).
            None => {
                let until = grant.created_ms.saturating_add(rules::GRANT_TOKEN_ALONE_MS);
                if self.now_ms() >= until {
                    return Err(NodeError::InvalidGrantToken(format!(
                        "grant {} is not known here and its token is too old to stand alone: \
                         the grant was retired or revoked",
                        grant.grant_id
                    )));
                }
            }
        }
        Ok(grant)
    }

    /// Creates a grant; one with the same `Name` and terms on the key is
    /// answered with the existing grant's id. Returns the grant as stored.
    pub async fn create_grant(
        &self,
        rid: Option<RequestKey>,
        grant: GrantRecord,
    ) -> Result<GrantRecord, NodeError> {
        let (outcome, created) = self
            .propose_created(
                rid,
                Command::CreateGrant {
                    grant: Box::new(grant.clone()),
                },
            )
            .await?;
        let id = match (outcome, created) {
            (Outcome::Applied, Some(first)) => first,
            (Outcome::Applied, None) => grant.grant_id.clone(),
            (Outcome::Rejected(Rejection::AlreadyExists(existing)), _) => existing,
            (Outcome::Rejected(r), _) => return Err(r.into()),
            (Outcome::Repeated { .. } | Outcome::Batch(_), _) => {
                return Err(NodeError::Internal("nested repeat".into()))
            }
        };
        match self.shared.read().state.grants.get(&id) {
            Some(GrantRow::Active(g)) => Ok(g.as_ref().clone()),
            _ => Err(NodeError::NotFound(format!("Grant {id} does not exist"))),
        }
    }

    /// Retires or revokes a grant.
    pub async fn remove_grant(
        &self,
        rid: Option<RequestKey>,
        key_id: KeyId,
        grant_id: String,
    ) -> Result<(), NodeError> {
        let now_ms = self.now_ms();
        crate::keys::applied(
            self.propose(
                rid,
                Command::RemoveGrant {
                    key_id,
                    grant_id,
                    now_ms,
                },
            )
            .await?,
        )
    }

    /// A key's live grants, as this node may serve them.
    pub async fn grants_of(&self, key_id: &KeyId) -> Result<Vec<GrantRecord>, NodeError> {
        self.ensure_serving().await?;
        self.ensure_settled(key_id).await?;
        Ok(self
            .shared
            .read()
            .state
            .key_grants(key_id)
            .cloned()
            .collect())
    }

    /// The live grants that `principal` may retire.
    pub async fn retirable_grants(&self, principal: &str) -> Result<Vec<GrantRecord>, NodeError> {
        self.ensure_serving().await?;
        Ok(self
            .shared
            .read()
            .state
            .retirable_grants(principal)
            .cloned()
            .collect())
    }

    /// A grant by id (live or removed), as this node may serve it.
    pub async fn grant(&self, grant_id: &str) -> Result<Option<GrantRow>, NodeError> {
        self.ensure_serving().await?;
        let row = self.shared.read().state.grants.get(grant_id).cloned();
        if let Some(GrantRow::Active(g)) = &row {
            self.ensure_settled(&g.key_id).await?;
        }
        Ok(row)
    }
}
