"""Channel steps for PACS → HIS reports.

`pacs_oru_report` turns an ORU^R01 from the PACS into report JSON for HIS;
`pacs_report_json` checks a report the PACS posts as JSON (REST) against the same model.

Used on a channel whose source is `pacs_oru` (ORU^R01 over MLLP) or `pacs_report_http`
(SOAP callbacks and REST posts): the source has already stored each attachment once in the
engine's blob store and left its reference (`blob:sha256:…`) in the message, so the raw
stage, this step's JSON and what HIS gets all carry the reference, never the bytes. A
report the engine cannot map is the sender's fault (`party`, `third_party` for a PACS) and
the source answers it with an AE or a 4xx naming the field.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, ValidationError

from engine.errors import InputError
from engine.message import Payload
from engine.processors import Processor, ProcessorConfig
from plugins.pacs.model import ExamReport
from plugins.pacs.oru import map_oru

Sender = Literal["third_party", "device"]


class ReportSenderConfig(ProcessorConfig):
    party: Sender = Field(
        "third_party",
        description="who is blamed for a report that cannot be mapped: the PACS (third_party) or a device",
    )


class OruReportConfig(ReportSenderConfig):
    charset: str = Field("utf-8", description="charset of reports whose MSH-18 is empty")


class OruReportProcessor(Processor):
    name: ClassVar[str] = "pacs_oru_report"
    Config: ClassVar[type[ProcessorConfig]] = OruReportConfig
    description: ClassVar[str] = (
        "ORU^R01 radiology report → exam report JSON (findings, impression, author, PDF/images by reference)"
    )

    def __init__(self, config: ProcessorConfig) -> None:
        assert isinstance(config, OruReportConfig)
        super().__init__(config)
        self.settings = config

    def process(self, payload: Payload) -> Payload:
        report = map_oru(payload.body, default_charset=self.settings.charset, party=self.settings.party)
        return Payload.from_json(report.model_dump(mode="json"))


class JsonReportProcessor(Processor):
    """A report posted as JSON must be an `ExamReport`; the PACS is told which field is wrong."""

    name: ClassVar[str] = "pacs_report_json"
    Config: ClassVar[type[ProcessorConfig]] = ReportSenderConfig
    description: ClassVar[str] = "checks a PACS report posted as JSON against the exam report model"

    def __init__(self, config: ProcessorConfig) -> None:
        assert isinstance(config, ReportSenderConfig)
        super().__init__(config)
        self.settings = config

    def process(self, payload: Payload) -> Payload:
        try:
            ExamReport.model_validate_json(payload.body)
        except ValidationError as exc:
            first = exc.errors()[0]
            path = ".".join(str(part) for part in first["loc"]) or "body"
            raise InputError(first["msg"], field=path, party=self.settings.party) from exc
        return payload


__all__ = ["JsonReportProcessor", "OruReportConfig", "OruReportProcessor", "ReportSenderConfig"]
