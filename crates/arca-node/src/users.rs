//! Access keys and users: the identities requests are signed with and the
//! policies attached to them.

use std::sync::Arc;

use arca_crypto::SecretBytes;
use arca_state::{Command, Outcome, RequestKey};

use crate::credentials;
use crate::{Node, NodeError};

/// The result of creating an access key, shown to its owner once.
pub struct NewAccessKey {
    pub access_key_id: String,
    pub secret_access_key: SecretBytes,
    pub region: String,
    pub account_id: String,
}

impl Node {
    /// Creates an access key for `user` (creating the user, with no identity
    /// policy, if it does not exist); its secret is returned once and kept
    /// only wrapped.
    pub async fn create_access_key(
        &self,
        rid: Option<RequestKey>,
        user: &str,
    ) -> Result<NewAccessKey, NodeError> {
        let cluster = self.cluster_info().ok_or(NodeError::NotInitialized)?;
        let (rec, secret) = credentials::generate(self.wrap_key()?, user, self.now_ms())?;
        let access_key_id = rec.access_key_id.clone();
        let (outcome, created) = self
            .propose_created(rid, Command::CreateAccessKey { key: rec })
            .await?;
        match (outcome, created) {
            (Outcome::Applied, None) => Ok(NewAccessKey {
                access_key_id,
                secret_access_key: secret,
                region: cluster.region.clone(),
                account_id: cluster.account_id.clone(),
            }),
            // A retry: the key the first attempt created, its secret unwrapped
            // from the replicated record.
            (Outcome::Applied, Some(first)) => {
                let rec = self
                    .shared
                    .read()
                    .state
                    .access_keys
                    .get(&first)
                    .cloned()
                    .ok_or_else(|| {
                        NodeError::NotFound(format!("Access key {first} does not exist"))
                    })?;
                let secret = credentials::unwrap_secret(&self.root, &rec)?;
                Ok(NewAccessKey {
                    access_key_id: first,
                    secret_access_key: secret,
                    region: cluster.region.clone(),
                    account_id: cluster.account_id.clone(),
                })
            }
            (Outcome::Rejected(r), _) => Err(r.into()),
            (Outcome::Repeated { .. } | Outcome::Batch(_), _) => {
                Err(NodeError::Internal("nested outcome".into()))
            }
        }
    }

    /// Deletes an access key: requests signed with it fail from then on.
    pub async fn delete_access_key(
        &self,
        rid: Option<RequestKey>,
        access_key_id: String,
    ) -> Result<(), NodeError> {
        crate::keys::applied(
            self.propose(rid, Command::DeleteAccessKey { access_key_id })
                .await?,
        )
    }

    /// The secret of an access key and the user it belongs to, for signature
    /// checks; `None` if unknown.
    pub fn access_key_secret(
        &self,
        access_key_id: &str,
    ) -> Result<Option<(Arc<SecretBytes>, String)>, NodeError> {
        // The state decides whether the key exists (a deleted key is refused at
        // once); the cache spares an unwrap, and a record copy, per request.
        let rec = {
            let a = self.shared.read();
            match a.state.access_keys.get(access_key_id) {
                None => return Ok(None),
                Some(r) => match self.secrets.get(access_key_id) {
                    Some(s) => return Ok(Some((s, r.user.clone()))),
                    None => r.clone(),
                },
            }
        };
        let s = self.secrets.get_or_unwrap(&self.root, &rec)?;
        Ok(Some((s, rec.user)))
    }

    /// How many access-key secrets are held unwrapped (for `/metrics`).
    pub fn cached_secrets(&self) -> usize {
        self.secrets.len()
    }

    /// Every access key: id, user, creation time (never a secret).
    pub async fn list_access_keys(&self) -> Result<Vec<(String, String, u64)>, NodeError> {
        self.ensure_serving().await?;
        Ok(self
            .shared
            .read()
            .state
            .access_keys
            .values()
            .map(|k| (k.access_key_id.clone(), k.user.clone(), k.created_ms))
            .collect())
    }

    /// Sets (`None`: removes) a user's identity policy; the caller validated it.
    pub async fn put_user_policy(
        &self,
        rid: Option<RequestKey>,
        user: String,
        policy: Option<String>,
    ) -> Result<(), NodeError> {
        crate::keys::applied(
            self.propose(rid, Command::PutUserPolicy { user, policy })
                .await?,
        )
    }

    /// A user as this node may serve it (see `ensure_serving`): every change
    /// acknowledged before is applied and settled.
    pub async fn user(&self, name: &str) -> Result<Option<arca_state::UserRecord>, NodeError> {
        self.ensure_serving().await?;
        let user = self.shared.read().state.users.get(name).cloned();
        if let Some(u) = &user {
            self.ensure_settled_index(u.revision).await?;
        }
        Ok(user)
    }

    /// A user's revision and, unless it is still `known`, its identity
    /// policy — what authorization needs per request, without a copy of
    /// what the caller holds. `None`: no such user.
    pub async fn user_policy(
        &self,
        name: &str,
        known: Option<u64>,
    ) -> Result<Option<(u64, Option<Option<String>>)>, NodeError> {
        self.ensure_serving().await?;
        self.user_policy_here(name, known).await
    }

    /// [`Self::user_policy`] from this node's own replica, however long it
    /// has been cut off from a leader: for `ClusterStatus`, which must answer
    /// an operator exactly when no leader does. It reveals no key and
    /// changes nothing.
    pub async fn user_policy_here(
        &self,
        name: &str,
        known: Option<u64>,
    ) -> Result<Option<(u64, Option<Option<String>>)>, NodeError> {
        let found = self.shared.read().state.users.get(name).map(|u| {
            (
                u.revision,
                (known != Some(u.revision)).then(|| u.policy.clone()),
            )
        });
        if let Some((revision, _)) = found {
            self.ensure_settled_index(revision).await?;
        }
        Ok(found)
    }
}
