"""`pacs_report_his`: exam reports to HIS as JSON over HTTP.

The engine's `http_json` destination, plus what a report needs: its business keys (accession
number, requested procedure id) so `hisbridge messages --key accession_number=…` finds the
report beside the exam's orders, and every attachment's blob reference under key `blob`,
which keeps the PDF or image in the engine's store as long as this message is kept. HIS gets
the report with `attachments[].ref`; it fetches the bytes from the engine when it needs them.
"""

from __future__ import annotations

from typing import ClassVar

from engine.adapters.http_json import HttpJsonAdapter
from engine.business_keys import KeysOut
from engine.message import Delivery, Payload
from engine.store.blobs import BLOB_KEY
from plugins.pacs.model import BUSINESS_KEYS, report_keys


class PacsReportHisAdapter(HttpJsonAdapter):
    name = "pacs_report_his"
    delivery = Delivery.ASYNC
    business_keys: ClassVar[tuple[str, ...]] = (*BUSINESS_KEYS, BLOB_KEY)
    description = "exam reports (attachments by blob reference) to HIS as JSON over HTTP, indexed by accession"

    def extract_keys(self, request: Payload) -> KeysOut:
        return report_keys(request)


__all__ = ["PacsReportHisAdapter"]
