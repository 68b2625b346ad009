//! Operations of asymmetric and HMAC keys: Sign, Verify, GetPublicKey,
//! asymmetric Encrypt/Decrypt, ReEncrypt, GenerateMac, VerifyMac, data key
//! pairs, DeriveSharedSecret, Encapsulate/Decapsulate (ML-KEM), the
//! key-version extension operations and certificate signing requests.

use std::collections::BTreeMap;

use arca_crypto::symmetric::MAX_CIPHERTEXT_LEN;
use arca_crypto::SecretBytes;
use arca_keys::csr::{CsrError, CsrInput, SanInput};
use arca_keys::{
    EncapsulationAlgorithm, EncryptionAlgorithm, KeyAgreementAlgorithm, MacAlgorithm, MessageType,
    SigningAlgorithm,
};
use arca_node::actors::{KeyOp, KeyOut};
use arca_node::Node;
use arca_state::{KeyId, KeySpec, KeyUsage};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{blob, context, dry_run, parse, secs, Answer, Ctx};
use crate::error::ApiError;
use crate::ops::Op;
use crate::paging;

/// The largest RAW message Sign and Verify take; DIGEST messages must be a digest.
const MAX_MESSAGE: usize = 4096;

fn enum_error(field: &str, value: &str, allowed: &[&str]) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: \
         Member must satisfy enum value set: [{}]",
        allowed.join(", ")
    ))
}

fn signing_alg(v: Option<String>) -> Result<SigningAlgorithm, ApiError> {
    let v = v.ok_or_else(|| ApiError::missing("SigningAlgorithm"))?;
    SigningAlgorithm::from_aws(&v).ok_or_else(|| {
        let all: Vec<&str> = SigningAlgorithm::ALL.iter().map(|a| a.as_aws()).collect();
        enum_error("signingAlgorithm", &v, &all)
    })
}

pub(crate) fn encryption_alg(v: &str) -> Result<EncryptionAlgorithm, ApiError> {
    EncryptionAlgorithm::from_aws(v).ok_or_else(|| {
        enum_error(
            "encryptionAlgorithm",
            v,
            &[
                "SYMMETRIC_DEFAULT",
                "RSAES_OAEP_SHA_1",
                "RSAES_OAEP_SHA_256",
                "SM2PKE",
            ],
        )
    })
}

fn mac_alg(v: Option<String>) -> Result<MacAlgorithm, ApiError> {
    let v = v.ok_or_else(|| ApiError::missing("MacAlgorithm"))?;
    MacAlgorithm::from_aws(&v).ok_or_else(|| {
        let all: Vec<&str> = MacAlgorithm::ALL.iter().map(|a| a.as_aws()).collect();
        enum_error("macAlgorithm", &v, &all)
    })
}

fn message_type(v: Option<String>) -> Result<MessageType, ApiError> {
    match v.as_deref() {
        None | Some("RAW") => Ok(MessageType::Raw),
        Some("DIGEST") => Ok(MessageType::Digest),
        Some("EXTERNAL_MU") => Ok(MessageType::ExternalMu),
        Some(o) => Err(enum_error(
            "messageType",
            o,
            &["RAW", "DIGEST", "EXTERNAL_MU"],
        )),
    }
}

fn bytes(out: KeyOut) -> Result<Vec<u8>, ApiError> {
    match out {
        KeyOut::Bytes(b) => Ok(b),
        _ => Err(ApiError::internal("unexpected result of a key operation")),
    }
}

/// The EncryptionAlgorithm an asymmetric key needs: present and known.
/// The algorithm of an asymmetric Encrypt or Decrypt, once the key's usage
/// is known to be ENCRYPT_DECRYPT: none, or SYMMETRIC_DEFAULT, is a wrong
/// use of the key, as AWS answers it.
fn asymmetric_alg(alg: Option<&str>) -> Result<EncryptionAlgorithm, ApiError> {
    match alg {
        None | Some("SYMMETRIC_DEFAULT") => Err(ApiError::new(
            400,
            "InvalidKeyUsageException",
            "An asymmetric key needs EncryptionAlgorithm RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256 \
             or SM2PKE; SYMMETRIC_DEFAULT is the algorithm of symmetric keys",
        )),
        Some(alg) => encryption_alg(alg),
    }
}

/// Encrypt with an asymmetric key (called from `api::encrypt`).
pub(crate) async fn encrypt(
    node: &Node,
    id: KeyId,
    plaintext: SecretBytes,
    alg: Option<&str>,
    version_id: Option<String>,
) -> Result<Answer, ApiError> {
    node.require_usage(id, KeyUsage::EncryptDecrypt)?;
    let alg = asymmetric_alg(alg)?;
    let (out, vid) = node
        .key_op(
            id,
            KeyUsage::EncryptDecrypt,
            version_id,
            KeyOp::Encrypt { alg, plaintext },
        )
        .await?;
    Ok(Answer {
        body: json!({
            "CiphertextBlob": B64.encode(bytes(out)?),
            "KeyId": node.key_arn(&id)?,
            "EncryptionAlgorithm": alg.as_aws(),
            "KeyVersionId": vid,
        }),
        key_id: Some(id),
    })
}

/// Decrypt with an asymmetric key (called from `api::decrypt`).
pub(crate) async fn decrypt(
    node: &Node,
    id: KeyId,
    ciphertext: Vec<u8>,
    alg: Option<&str>,
    version_id: Option<String>,
) -> Result<(SecretBytes, EncryptionAlgorithm, String), ApiError> {
    node.require_usage(id, KeyUsage::EncryptDecrypt)?;
    let alg = asymmetric_alg(alg)?;
    let (out, vid) = node
        .key_op(
            id,
            KeyUsage::EncryptDecrypt,
            version_id,
            KeyOp::Decrypt { alg, ciphertext },
        )
        .await?;
    match out {
        KeyOut::Secret(s) => Ok((s, alg, vid)),
        _ => Err(ApiError::internal("unexpected result of a key operation")),
    }
}

/// [`crate::api::decode`] for the operations of this module; `None` for others.
pub(crate) fn decode(op: Op, body: &[u8]) -> Option<Result<(), ApiError>> {
    use crate::api::as_;
    match op {
        Op::Sign | Op::Verify => as_::<SignReq>(body),
        Op::GetPublicKey => as_::<PublicKeyReq>(body),
        Op::GenerateMac | Op::VerifyMac => as_::<MacReq>(body),
        Op::GenerateDataKeyPair | Op::GenerateDataKeyPairWithoutPlaintext => as_::<PairReq>(body),
        Op::DeriveSharedSecret => as_::<DeriveReq>(body),
        Op::Encapsulate | Op::Decapsulate => as_::<KemReq>(body),
        Op::ReEncrypt => as_::<ReEncryptReq>(body),
        Op::GenerateCertificateSigningRequest => as_::<CsrReq>(body),
        Op::CreateKeyVersion | Op::ListKeyVersions | Op::DescribeKeyVersion => {
            as_::<VersionReq>(body)
        }
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    message: Option<String>,
    message_type: Option<String>,
    signing_algorithm: Option<String>,
    signature: Option<String>,
    key_version_id: Option<String>,
    #[allow(dead_code)]
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MacReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    message: Option<String>,
    mac_algorithm: Option<String>,
    mac: Option<String>,
    #[allow(dead_code)]
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublicKeyReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    key_version_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PairReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    key_pair_spec: Option<String>,
    encryption_context: Option<BTreeMap<String, String>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeriveReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    key_agreement_algorithm: Option<String>,
    public_key: Option<String>,
    /// A Nitro Enclaves attestation document: refused (no attested environments here).
    recipient: Option<Value>,
    #[allow(dead_code)]
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KemReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    encapsulation_algorithm: Option<String>,
    /// Decapsulate only.
    shared_secret_ciphertext_blob: Option<String>,
    #[allow(dead_code)]
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReEncryptReq {
    ciphertext_blob: Option<String>,
    source_encryption_context: Option<BTreeMap<String, String>>,
    source_key_id: Option<String>,
    source_encryption_algorithm: Option<String>,
    source_key_version_id: Option<String>,
    destination_key_id: Option<String>,
    destination_encryption_context: Option<BTreeMap<String, String>>,
    destination_encryption_algorithm: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CsrReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    subject: Option<String>,
    subject_alternative_names: Option<SansReq>,
    signing_algorithm: Option<String>,
    key_version_id: Option<String>,
    #[allow(dead_code)]
    grant_tokens: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct SansReq {
    dns: Option<Vec<String>>,
    email: Option<Vec<String>>,
    uri: Option<Vec<String>>,
    ip: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersionReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    key_version_id: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

/// Runs an asymmetric, HMAC, re-encryption or key-version operation.
pub async fn run(node: &Node, ctx: &Ctx, op: Op, body: &[u8]) -> Result<Answer, ApiError> {
    match op {
        Op::Sign => {
            let r: SignReq = parse(body)?;
            let message = blob("Message", r.message, 1, MAX_MESSAGE)?;
            let kind = message_type(r.message_type)?;
            let alg = signing_alg(r.signing_algorithm)?;
            let id = ctx.key(0)?;
            dry_run(r.dry_run)?;
            let (out, vid) = node
                .key_op(
                    id,
                    KeyUsage::SignVerify,
                    r.key_version_id,
                    KeyOp::Sign { alg, message, kind },
                )
                .await?;
            Ok(Answer {
                body: json!({
                    "KeyId": node.key_arn(&id)?,
                    "Signature": B64.encode(bytes(out)?),
                    "SigningAlgorithm": alg.as_aws(),
                    "KeyVersionId": vid,
                }),
                key_id: Some(id),
            })
        }
        Op::Verify => {
            let r: SignReq = parse(body)?;
            let message = blob("Message", r.message, 1, MAX_MESSAGE)?;
            let signature = blob("Signature", r.signature, 1, 6144)?;
            let kind = message_type(r.message_type)?;
            let alg = signing_alg(r.signing_algorithm)?;
            let id = ctx.key(0)?;
            dry_run(r.dry_run)?;
            let op = KeyOp::Verify {
                alg,
                message,
                kind,
                signature,
            };
            let (out, vid) = node
                .key_op(id, KeyUsage::SignVerify, r.key_version_id, op)
                .await?;
            match out {
                KeyOut::Valid(true) => Ok(Answer {
                    body: json!({
                        "KeyId": node.key_arn(&id)?,
                        "SignatureValid": true,
                        "SigningAlgorithm": alg.as_aws(),
                        "KeyVersionId": vid,
                    }),
                    key_id: Some(id),
                }),
                _ => Err(arca_node::NodeError::InvalidSignature.into()),
            }
        }
        Op::GetPublicKey => {
            let r: PublicKeyReq = parse(body)?;
            let id = ctx.key(0)?;
            let (spki, vid) = node.public_key(id, r.key_version_id.as_deref()).await?;
            let (spec, usage) = node.spec_of(&id)?;
            let mut body = json!({
                "KeyId": node.key_arn(&id)?,
                "PublicKey": B64.encode(spki),
                "CustomerMasterKeySpec": spec.as_aws(),
                "KeySpec": spec.as_aws(),
                "KeyUsage": usage.as_aws(),
                "KeyVersionId": vid,
            });
            if let Some((field, names)) = spec.listed_algorithms(usage) {
                body[field] = json!(names);
            }
            Ok(Answer {
                body,
                key_id: Some(id),
            })
        }
        Op::GenerateMac | Op::VerifyMac => {
            let r: MacReq = parse(body)?;
            let message = blob("Message", r.message, 1, arca_keys::MAX_MAC_MESSAGE_LEN)?;
            let alg = mac_alg(r.mac_algorithm)?;
            let verify_mac = if op == Op::VerifyMac {
                Some(blob("Mac", r.mac, 1, 6144)?)
            } else {
                None
            };
            let id = ctx.key(0)?;
            dry_run(r.dry_run)?;
            let arn = node.key_arn(&id)?;
            match verify_mac {
                None => {
                    let (out, _) = node
                        .key_op(
                            id,
                            KeyUsage::GenerateVerifyMac,
                            None,
                            KeyOp::Mac { alg, message },
                        )
                        .await?;
                    Ok(Answer {
                        body: json!({
                            "Mac": B64.encode(bytes(out)?),
                            "MacAlgorithm": alg.as_aws(),
                            "KeyId": arn,
                        }),
                        key_id: Some(id),
                    })
                }
                Some(mac) => {
                    let op = KeyOp::VerifyMac { alg, message, mac };
                    let (out, _) = node
                        .key_op(id, KeyUsage::GenerateVerifyMac, None, op)
                        .await?;
                    match out {
                        KeyOut::Valid(true) => Ok(Answer {
                            body: json!({ "KeyId": arn, "MacValid": true, "MacAlgorithm": alg.as_aws() }),
                            key_id: Some(id),
                        }),
                        _ => Err(arca_node::NodeError::InvalidMac.into()),
                    }
                }
            }
        }
        Op::GenerateDataKeyPair | Op::GenerateDataKeyPairWithoutPlaintext => {
            let r: PairReq = parse(body)?;
            let spec_name = r
                .key_pair_spec
                .ok_or_else(|| ApiError::missing("KeyPairSpec"))?;
            // AWS's model (DataKeyPairSpec) admitted the name already.
            let pair_spec = KeySpec::from_aws(&spec_name)
                .filter(|s| s.is_asymmetric())
                .ok_or_else(|| {
                    ApiError::validation(format!("{spec_name} is not a data key pair spec"))
                })?;
            let ctx_map = context(r.encryption_context)?;
            let id = ctx.key(0)?;
            dry_run(r.dry_run)?;
            node.require_symmetric(&id)?;
            let (private, public) = node.new_key_pair(pair_spec).await?;
            let enc = node.encrypt(id, private.duplicate(), ctx_map).await?;
            let mut body = json!({
                "PrivateKeyCiphertextBlob": B64.encode(&enc.blob),
                "PublicKey": B64.encode(public),
                "KeyId": node.key_arn(&id)?,
                "KeyPairSpec": pair_spec.as_aws(),
            });
            if op == Op::GenerateDataKeyPair {
                body["PrivateKeyPlaintext"] = json!(B64.encode(private.expose()));
            }
            Ok(Answer {
                body,
                key_id: Some(id),
            })
        }
        Op::DeriveSharedSecret => derive_shared_secret(node, ctx, parse(body)?).await,
        Op::Encapsulate | Op::Decapsulate => kem(node, ctx, op, parse(body)?).await,
        Op::ReEncrypt => re_encrypt(node, ctx, parse(body)?).await,
        Op::GenerateCertificateSigningRequest => csr(node, ctx, parse(body)?).await,
        Op::CreateKeyVersion => {
            let _: VersionReq = parse(body)?;
            let id = ctx.key(0)?;
            let vid = node.create_key_version(Some(ctx.request), id).await?;
            Ok(Answer {
                body: json!({ "KeyId": node.key_arn(&id)?, "KeyVersionId": vid }),
                key_id: Some(id),
            })
        }
        Op::ListKeyVersions => {
            let r: VersionReq = parse(body)?;
            let limit = paging::limit(r.limit, 1000, 100)?;
            let id = ctx.key(0)?;
            let k = node.describe_key(&id).await?;
            let (page, next) = paging::by_index(&k.record.versions, r.marker.as_deref(), limit)?;
            let page: Vec<Value> = page
                .iter()
                .map(|v| version_json(&k.arn, v, k.record.primary().version == v.version))
                .collect();
            Ok(Answer {
                body: paging::answer(json!({ "KeyVersions": page }), next),
                key_id: Some(id),
            })
        }
        _ => {
            // DescribeKeyVersion
            let r: VersionReq = parse(body)?;
            let vid = r
                .key_version_id
                .ok_or_else(|| ApiError::missing("KeyVersionId"))?;
            let id = ctx.key(0)?;
            let k = node.describe_key(&id).await?;
            let v = k.record.version_by_id(&vid).ok_or_else(|| {
                ApiError::new(
                    400,
                    "NotFoundException",
                    format!("Key version '{vid}' of key '{id}' does not exist"),
                )
            })?;
            let primary = k.record.primary().version == v.version;
            Ok(Answer {
                body: json!({ "KeyVersion": version_json(&k.arn, v, primary) }),
                key_id: Some(id),
            })
        }
    }
}

/// ECDH between the key's private half and a peer's public key, on the key actor.
async fn derive_shared_secret(node: &Node, ctx: &Ctx, r: DeriveReq) -> Result<Answer, ApiError> {
    let name = r
        .key_agreement_algorithm
        .ok_or_else(|| ApiError::missing("KeyAgreementAlgorithm"))?;
    let alg = KeyAgreementAlgorithm::from_aws(&name)
        .ok_or_else(|| enum_error("keyAgreementAlgorithm", &name, &["ECDH"]))?;
    let public_key = blob(
        "PublicKey",
        r.public_key,
        1,
        arca_keys::MAX_PEER_PUBLIC_KEY_LEN,
    )?;
    if r.recipient.is_some() {
        return Err(ApiError::new(
            400,
            "UnsupportedOperationException",
            "Recipient (an attestation document of a Nitro enclave or NitroTPM) is not \
             supported: this service has no attested environments; call DeriveSharedSecret \
             without Recipient to get SharedSecret",
        ));
    }
    let id = ctx.key(0)?;
    dry_run(r.dry_run)?;
    let (out, _) = node
        .key_op(
            id,
            KeyUsage::KeyAgreement,
            None,
            KeyOp::DeriveSharedSecret { alg, public_key },
        )
        .await?;
    let KeyOut::Secret(secret) = out else {
        return Err(ApiError::internal("unexpected result of a key operation"));
    };
    Ok(Answer {
        body: json!({
            "KeyId": node.key_arn(&id)?,
            "SharedSecret": B64.encode(secret.expose()),
            "KeyAgreementAlgorithm": alg.as_aws(),
            "KeyOrigin": "AWS_KMS",
        }),
        key_id: Some(id),
    })
}

/// ML-KEM Encapsulate (a fresh secret and its ciphertext, with the key's public half)
/// or Decapsulate (the secret in a ciphertext), on the key actor. The secret is
/// returned once and never logged.
async fn kem(node: &Node, ctx: &Ctx, op: Op, r: KemReq) -> Result<Answer, ApiError> {
    let name = r
        .encapsulation_algorithm
        .ok_or_else(|| ApiError::missing("EncapsulationAlgorithm"))?;
    let alg = EncapsulationAlgorithm::from_aws(&name)
        .ok_or_else(|| enum_error("encapsulationAlgorithm", &name, &["ML_KEM"]))?;
    let ciphertext = if op == Op::Decapsulate {
        Some(blob(
            "SharedSecretCiphertextBlob",
            r.shared_secret_ciphertext_blob,
            1,
            MAX_CIPHERTEXT_LEN,
        )?)
    } else {
        None
    };
    let id = ctx.key(0)?;
    dry_run(r.dry_run)?;
    let key_op = match ciphertext {
        None => KeyOp::Encapsulate { alg },
        Some(ciphertext) => KeyOp::Decapsulate { alg, ciphertext },
    };
    let (out, _) = node
        .key_op(id, KeyUsage::EncapsulateDecapsulate, None, key_op)
        .await?;
    let mut body = json!({
        "KeyId": node.key_arn(&id)?,
        "EncapsulationAlgorithm": alg.as_aws(),
    });
    match out {
        KeyOut::Encapsulated { ciphertext, secret } => {
            body["SharedSecret"] = json!(B64.encode(secret.expose()));
            body["SharedSecretCiphertextBlob"] = json!(B64.encode(ciphertext));
        }
        KeyOut::Secret(secret) => body["SharedSecret"] = json!(B64.encode(secret.expose())),
        _ => return Err(ApiError::internal("unexpected result of a key operation")),
    }
    Ok(Answer {
        body,
        key_id: Some(id),
    })
}

fn csr_error(e: CsrError) -> ApiError {
    match e {
        CsrError::Invalid { .. } => ApiError::validation(e.to_string()),
        CsrError::Encoding(_) => ApiError::internal(e.to_string()),
    }
}

/// A PKCS#10 request for the key's public key, signed by the key actor as a
/// Sign of the request info's digest: the private key never leaves it.
async fn csr(node: &Node, ctx: &Ctx, r: CsrReq) -> Result<Answer, ApiError> {
    let subject = r.subject.ok_or_else(|| ApiError::missing("Subject"))?;
    let sans = r
        .subject_alternative_names
        .map_or_else(SanInput::default, |s| SanInput {
            dns: s.dns.unwrap_or_default(),
            email: s.email.unwrap_or_default(),
            uri: s.uri.unwrap_or_default(),
            ip: s.ip.unwrap_or_default(),
        });
    let input = CsrInput::parse(&subject, &sans).map_err(csr_error)?;
    let requested = r
        .signing_algorithm
        .map(|a| signing_alg(Some(a)))
        .transpose()?;
    let id = ctx.key(0)?;
    // The usage first, so that a key that cannot sign gets Sign's error.
    node.require_usage(id, KeyUsage::SignVerify)?;
    let (spec, _) = node.spec_of(&id)?;
    let alg = match requested {
        Some(a) => a,
        None => *spec
            .signing_algorithms()
            .first()
            .ok_or_else(|| ApiError::internal("a signing key without signing algorithms"))?,
    };
    // One version for the public key in the request and the signature over it.
    let (spki, vid) = node.public_key(id, r.key_version_id.as_deref()).await?;
    let info = input.request_info(&spki).map_err(csr_error)?;
    let own = spec.signing_algorithms().contains(&alg);
    if own && alg == SigningAlgorithm::Ed25519PhSha512 {
        return Err(ApiError::validation(
            "SigningAlgorithm ED25519_PH_SHA_512 has no X.509 signature algorithm; \
             certificate signing requests use ED25519_SHA_512",
        ));
    }
    // PureEdDSA signs the request info itself, as a RAW message of at most 4096 bytes.
    if own && alg == SigningAlgorithm::Ed25519Sha512 && info.len() > arca_keys::MAX_RAW_MESSAGE_LEN
    {
        return Err(ApiError::validation(format!(
            "the request info is {} bytes; ED25519_SHA_512 signs at most {} (use fewer or \
             shorter SubjectAlternativeNames)",
            info.len(),
            arca_keys::MAX_RAW_MESSAGE_LEN
        )));
    }
    let (message, kind) = arca_keys::csr::signing_input(spec, alg, &spki, &info)
        .map_err(arca_node::NodeError::from)?;
    let op = KeyOp::Sign { alg, message, kind };
    let (out, vid) = node.key_op(id, KeyUsage::SignVerify, Some(vid), op).await?;
    let pem = arca_keys::csr::assemble_pem(&info, spec, alg, &bytes(out)?).map_err(csr_error)?;
    Ok(Answer {
        body: json!({
            "KeyId": node.key_arn(&id)?,
            "KeyVersionId": vid,
            "CertificateSigningRequest": pem,
            "SigningAlgorithm": alg.as_aws(),
        }),
        key_id: Some(id),
    })
}

fn version_json(arn: &str, v: &arca_state::KeyVersion, primary: bool) -> Value {
    json!({
        "KeyId": arn,
        "KeyVersionId": v.version_id,
        "CreationDate": secs(v.created_ms),
        "Primary": primary,
    })
}

async fn re_encrypt(node: &Node, ctx: &Ctx, r: ReEncryptReq) -> Result<Answer, ApiError> {
    let ct = blob("CiphertextBlob", r.ciphertext_blob, 1, MAX_CIPHERTEXT_LEN)?;
    if r.destination_key_id.is_none() {
        return Err(ApiError::missing("DestinationKeyId"));
    }
    let src_ctx = context(r.source_encryption_context)?;
    let dst_ctx = context(r.destination_encryption_context)?;
    dry_run(r.dry_run)?;
    // Source: asymmetric if a SourceKeyId names an asymmetric key, else the blob's own key.
    // Authorization resolved the source (named, or the blob's own) and the destination.
    let source = match r.source_key_id {
        Some(_) => Some(ctx.key(0)?),
        None => None,
    };
    let source_asym = match source {
        Some(s) => node.spec_of(&s)?.0.is_asymmetric(),
        None => false,
    };
    let (source_id, plaintext, source_alg) = if source_asym {
        let s = source.ok_or_else(|| ApiError::missing("SourceKeyId"))?;
        let (pt, alg, _) = decrypt(
            node,
            s,
            ct,
            r.source_encryption_algorithm.as_deref(),
            r.source_key_version_id,
        )
        .await?;
        (s, pt, alg.as_aws())
    } else {
        if let Some(a) = r.source_encryption_algorithm.as_deref() {
            if a != "SYMMETRIC_DEFAULT" {
                return Err(ApiError::new(
                    400,
                    "InvalidKeyUsageException",
                    "SourceEncryptionAlgorithm does not match the source key",
                ));
            }
        }
        let (s, pt) = node.decrypt(ct, src_ctx, source).await?;
        (s, pt, "SYMMETRIC_DEFAULT")
    };
    let dest = ctx.key(1)?;
    let (dest_spec, _) = node.spec_of(&dest)?;
    let (blob_out, dest_alg) = if dest_spec.is_asymmetric() {
        let a = encrypt(
            node,
            dest,
            plaintext,
            r.destination_encryption_algorithm.as_deref(),
            None,
        )
        .await?;
        let b = a.body["CiphertextBlob"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (
            b,
            a.body["EncryptionAlgorithm"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    } else {
        if dest_spec != KeySpec::SymmetricDefault {
            return Err(ApiError::new(
                400,
                "InvalidKeyUsageException",
                "the destination key cannot encrypt",
            ));
        }
        if let Some(a) = r.destination_encryption_algorithm.as_deref() {
            if a != "SYMMETRIC_DEFAULT" {
                return Err(ApiError::new(
                    400,
                    "InvalidKeyUsageException",
                    "DestinationEncryptionAlgorithm does not match the destination key",
                ));
            }
        }
        let e = node.encrypt(dest, plaintext, dst_ctx).await?;
        (B64.encode(&e.blob), "SYMMETRIC_DEFAULT".to_string())
    };
    Ok(Answer {
        body: json!({
            "CiphertextBlob": blob_out,
            "SourceKeyId": node.key_arn(&source_id)?,
            "KeyId": node.key_arn(&dest)?,
            "SourceEncryptionAlgorithm": source_alg,
            "DestinationEncryptionAlgorithm": dest_alg,
        }),
        key_id: Some(dest),
    })
}
