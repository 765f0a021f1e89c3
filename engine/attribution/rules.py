"""Fault rules are data: a rule matches facts about a failure and names the party at fault."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from engine.message import Party, Verdict


@dataclass(frozen=True)
class FailureFacts:
    """Everything known about one failure, flattened for rules to match on.

    `error_kind` is the engine error class name (`TransientError`, `InputError`, ...) or a
    transport condition (`connect`, `timeout`, `reset`); `fields` holds protocol facts a
    plugin extracted (e.g. `infcode`, `err_msg` for yibao, `msa_1` for HL7 ACKs).
    """

    stage: str  # validate | transform | send | response
    error_kind: str
    message: str = ""
    http_status: int | None = None
    ack_code: str | None = None
    adapter: str = ""
    channel: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FaultRule:
    """Match conditions (all must hold) → party. Lower `priority` runs first; plugin rules
    use priorities below 1000 so they win over the engine's generic rules (1000+).

    `match` keys: `stage`, `error_kind`, `adapter`, `channel`, `ack_code` (exact or list);
    `http_status` (int, list, or a class such as "5xx"); `message` (regex);
    `field.<name>` (exact, list, or `{"regex": ...}`).
    """

    id: str
    party: Party
    reason: str
    match: dict[str, Any]
    remedy: str = ""
    priority: int = 500

    def matches(self, facts: FailureFacts) -> bool:
        return all(_condition_holds(key, expected, facts) for key, expected in self.match.items())

    def verdict(self, facts: FailureFacts) -> Verdict:
        reason = self.reason.format_map(_SafeFacts(facts))
        return Verdict(self.party, self.id, reason, self.remedy)


class _SafeFacts(dict[str, Any]):
    def __init__(self, facts: FailureFacts) -> None:
        super().__init__(vars(facts))
        self.update(facts.fields)

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _condition_holds(key: str, expected: Any, facts: FailureFacts) -> bool:
    if key.startswith("field."):
        return _value_matches(facts.fields.get(key.removeprefix("field.")), expected)
    if key == "http_status":
        return _status_matches(facts.http_status, expected)
    if key == "message":
        return re.search(str(expected), facts.message) is not None
    return _value_matches(getattr(facts, key), expected)


def _value_matches(actual: Any, expected: Any) -> bool:
    if actual is None:
        return False
    if isinstance(expected, dict) and "regex" in expected:
        return re.search(expected["regex"], str(actual)) is not None
    if isinstance(expected, list):
        return str(actual) in {str(item) for item in expected}
    return str(actual) == str(expected)


def _status_matches(actual: int | None, expected: Any) -> bool:
    if actual is None:
        return False
    if isinstance(expected, str) and expected.endswith("xx"):
        return str(actual)[0] == expected[0]
    if isinstance(expected, list):
        return any(_status_matches(actual, item) for item in expected)
    return actual == int(expected)


def decide(rules: list[FaultRule], facts: FailureFacts) -> Verdict:
    """The verdict of the first matching rule by priority; engine fallback when none match."""
    for rule in sorted(rules, key=lambda rule: rule.priority):
        if rule.matches(facts):
            return rule.verdict(facts)
    return Verdict(Party.ENGINE, "engine.unclassified", f"unclassified failure: {facts.message}")
