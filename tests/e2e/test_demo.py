"""The demo's own act, played against a daemon on the example conf."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.demo.core_act import OutageAct
from tests.e2e.demo_harness import PROJECT, play


async def test_outage_act_queues_during_the_outage_and_delivers_everything_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, said = await play(OutageAct, tmp_path, monkeypatch)
    assert ok, said
    assert "20 accepted, 20 delivered, 20 distinct, nothing lost" in said
    assert "HTTP 503" in said
    assert "core: ok" in said


def test_demo_names_the_known_acts_when_asked_for_an_unknown_one() -> None:
    result = CliRunner().invoke(main, ["--conf", str(PROJECT / "conf"), "demo", "--act", "no_such_act"])
    assert result.exit_code == 2
    assert "unknown act no_such_act" in result.output
    assert "core" in result.output
