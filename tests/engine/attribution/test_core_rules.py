from datetime import UTC, datetime

import pytest

from engine.adapters.base import Wire
from engine.attribution import builtin
from engine.attribution.facts import facts_from_error
from engine.attribution.rules import FaultRule, decide
from engine.errors import (
    DestinationUnavailable,
    InputError,
    OutcomeUnknownError,
    PermanentError,
    StoreError,
    TransientError,
)
from engine.message import Party, Payload

RULES = builtin.hisbridge_register_fault_rules()
SINCE = datetime(2026, 11, 1, 8, tzinfo=UTC)


def answered(status: int | None = None, ack: str | None = None) -> Wire:
    wire = Wire()
    wire.sent(Payload(b"{}"))
    wire.received(Payload(b"{}"), status_code=status, ack_code=ack)
    return wire


CASES = [
    (InputError("missing", field="psn_no"), "validate", None, Party.HIS, "core.input.his"),
    (InputError("bad OBX", party="device"), "validate", None, Party.DEVICE, "core.input.device"),
    (InputError("bad date", field="begntime"), "transform", None, Party.HIS, "core.input.his"),
    (KeyError("psn_no"), "transform", None, Party.ENGINE, "core.engine.request_mapping"),
    (
        PermanentError("mapping table lacks code"),
        "transform",
        None,
        Party.ENGINE,
        "core.engine.request_mapping",
    ),
    (ValueError("bad"), "validate", None, Party.ENGINE, "core.engine.request_mapping"),
    (KeyError("output"), "response", answered(200), Party.ENGINE, "core.engine.response_mapping"),
    (
        TransientError("refused", detail={"condition": "connect"}),
        "send",
        None,
        Party.NETWORK,
        "core.network.connect",
    ),
    (
        TransientError("cert", detail={"condition": "tls"}),
        "send",
        None,
        Party.NETWORK,
        "core.network.tls",
    ),
    (
        TransientError("pool timeout", detail={"condition": "timeout"}),
        "send",
        Wire(),
        Party.NETWORK,
        "core.network.timeout_before_send",
    ),
    (
        OutcomeUnknownError("read timeout", detail={"condition": "timeout"}),
        "send",
        None,
        Party.THIRD_PARTY,
        "core.third_party.no_answer",
    ),
    (
        OutcomeUnknownError("no answer"),
        "send",
        None,
        Party.THIRD_PARTY,
        "core.third_party.no_answer",
    ),
    (
        OutcomeUnknownError("reset", detail={"condition": "reset"}),
        "send",
        None,
        Party.NETWORK,
        "core.network.lost_after_send",
    ),
    (
        TransientError("reset", detail={"condition": "reset"}),
        "send",
        None,
        Party.NETWORK,
        "core.network.transport",
    ),
    (
        TransientError("bad gateway"),
        "send",
        answered(502),
        Party.THIRD_PARTY,
        "core.http.server_error",
    ),
    (
        PermanentError("bad request", detail={"http_status": 400}),
        "send",
        None,
        Party.THIRD_PARTY,
        "core.http.client_error",
    ),
    (
        PermanentError("forbidden", detail={"http_status": 403}),
        "send",
        None,
        Party.THIRD_PARTY,
        "core.http.auth",
    ),
    (
        TransientError("slow down", detail={"http_status": 429}),
        "send",
        None,
        Party.THIRD_PARTY,
        "core.http.rate_limited",
    ),
    (
        DestinationUnavailable("yibao", state="open", since=SINCE, reason="5 failures"),
        "send",
        None,
        Party.THIRD_PARTY,
        "core.unavailable.breaker_open",
    ),
    (
        DestinationUnavailable(
            "yibao", state="open", since=SINCE,
            reason="TransientError: connect: ConnectError: Cannot connect to host",
        ),
        "send",
        None,
        Party.NETWORK,
        "core.unavailable.unreachable",
    ),
    (
        DestinationUnavailable(
            "yibao", state="open", since=SINCE, reason="TransientError: http_status: HTTP 502"
        ),
        "send",
        None,
        Party.THIRD_PARTY,
        "core.unavailable.breaker_open",
    ),
    (
        DestinationUnavailable("yibao", state="suspended", since=SINCE, reason="centre upgrade"),
        "send",
        None,
        Party.THIRD_PARTY,
        "core.unavailable.suspended",
    ),
    (
        AttributeError("'NoneType' object has no attribute 'x'"),
        "send",
        None,
        Party.ENGINE,
        "core.engine.send_exception",
    ),
    (StoreError("disk full"), "send", None, Party.ENGINE, "core.engine.store"),
    (PermanentError("AE"), "send", answered(200, "AE"), Party.THIRD_PARTY, "core.ack.error"),
    (PermanentError("CR"), "send", answered(None, "CR"), Party.THIRD_PARTY, "core.ack.reject"),
    (
        PermanentError("AR", detail={"ack_code": "AR"}),
        "response",
        None,
        Party.THIRD_PARTY,
        "core.ack.reject",
    ),
    (
        PermanentError("infcode -1"),
        "response",
        answered(200),
        Party.THIRD_PARTY,
        "core.third_party.rejected",
    ),
    (
        OutcomeUnknownError("gzip", detail={"condition": "decoding"}),
        "send",
        None,
        Party.THIRD_PARTY,
        "core.third_party.undecodable",
    ),
    (
        PermanentError("bad url", detail={"condition": "config"}),
        "send",
        None,
        Party.ENGINE,
        "core.engine.unsendable_request",
    ),
    (TransientError("busy"), "send", None, Party.THIRD_PARTY, "core.third_party.temporary"),
    (
        PermanentError("fault", detail={"condition": "soap_fault", "faultcode": "Server",
                                        "faultstring": "no such exam"}),
        "send",
        answered(500),
        Party.THIRD_PARTY,
        "core.soap.fault",
    ),
    (
        PermanentError("not XML", detail={"condition": "malformed_xml"}),
        "send",
        answered(200),
        Party.THIRD_PARTY,
        "core.soap.malformed",
    ),
]


@pytest.mark.parametrize(
    ("exc", "stage", "wire", "party", "rule_id"),
    CASES,
    ids=[case[-1] + ":" + type(case[0]).__name__ for case in CASES],
)
def test_generic_rules_blame_the_right_party(
    exc: BaseException, stage: str, wire: Wire | None, party: Party, rule_id: str
) -> None:
    verdict = decide(
        RULES, facts_from_error(exc, stage=stage, adapter="demo", channel="c", wire=wire)
    )
    assert (verdict.party, verdict.rule_id) == (party, rule_id)
    assert verdict.remedy and "{" not in verdict.reason


def test_every_core_rule_is_reached_by_some_case() -> None:
    assert {rule.id for rule in RULES} == {case[-1] for case in CASES}


def test_core_rules_leave_priorities_below_1000_to_plugins() -> None:
    assert min(rule.priority for rule in RULES) >= 1000
    assert len({rule.priority for rule in RULES}) == len(RULES)


def test_reasons_and_remedies_name_the_facts() -> None:
    facts = facts_from_error(
        InputError("must not be empty", field="psn_no"),
        stage="validate",
        adapter="yibao",
        channel="settle",
        wire=None,
    )
    verdict = decide(RULES, facts)
    assert verdict.reason == "HIS sent invalid input: psn_no: must not be empty"
    connect = decide(
        RULES,
        facts_from_error(
            TransientError("refused", detail={"condition": "connect"}),
            stage="send",
            adapter="yibao",
            channel="settle",
            wire=None,
        ),
    )
    assert "host/port" in connect.remedy and "network path" in connect.remedy
    rejected = decide(
        RULES,
        facts_from_error(
            PermanentError("x", detail={"http_status": 422}),
            stage="send",
            adapter="a",
            channel="c",
            wire=None,
        ),
    )
    assert rejected.reason.startswith("the destination rejected the request (HTTP 422)")
    assert rejected.remedy == "compare the sent stage with the destination's spec"


def test_a_plugin_rule_wins_over_the_generic_ones() -> None:
    plugin_rule = FaultRule(
        "yibao.infcode",
        Party.THIRD_PARTY,
        "centre said {err_msg}",
        {"field.infcode": "-1"},
        priority=100,
    )
    facts = facts_from_error(
        PermanentError("x", detail={"infcode": -1, "err_msg": "参保人不存在"}),
        stage="response",
        adapter="yibao",
        channel="c",
        wire=answered(200),
    )
    verdict = decide(RULES + [plugin_rule], facts)
    assert (verdict.rule_id, verdict.reason) == ("yibao.infcode", "centre said 参保人不存在")


TRANSPORT_PARTIES = {
    "connect": ("core.network.connect", Party.NETWORK),
    "proxy": ("core.network.transport", Party.NETWORK),
    "timeout": ("core.third_party.no_answer", Party.THIRD_PARTY),
    "reset": ("core.network.lost_after_send", Party.NETWORK),
    "protocol": ("core.network.lost_after_send", Party.NETWORK),
    "decoding": ("core.third_party.undecodable", Party.THIRD_PARTY),
    "request": ("core.engine.unsendable_request", Party.ENGINE),
    "config": ("core.engine.unsendable_request", Party.ENGINE),
    "redirects": ("core.third_party.rejected", Party.THIRD_PARTY),
}


def test_every_translated_httpx_error_gets_a_deliberate_verdict() -> None:
    httpx = pytest.importorskip("httpx")
    transports = pytest.importorskip("engine.transports")
    request = httpx.Request("POST", "https://centre.example/api")
    for exc_type in transports.HTTPX_DECISIONS:
        exc = (
            exc_type("boom", request=request)
            if issubclass(exc_type, httpx.RequestError)
            else exc_type("boom")
        )
        error = transports.translate(exc)
        verdict = decide(
            RULES, facts_from_error(error, stage="send", adapter="a", channel="c", wire=None)
        )
        condition = error.detail["condition"]
        assert (verdict.rule_id, verdict.party) == TRANSPORT_PARTIES[condition], exc_type


@pytest.mark.parametrize(
    ("status", "rule_id"),
    [
        (500, "core.http.server_error"),
        (408, "core.http.client_error"),
        (404, "core.http.client_error"),
    ],
)
def test_translated_status_errors_use_the_http_rules(status: int, rule_id: str) -> None:
    transports = pytest.importorskip("engine.transports")
    error = transports.status_error(status)
    verdict = decide(
        RULES, facts_from_error(error, stage="send", adapter="a", channel="c", wire=None)
    )
    assert (verdict.rule_id, verdict.party) == (rule_id, Party.THIRD_PARTY)
