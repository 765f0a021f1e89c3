"""The engine's own demo act, registered like any plugin's."""

from __future__ import annotations

from engine import hookimpl
from engine.demo.acts import DemoAct
from engine.demo.core_act import OutageAct


@hookimpl
def hisbridge_register_demo_acts() -> list[type[DemoAct]]:
    return [OutageAct]
