//! Alibaba Cloud KMS actions (API version 2016-01-20) translated to the
//! operations Arca serves, and their answers and errors translated back.
//! Pure: no I/O; what needs the key's record (its primary version, a
//! version's creation date) is handed in as [`KeyFacts`].

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::ops::Op;

pub type Params = BTreeMap<String, String>;

/// Key specs: Alibaba's name and Arca's (AWS's).
const SPECS: &[(&str, &str)] = &[
    ("Aliyun_AES_256", "SYMMETRIC_DEFAULT"),
    ("RSA_2048", "RSA_2048"),
    ("RSA_3072", "RSA_3072"),
    ("EC_P256", "ECC_NIST_P256"),
    ("EC_P256K", "ECC_SECG_P256K1"),
    ("EC_SM2", "SM2"),
];

/// Key usages: Alibaba's name and Arca's.
const USAGES: &[(&str, &str)] = &[
    ("ENCRYPT/DECRYPT", "ENCRYPT_DECRYPT"),
    ("SIGN/VERIFY", "SIGN_VERIFY"),
];

/// Signing algorithms: Alibaba's name and Arca's.
const SIGNING: &[(&str, &str)] = &[
    ("RSA_PSS_SHA_256", "RSASSA_PSS_SHA_256"),
    ("RSA_PKCS1_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256"),
    ("ECDSA_SHA_256", "ECDSA_SHA_256"),
    ("SM2DSA", "SM2DSA"),
];

/// Encryption algorithms Alibaba names for asymmetric keys (the same names).
const ENCRYPTION: &[&str] = &["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"];

/// The Alibaba name of an Arca key spec (Arca's own name where Alibaba has none).
pub fn spec_to_alibaba(aws: &str) -> &str {
    SPECS
        .iter()
        .find(|(_, a)| *a == aws)
        .map_or(aws, |(ali, _)| ali)
}

pub fn usage_to_alibaba(aws: &str) -> &str {
    USAGES
        .iter()
        .find(|(_, a)| *a == aws)
        .map_or(aws, |(ali, _)| ali)
}

fn lookup(
    table: &[(&str, &'static str)],
    name: &str,
    field: &str,
) -> Result<&'static str, ApiError> {
    table
        .iter()
        .find(|(ali, _)| *ali == name)
        .map(|(_, aws)| *aws)
        .ok_or_else(|| {
            let allowed: Vec<&str> = table.iter().map(|(a, _)| *a).collect();
            invalid(format!(
                "The value '{name}' of {field} is not valid; expected one of {}",
                allowed.join(", ")
            ))
        })
}

pub fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "InvalidParameter", message)
}

pub fn missing(name: &str) -> ApiError {
    ApiError::new(
        400,
        "MissingParameter",
        format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
    )
}

fn unsupported(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "UnsupportedOperation", message)
}

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    p.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing(name))
}

fn integer(p: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    p.get(name)
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| invalid(format!("{name} must be an integer")))
        })
        .transpose()
}

fn boolean(p: &Params, name: &str) -> Result<Option<bool>, ApiError> {
    match p.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(invalid(format!("{name} must be true or false"))),
    }
}

/// An encryption context: a JSON object of strings, given as a string.
fn context(p: &Params, name: &str) -> Result<Option<Value>, ApiError> {
    let Some(raw) = p.get(name) else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(raw)
        .map_err(|_| invalid(format!("{name} must be a JSON object of strings")))?;
    match &v {
        Value::Object(m) if m.values().all(Value::is_string) => Ok(Some(v)),
        _ => Err(invalid(format!("{name} must be a JSON object of strings"))),
    }
}

/// Tags: a JSON array of `{"TagKey": .., "TagValue": ..}`, given as a string.
fn tags(raw: &str) -> Result<Value, ApiError> {
    let v: Vec<Map<String, Value>> = serde_json::from_str(raw).map_err(|_| {
        invalid("Tags must be a JSON array of {\"TagKey\": ..., \"TagValue\": ...}")
    })?;
    let mut out = Vec::with_capacity(v.len());
    for t in v {
        match (t.get("TagKey"), t.get("TagValue")) {
            (Some(Value::String(k)), Some(Value::String(val))) => {
                out.push(json!({ "TagKey": k, "TagValue": val }))
            }
            _ => {
                return Err(invalid(
                    "each tag must have a string TagKey and a string TagValue",
                ))
            }
        }
    }
    Ok(Value::Array(out))
}

/// Paging: `PageNumber` (from 1) and `PageSize` (1 to 100, default 10).
pub fn page(p: &Params) -> Result<(usize, usize), ApiError> {
    let number = integer(p, "PageNumber")?.unwrap_or(1);
    let size = integer(p, "PageSize")?.unwrap_or(10);
    if number < 1 {
        return Err(invalid("PageNumber must be at least 1"));
    }
    if !(1..=100).contains(&size) {
        return Err(invalid("PageSize must be between 1 and 100"));
    }
    Ok((number as usize, size as usize))
}

/// The asymmetric actions' rule: the key version is named.
fn version(p: &Params) -> Result<&str, ApiError> {
    required(p, "KeyVersionId")
}

fn set(m: &mut Value, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        m[k] = v;
    }
}

fn dry(p: &Params, body: &mut Value) -> Result<(), ApiError> {
    set(body, "DryRun", boolean(p, "DryRun")?.map(Value::Bool));
    Ok(())
}

/// Translates an Alibaba action and its parameters into the operation that
/// serves it and that operation's input.
pub fn request(action: &str, p: &Params) -> Result<(Op, Value), ApiError> {
    let key = || required(p, "KeyId");
    let key_only =
        |op: Op| -> Result<(Op, Value), ApiError> { Ok((op, json!({ "KeyId": key()? }))) };
    match action {
        "CreateKey" => {
            let spec = lookup(
                SPECS,
                p.get("KeySpec").map_or("Aliyun_AES_256", String::as_str),
                "KeySpec",
            )?;
            let usage = lookup(
                USAGES,
                p.get("KeyUsage").map_or("ENCRYPT/DECRYPT", String::as_str),
                "KeyUsage",
            )?;
            let origin = match p.get("Origin").map_or("Aliyun_KMS", String::as_str) {
                "Aliyun_KMS" => None,
                // A key without material until ImportKeyMaterial.
                "EXTERNAL" => Some("EXTERNAL"),
                o => {
                    return Err(unsupported(format!(
                        "Origin '{o}' is not supported: Aliyun_KMS (generated by Arca) or EXTERNAL (imported)"
                    )))
                }
            };
            if let Some(l) = p.get("ProtectionLevel").filter(|l| *l != "SOFTWARE") {
                return Err(unsupported(format!(
                    "ProtectionLevel '{l}' is not supported; keys are protected in software"
                )));
            }
            if boolean(p, "EnableAutomaticRotation")? == Some(true) {
                return Err(unsupported("automatic rotation is enabled after creation (EnableKeyRotation through the AWS API)"));
            }
            if p.get("Policy").is_some_and(|v| !v.is_empty()) {
                return Err(unsupported("Alibaba key policies are not supported; set an AWS-style key policy through PutKeyPolicy"));
            }
            if p.get("DKMSInstanceId").is_some_and(|v| !v.is_empty()) {
                return Err(unsupported(
                    "KMS instances (DKMSInstanceId) are not supported",
                ));
            }
            let mut body = json!({ "KeySpec": spec, "KeyUsage": usage });
            set(&mut body, "Origin", origin.map(|o| json!(o)));
            set(
                &mut body,
                "Description",
                p.get("Description").map(|d| json!(d)),
            );
            if let Some(t) = p.get("Tags") {
                body["Tags"] = tags(t)?;
            }
            Ok((Op::CreateKey, body))
        }
        "DescribeKey" => key_only(Op::DescribeKey),
        "ListKeys" => {
            page(p)?;
            if p.get("Filters").is_some_and(|f| !f.is_empty() && f != "[]") {
                return Err(unsupported("ListKeys Filters are not supported"));
            }
            Ok((Op::ListKeys, json!({ "Limit": 1000 })))
        }
        "EnableKey" => key_only(Op::EnableKey),
        "DisableKey" => key_only(Op::DisableKey),
        "CancelKeyDeletion" => key_only(Op::CancelKeyDeletion),
        "ScheduleKeyDeletion" => {
            let days =
                integer(p, "PendingWindowInDays")?.ok_or_else(|| missing("PendingWindowInDays"))?;
            Ok((
                Op::ScheduleKeyDeletion,
                json!({ "KeyId": key()?, "PendingWindowInDays": days }),
            ))
        }
        "UpdateKeyDescription" => Ok((
            Op::UpdateKeyDescription,
            json!({ "KeyId": key()?, "Description": required(p, "Description")? }),
        )),
        "CreateKeyVersion" => key_only(Op::CreateKeyVersion),
        "ListKeyVersions" => {
            page(p)?;
            Ok((
                Op::ListKeyVersions,
                json!({ "KeyId": key()?, "Limit": 1000 }),
            ))
        }
        "DescribeKeyVersion" => Ok((
            Op::DescribeKeyVersion,
            json!({ "KeyId": key()?, "KeyVersionId": version(p)? }),
        )),
        "GetPublicKey" => Ok((
            Op::GetPublicKey,
            json!({ "KeyId": key()?, "KeyVersionId": version(p)? }),
        )),
        "AsymmetricSign" | "AsymmetricVerify" => {
            let mut body = json!({
                "KeyId": key()?,
                "KeyVersionId": version(p)?,
                "SigningAlgorithm": lookup(SIGNING, required(p, "Algorithm")?, "Algorithm")?,
                "Message": required(p, "Digest")?,
                "MessageType": "DIGEST",
            });
            dry(p, &mut body)?;
            if action == "AsymmetricSign" {
                Ok((Op::Sign, body))
            } else {
                body["Signature"] = json!(required(p, "Value")?);
                Ok((Op::Verify, body))
            }
        }
        "AsymmetricEncrypt" | "AsymmetricDecrypt" => {
            let alg = required(p, "Algorithm")?;
            if !ENCRYPTION.contains(&alg) {
                return Err(invalid(format!(
                    "The value '{alg}' of Algorithm is not valid; expected one of {}",
                    ENCRYPTION.join(", ")
                )));
            }
            let mut body = json!({
                "KeyId": key()?,
                "KeyVersionId": version(p)?,
                "EncryptionAlgorithm": alg,
            });
            dry(p, &mut body)?;
            if action == "AsymmetricEncrypt" {
                body["Plaintext"] = json!(required(p, "Plaintext")?);
                Ok((Op::Encrypt, body))
            } else {
                body["CiphertextBlob"] = json!(required(p, "CiphertextBlob")?);
                Ok((Op::Decrypt, body))
            }
        }
        "Encrypt" => {
            let mut body = json!({ "KeyId": key()?, "Plaintext": required(p, "Plaintext")? });
            set(
                &mut body,
                "EncryptionContext",
                context(p, "EncryptionContext")?,
            );
            dry(p, &mut body)?;
            Ok((Op::Encrypt, body))
        }
        "Decrypt" => {
            let mut body = json!({ "CiphertextBlob": required(p, "CiphertextBlob")? });
            set(
                &mut body,
                "EncryptionContext",
                context(p, "EncryptionContext")?,
            );
            dry(p, &mut body)?;
            Ok((Op::Decrypt, body))
        }
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
            let mut body = json!({ "KeyId": key()? });
            match (p.get("KeySpec"), integer(p, "NumberOfBytes")?) {
                (_, Some(n)) => body["NumberOfBytes"] = json!(n),
                (Some(s), None) if s == "AES_256" || s == "AES_128" => body["KeySpec"] = json!(s),
                (Some(s), None) => {
                    return Err(invalid(format!(
                        "The value '{s}' of KeySpec is not valid; expected AES_256 or AES_128"
                    )))
                }
                (None, None) => body["KeySpec"] = json!("AES_256"),
            }
            set(
                &mut body,
                "EncryptionContext",
                context(p, "EncryptionContext")?,
            );
            dry(p, &mut body)?;
            let op = if action == "GenerateDataKey" {
                Op::GenerateDataKey
            } else {
                Op::GenerateDataKeyWithoutPlaintext
            };
            Ok((op, body))
        }
        "ReEncrypt" => {
            let mut body = json!({
                "CiphertextBlob": required(p, "CiphertextBlob")?,
                "DestinationKeyId": required(p, "DestinationKeyId")?,
            });
            set(
                &mut body,
                "DestinationEncryptionContext",
                context(p, "DestinationEncryptionContext")?,
            );
            set(
                &mut body,
                "SourceEncryptionContext",
                context(p, "SourceEncryptionContext")?,
            );
            for k in [
                "SourceKeyId",
                "SourceKeyVersionId",
                "SourceEncryptionAlgorithm",
            ] {
                set(&mut body, k, p.get(k).map(|v| json!(v)));
            }
            dry(p, &mut body)?;
            Ok((Op::ReEncrypt, body))
        }
        "CreateAlias" | "UpdateAlias" => {
            let body = json!({ "AliasName": required(p, "AliasName")?, "TargetKeyId": key()? });
            let op = if action == "CreateAlias" {
                Op::CreateAlias
            } else {
                Op::UpdateAlias
            };
            Ok((op, body))
        }
        "DeleteAlias" => Ok((
            Op::DeleteAlias,
            json!({ "AliasName": required(p, "AliasName")? }),
        )),
        "ListAliases" => {
            page(p)?;
            Ok((Op::ListAliases, json!({ "Limit": 100 })))
        }
        "ListAliasesByKeyId" => {
            page(p)?;
            Ok((Op::ListAliases, json!({ "KeyId": key()?, "Limit": 100 })))
        }
        "TagResource" => {
            only_keys(p)?;
            Ok((
                Op::TagResource,
                json!({ "KeyId": key()?, "Tags": tags(required(p, "Tags")?)? }),
            ))
        }
        "UntagResource" => {
            only_keys(p)?;
            let names: Vec<String> = serde_json::from_str(required(p, "TagKeys")?)
                .map_err(|_| invalid("TagKeys must be a JSON array of strings"))?;
            Ok((
                Op::UntagResource,
                json!({ "KeyId": key()?, "TagKeys": names }),
            ))
        }
        "ListResourceTags" => Ok((
            Op::ListResourceTags,
            json!({ "KeyId": key()?, "Limit": 50 }),
        )),
        "GenerateRandom" => {
            let n = integer(p, "NumberOfBytes")?.ok_or_else(|| missing("NumberOfBytes"))?;
            Ok((Op::GenerateRandom, json!({ "NumberOfBytes": n })))
        }
        "GetParametersForImport" => {
            let algorithm = match required(p, "WrappingAlgorithm")? {
                a @ ("RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256" | "SM2PKE") => a,
                "RSAES_PKCS1_V1_5" => {
                    return Err(unsupported(
                        "WrappingAlgorithm 'RSAES_PKCS1_V1_5' is not supported: RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256 or SM2PKE",
                    ))
                }
                a => return Err(invalid(format!("WrappingAlgorithm '{a}' is not valid"))),
            };
            let spec = match required(p, "WrappingKeySpec")? {
                "RSA_2048" => "RSA_2048",
                "EC_SM2" => "SM2",
                s => return Err(invalid(format!("WrappingKeySpec '{s}' is not valid"))),
            };
            Ok((
                Op::GetParametersForImport,
                json!({ "KeyId": key()?, "WrappingAlgorithm": algorithm, "WrappingKeySpec": spec }),
            ))
        }
        "ImportKeyMaterial" => {
            let mut body = json!({
                "KeyId": key()?,
                "ImportToken": required(p, "ImportToken")?,
                "EncryptedKeyMaterial": required(p, "EncryptedKeyMaterial")?,
            });
            // Alibaba: seconds since the epoch, 0 (the default) for never.
            match integer(p, "KeyMaterialExpireUnix")?.unwrap_or(0) {
                0 => body["ExpirationModel"] = json!("KEY_MATERIAL_DOES_NOT_EXPIRE"),
                t if t > 0 => {
                    body["ExpirationModel"] = json!("KEY_MATERIAL_EXPIRES");
                    body["ValidTo"] = json!(t);
                }
                _ => return Err(invalid("KeyMaterialExpireUnix must not be negative")),
            }
            Ok((Op::ImportKeyMaterial, body))
        }
        other => Err(ApiError::new(
            404,
            "InvalidAction.NotFound",
            format!("The action '{other}' is not served by this endpoint."),
        )),
    }
}

/// Tags are served on keys only (not secrets or certificates).
fn only_keys(p: &Params) -> Result<(), ApiError> {
    for k in ["SecretName", "CertificateId"] {
        if p.get(k).is_some_and(|v| !v.is_empty()) {
            return Err(unsupported(format!(
                "{k}: only keys are served; tag a key with KeyId"
            )));
        }
    }
    Ok(())
}

/// What the answer needs to know of the key that the AWS-shaped answer
/// does not say.
#[derive(Default, Debug)]
pub struct KeyFacts {
    /// The key's primary (newest) version.
    pub primary_version: Option<String>,
    /// A version's creation time (unix ms), for CreateKeyVersion.
    pub version_created_ms: Option<u64>,
    /// Whether automatic rotation is on.
    pub rotation: bool,
}

/// `arn:aws:kms:<region>:<account>:key/<id>` as Alibaba writes it:
/// `acs:kms:<region>:<account>:key/<id>`.
pub fn acs_arn(aws: &str) -> String {
    match aws.strip_prefix("arn:aws:kms:") {
        Some(rest) => format!("acs:kms:{rest}"),
        None => aws.to_owned(),
    }
}

/// A key's id from its ARN (or the id itself).
pub fn bare_key_id(v: &Value) -> Value {
    match v.as_str() {
        Some(s) => json!(s.rsplit_once("key/").map_or(s, |(_, id)| id)),
        None => Value::Null,
    }
}

/// Unix seconds (fractional, as the AWS answers carry them) in ISO 8601.
fn iso(v: &Value) -> Value {
    match v.as_f64() {
        Some(s) => json!(arca_sigv4::format_rfc3339(s as i64)),
        None => Value::Null,
    }
}

fn iso_ms(ms: u64) -> Value {
    json!(arca_sigv4::format_rfc3339((ms / 1000) as i64))
}

fn paged(all: Vec<Value>, p: &Params, outer: &str, inner: &str) -> Result<Value, ApiError> {
    let (number, size) = page(p)?;
    let total = all.len();
    let items: Vec<Value> = all
        .into_iter()
        .skip((number - 1) * size)
        .take(size)
        .collect();
    Ok(json!({
        outer: { inner: items },
        "TotalCount": total,
        "PageNumber": number,
        "PageSize": size,
    }))
}

fn key_metadata(m: &Value, facts: &KeyFacts) -> Value {
    let mut out = json!({
        "KeyId": m["KeyId"],
        "Arn": acs_arn(m["Arn"].as_str().unwrap_or_default()),
        "CreationDate": iso(&m["CreationDate"]),
        "Creator": m["AWSAccountId"],
        "Description": m["Description"],
        "KeyState": m["KeyState"],
        "KeyUsage": usage_to_alibaba(m["KeyUsage"].as_str().unwrap_or_default()),
        "KeySpec": spec_to_alibaba(m["KeySpec"].as_str().unwrap_or_default()),
        "Origin": if m["Origin"] == "EXTERNAL" { "EXTERNAL" } else { "Aliyun_KMS" },
        "ProtectionLevel": "SOFTWARE",
        "AutomaticRotation": if facts.rotation { "Enabled" } else { "Disabled" },
    });
    set(
        &mut out,
        "PrimaryKeyVersion",
        facts.primary_version.as_ref().map(|v| json!(v)),
    );
    if !m["DeletionDate"].is_null() {
        out["DeleteDate"] = iso(&m["DeletionDate"]);
    }
    out
}

fn version_json(v: &Value) -> Value {
    json!({
        "KeyId": bare_key_id(&v["KeyId"]),
        "KeyVersionId": v["KeyVersionId"],
        "CreationDate": iso(&v["CreationDate"]),
    })
}

/// The PEM form of a base64 SubjectPublicKeyInfo.
fn pem(spki_b64: &str) -> Result<String, ApiError> {
    let der = B64
        .decode(spki_b64)
        .map_err(|_| ApiError::internal("a public key is not base64"))?;
    let body = B64.encode(der);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    Ok(out)
}

/// Translates the answer of the operation that served `action` into
/// Alibaba's answer (without the `RequestId`, which the caller adds).
pub fn response(action: &str, p: &Params, v: &Value, facts: &KeyFacts) -> Result<Value, ApiError> {
    let primary = facts.primary_version.as_ref().map(|v| json!(v));
    let out = match action {
        "CreateKey" | "DescribeKey" => {
            json!({ "KeyMetadata": key_metadata(&v["KeyMetadata"], facts) })
        }
        "ListKeys" => {
            let all = v["Keys"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|k| json!({ "KeyId": k["KeyId"], "KeyArn": acs_arn(k["KeyArn"].as_str().unwrap_or_default()) }))
                        .collect()
                })
                .unwrap_or_default();
            paged(all, p, "Keys", "Key")?
        }
        "CreateKeyVersion" => json!({ "KeyVersion": {
            "KeyId": bare_key_id(&v["KeyId"]),
            "KeyVersionId": v["KeyVersionId"],
            "CreationDate": facts.version_created_ms.map_or(Value::Null, iso_ms),
        }}),
        "ListKeyVersions" => {
            let all = v["KeyVersions"]
                .as_array()
                .map(|a| a.iter().map(version_json).collect())
                .unwrap_or_default();
            paged(all, p, "KeyVersions", "KeyVersion")?
        }
        "DescribeKeyVersion" => json!({ "KeyVersion": version_json(&v["KeyVersion"]) }),
        "GetPublicKey" => json!({
            "KeyId": bare_key_id(&v["KeyId"]),
            "KeyVersionId": v["KeyVersionId"],
            "PublicKey": pem(v["PublicKey"].as_str().unwrap_or_default())?,
        }),
        "AsymmetricSign" => json!({
            "KeyId": bare_key_id(&v["KeyId"]),
            "KeyVersionId": v["KeyVersionId"],
            "Value": v["Signature"],
        }),
        "AsymmetricVerify" => json!({
            "KeyId": bare_key_id(&v["KeyId"]),
            "KeyVersionId": v["KeyVersionId"],
            "Value": v["SignatureValid"].as_bool().unwrap_or(false),
        }),
        "AsymmetricEncrypt" => json!({
            "KeyId": bare_key_id(&v["KeyId"]),
            "KeyVersionId": v["KeyVersionId"],
            "CiphertextBlob": v["CiphertextBlob"],
        }),
        "AsymmetricDecrypt" => json!({
            "KeyId": bare_key_id(&v["KeyId"]),
            "KeyVersionId": v["KeyVersionId"],
            "Plaintext": v["Plaintext"],
        }),
        "Encrypt" | "GenerateDataKeyWithoutPlaintext" | "ReEncrypt" => {
            let mut out =
                json!({ "KeyId": bare_key_id(&v["KeyId"]), "CiphertextBlob": v["CiphertextBlob"] });
            set(&mut out, "KeyVersionId", primary);
            out
        }
        "GenerateDataKey" => {
            let mut out = json!({
                "KeyId": bare_key_id(&v["KeyId"]),
                "CiphertextBlob": v["CiphertextBlob"],
                "Plaintext": v["Plaintext"],
            });
            set(&mut out, "KeyVersionId", primary);
            out
        }
        "Decrypt" => {
            let mut out = json!({ "KeyId": bare_key_id(&v["KeyId"]), "Plaintext": v["Plaintext"] });
            set(&mut out, "KeyVersionId", v.get("KeyVersionId").cloned());
            out
        }
        "ListAliases" | "ListAliasesByKeyId" => {
            let all = v["Aliases"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| {
                            json!({
                                "AliasName": x["AliasName"],
                                "AliasArn": acs_arn(x["AliasArn"].as_str().unwrap_or_default()),
                                "KeyId": x["TargetKeyId"],
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            paged(all, p, "Aliases", "Alias")?
        }
        "ListResourceTags" => {
            let id = p.get("KeyId").cloned().unwrap_or_default();
            let tags: Vec<Value> = v["Tags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| json!({ "KeyId": id, "TagKey": t["TagKey"], "TagValue": t["TagValue"] }))
                        .collect()
                })
                .unwrap_or_default();
            json!({ "Tags": { "Tag": tags } })
        }
        "GenerateRandom" => json!({ "Random": v["Plaintext"] }),
        "GetParametersForImport" => json!({
            "KeyId": bare_key_id(&v["KeyId"]),
            "ImportToken": v["ImportToken"],
            "PublicKey": v["PublicKey"],
            "TokenExpireTime": iso(&v["ParametersValidTo"]),
        }),
        _ => json!({}),
    };
    Ok(out)
}

/// Alibaba's code and HTTP status for an error of the shared operations
/// (which speak AWS's codes); an error already in Alibaba's terms is kept.
pub fn error(e: &ApiError) -> (u16, &'static str) {
    let msg = e.message.as_str();
    match e.code {
        "NotFoundException" => {
            if msg.starts_with("Key version") {
                (404, "Forbidden.KeyVersionNotFound")
            } else if msg.starts_with("Alias") {
                (404, "Forbidden.AliasNotFound")
            } else {
                (404, "Forbidden.KeyNotFound")
            }
        }
        "DisabledException" => (400, "Rejected.Disabled"),
        "KMSInvalidStateException" => {
            if msg.contains("PendingDeletion") || msg.contains("pending deletion") {
                (400, "Rejected.PendingDeletion")
            } else {
                (400, "Rejected.UnexpectedState")
            }
        }
        "ValidationException"
        | "SerializationException"
        | "InvalidMarkerException"
        | "InvalidAliasNameException"
        | "TagException"
        | "IncorrectKeyException"
        // Import: the message says which (token invalid or expired, other
        // material).
        | "InvalidImportTokenException"
        | "ExpiredImportTokenException"
        | "IncorrectKeyMaterialException" => (400, "InvalidParameter"),
        "InvalidCiphertextException" => (400, "Rejected.InvalidCiphertext"),
        "InvalidKeyUsageException" => (400, "Rejected.InvalidKeyUsage"),
        "AccessDeniedException" => (403, "Forbidden.NoPermission"),
        "AlreadyExistsException" => (400, "Rejected.ResourceExist"),
        "LimitExceededException" => (400, "Rejected.LimitExceeded"),
        "UnsupportedOperationException" => (400, "UnsupportedOperation"),
        "KMSInvalidSignatureException" => (400, "Rejected.InvalidSignature"),
        "DryRunOperationException" => (400, "DryRunOperationError"),
        "ThrottlingException" => (400, "Throttling.User"),
        "DependencyTimeoutException" => (503, "ServiceUnavailableTemporary"),
        "KMSInternalException" => (500, "InternalFailure"),
        "RequestTimeoutException" => (408, "RequestTimeout"),
        "UnknownOperationException" => (404, "InvalidAction.NotFound"),
        other => (e.status, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_translate_both_ways() {
        for (ali, aws) in SPECS {
            assert_eq!(spec_to_alibaba(aws), *ali);
            let (op, body) = request("CreateKey", &params(&[("KeySpec", ali)])).unwrap();
            assert_eq!(op, Op::CreateKey);
            assert_eq!(body["KeySpec"], *aws);
        }
        for (ali, aws) in USAGES {
            assert_eq!(usage_to_alibaba(aws), *ali);
        }
        assert_eq!(
            request("CreateKey", &params(&[("KeySpec", "Aliyun_SM4")]))
                .unwrap_err()
                .code,
            "InvalidParameter"
        );
        let (_, b) = request(
            "AsymmetricSign",
            &params(&[
                ("KeyId", "k"),
                ("KeyVersionId", "v"),
                ("Algorithm", "RSA_PSS_SHA_256"),
                ("Digest", "AA=="),
            ]),
        )
        .unwrap();
        assert_eq!(b["SigningAlgorithm"], "RSASSA_PSS_SHA_256");
        assert_eq!(b["MessageType"], "DIGEST");
    }

    #[test]
    fn asymmetric_actions_need_the_key_version() {
        let base = [
            ("KeyId", "k"),
            ("Algorithm", "RSAES_OAEP_SHA_256"),
            ("Plaintext", "AA=="),
            ("CiphertextBlob", "AA=="),
        ];
        for action in ["AsymmetricEncrypt", "AsymmetricDecrypt", "GetPublicKey"] {
            let e = request(action, &params(&base)).unwrap_err();
            assert_eq!((e.status, e.code), (400, "MissingParameter"), "{action}");
            assert!(e.message.contains("KeyVersionId"));
        }
        let sign = [
            ("KeyId", "k"),
            ("Algorithm", "ECDSA_SHA_256"),
            ("Digest", "AA=="),
            ("Value", "AA=="),
        ];
        for action in ["AsymmetricSign", "AsymmetricVerify"] {
            assert_eq!(
                request(action, &params(&sign)).unwrap_err().code,
                "MissingParameter"
            );
        }
    }

    #[test]
    fn contexts_and_tags_are_json_strings() {
        let (_, b) = request(
            "Encrypt",
            &params(&[
                ("KeyId", "k"),
                ("Plaintext", "AA=="),
                ("EncryptionContext", "{\"a\":\"b\"}"),
            ]),
        )
        .unwrap();
        assert_eq!(b["EncryptionContext"], json!({"a": "b"}));
        for bad in ["[1]", "{\"a\":1}", "not json"] {
            let e = request(
                "Encrypt",
                &params(&[
                    ("KeyId", "k"),
                    ("Plaintext", "AA=="),
                    ("EncryptionContext", bad),
                ]),
            )
            .unwrap_err();
            assert_eq!(e.code, "InvalidParameter", "{bad}");
        }
        let (_, b) = request(
            "TagResource",
            &params(&[
                ("KeyId", "k"),
                ("Tags", "[{\"TagKey\":\"a\",\"TagValue\":\"b\"}]"),
            ]),
        )
        .unwrap();
        assert_eq!(b["Tags"], json!([{"TagKey": "a", "TagValue": "b"}]));
        assert!(request(
            "TagResource",
            &params(&[("KeyId", "k"), ("Tags", "[{\"TagKey\":\"a\"}]")])
        )
        .is_err());
    }

    #[test]
    fn errors_use_alibaba_codes() {
        let cases = [
            (
                "NotFoundException",
                "Key 'x' does not exist",
                404,
                "Forbidden.KeyNotFound",
            ),
            (
                "NotFoundException",
                "Key version 'v' of key 'k' does not exist",
                404,
                "Forbidden.KeyVersionNotFound",
            ),
            (
                "NotFoundException",
                "Alias alias/x is not found.",
                404,
                "Forbidden.AliasNotFound",
            ),
            (
                "DisabledException",
                "Key 'x' is disabled.",
                400,
                "Rejected.Disabled",
            ),
            (
                "KMSInvalidStateException",
                "Key 'x' is pending deletion.",
                400,
                "Rejected.PendingDeletion",
            ),
            ("ValidationException", "x", 400, "InvalidParameter"),
            ("AccessDeniedException", "x", 403, "Forbidden.NoPermission"),
            ("KMSInternalException", "x", 500, "InternalFailure"),
            ("MissingParameter", "x", 400, "MissingParameter"),
        ];
        for (code, msg, status, ali) in cases {
            assert_eq!(
                error(&ApiError::new(400, code, msg)),
                (status, ali),
                "{code}"
            );
        }
    }

    #[test]
    fn paging_and_answers() {
        let all: Vec<Value> = (0..25).map(|i| json!(i)).collect();
        let v = paged(
            all,
            &params(&[("PageNumber", "3"), ("PageSize", "10")]),
            "Keys",
            "Key",
        )
        .unwrap();
        assert_eq!(v["Keys"]["Key"], json!([20, 21, 22, 23, 24]));
        assert_eq!(v["TotalCount"], 25);
        assert!(page(&params(&[("PageSize", "101")])).is_err());
        assert!(page(&params(&[("PageNumber", "0")])).is_err());
        assert_eq!(acs_arn("arn:aws:kms:r:1:key/abc"), "acs:kms:r:1:key/abc");
        assert_eq!(bare_key_id(&json!("arn:aws:kms:r:1:key/abc")), json!("abc"));
        let p = pem("AAEC").unwrap();
        assert!(p.starts_with("-----BEGIN PUBLIC KEY-----\nAAEC\n"));
    }
}
