"""The Alibaba Cloud KMS API of an Arca cluster, driven by the official
Alibaba Cloud SDK for Python (alibabacloud-kms20160120 over
alibabacloud-tea-openapi), unchanged but for its endpoint and protocol.

Run against a real cluster (any number of nodes; each call goes to the next
one) with the pinned SDK of requirements.txt. Input, in the environment:

  ARCA_ENDPOINTS        host:port of each node, comma-separated
  ARCA_ACCESS_KEY_ID    an access key (the same one the AWS SDK uses)
  ARCA_SECRET           its secret
  ARCA_AWS_CIPHERTEXT   base64 ciphertext of b"from aws" made by AWS Encrypt,
                        with the encryption context {"from": "aws"}
  ARCA_AWS_SIGN_KEY     an ECC_NIST_P256 SIGN_VERIFY key created through AWS

Every check fails the script (an AssertionError, exit status 1). On success
it prints one JSON object on stdout: what is left to check through the AWS
API and OpenSSL (signatures, public keys, ciphertexts).
"""

import base64
import hashlib
import json
import os
import subprocess
import tempfile
import uuid
from datetime import datetime, timedelta, timezone

from alibabacloud_kms20160120 import models as m
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi import models as om
from alibabacloud_tea_openapi import utils_models as um
from alibabacloud_tea_openapi.sm3 import hash_sm3
from alibabacloud_tea_openapi.utils import Utils
from darabonba.runtime import RuntimeOptions
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

ENDPOINTS = os.environ["ARCA_ENDPOINTS"].split(",")
AK = os.environ["ARCA_ACCESS_KEY_ID"]
SECRET = os.environ["ARCA_SECRET"]


def client(i, ak=AK, secret=SECRET, **kw):
    return Client(om.Config(access_key_id=ak, access_key_secret=secret,
                            endpoint=ENDPOINTS[i % len(ENDPOINTS)], protocol="http", **kw))


C = [client(i) for i in range(len(ENDPOINTS))]
# The same SDK with the RPC signature (HMAC-SHA1, SignatureVersion 1.0).
RPC = client(1, signature_algorithm="v2")
_next = [0]


def any_node():
    """Each call goes to the next node: any node serves."""
    _next[0] += 1
    return C[_next[0] % len(C)]


def b64(b):
    return base64.b64encode(b).decode()


def unb64(s):
    return base64.b64decode(s)


def expect_error(code, f, status=None):
    try:
        f()
    except Exception as e:  # the SDK's ClientException / ServerException
        got = getattr(e, "code", None)
        assert got == code, f"expected {code}, got {got}: {e}"
        if status is not None:
            assert e.status_code == status, f"{code}: status {e.status_code}, expected {status}"
        data = getattr(e, "data", {}) or {}
        assert data.get("RequestId") and data.get("HostId") and data.get("Message"), data
        return e
    raise AssertionError(f"expected {code}, the call succeeded")


def create(spec="Aliyun_AES_256", usage="ENCRYPT/DECRYPT", **kw):
    md = any_node().create_key(m.CreateKeyRequest(key_spec=spec, key_usage=usage, **kw)).body.key_metadata
    assert md.key_spec == spec and md.key_usage == usage, (md.key_spec, md.key_usage)
    assert md.key_state == "Enabled" and md.origin == "Aliyun_KMS"
    assert md.arn == f"{md.arn.rsplit(':', 1)[0]}:key/{md.key_id}" and md.arn.startswith("acs:kms:")
    assert md.primary_key_version, "a new key names its primary version"
    return md


def describe(key_id):
    return any_node().describe_key(m.DescribeKeyRequest(key_id=key_id)).body.key_metadata


def encrypt(key_id, pt, ctx=None, via=None):
    return (via or any_node()).encrypt(m.EncryptRequest(key_id=key_id, plaintext=b64(pt), encryption_context=ctx)).body


def decrypt(ct, ctx=None, via=None):
    return (via or any_node()).decrypt(m.DecryptRequest(ciphertext_blob=ct, encryption_context=ctx)).body


out = {}

# ---- Symmetric keys, through both signature schemes -------------------------
k = create(description="alibaba sym", tags='[{"TagKey":"team","TagValue":"kms"}]')
assert describe(k.key_id).description == "alibaba sym"
ids = []
page = 1
while True:
    body = any_node().list_keys(m.ListKeysRequest(page_number=page, page_size=100)).body
    ids += [x.key_id for x in body.keys.key]
    assert all(x.key_arn.startswith("acs:kms:") for x in body.keys.key)
    if page * 100 >= body.total_count:
        break
    page += 1
assert k.key_id in ids

e = encrypt(k.key_id, b"hello alibaba", {"purpose": "test"})
assert e.key_id == k.key_id and e.key_version_id == k.primary_key_version, (e.key_id, e.key_version_id)
d = decrypt(e.ciphertext_blob, {"purpose": "test"})
assert unb64(d.plaintext) == b"hello alibaba" and d.key_id == k.key_id
expect_error("Rejected.InvalidCiphertext", lambda: decrypt(e.ciphertext_blob, {"purpose": "other"}), 400)
out["alibaba_ciphertext"] = e.ciphertext_blob
out["symmetric_key"] = k.key_id

e2 = RPC.encrypt(m.EncryptRequest(key_id=k.key_id, plaintext=b64(b"rpc signed"))).body
assert unb64(RPC.decrypt(m.DecryptRequest(ciphertext_blob=e2.ciphertext_blob)).body.plaintext) == b"rpc signed"
assert unb64(decrypt(e2.ciphertext_blob).plaintext) == b"rpc signed"

g = any_node().generate_data_key(m.GenerateDataKeyRequest(key_id=k.key_id, key_spec="AES_256",
                                                          encryption_context={"dk": "1"})).body
assert len(unb64(g.plaintext)) == 32 and g.key_version_id == k.primary_key_version
assert decrypt(g.ciphertext_blob, {"dk": "1"}).plaintext == g.plaintext
g2 = any_node().generate_data_key_without_plaintext(
    m.GenerateDataKeyWithoutPlaintextRequest(key_id=k.key_id, number_of_bytes=16)).body
assert g2.key_id == k.key_id and len(unb64(decrypt(g2.ciphertext_blob).plaintext)) == 16

k2 = create(description="second")
r = any_node().re_encrypt(m.ReEncryptRequest(
    ciphertext_blob=e.ciphertext_blob, destination_key_id=k2.key_id,
    source_encryption_context={"purpose": "test"}, destination_encryption_context={"purpose": "moved"})).body
assert r.key_id == k2.key_id and r.key_version_id == k2.primary_key_version
rd = decrypt(r.ciphertext_blob, {"purpose": "moved"})
assert unb64(rd.plaintext) == b"hello alibaba" and rd.key_id == k2.key_id

# A ciphertext made through the AWS API decrypts here.
aws = decrypt(os.environ["ARCA_AWS_CIPHERTEXT"], {"from": "aws"})
assert unb64(aws.plaintext) == b"from aws"

# GenerateRandom is not in the SDK's client: called through its generic call_api.
rnd = C[0].call_api(
    um.Params(action="GenerateRandom", version="2016-01-20", protocol="HTTP", pathname="/", method="POST",
              auth_type="AK", style="RPC", req_body_type="formData", body_type="json"),
    um.OpenApiRequest(query={"NumberOfBytes": "32"}), RuntimeOptions())["body"]
assert len(unb64(rnd["Random"])) == 32 and rnd["RequestId"]

# ---- Lifecycle -----------------------------------------------------------------
any_node().update_key_description(m.UpdateKeyDescriptionRequest(key_id=k.key_id, description="renamed"))
assert describe(k.key_id).description == "renamed"
any_node().disable_key(m.DisableKeyRequest(key_id=k.key_id))
assert describe(k.key_id).key_state == "Disabled"
expect_error("Rejected.Disabled", lambda: encrypt(k.key_id, b"x"))
any_node().enable_key(m.EnableKeyRequest(key_id=k.key_id))
encrypt(k.key_id, b"enabled again")

any_node().schedule_key_deletion(m.ScheduleKeyDeletionRequest(key_id=k2.key_id, pending_window_in_days=7))
md = describe(k2.key_id)
assert md.key_state == "PendingDeletion" and md.delete_date, (md.key_state, md.delete_date)
expect_error("Rejected.PendingDeletion", lambda: encrypt(k2.key_id, b"x"))
any_node().cancel_key_deletion(m.CancelKeyDeletionRequest(key_id=k2.key_id))
assert describe(k2.key_id).key_state == "Disabled"
any_node().enable_key(m.EnableKeyRequest(key_id=k2.key_id))
expect_error("Forbidden.KeyNotFound", lambda: describe(str(uuid.uuid4())), 404)

# ---- Aliases ----------------------------------------------------------------
alias = "alias/alibaba-" + uuid.uuid4().hex[:8]
any_node().create_alias(m.CreateAliasRequest(alias_name=alias, key_id=k.key_id))
assert encrypt(alias, b"via alias").key_id == k.key_id
expect_error("Rejected.ResourceExist", lambda: any_node().create_alias(m.CreateAliasRequest(alias_name=alias, key_id=k2.key_id)))
listed = any_node().list_aliases(m.ListAliasesRequest(page_size=100)).body
assert any(a.alias_name == alias and a.key_id == k.key_id and a.alias_arn.startswith("acs:kms:") for a in listed.aliases.alias)
by_key = any_node().list_aliases_by_key_id(m.ListAliasesByKeyIdRequest(key_id=k.key_id)).body
assert [a.alias_name for a in by_key.aliases.alias] == [alias]
any_node().update_alias(m.UpdateAliasRequest(alias_name=alias, key_id=k2.key_id))
assert [a.alias_name for a in any_node().list_aliases_by_key_id(
    m.ListAliasesByKeyIdRequest(key_id=k2.key_id)).body.aliases.alias] == [alias]
any_node().delete_alias(m.DeleteAliasRequest(alias_name=alias))
expect_error("Forbidden.AliasNotFound", lambda: encrypt(alias, b"x"), 404)

# ---- Tags -------------------------------------------------------------------------
def tags(key_id):
    return {t.tag_key: t.tag_value for t in
            any_node().list_resource_tags(m.ListResourceTagsRequest(key_id=key_id)).body.tags.tag}


assert tags(k.key_id) == {"team": "kms"}
any_node().tag_resource(m.TagResourceRequest(key_id=k.key_id, tags='[{"TagKey":"env","TagValue":"test"}]'))
assert tags(k.key_id) == {"team": "kms", "env": "test"}
any_node().untag_resource(m.UntagResourceRequest(key_id=k.key_id, tag_keys='["team"]'))
assert tags(k.key_id) == {"env": "test"}

# ---- Asymmetric keys: versions, the KeyVersionId rule, signatures --------------
SM2_ID = b"1234567812345678"
SM2_CURVE = [bytes.fromhex(h) for h in (
    "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC",
    "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93",
    "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7",
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0",
)]


def sm2_digest(pem, message):
    """SM3(Z || M), with Z from the default id and the public key (GB/T 32918)."""
    point = unb64("".join(pem.strip().splitlines()[1:-1]))[-65:]
    assert point[0] == 4, "an uncompressed point ends the SubjectPublicKeyInfo"
    z = hash_sm3((len(SM2_ID) * 8).to_bytes(2, "big") + SM2_ID + b"".join(SM2_CURVE) + point[1:])
    return hash_sm3(z + message)


def digest_for(alg, pem, message):
    return sm2_digest(pem, message) if alg == "SM2DSA" else hashlib.sha256(message).digest()


def public_key(key_id, version):
    body = any_node().get_public_key(m.GetPublicKeyRequest(key_id=key_id, key_version_id=version)).body
    assert body.key_id == key_id and body.key_version_id == version
    assert body.public_key.startswith("-----BEGIN PUBLIC KEY-----\n")
    return body.public_key


def sign(key_id, version, alg, digest):
    body = any_node().asymmetric_sign(m.AsymmetricSignRequest(
        key_id=key_id, key_version_id=version, algorithm=alg, digest=b64(digest))).body
    assert body.key_id == key_id and body.key_version_id == version
    return body.value


def verify(key_id, version, alg, digest, sig):
    body = any_node().asymmetric_verify(m.AsymmetricVerifyRequest(
        key_id=key_id, key_version_id=version, algorithm=alg, digest=b64(digest), value=sig)).body
    return body.value


out["signatures"] = []
for spec, algs in [("RSA_2048", ["RSA_PSS_SHA_256", "RSA_PKCS1_SHA_256"]), ("RSA_3072", ["RSA_PSS_SHA_256"]),
                   ("EC_P256", ["ECDSA_SHA_256"]), ("EC_P256K", ["ECDSA_SHA_256"]), ("EC_SM2", ["SM2DSA"])]:
    key = create(spec, "SIGN/VERIFY")
    v1 = key.primary_key_version
    versions = any_node().list_key_versions(m.ListKeyVersionsRequest(key_id=key.key_id)).body
    assert [v.key_version_id for v in versions.key_versions.key_version] == [v1] and versions.total_count == 1
    dv = any_node().describe_key_version(m.DescribeKeyVersionRequest(key_id=key.key_id, key_version_id=v1)).body
    assert dv.key_version.key_version_id == v1 and dv.key_version.creation_date.endswith("Z")
    # The version is named, or the call is refused.
    expect_error("MissingParameter", lambda: any_node().asymmetric_sign(m.AsymmetricSignRequest(
        key_id=key.key_id, algorithm=algs[0], digest=b64(b"\0" * 32))), 400)
    expect_error("MissingParameter", lambda: any_node().asymmetric_verify(m.AsymmetricVerifyRequest(
        key_id=key.key_id, algorithm=algs[0], digest=b64(b"\0" * 32), value=b64(b"x"))), 400)
    expect_error("MissingParameter", lambda: any_node().get_public_key(m.GetPublicKeyRequest(key_id=key.key_id)), 400)
    expect_error("Forbidden.KeyVersionNotFound", lambda: sign(key.key_id, str(uuid.uuid4()), algs[0], b"\0" * 32), 404)
    pem1 = public_key(key.key_id, v1)
    for alg in algs:
        message = f"signed through the Alibaba API with {spec} {alg}".encode()
        dg = digest_for(alg, pem1, message)
        sig = sign(key.key_id, v1, alg, dg)
        assert verify(key.key_id, v1, alg, dg, sig) is True
        assert verify(key.key_id, v1, alg, digest_for(alg, pem1, message + b"!"), sig) is False
        out["signatures"].append({"spec": spec, "alg": alg, "key_id": key.key_id, "version": v1,
                                  "pem": pem1, "message": b64(message), "signature": sig})
    # A second version: its own key pair, named explicitly.
    kv = any_node().create_key_version(m.CreateKeyVersionRequest(key_id=key.key_id)).body.key_version
    v2 = kv.key_version_id
    assert kv.key_id == key.key_id and v2 != v1 and kv.creation_date.endswith("Z")
    versions = any_node().list_key_versions(m.ListKeyVersionsRequest(key_id=key.key_id)).body
    assert sorted(v.key_version_id for v in versions.key_versions.key_version) == sorted([v1, v2])
    assert describe(key.key_id).primary_key_version == v2
    pem2 = public_key(key.key_id, v2)
    assert pem2 != pem1
    dg = digest_for(algs[0], pem2, b"second version")
    sig2 = sign(key.key_id, v2, algs[0], dg)
    assert verify(key.key_id, v2, algs[0], dg, sig2) is True
    assert verify(key.key_id, v1, algs[0], dg, sig2) is False

# ---- Asymmetric encryption ---------------------------------------------------
out["encryptions"] = []
for spec, algs in [("RSA_2048", ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]), ("RSA_3072", ["RSAES_OAEP_SHA_256"]),
                   ("EC_SM2", ["SM2PKE"])]:
    key = create(spec, "ENCRYPT/DECRYPT")
    v1 = key.primary_key_version
    pem = public_key(key.key_id, v1)
    for alg in algs:
        pt = f"{spec} {alg}".encode()
        expect_error("MissingParameter", lambda: any_node().asymmetric_encrypt(m.AsymmetricEncryptRequest(
            key_id=key.key_id, algorithm=alg, plaintext=b64(pt))), 400)
        ct = any_node().asymmetric_encrypt(m.AsymmetricEncryptRequest(
            key_id=key.key_id, key_version_id=v1, algorithm=alg, plaintext=b64(pt))).body
        assert ct.key_id == key.key_id and ct.key_version_id == v1
        dec = any_node().asymmetric_decrypt(m.AsymmetricDecryptRequest(
            key_id=key.key_id, key_version_id=v1, algorithm=alg, ciphertext_blob=ct.ciphertext_blob)).body
        assert unb64(dec.plaintext) == pt and dec.key_version_id == v1
        expect_error("MissingParameter", lambda: any_node().asymmetric_decrypt(m.AsymmetricDecryptRequest(
            key_id=key.key_id, algorithm=alg, ciphertext_blob=ct.ciphertext_blob)), 400)
        if alg.startswith("RSAES"):
            # Encrypted here with the public key by another library.
            h = hashes.SHA1() if alg.endswith("_1") else hashes.SHA256()
            local = serialization.load_pem_public_key(pem.encode()).encrypt(
                b"local " + pt, padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))
            dec = any_node().asymmetric_decrypt(m.AsymmetricDecryptRequest(
                key_id=key.key_id, key_version_id=v1, algorithm=alg, ciphertext_blob=b64(local))).body
            assert unb64(dec.plaintext) == b"local " + pt
        out["encryptions"].append({"spec": spec, "alg": alg, "key_id": key.key_id, "version": v1, "pem": pem})
expect_error("InvalidParameter", lambda: create("EC_P256", "ENCRYPT/DECRYPT"))

# ---- A key created through the AWS API ------------------------------------------
aws_key = os.environ["ARCA_AWS_SIGN_KEY"]
md = describe(aws_key)
assert (md.key_spec, md.key_usage) == ("EC_P256", "SIGN/VERIFY"), (md.key_spec, md.key_usage)
dg = hashlib.sha256(b"aws key, alibaba signature").digest()
out["aws_key_signature"] = {"version": md.primary_key_version,
                            "signature": sign(aws_key, md.primary_key_version, "ECDSA_SHA_256", dg),
                            "digest": b64(dg)}

# ---- Imported key material (BYOK) ------------------------------------------------
ext = any_node().create_key(m.CreateKeyRequest(key_spec="Aliyun_AES_256", key_usage="ENCRYPT/DECRYPT",
                                               origin="EXTERNAL")).body.key_metadata
assert (ext.origin, ext.key_state) == ("EXTERNAL", "PendingImport"), (ext.origin, ext.key_state)
expect_error("Rejected.UnexpectedState", lambda: encrypt(ext.key_id, b"no material yet"))


def import_params(key_id):
    p = any_node().get_parameters_for_import(m.GetParametersForImportRequest(
        key_id=key_id, wrapping_algorithm="RSAES_OAEP_SHA_256", wrapping_key_spec="RSA_2048")).body
    assert p.key_id == key_id and p.import_token and p.token_expire_time.endswith("Z"), p
    wrapping = serialization.load_der_public_key(unb64(p.public_key))
    assert wrapping.key_size == 2048
    return p, wrapping


def wrapped(wrapping, material):
    return b64(wrapping.encrypt(material, padding.OAEP(
        mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)))


material = os.urandom(32)
params, wrapping = import_params(ext.key_id)
any_node().import_key_material(m.ImportKeyMaterialRequest(
    key_id=ext.key_id, import_token=params.import_token,
    encrypted_key_material=wrapped(wrapping, material), key_material_expire_unix=0))
md = describe(ext.key_id)
assert (md.origin, md.key_state) == ("EXTERNAL", "Enabled"), (md.origin, md.key_state)
imported_ct = encrypt(ext.key_id, b"imported material", {"byok": "alibaba"}).ciphertext_blob
assert unb64(decrypt(imported_ct, {"byok": "alibaba"}).plaintext) == b"imported material"
# Other material, or a token altered or made for another key: refused.
params2, wrapping2 = import_params(ext.key_id)
expect_error("InvalidParameter", lambda: any_node().import_key_material(m.ImportKeyMaterialRequest(
    key_id=ext.key_id, import_token=params2.import_token,
    encrypted_key_material=wrapped(wrapping2, os.urandom(32)))), 400)
bad_token = bytearray(unb64(params2.import_token))
bad_token[len(bad_token) // 2] ^= 1
expect_error("InvalidParameter", lambda: any_node().import_key_material(m.ImportKeyMaterialRequest(
    key_id=ext.key_id, import_token=b64(bytes(bad_token)),
    encrypted_key_material=wrapped(wrapping2, material))), 400)
# SM2PKE under an EC_SM2 wrapping key, as Alibaba Cloud documents it; the
# material is encrypted with the openssl CLI (DER C1C3C2).
ext_sm2 = any_node().create_key(m.CreateKeyRequest(key_spec="Aliyun_AES_256", key_usage="ENCRYPT/DECRYPT",
                                                   origin="EXTERNAL")).body.key_metadata
p = any_node().get_parameters_for_import(m.GetParametersForImportRequest(
    key_id=ext_sm2.key_id, wrapping_algorithm="SM2PKE", wrapping_key_spec="EC_SM2")).body
sm2_material = os.urandom(32)
with tempfile.TemporaryDirectory() as d:
    with open(os.path.join(d, "wrapping.der"), "wb") as f:
        f.write(unb64(p.public_key))
    with open(os.path.join(d, "material.bin"), "wb") as f:
        f.write(sm2_material)
    subprocess.run(["openssl", "pkeyutl", "-encrypt", "-pubin", "-keyform", "DER",
                    "-inkey", os.path.join(d, "wrapping.der"), "-in", os.path.join(d, "material.bin"),
                    "-out", os.path.join(d, "wrapped.bin")], check=True)
    with open(os.path.join(d, "wrapped.bin"), "rb") as f:
        sm2_wrapped = f.read()
any_node().import_key_material(m.ImportKeyMaterialRequest(
    key_id=ext_sm2.key_id, import_token=p.import_token,
    encrypted_key_material=b64(sm2_wrapped), key_material_expire_unix=0))
sm2_ct = encrypt(ext_sm2.key_id, b"under SM2PKE-imported material").ciphertext_blob
assert unb64(decrypt(sm2_ct).plaintext) == b"under SM2PKE-imported material"
# SM2PKE takes only an EC_SM2 wrapping key.
expect_error("InvalidParameter", lambda: any_node().get_parameters_for_import(
    m.GetParametersForImportRequest(key_id=ext_sm2.key_id, wrapping_algorithm="SM2PKE",
                                    wrapping_key_spec="RSA_2048")), 400)
out["imported"] = {"key_id": ext.key_id, "ciphertext": imported_ct}

# ---- Authentication: a wrong secret, an unknown key, the time window, replays --
expect_error("SignatureDoesNotMatch", lambda: client(0, secret=SECRET + "x").describe_key(
    m.DescribeKeyRequest(key_id=k.key_id)), 400)
expect_error("SignatureDoesNotMatch", lambda: client(0, secret=SECRET + "x", signature_algorithm="v2").describe_key(
    m.DescribeKeyRequest(key_id=k.key_id)), 400)
expect_error("InvalidAccessKeyId.NotFound", lambda: client(0, ak="AKIDUNKNOWN").describe_key(
    m.DescribeKeyRequest(key_id=k.key_id)), 404)

real_timestamp = Utils.get_timestamp
for skew in (timedelta(minutes=-20), timedelta(minutes=20)):
    Utils.get_timestamp = staticmethod(
        lambda s=skew: (datetime.now(timezone.utc) + s).strftime("%Y-%m-%dT%H:%M:%SZ"))
    expect_error("InvalidTimeStamp.Expired", lambda: C[0].describe_key(m.DescribeKeyRequest(key_id=k.key_id)), 400)
    expect_error("InvalidTimeStamp.Expired", lambda: RPC.describe_key(m.DescribeKeyRequest(key_id=k.key_id)), 400)
# Within the window is fine.
Utils.get_timestamp = staticmethod(
    lambda: (datetime.now(timezone.utc) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ"))
C[0].describe_key(m.DescribeKeyRequest(key_id=k.key_id))
Utils.get_timestamp = real_timestamp

real_nonce = Utils.get_nonce
for c in (C[0], RPC):
    nonce = uuid.uuid4().hex
    Utils.get_nonce = staticmethod(lambda n=nonce: n)
    c.describe_key(m.DescribeKeyRequest(key_id=k.key_id))
    expect_error("SignatureNonceUsed", lambda: c.describe_key(m.DescribeKeyRequest(key_id=k.key_id)), 400)
    # A replayed write is refused as well, before it runs.
    expect_error("SignatureNonceUsed", lambda: c.update_key_description(
        m.UpdateKeyDescriptionRequest(key_id=k.key_id, description="replayed")), 400)
Utils.get_nonce = real_nonce
assert describe(k.key_id).description == "renamed"

print(json.dumps(out))
