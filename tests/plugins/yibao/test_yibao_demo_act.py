"""The yibao demo act against a daemon on a port-shifted copy of the example conf."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.yibao.demo_act import YibaoAct
from tests.e2e.demo_harness import play


async def test_the_insurance_act_tells_its_story_and_holds_what_it_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, said = await play(YibaoAct, tmp_path, monkeypatch)

    assert ok, said
    assert "yibao.settlement.reversed" in said
    assert "insurance suspended" in said and "self-pay" in said
    assert "centre revoked, still settled locally" in said
