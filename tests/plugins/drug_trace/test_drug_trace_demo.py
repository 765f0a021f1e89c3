"""The drug-trace demo act on a port-shifted copy of the example conf/."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.drug_trace.demo_act import DrugTraceAct
from tests.e2e.demo_harness import play


async def test_the_drug_trace_act_uploads_the_sale_and_refuses_bad_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, said = await play(DrugTraceAct, tmp_path, monkeypatch)
    assert ok, said
    assert "field trace_codes[1]" in said and "field trace_codes[0]" in said
    assert "signed in again (1× 9001)" in said and "received 3506 1× with" in said
    assert "the centre received 3505 with the case's box codes" in said
