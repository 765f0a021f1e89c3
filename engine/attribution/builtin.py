"""The engine's generic fault rules, registered through the same hook a plugin uses."""

from __future__ import annotations

from functools import cache

from engine import hookimpl
from engine.attribution.loader import load_core_rules
from engine.attribution.rules import FaultRule


@cache
def _core_rules() -> tuple[FaultRule, ...]:
    return tuple(load_core_rules())


@hookimpl
def hisbridge_register_fault_rules() -> list[FaultRule]:
    return list(_core_rules())
