"""Channel steps for PACS → HIS reports.

`pacs_oru_report` turns an ORU^R01 from the PACS into report JSON for HIS;
`pacs_report_json` checks a report the PACS posts as JSON (REST) against the same model.

Used on a channel whose source is an MLLP listener: the raw ORU is stored first, this step
maps it to the plugin's `ExamReport`, and the destinations (HIS over HTTP, a database
table) get JSON. A report the engine cannot map is the PACS's fault and the listener
answers it with an AE naming the field. Attachments travel as base64 under `content` of
the report's `attachment_data`, keyed by digest, once per report.
"""

from __future__ import annotations

import base64
from typing import ClassVar

from pydantic import Field, ValidationError

from engine.errors import InputError
from engine.message import Payload
from engine.processors import Processor, ProcessorConfig
from plugins.pacs.model import ExamReport
from plugins.pacs.oru import map_oru


class OruReportConfig(ProcessorConfig):
    charset: str = Field("utf-8", description="charset of reports whose MSH-18 is empty")
    max_attachment_bytes: int = Field(
        20 * 1024 * 1024, gt=0, description="largest PDF or image accepted in one OBX ED (bytes, decoded)"
    )


class OruReportProcessor(Processor):
    name: ClassVar[str] = "pacs_oru_report"
    Config: ClassVar[type[ProcessorConfig]] = OruReportConfig
    description: ClassVar[str] = (
        "ORU^R01 radiology report → exam report JSON (findings, impression, author, PDF/images)"
    )

    def __init__(self, config: ProcessorConfig) -> None:
        assert isinstance(config, OruReportConfig)
        super().__init__(config)
        self.settings = config

    def process(self, payload: Payload) -> Payload:
        mapped = map_oru(
            payload.body, default_charset=self.settings.charset, max_attachment_bytes=self.settings.max_attachment_bytes
        )
        report = mapped.report.model_dump(mode="json")
        report["attachment_data"] = {
            digest: base64.b64encode(content).decode("ascii") for digest, content in mapped.attachments.items()
        }
        return Payload.from_json(report)


class JsonReportProcessor(Processor):
    """A report posted as JSON must be an `ExamReport`; the PACS is told which field is wrong."""

    name: ClassVar[str] = "pacs_report_json"
    description: ClassVar[str] = "checks a PACS report posted as JSON against the exam report model"

    def process(self, payload: Payload) -> Payload:
        try:
            ExamReport.model_validate_json(payload.body)
        except ValidationError as exc:
            first = exc.errors()[0]
            path = ".".join(str(part) for part in first["loc"]) or "body"
            raise InputError(first["msg"], field=path, party="device") from exc
        return payload


__all__ = ["JsonReportProcessor", "OruReportConfig", "OruReportProcessor"]
