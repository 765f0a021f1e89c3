"""The yibao demo act against a daemon on a port-shifted copy of the example conf."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.plugin_manager import create_plugin_manager
from plugins.yibao.demo_act import YibaoAct
from tests.e2e.demo_harness import play


@pytest.fixture(autouse=True)
def every_acts_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example conf holds every plugin's channels; play() sets only this act's secrets."""
    for acts in create_plugin_manager().hook.hisbridge_register_demo_acts():
        for act in acts:
            for name, value in act.environment.items():
                monkeypatch.setenv(name, value)


async def test_the_insurance_act_tells_its_story_and_holds_what_it_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, said = await play(YibaoAct, tmp_path, monkeypatch)

    assert ok, said
    assert "yibao.settlement.reversed" in said
    assert "insurance suspended" in said and "self-pay" in said
    assert "centre revoked, still settled locally" in said
