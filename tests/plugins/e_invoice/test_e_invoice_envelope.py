"""The platform envelope against the spec's test vector, and answers that must not be believed."""

from __future__ import annotations

import json

import pytest

from engine.errors import PermanentError
from plugins.e_invoice.envelope import (
    Credentials,
    answer_envelope,
    encode_data,
    open_answer,
    open_request,
    seal,
    sign,
)

VECTOR = Credentials("TESTAPPID0001", "testkey123")
VECTOR_NOISE = "3f1c9a0e5b7d4c2e8f6a1b3c5d7e9f01"
VECTOR_DATA = "eyJidXNObyI6Ik1aMjAyNDA2MDEwMDAxIiwicGF5ZXIiOiLlvKDkuIkiLCJ0b3RhbEFtdCI6IjI1LjUwIn0="
VECTOR_SIGN = "DA8B022F8802D0B197E976055677BE16"
VECTOR_BUSINESS = {"busNo": "MZ202406010001", "payer": "张三", "totalAmt": "25.50"}


def test_the_spec_vector_gives_its_data_and_sign() -> None:
    assert encode_data(VECTOR_BUSINESS) == VECTOR_DATA
    assert sign(appid="TESTAPPID0001", data=VECTOR_DATA, noise=VECTOR_NOISE, key="testkey123",
                version="1.0") == VECTOR_SIGN
    assert seal(VECTOR, VECTOR_BUSINESS, noise=VECTOR_NOISE) == {
        "appid": "TESTAPPID0001", "data": VECTOR_DATA, "noise": VECTOR_NOISE, "version": "1.0", "sign": VECTOR_SIGN,
    }


def test_the_key_sits_between_noise_and_version_not_alphabetically() -> None:
    alphabetical = sign(appid="TESTAPPID0001", data=VECTOR_DATA, noise=VECTOR_NOISE, key="1.0", version="testkey123")
    assert alphabetical != VECTOR_SIGN


def test_every_request_gets_a_fresh_noise() -> None:
    assert seal(VECTOR, VECTOR_BUSINESS)["noise"] != seal(VECTOR, VECTOR_BUSINESS)["noise"]


def test_the_platform_side_opens_a_request_and_refuses_a_tampered_one() -> None:
    envelope = seal(VECTOR, VECTOR_BUSINESS)
    assert open_request(VECTOR, envelope) == VECTOR_BUSINESS
    tampered = {**envelope, "data": encode_data({**VECTOR_BUSINESS, "totalAmt": "2.50"})}
    with pytest.raises(ValueError, match="sign"):
        open_request(VECTOR, tampered)


def test_a_success_answer_decodes_to_the_business_json() -> None:
    body = json.dumps(answer_envelope(VECTOR, "S0000", {"billNo": "0000000001", "random": "a1b2c3"})).encode()
    answer = open_answer(VECTOR, body)
    assert answer.ok and answer.business == {"billNo": "0000000001", "random": "a1b2c3"}


def test_a_failure_answer_keeps_the_decoded_text() -> None:
    answer = open_answer(VECTOR, json.dumps(answer_envelope(VECTOR, "E1001", "业务流水号重复")).encode())
    assert (answer.ok, answer.result, answer.text) == (False, "E1001", "业务流水号重复")


def test_an_answer_signed_with_another_key_is_a_bad_signature() -> None:
    forged = json.dumps(answer_envelope(Credentials("TESTAPPID0001", "other"), "S0000", {"billNo": "1"})).encode()
    with pytest.raises(PermanentError) as caught:
        open_answer(VECTOR, forged)
    assert caught.value.detail["condition"] == "bad_signature"


@pytest.mark.parametrize("body", [b"<html>502</html>", b"[1]", b'{"data": "!!!", "noise": "n", "sign": "x"}'])
def test_an_unreadable_answer_is_a_bad_envelope_or_signature(body: bytes) -> None:
    with pytest.raises(PermanentError) as caught:
        open_answer(VECTOR, body)
    assert caught.value.detail["condition"] in ("bad_envelope", "bad_signature")
