"""The pipeline's Attributor: verdicts by the fault rules, remembered by their facts."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from engine.attribution.facts import facts_from_error
from engine.attribution.rules import FaultRule, decide
from engine.delivery import Attributor
from engine.errors import DestinationUnavailable, TransientError
from engine.message import Party

CHANNEL: Any = SimpleNamespace(name="query")
DESTINATION: Any = SimpleNamespace(config=SimpleNamespace(adapter="http_json"))

RULES = [
    FaultRule("site.transient", Party.THIRD_PARTY, "centre failed: {message}", {"error_kind": "TransientError"},
              priority=900),
    FaultRule("site.open", Party.NETWORK, "open since {since}", {"error_kind": "DestinationUnavailable"},
              priority=20),
    FaultRule("site.anything", Party.ENGINE, "anything", {"stage": "send"}, priority=10),
]


def _open(since: datetime) -> DestinationUnavailable:
    return DestinationUnavailable("centre", state="open", since=since, reason="5 failures")


def test_verdicts_follow_rule_priority_whatever_the_order_given() -> None:
    attributor = Attributor(list(reversed(RULES)))
    verdict = attributor.attribute(_open(datetime(2026, 1, 1, tzinfo=UTC)), stage="send", channel=CHANNEL,
                                   destination=DESTINATION)
    assert verdict.rule_id == "site.anything"


def test_the_same_failure_gets_the_verdict_the_rules_give_once_decided() -> None:
    attributor = Attributor(RULES)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    first = attributor.attribute(_open(since), stage="response", channel=CHANNEL, destination=DESTINATION)
    again = attributor.attribute(_open(since), stage="response", channel=CHANNEL, destination=DESTINATION)
    facts = facts_from_error(_open(since), stage="response", adapter="http_json", channel="query", wire=None)
    assert first == decide(RULES, facts)
    assert again is first


def test_different_facts_are_decided_afresh() -> None:
    attributor = Attributor(RULES)
    first = attributor.attribute(_open(datetime(2026, 1, 1, tzinfo=UTC)), stage="response", channel=CHANNEL,
                                 destination=DESTINATION)
    later = attributor.attribute(_open(datetime(2026, 1, 2, tzinfo=UTC)), stage="response", channel=CHANNEL,
                                 destination=DESTINATION)
    assert first.reason == "open since 2026-01-01T00:00:00+00:00"
    assert later.reason == "open since 2026-01-02T00:00:00+00:00"


def test_facts_that_cannot_be_a_key_are_still_decided() -> None:
    attributor = Attributor(RULES)
    error = TransientError("502 from centre", detail={"errors": [{"code": "E1"}]})
    verdict = attributor.attribute(error, stage="response", channel=CHANNEL, destination=DESTINATION)
    assert (verdict.rule_id, verdict.reason) == ("site.transient", "centre failed: 502 from centre")


def test_memory_stays_bounded() -> None:
    attributor = Attributor(RULES)
    for minute in range(Attributor.MAX_REMEMBERED + 5):
        since = datetime(2026, 1, 1, 0, minute % 60, tzinfo=UTC).replace(hour=minute // 60)
        attributor.attribute(_open(since), stage="response", channel=CHANNEL, destination=DESTINATION)
    assert len(attributor._verdicts) <= Attributor.MAX_REMEMBERED
