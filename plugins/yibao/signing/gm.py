"""SM2/SM3/SM4 (Chinese national algorithms) as the gateway schemes need them.

SM3 uses OpenSSL through hashlib when it offers `sm3`, else gmalg; SM4 and SM2 come from
gmalg (pure Python, maintained). HMAC-SM3 is the RFC 2104 construction over SM3 (block 64).
SM2 signatures are SM3withSM2 with a user id (the Z value of GB/T 32918.2), DER-encoded
as Java's BouncyCastle writes them.
"""

from __future__ import annotations

import hashlib

import gmalg

SM3_BLOCK = 64
SM4_BLOCK = 16


def _hashlib_has_sm3() -> bool:
    try:
        hashlib.new("sm3")
    except ValueError:
        return False
    return True


_OPENSSL_SM3 = _hashlib_has_sm3()


def sm3(data: bytes) -> bytes:
    if _OPENSSL_SM3:
        return hashlib.new("sm3", data).digest()
    digest = gmalg.SM3()
    digest.update(data)
    return bytes(digest.value())


def hmac_sm3(key: bytes, message: bytes) -> bytes:
    if len(key) > SM3_BLOCK:
        key = sm3(key)
    key = key.ljust(SM3_BLOCK, b"\0")
    inner = sm3(bytes(b ^ 0x36 for b in key) + message)
    return sm3(bytes(b ^ 0x5C for b in key) + inner)


def sm4_ecb_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """SM4-ECB with PKCS#7 padding (Java's `SM4/ECB/PKCS5Padding`)."""
    cipher = _sm4(key)
    pad = SM4_BLOCK - len(plaintext) % SM4_BLOCK
    padded = plaintext + bytes([pad]) * pad
    return b"".join(cipher.encrypt(padded[i : i + SM4_BLOCK]) for i in range(0, len(padded), SM4_BLOCK))


def sm4_ecb_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    if not ciphertext or len(ciphertext) % SM4_BLOCK:
        raise ValueError("SM4 ciphertext length is not a positive multiple of 16")
    cipher = _sm4(key)
    padded = b"".join(cipher.decrypt(ciphertext[i : i + SM4_BLOCK]) for i in range(0, len(ciphertext), SM4_BLOCK))
    pad = padded[-1]
    if not 1 <= pad <= SM4_BLOCK or padded[-pad:] != bytes([pad]) * pad:
        raise ValueError("SM4 plaintext has bad padding (wrong key?)")
    return padded[:-pad]


def _sm4(key: bytes) -> gmalg.SM4:
    if len(key) != SM4_BLOCK:
        raise ValueError(f"an SM4 key has 16 bytes, got {len(key)}")
    return gmalg.SM4(key)


def sm2_public_key(private_key: bytes) -> bytes:
    """The uncompressed public point (0x04 || x || y) of a 32-byte private key."""
    return bytes(gmalg.SM2().generate_pk(private_key))


def sm2_sign(private_key: bytes, message: bytes, *, uid: bytes) -> bytes:
    """SM3withSM2 signature of `message` for user id `uid`, DER `SEQUENCE {r, s}`."""
    signer = gmalg.SM2(private_key, uid, sm2_public_key(private_key))
    r, s = signer.sign(message)
    return _der_sequence(_der_integer(r), _der_integer(s))


def sm2_verify(public_key: bytes, message: bytes, signature: bytes, *, uid: bytes) -> bool:
    try:
        r, s = _der_signature(signature)
    except ValueError:
        return False
    return bool(gmalg.SM2(uid=uid, pk=public_key).verify(message, r, s))


def _der_integer(value: bytes) -> bytes:
    value = value.lstrip(b"\0") or b"\0"
    if value[0] & 0x80:
        value = b"\0" + value
    return b"\x02" + _der_length(len(value)) + value


def _der_sequence(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return b"\x30" + _der_length(len(body)) + body


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _der_signature(signature: bytes) -> tuple[bytes, bytes]:
    if len(signature) < 8 or signature[0] != 0x30 or signature[1] != len(signature) - 2:
        raise ValueError("not a DER SEQUENCE of two short integers")
    integers: list[bytes] = []
    position = 2
    while position < len(signature):
        if signature[position] != 0x02:
            raise ValueError("expected an INTEGER")
        length = signature[position + 1]
        value = signature[position + 2 : position + 2 + length]
        integers.append(value.lstrip(b"\0").rjust(32, b"\0"))
        position += 2 + length
    if len(integers) != 2 or any(len(i) != 32 for i in integers):
        raise ValueError("expected two 32-byte integers")
    return integers[0], integers[1]
