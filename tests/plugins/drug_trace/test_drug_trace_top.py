"""TOP signing against the spec's vectors, and the 码上放心 relation query against a
simulated gateway on a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest

from engine.adapters.base import Wire
from engine.errors import InputError, PermanentError, TransientError
from plugins.drug_trace.simulator import RelationServer, RelationSimulator
from plugins.drug_trace.top import (
    CHINA_TIME,
    RELATION_METHOD,
    CodeRelations,
    SignMethod,
    TopClient,
    relation_codes,
    response_root,
    top_sign,
)
from tests.plugins.drug_trace.trace_data import AMOXICILLIN_CASE_PREFIX, AMOXICILLIN_PREFIX, code

APP_KEY = "12345678"
SECRET = "testsecret"
VECTOR_PARAMS = {
    "method": RELATION_METHOD, "app_key": APP_KEY, "sign_method": "md5", "timestamp": "2024-06-01 10:00:00",
    "format": "json", "v": "2.0", "simplify": "true", "ref_ent_id": "REFENT0001", "des_ref_ent_id": "REFENT0001",
    "code": "81234560000000012345",
}
CASE = code(AMOXICILLIN_CASE_PREFIX, 1)
BOXES = [code(AMOXICILLIN_PREFIX, serial) for serial in (11, 12, 13)]


def test_md5_sign_matches_the_spec_vector() -> None:
    assert top_sign(VECTOR_PARAMS, SECRET, "md5") == "F1D2E1C3F0E661884E2C1429C66F9D52"


def test_hmac_sign_matches_the_spec_vector() -> None:
    # The spec's HMAC vector is over the same parameters (sign_method still reads md5).
    assert top_sign(VECTOR_PARAMS, SECRET, "hmac") == "C16A4241E7675BCCF3C8829E209E5624"


def test_the_sign_ignores_an_existing_sign_parameter() -> None:
    assert top_sign({**VECTOR_PARAMS, "sign": "X"}, SECRET, "md5") == top_sign(VECTOR_PARAMS, SECRET, "md5")


@pytest.fixture
async def gateway() -> AsyncIterator[RelationServer]:
    simulator = RelationSimulator(app_key=APP_KEY, secret=SECRET)
    simulator.add_package(CASE, BOXES)
    async with RelationServer(simulator) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def relations(gateway: RelationServer, http: httpx.AsyncClient, *, sign_method: SignMethod = "md5",
              secret: str = SECRET, skew: timedelta = timedelta()) -> CodeRelations:
    client = TopClient(http=http, gateway_url=gateway.gateway_url, app_key=APP_KEY, secret=secret,
                       sign_method=sign_method, clock=lambda: datetime.now(CHINA_TIME) + skew)
    return CodeRelations(client, ref_ent_id="REFENT0001")


@pytest.mark.parametrize("sign_method", ["md5", "hmac"])
async def test_a_case_code_expands_into_its_box_codes(
    gateway: RelationServer, http: httpx.AsyncClient, sign_method: SignMethod
) -> None:
    wire = Wire()
    assert await relations(gateway, http, sign_method=sign_method).smallest_codes(CASE, wire) == BOXES
    assert wire.current.status_code == 200 and wire.current.sent is not None


async def test_three_levels_expand_to_the_smallest_and_a_middle_code_to_its_own(
    gateway: RelationServer, http: httpx.AsyncClient
) -> None:
    pallet, middles = code("8123455", 1), {code("8123456", 21): BOXES[:2], code("8123456", 22): BOXES[2:]}
    gateway.simulator.children.clear()
    gateway.simulator.parents.clear()
    gateway.simulator.add_package(pallet, middles)
    query = relations(gateway, http)
    assert await query.smallest_codes(pallet) == BOXES
    assert await query.smallest_codes(code("8123456", 22)) == BOXES[2:]
    assert await query.smallest_codes(BOXES[0]) == BOXES[:1]


async def test_answers_are_cached(gateway: RelationServer, http: httpx.AsyncClient) -> None:
    query = relations(gateway, http)
    await query.smallest_codes(CASE)
    assert await query.smallest_codes(CASE) == BOXES
    assert gateway.simulator.calls == 1


async def test_an_unknown_code_is_named_as_his_input(gateway: RelationServer, http: httpx.AsyncClient) -> None:
    with pytest.raises(InputError) as caught:
        await relations(gateway, http).smallest_codes(code(AMOXICILLIN_PREFIX, 999))
    assert caught.value.field == "code"


async def test_a_wrong_secret_or_a_skewed_clock_is_a_top_error(
    gateway: RelationServer, http: httpx.AsyncClient
) -> None:
    with pytest.raises(PermanentError) as bad_sign:
        await relations(gateway, http, secret="wrong").smallest_codes(CASE)
    assert bad_sign.value.detail["top_code"] == 25
    with pytest.raises(PermanentError) as skewed:
        await relations(gateway, http, skew=timedelta(minutes=11)).smallest_codes(CASE)
    assert skewed.value.detail["top_code"] == 31


async def test_a_busy_gateway_is_transient(gateway: RelationServer, http: httpx.AsyncClient) -> None:
    gateway.simulator.unavailable = 1
    query = relations(gateway, http)
    with pytest.raises(TransientError):
        await query.smallest_codes(CASE)
    assert await query.smallest_codes(CASE) == BOXES


async def test_the_wrapped_answer_form_is_read_too(gateway: RelationServer, http: httpx.AsyncClient) -> None:
    client = TopClient(http=http, gateway_url=gateway.gateway_url, app_key=APP_KEY, secret=SECRET)
    params = {k: v for k, v in client.signed_params(RELATION_METHOD, {"code": CASE}).items() if k != "sign"}
    params["simplify"] = "false"
    params["sign"] = top_sign(params, SECRET, "md5")
    answer = (await http.post(gateway.gateway_url, data=params)).json()
    infos = relation_codes(answer[response_root(RELATION_METHOD)])
    assert [info.code for info in infos] == [CASE, *BOXES]
