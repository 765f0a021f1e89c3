"""Fault rules as data: read and validate a YAML rule file into FaultRule objects.

A rule file is a mapping with a `rules:` list; each rule has `id`, `party`, `match`,
`reason` and optionally `remedy` and `priority` (see engine.attribution.rules.FaultRule for
the match keys). Every problem is reported at once, naming the file and the rule's index.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.attribution.rules import FaultRule
from engine.errors import ConfigError
from engine.message import Party

_PLAIN_KEYS = frozenset({"stage", "error_kind", "adapter", "channel", "ack_code"})
_STATUS_CLASS = re.compile(r"^[1-5]xx$")


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
    party: Party
    match: dict[str, Any] = Field(min_length=1)
    reason: str = Field(min_length=1)
    remedy: str = ""
    priority: int = Field(500, ge=0)

    @field_validator("match")
    @classmethod
    def _known_conditions(cls, match: dict[str, Any]) -> dict[str, Any]:
        for key, expected in match.items():
            _check_condition(key, expected)
        return match

    @field_validator("reason", "remedy")
    @classmethod
    def _valid_template(cls, template: str) -> str:
        try:
            list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ValueError(f"bad {{placeholder}} syntax: {exc}") from None
        return template


def _check_condition(key: str, expected: Any) -> None:
    if key == "http_status":
        for item in expected if isinstance(expected, list) else [expected]:
            if not (isinstance(item, int) or (isinstance(item, str) and _STATUS_CLASS.match(item))):
                raise ValueError(
                    f"http_status: {item!r} is neither a status code nor a class like '5xx'"
                )
    elif key == "message":
        _check_regex(key, expected)
    elif key.startswith("field.") and len(key) > len("field."):
        if isinstance(expected, dict):
            if set(expected) != {"regex"}:
                raise ValueError(f"{key}: a mapping condition must be {{regex: ...}}")
            _check_regex(key, expected["regex"])
    elif key not in _PLAIN_KEYS:
        known = ", ".join(sorted(_PLAIN_KEYS | {"http_status", "message", "field.<name>"}))
        raise ValueError(f"unknown match key {key!r} (known: {known})")


def _check_regex(key: str, pattern: Any) -> None:
    try:
        re.compile(str(pattern))
    except re.error as exc:
        raise ValueError(f"{key}: invalid regex {pattern!r}: {exc}") from None


def parse_rules(data: Any, *, source: str) -> list[FaultRule]:
    """Validate already-loaded YAML data; `source` names it in error messages."""
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise ConfigError([f"{source}: expected a mapping with a `rules:` list"])
    rules: list[FaultRule] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data["rules"]):
        label = f"{source}: rules[{index}]"
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            label += f" ({raw['id']})"
        try:
            spec = _RuleSpec.model_validate(raw)
        except ValidationError as exc:
            problems.extend(f"{label}: {_where(error)}{error['msg']}" for error in exc.errors())
            continue
        if spec.id in seen:
            problems.append(f"{label}: duplicate id, first used by rules[{seen[spec.id]}]")
            continue
        seen[spec.id] = index
        rules.append(
            FaultRule(spec.id, spec.party, spec.reason, spec.match, spec.remedy, spec.priority)
        )
    if problems:
        raise ConfigError(problems)
    return rules


def _where(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"])
    return f"{location}: " if location else ""


def load_rule_file(path: str | Path) -> list[FaultRule]:
    """Read a YAML rule file; ConfigError lists every problem with file and rule index."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from exc
    return parse_rules(data, source=str(path))


def load_core_rules() -> list[FaultRule]:
    """The engine's generic rules shipped as engine/attribution/core_rules.yaml."""
    text = (
        resources.files("engine.attribution")
        .joinpath("core_rules.yaml")
        .read_text(encoding="utf-8")
    )
    return parse_rules(yaml.safe_load(text), source="engine/attribution/core_rules.yaml")


CONF_RULES_FILE = "fault_rules.yaml"
"""A site's own rules, optional, beside hisbridge.yaml in the conf dir."""


def load_conf_rules(conf_dir: Path) -> list[FaultRule]:
    """The rules in `<conf_dir>/fault_rules.yaml`, or none when the file does not exist."""
    path = conf_dir / CONF_RULES_FILE
    return load_rule_file(path) if path.exists() else []
