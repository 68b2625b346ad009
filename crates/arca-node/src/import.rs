//! Imported key material ("bring your own key"): `GetParametersForImport`,
//! `ImportKeyMaterial`, `DeleteImportedKeyMaterial`.
//!
//! The import wrapping key is a fresh RSA (or, for SM2PKE, SM2) key pair per
//! `GetParametersForImport`. Its private half travels inside the import
//! token, sealed under the root key (`RootKey::wrap`, purpose
//! [`TOKEN_PURPOSE`], bound to the key id) with the wrapping algorithm and
//! the token's end: any node holding the root key can open it, no node has
//! to remember it, and a token cannot be forged, altered or used for another
//! key. The node that receives `ImportKeyMaterial` opens the token, unwraps
//! the material with the wrapping key, checks it against the key spec and
//! wraps it under the root key; only that reaches the Raft log. The state
//! machine judges the token's end and `ValidTo` by the leader's stamp.

use arca_crypto::wrap::WrapContext;
use arca_crypto::SecretBytes;
use arca_keys::import::{self, WrappingAlgorithm};
use arca_keys::PrivateKey;
use arca_state::rules::{self, IMPORT_PARAMETERS_VALID_MS};
use arca_state::{Command, KeyId, KeySpec};
use zeroize::Zeroizing;

use crate::keys::{applied, RequestId};
use crate::{actors, Node, NodeError};

/// The purpose label under which import tokens are sealed.
pub const TOKEN_PURPOSE: &str = "import-token";
const TOKEN_FORMAT_V1: u8 = 1;
/// format, algorithm, wrapping key size, end (ms).
const TOKEN_HEADER_LEN: usize = 1 + 1 + 1 + 8;

/// What `GetParametersForImport` returns.
#[derive(Debug, Clone)]
pub struct ImportParameters {
    pub import_token: Vec<u8>,
    /// SubjectPublicKeyInfo DER of the wrapping key.
    pub public_key: Vec<u8>,
    pub valid_to_ms: u64,
}

/// An opened import token.
struct Token {
    algorithm: WrappingAlgorithm,
    wrapping_spec: KeySpec,
    valid_to_ms: u64,
    /// PKCS#8 DER of the wrapping key.
    private_key: SecretBytes,
}

fn token_context(key_id: &KeyId) -> WrapContext<'_> {
    WrapContext {
        purpose: TOKEN_PURPOSE,
        id: key_id.as_bytes(),
        version: 0,
    }
}

fn spec_code(spec: KeySpec) -> u8 {
    match spec {
        KeySpec::Rsa2048 => 1,
        KeySpec::Rsa3072 => 2,
        KeySpec::Sm2 => 4,
        _ => 3,
    }
}

fn invalid_token() -> NodeError {
    NodeError::InvalidImportToken(
        "The import token is not valid for this key; use the token GetParametersForImport returned with the public key"
            .into(),
    )
}

fn open_token(node: &Node, key_id: &KeyId, token: &[u8]) -> Result<Token, NodeError> {
    let payload = node
        .root
        .unwrap(token, token_context(key_id))
        .map_err(|_| invalid_token())?;
    let p = payload.expose();
    if p.len() <= TOKEN_HEADER_LEN || p[0] != TOKEN_FORMAT_V1 {
        return Err(invalid_token());
    }
    let algorithm = WrappingAlgorithm::from_code(p[1]).ok_or_else(invalid_token)?;
    let wrapping_spec = match p[2] {
        1 => KeySpec::Rsa2048,
        2 => KeySpec::Rsa3072,
        3 => KeySpec::Rsa4096,
        4 => KeySpec::Sm2,
        _ => return Err(invalid_token()),
    };
    let mut end = [0u8; 8];
    end.copy_from_slice(&p[3..TOKEN_HEADER_LEN]);
    Ok(Token {
        algorithm,
        wrapping_spec,
        valid_to_ms: u64::from_be_bytes(end),
        private_key: SecretBytes::new(p[TOKEN_HEADER_LEN..].to_vec()),
    })
}

impl Node {
    /// The key's spec if import operations may run on it: origin EXTERNAL,
    /// not pending deletion.
    fn import_target(&self, key_id: &KeyId) -> Result<(KeySpec, u32, Option<[u8; 32]>), NodeError> {
        let a = self.shared.read();
        let k = a
            .state
            .keys
            .get(key_id)
            .ok_or_else(|| NodeError::NotFound(format!("Key '{key_id}' does not exist")))?;
        rules::require_external(k)?;
        rules::require_not_pending_deletion(k)?;
        Ok((
            k.spec,
            k.primary().version,
            k.import.as_ref().and_then(|i| i.material_digest),
        ))
    }

    /// A new wrapping key and import token for a key of origin EXTERNAL,
    /// valid for 24 hours.
    pub async fn parameters_for_import(
        &self,
        key_id: KeyId,
        algorithm: WrappingAlgorithm,
        wrapping_spec: KeySpec,
    ) -> Result<ImportParameters, NodeError> {
        self.ensure_serving().await?;
        self.import_target(&key_id)?;
        if !import::WRAPPING_KEY_SPECS.contains(&wrapping_spec) {
            return Err(NodeError::Validation(format!(
                "{} is not a wrapping key spec",
                wrapping_spec.as_aws()
            )));
        }
        if !algorithm.takes(wrapping_spec) {
            return Err(NodeError::Validation(format!(
                "WrappingAlgorithm {} does not take WrappingKeySpec {}: SM2PKE takes SM2, the \
                 RSA algorithms take RSA_2048, RSA_3072 or RSA_4096",
                algorithm.as_aws(),
                wrapping_spec.as_aws()
            )));
        }
        let (private, public_key) = self.new_key_pair(wrapping_spec).await?;
        let valid_to_ms = self.now_ms().saturating_add(IMPORT_PARAMETERS_VALID_MS);
        let mut payload = Zeroizing::new(Vec::with_capacity(TOKEN_HEADER_LEN + private.len()));
        payload.push(TOKEN_FORMAT_V1);
        payload.push(algorithm.code());
        payload.push(spec_code(wrapping_spec));
        payload.extend_from_slice(&valid_to_ms.to_be_bytes());
        payload.extend_from_slice(private.expose());
        let import_token = self.wrap_key()?.wrap(&payload, token_context(&key_id))?;
        Ok(ImportParameters {
            import_token,
            public_key,
            valid_to_ms,
        })
    }

    /// Imports material encrypted under the wrapping key of `token`.
    /// `valid_to_ms`: when it expires (`None`: never).
    pub async fn import_key_material(
        &self,
        rid: RequestId,
        key_id: KeyId,
        token: &[u8],
        encrypted: Vec<u8>,
        valid_to_ms: Option<u64>,
    ) -> Result<(), NodeError> {
        self.ensure_serving().await?;
        let (spec, version, known) = self.import_target(&key_id)?;
        let t = open_token(self, &key_id, token)?;
        let token_valid_to_ms = t.valid_to_ms;
        let now = self.now_ms();
        if now > token_valid_to_ms {
            return Err(NodeError::ExpiredImportToken(
                "The import token has expired; call GetParametersForImport for a new one".into(),
            ));
        }
        if let Some(v) = valid_to_ms {
            rules::check_import_valid_to(v, now)?;
        }
        // RSA decryption and key parsing take milliseconds: the blocking pool.
        let permit = self.registry.heavy_permit()?;
        let checked = tokio::task::spawn_blocking(move || check_import(spec, &t, &encrypted))
            .await
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        drop(permit);
        let (material, public_key, identity) = checked?;
        let material_digest = import::material_digest(key_id.as_bytes(), identity.expose());
        if known.is_some_and(|d| d != material_digest) {
            return Err(incorrect_material(&key_id));
        }
        let wrapped = self.wrap_key()?.wrap(
            material.expose(),
            actors::material_context(&key_id, version),
        )?;
        drop(material);
        let cmd = Command::ImportKeyMaterial {
            key_id,
            wrapped,
            public_key,
            material_digest,
            valid_to_ms,
            token_valid_to_ms,
        };
        applied(self.propose(rid, cmd).await?)?;
        tracing::info!(key_id = %key_id, "key material imported");
        Ok(())
    }

    /// Deletes a key's imported material; the key becomes PendingImport.
    pub async fn delete_imported_key_material(
        &self,
        rid: RequestId,
        key_id: KeyId,
    ) -> Result<(), NodeError> {
        {
            let a = self.shared.read();
            if let Some(k) = a.state.keys.get(&key_id) {
                rules::require_external(k)?;
            }
        }
        applied(
            self.propose(rid, Command::DeleteImportedKeyMaterial { key_id })
                .await?,
        )?;
        tracing::info!(key_id = %key_id, "imported key material deleted");
        Ok(())
    }
}

fn incorrect_material(key_id: &KeyId) -> NodeError {
    NodeError::IncorrectKeyMaterial(format!(
        "The key material is not the material imported into key '{key_id}' before"
    ))
}

/// Unwraps and checks imported material: the material, its public key
/// (asymmetric specs) and the bytes that identify it.
#[allow(clippy::type_complexity)]
fn check_import(
    spec: KeySpec,
    t: &Token,
    encrypted: &[u8],
) -> Result<(SecretBytes, Option<Vec<u8>>, SecretBytes), NodeError> {
    let wrapping = PrivateKey::load(t.wrapping_spec, t.private_key.expose())
        .map_err(|_| NodeError::Internal("the import wrapping key does not load".into()))?;
    let material = import::unwrap_material(&wrapping, t.algorithm, encrypted)
        .map_err(|_| NodeError::InvalidCiphertext)?;
    let wrong = || {
        NodeError::IncorrectKeyMaterial(format!(
            "The key material is not valid for key spec {}{}",
            spec.as_aws(),
            if spec.is_asymmetric() {
                " (an unencrypted PKCS#8 DER private key of that algorithm and size)"
            } else {
                ""
            }
        ))
    };
    if spec == KeySpec::SymmetricDefault {
        if material.len() != 32 {
            return Err(wrong());
        }
        let id = material.duplicate();
        return Ok((material, None, id));
    }
    let (public, id) = import::check_material(spec, material.expose()).map_err(|_| wrong())?;
    Ok((material, public, id))
}
