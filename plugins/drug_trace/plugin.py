"""The drug_trace plugin's hooks: its adapters, the uploads (drug_trace) and the 码上放心
relation query (drug_trace_relation). Upload errors are matched by the yibao fault rules,
since the yibao client marks them `centre: yibao`."""

from __future__ import annotations

from engine import hookimpl
from engine.adapters.base import Adapter
from plugins.drug_trace.adapter import DrugTraceAdapter
from plugins.drug_trace.relation_adapter import DrugTraceRelationAdapter


@hookimpl
def hisbridge_register_adapters() -> list[type[Adapter]]:
    return [DrugTraceAdapter, DrugTraceRelationAdapter]
