"""Gateway signing against published and independently computed vectors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from engine.errors import PermanentError
from plugins.yibao.signing import TifSigning, build_signer
from plugins.yibao.signing.gm import (
    hmac_sm3,
    sm2_public_key,
    sm2_sign,
    sm2_verify,
    sm3,
    sm4_ecb_decrypt,
    sm4_ecb_encrypt,
)
from plugins.yibao.signing.jilin import JilinSigner, decrypt_json
from plugins.yibao.signing.tif import TifSigner, tif_signature
from plugins.yibao.signing.zhejiang_sm3 import ZhejiangSm3Signer, zhejiang_signature

SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
SM2_TEST_KEY = bytes.fromhex("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8")


def test_tif_signature_matches_the_spec_vector() -> None:
    assert (
        tif_signature("1720489942", "TESTTOKEN0123456789abcdefABCDEF01", "18e2b3c4d5f-a1b2c3")
        == "dfe20489dfe794294c617f1bfa3fb52c938341d82730d13df1174cc9f29317b7"
    )


async def test_tif_headers_carry_paasid_timestamp_nonce_and_signature() -> None:
    signer = TifSigner(paasid="mbs_fsi_auth", token="TESTTOKEN0123456789abcdefABCDEF01",
                       clock=lambda: 1720489942.9, nonce=lambda: "18e2b3c4d5f-a1b2c3")
    async with httpx.AsyncClient() as http:
        headers = await signer.headers(b'{"any": "body"}', http)
    assert headers == {
        "x-tif-paasid": "mbs_fsi_auth",
        "x-tif-timestamp": "1720489942",
        "x-tif-nonce": "18e2b3c4d5f-a1b2c3",
        "x-tif-signature": "dfe20489dfe794294c617f1bfa3fb52c938341d82730d13df1174cc9f29317b7",
    }


async def test_tif_nonces_differ_between_calls() -> None:
    signer = TifSigner(paasid="p", token="t")
    async with httpx.AsyncClient() as http:
        first, second = await signer.headers(b"", http), await signer.headers(b"", http)
    assert first["x-tif-nonce"] != second["x-tif-nonce"]
    assert re.fullmatch(r"[0-9a-f]+-[0-9a-f]{6}", first["x-tif-nonce"])


def test_tif_secret_comes_from_an_env_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIBAO_SIGNING_TEST_TOKEN", "from-env")
    config = TifSigning.model_validate({"scheme": "tif", "paasid": "p", "token": {"$env": "YIBAO_SIGNING_TEST_TOKEN"}})
    signer = build_signer(config, base_url="http://x", fixmedins_code="H44030400123")
    assert isinstance(signer, TifSigner) and signer._token == "from-env"


def test_sm3_matches_the_gbt_32905_vectors() -> None:
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_hmac_sm3_agrees_with_openssl() -> None:
    try:
        reference = hmac.new(b"zj-secret", b"1720489942\n{}", "sm3").hexdigest()
    except ValueError:
        pytest.skip("this OpenSSL has no SM3")
    assert hmac_sm3(b"zj-secret", b"1720489942\n{}").hex() == reference
    long_key = b"k" * 100  # longer than the block: hashed first
    assert hmac_sm3(long_key, b"m").hex() == hmac.new(long_key, b"m", "sm3").hexdigest()


def test_zhejiang_signature_is_timestamp_and_upper_hex_hmac_sm3() -> None:
    body = b'{"infno":"9001"}'
    expected_mac = hmac.new(b"zj-secret", b"1720489942\n" + body, "sm3").hexdigest().upper()
    assert zhejiang_signature("zj-secret", "1720489942", body) == f"1720489942:{expected_mac}"


async def test_zhejiang_headers_sign_gb2312_bytes_when_configured() -> None:
    body = json.dumps({"opter_name": "李收费"}, ensure_ascii=False).encode()
    signer = ZhejiangSm3Signer(key="H33010000001", secret="s", body_encoding="gb2312", clock=lambda: 100.0)
    async with httpx.AsyncClient() as http:
        headers = await signer.headers(body, http)
    assert headers["x-ca-key"] == "H33010000001"
    assert headers["x-ca-signature"] == zhejiang_signature("s", "100", body.decode().encode("gb2312"))
    assert headers["x-ca-signature"] != zhejiang_signature("s", "100", body)


def test_sm4_matches_the_gbt_32907_vector() -> None:
    ciphertext = sm4_ecb_encrypt(SM4_KEY, SM4_KEY)
    assert ciphertext[:16].hex() == "681edf34d206965e86b3e94f536e4246"
    assert len(ciphertext) == 32  # a full padding block follows a block-aligned plaintext
    assert sm4_ecb_decrypt(SM4_KEY, ciphertext) == SM4_KEY


def test_sm4_rejects_a_wrong_key_or_length() -> None:
    ciphertext = sm4_ecb_encrypt(SM4_KEY, b"hello")
    with pytest.raises(ValueError):
        sm4_ecb_decrypt(bytes(16), ciphertext)
    with pytest.raises(ValueError):
        sm4_ecb_decrypt(SM4_KEY, ciphertext[:-1])


def test_sm2_signature_verifies_and_binds_the_user_id() -> None:
    public = sm2_public_key(SM2_TEST_KEY)
    signature = sm2_sign(SM2_TEST_KEY, b"payload", uid=b"CLIENT0123456789")
    assert sm2_verify(public, b"payload", signature, uid=b"CLIENT0123456789")
    assert not sm2_verify(public, b"payload", signature, uid=b"1234567812345678")
    assert not sm2_verify(public, b"other", signature, uid=b"CLIENT0123456789")


def test_sm2_signature_verifies_with_openssl(tmp_path: Path) -> None:
    """An independent implementation (OpenSSL) accepts our SM3withSM2 signature and user id."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    key_file = tmp_path / "key.pem"
    made = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2",
                           "-out", str(key_file)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip("this OpenSSL cannot make SM2 keys")
    text = subprocess.run(["openssl", "pkey", "-in", str(key_file), "-text", "-noout"],
                          capture_output=True, text=True, check=True).stdout
    found = re.search(r"priv:\s*(.*?)pub:", text, re.DOTALL)
    assert found is not None
    private = bytes.fromhex(re.sub(r"[\s:]", "", found.group(1)))[-32:]
    subprocess.run(["openssl", "pkey", "-in", str(key_file), "-pubout", "-out", str(tmp_path / "pub.pem")], check=True)
    (tmp_path / "msg").write_bytes(b'{"data":{"psn_no":"SIM0001"}}')
    (tmp_path / "sig.der").write_bytes(sm2_sign(private, b'{"data":{"psn_no":"SIM0001"}}', uid=b"CLIENT0123456789"))

    def verify(distid: str) -> int:
        return subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-in", str(tmp_path / "msg"), "-rawin", "-digest", "sm3",
             "-pubin", "-inkey", str(tmp_path / "pub.pem"), "-sigfile", str(tmp_path / "sig.der"),
             "-pkeyopt", f"distid:{distid}"],
            capture_output=True,
            check=False,
        ).returncode

    assert verify("CLIENT0123456789") == 0
    assert verify("1234567812345678") != 0


def test_jilin_seal_encrypts_input_and_signs_cainfo() -> None:
    signer = JilinSigner(token_url="http://x/auth/oauth/token", client_id="CLIENT0123456789", client_secret="s",
                         username="u", password="p", sm2_private_key=SM2_TEST_KEY)
    envelope = {"infno": "1101", "input": {"data": {"mdtrt_cert_no": "FAKE-CERT-0001"}}, "cainfo": "", "signtype": ""}
    sealed = signer.seal(envelope)
    assert sealed["encType"] == "SM4" and sealed["signtype"] == "SM2"
    assert decrypt_json(b"CLIENT0123456789", sealed["input"]) == envelope["input"]
    signature = base64.b64decode(sealed["cainfo"])
    plain = json.dumps(envelope["input"], ensure_ascii=False, separators=(",", ":")).encode()
    assert sm2_verify(sm2_public_key(SM2_TEST_KEY), plain, signature, uid=b"CLIENT0123456789")
    assert envelope["input"] == {"data": {"mdtrt_cert_no": "FAKE-CERT-0001"}}  # the original is untouched


def test_jilin_unseal_decrypts_output_and_reports_garbage() -> None:
    signer = JilinSigner(token_url="http://x", client_id="CLIENT0123456789", client_secret="s",
                         username="u", password="p", sm2_private_key=SM2_TEST_KEY)
    output = {"baseinfo": {"psn_no": "SIM0001"}}
    encrypted = base64.b64encode(sm4_ecb_encrypt(b"CLIENT0123456789", json.dumps(output).encode())).decode()
    assert signer.unseal({"infcode": 0, "output": encrypted})["output"] == output
    with pytest.raises(PermanentError) as caught:
        signer.unseal({"infcode": 0, "output": base64.b64encode(bytes(16)).decode()})
    assert caught.value.detail["condition"] == "bad_envelope"


def test_jilin_needs_a_16_byte_client_id_to_encrypt() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        JilinSigner(token_url="http://x", client_id="short", client_secret="s", username="u", password="p",
                    sm2_private_key=SM2_TEST_KEY)


def test_sm3_fallback_is_the_same_function() -> None:
    """gmalg's SM3 (used when OpenSSL lacks it) agrees with hashlib's."""
    import gmalg

    digest = gmalg.SM3()
    digest.update(b"abc")
    try:
        assert digest.value() == hashlib.new("sm3", b"abc").digest()
    except ValueError:
        pytest.skip("this OpenSSL has no SM3")
