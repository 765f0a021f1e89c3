"""The lis act of `hisbridge demo` on a port-shifted copy of conf/: analysers, LIS, queries."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from plugins.lis_device.demo_act import LabAnalysersAct
from tests.e2e.demo_harness import play


async def test_the_lab_act_tells_its_story_and_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    ok, said = await play(LabAnalysersAct, tmp_path, monkeypatch)
    print(said, f"\n({time.monotonic() - started:.1f} s)")
    assert ok, said
    assert "LIS received: 1001 葡萄糖 5.12 mmol/L, 1002 钾 4.3 mmol/L" in said
    assert "2001 丙氨酸氨基转移酶 35 U/L, 2002 天门冬氨酸氨基转移酶 61 U/L, 2001 丙氨酸氨基转移酶 42 U/L (QC)" in said
    assert "QCK OK, 1 DSR^Q03: tests GLU, CRE, STAT Y" in said
    assert "→ HPOL: tests ALT, TBIL" in said
    assert "party engine, rule lis_device.unmapped_test_code" in said
    assert "device sent 5,12; LIS received 5.12" in said
