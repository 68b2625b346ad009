//! Imported key material: GetParametersForImport, ImportKeyMaterial,
//! DeleteImportedKeyMaterial.

use arca_keys::import::WrappingAlgorithm;
use arca_node::Node;
use arca_state::KeySpec;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use crate::api::{blob, parse, secs, Answer, Ctx};
use crate::error::ApiError;
use crate::ops::Op;

/// AWS's bound on `ImportToken` and `EncryptedKeyMaterial`, in bytes.
pub const MAX_IMPORT_BLOB_LEN: usize = 6144;

/// [`crate::api::decode`] for the operations of this module; `None` for others.
pub(crate) fn decode(op: Op, body: &[u8]) -> Option<Result<(), ApiError>> {
    use crate::api::as_;
    match op {
        Op::GetParametersForImport => as_::<ParametersReq>(body),
        Op::ImportKeyMaterial => as_::<ImportReq>(body),
        Op::DeleteImportedKeyMaterial => as_::<DeleteReq>(body),
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ParametersReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    wrapping_algorithm: Option<String>,
    wrapping_key_spec: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    import_token: Option<String>,
    encrypted_key_material: Option<String>,
    expiration_model: Option<String>,
    valid_to: Option<f64>,
    import_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
}

pub async fn run(node: &Node, ctx: &Ctx, op: Op, body: &[u8]) -> Result<Answer, ApiError> {
    let id = ctx.key(0)?;
    let arn = node.key_arn(&id)?;
    let body = match op {
        Op::GetParametersForImport => {
            let r: ParametersReq = parse(body)?;
            let alg = wrapping_algorithm(r.wrapping_algorithm.as_deref())?;
            let spec = wrapping_key_spec(r.wrapping_key_spec.as_deref())?;
            let p = node.parameters_for_import(id, alg, spec).await?;
            json!({
                "KeyId": arn,
                "ImportToken": B64.encode(&p.import_token),
                "PublicKey": B64.encode(&p.public_key),
                "ParametersValidTo": secs(p.valid_to_ms),
            })
        }
        Op::ImportKeyMaterial => {
            let r: ImportReq = parse(body)?;
            let token = blob("ImportToken", r.import_token, 1, MAX_IMPORT_BLOB_LEN)?;
            let encrypted = blob(
                "EncryptedKeyMaterial",
                r.encrypted_key_material,
                1,
                MAX_IMPORT_BLOB_LEN,
            )?;
            let valid_to_ms = expiration(r.expiration_model.as_deref(), r.valid_to)?;
            match r.import_type.as_deref() {
                None | Some("NEW_KEY_MATERIAL" | "EXISTING_KEY_MATERIAL") => {}
                Some(other) => {
                    return Err(ApiError::validation(format!(
                        "1 validation error detected: Value '{other}' at 'importType' failed to satisfy constraint: \
                         Member must satisfy enum value set: [NEW_KEY_MATERIAL, EXISTING_KEY_MATERIAL]"
                    )))
                }
            }
            node.import_key_material(Some(ctx.request), id, &token, encrypted, valid_to_ms)
                .await?;
            json!({ "KeyId": arn })
        }
        Op::DeleteImportedKeyMaterial => {
            let _: DeleteReq = parse(body)?;
            node.delete_imported_key_material(Some(ctx.request), id)
                .await?;
            json!({ "KeyId": arn })
        }
        _ => return Err(ApiError::unknown_operation(op.name())),
    };
    Ok(Answer {
        body,
        key_id: Some(id),
    })
}

fn wrapping_algorithm(a: Option<&str>) -> Result<WrappingAlgorithm, ApiError> {
    let a = a.ok_or_else(|| ApiError::missing("WrappingAlgorithm"))?;
    if let Some(alg) = WrappingAlgorithm::from_aws(a) {
        return Ok(alg);
    }
    Err(ApiError::validation(format!(
        "1 validation error detected: Value '{a}' at 'wrappingAlgorithm' failed to satisfy constraint: \
         Member must satisfy enum value set: [RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1, RSA_AES_KEY_WRAP_SHA_256, SM2PKE]"
    )))
}

fn wrapping_key_spec(s: Option<&str>) -> Result<KeySpec, ApiError> {
    let s = s.ok_or_else(|| ApiError::missing("WrappingKeySpec"))?;
    match s {
        "RSA_2048" => Ok(KeySpec::Rsa2048),
        "RSA_3072" => Ok(KeySpec::Rsa3072),
        "RSA_4096" => Ok(KeySpec::Rsa4096),
        "SM2" => Ok(KeySpec::Sm2),
        other => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'wrappingKeySpec' failed to satisfy constraint: \
             Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, SM2]"
        ))),
    }
}

/// `ExpirationModel` and `ValidTo` as AWS pairs them: the default model
/// (KEY_MATERIAL_EXPIRES) needs a `ValidTo`, KEY_MATERIAL_DOES_NOT_EXPIRE
/// takes none. Returns when the material expires (ms), if it does.
fn expiration(model: Option<&str>, valid_to: Option<f64>) -> Result<Option<u64>, ApiError> {
    match model.unwrap_or("KEY_MATERIAL_EXPIRES") {
        "KEY_MATERIAL_EXPIRES" => {
            let v = valid_to.ok_or_else(|| {
                ApiError::validation(
                    "ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES",
                )
            })?;
            if !v.is_finite() || v <= 0.0 || v > 1e13 {
                return Err(ApiError::validation(format!("ValidTo {v} is not a valid time")));
            }
            Ok(Some((v * 1000.0) as u64))
        }
        "KEY_MATERIAL_DOES_NOT_EXPIRE" => {
            if valid_to.is_some() {
                return Err(ApiError::validation(
                    "ValidTo must be omitted when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE",
                ));
            }
            Ok(None)
        }
        other => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'expirationModel' failed to satisfy constraint: \
             Member must satisfy enum value set: [KEY_MATERIAL_EXPIRES, KEY_MATERIAL_DOES_NOT_EXPIRE]"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_model_and_valid_to_go_together() {
        assert_eq!(expiration(None, Some(2.5)).unwrap(), Some(2500));
        assert_eq!(
            expiration(Some("KEY_MATERIAL_EXPIRES"), Some(10.0)).unwrap(),
            Some(10_000)
        );
        assert_eq!(
            expiration(Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), None).unwrap(),
            None
        );
        for (m, v) in [
            (None, None),
            (Some("KEY_MATERIAL_EXPIRES"), None),
            (Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), Some(10.0)),
            (Some("NEVER"), None),
            (None, Some(f64::NAN)),
            (None, Some(-1.0)),
        ] {
            assert_eq!(
                expiration(m, v).unwrap_err().code,
                "ValidationException",
                "{m:?} {v:?}"
            );
        }
    }

    #[test]
    fn wrapping_parameters_are_aws_names() {
        for a in WrappingAlgorithm::ALL {
            assert_eq!(wrapping_algorithm(Some(a.as_aws())).unwrap(), a);
        }
        assert_eq!(
            wrapping_algorithm(Some("SM2PKE")).unwrap(),
            WrappingAlgorithm::Sm2Pke
        );
        assert_eq!(wrapping_key_spec(Some("SM2")).unwrap(), KeySpec::Sm2);
        assert_eq!(
            wrapping_algorithm(Some("RSA")).unwrap_err().code,
            "ValidationException"
        );
        assert_eq!(
            wrapping_algorithm(None).unwrap_err().code,
            "ValidationException"
        );
        assert_eq!(
            wrapping_key_spec(Some("RSA_3072")).unwrap(),
            KeySpec::Rsa3072
        );
        assert_eq!(
            wrapping_key_spec(Some("RSA_1024")).unwrap_err().code,
            "ValidationException"
        );
    }
}
