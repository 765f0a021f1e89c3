"""The imaging demo act on a port-shifted copy of the example conf/: order, worklist, report
back by SOAP with its PDF stored once, a refused stray report, and the accession's trace."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from plugins.pacs.demo_act import ExamAct
from tests.e2e.demo_harness import play


async def test_an_exam_from_order_to_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    ok, said = await play(ExamAct, tmp_path, monkeypatch)
    print(said, f"\n({time.monotonic() - started:.1f} s)")
    assert ok, said
    assert "found DEMO" in said and "hold only the reference" in said
    assert "MSA|AE|" in said and "never ordered" in said
    assert "pacs_exam_orders" in said and "pacs_reports " in said
