"""`hisbridge demo`: the daemon on the embedded store, and every registered act in turn."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Callable

import httpx

from engine.daemon import Daemon
from engine.demo.acts import DemoAct, DemoStage

DEMO_TOKENS = {"HISBRIDGE_HIS_TOKEN": "demo-his-token", "HISBRIDGE_OPERATOR_TOKEN": "demo-operator-token"}


def demo_environment(acts: Sequence[type[DemoAct]]) -> dict[str, str]:
    """The API tokens and every act's demo secrets."""
    values = dict(DEMO_TOKENS)
    for act in acts:
        values.update(act.environment)
    return values


def use_demo_environment(acts: Sequence[type[DemoAct]]) -> list[str]:
    """Give the example config its tokens and secrets where the environment has none;
    returns the names set."""
    values = demo_environment(acts)
    missing = [name for name in values if not os.environ.get(name)]
    for name in missing:
        os.environ[name] = values[name]
    return missing


async def run_acts(daemon: Daemon, acts: Sequence[type[DemoAct]], say: Callable[[str], None]) -> bool:
    """Play each act against the daemon; an act that fails does not stop the ones after it."""
    results: dict[str, bool] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        stage = DemoStage(daemon=daemon, http=http, say=say)
        for number, act in enumerate(acts, start=1):
            say(f"\n=== Act {number} ({act.name}): {act.title}")
            results[act.name] = await act().run(stage)
    say("\n=== Summary")
    for name, ok in results.items():
        say(f"   {name}: {'ok' if ok else 'FAILED'}")
    return all(results.values())
