"""The e-invoice demo act on a port-shifted copy of the example conf/."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.e_invoice.demo_act import EInvoiceAct
from tests.e2e.demo_harness import play


async def test_the_e_invoice_act_issues_every_invoice_once_through_an_outage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, said = await play(EInvoiceAct, tmp_path, monkeypatch)
    assert ok, said
    assert "every busNo issued exactly once" in said
    assert "resolved by lookup" in said
    assert "15 of 15 invoices told to HIS" in said
