"""The drug_trace plugin's hooks: its adapter (uploads reuse the yibao fault rules, since
the yibao client marks their errors `centre: yibao`)."""

from __future__ import annotations

from engine import hookimpl
from engine.adapters.base import Adapter
from plugins.drug_trace.adapter import DrugTraceAdapter


@hookimpl
def hisbridge_register_adapters() -> list[type[Adapter]]:
    return [DrugTraceAdapter]
