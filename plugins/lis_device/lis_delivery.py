"""Results to the LIS: what every LIS destination shares, and the HTTP/JSON one (`lis_http`).

A LIS destination takes the analyser's message as stored (HL7 or an ASTM transcript) and
sends the normalised, code-mapped result document (see `normalise`). The mapping is the
adapter's `transform()`, so it runs at intake: a message with an unmapped code is stored
failed at once, attributed to the engine's configuration, and `hisbridge replay` delivers
it once the code table is fixed. Delivery is async (store-and-forward): the analyser got
its ACK when the raw bytes were committed and never waits for the LIS.

    destinations:
      - name: lis_results
        adapter: lis_http
        filter: {path: MSH-9.1, equals: ORU}
        config: {url: "http://lis.example/api/results", codes: lis_codes/mindray_cl.csv,
                 qc_when: [{path: MSH-16, equals: "2"}]}
"""

from __future__ import annotations

import codecs
from pathlib import Path

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from engine.adapters.base import AdapterConfig, AdapterServices
from engine.adapters.http_json import HttpJsonAdapter, HttpJsonConfig
from engine.business_keys import KeysOut
from engine.message import Delivery, Payload
from plugins.lis_device.lis_codes import CodeTable, CodeTableError
from plugins.lis_device.normalise import QcWhen, ResultMapper, read_results

log = structlog.get_logger(__name__)


class QcWhenConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="field path in the device's message (HL7 `MSH-16`, ASTM `H.12`)")
    equals: str = Field(description="the value that marks the message as quality control")


class LisResultsConfig(AdapterConfig):
    """The settings every LIS results destination has (one instrument per channel)."""

    codes: str = Field(
        description="the instrument's code table (CSV: test_code,lis_code,lis_name), relative to conf/'s parent",
        examples=["conf/lis_codes/mindray_cl.csv"],
    )
    charset: str | None = Field(
        None, description="device text encoding when the message does not say; default: UTF-8, GB18030, latin-1"
    )
    qc_when: list[QcWhenConfig] = Field(
        default_factory=list,
        description="instrument conventions marking a QC message (ASTM H-12 Q/QR and O-12 Q are always QC)",
        examples=[[{"path": "MSH-16", "equals": "2"}]],
    )

    @field_validator("codes")
    @classmethod
    def _table_is_usable(cls, codes: str, info: ValidationInfo) -> str:
        base_dir = (info.context or {}).get("base_dir")
        path = Path(codes)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        try:
            CodeTable.load(path)
        except CodeTableError as exc:
            raise ValueError(str(exc)) from exc
        return str(path)

    @field_validator("charset")
    @classmethod
    def _known_codec(cls, value: str | None) -> str | None:
        if value is not None:
            codecs.lookup(value)
        return value

    def mapper(self) -> ResultMapper:
        return ResultMapper(
            CodeTable.load(Path(self.codes)),
            charset=self.charset,
            qc_when=tuple(QcWhen(rule.path, rule.equals) for rule in self.qc_when),
        )


class LisResultsMapping:
    """transform() and business keys for a LIS results destination (a mixin)."""

    mapper: ResultMapper

    def transform(self, request: Payload) -> Payload:
        return Payload.from_json(self.mapper.document(request))

    def extract_keys(self, request: Payload) -> KeysOut:
        try:
            batch = read_results(request, charset=self.mapper.charset)
        except Exception:  # noqa: BLE001 - keys are an index; transform() reports the failure
            return {}
        return {"specimen_barcode": batch.specimen_barcodes} if batch.specimen_barcodes else {}


class LisHttpConfig(HttpJsonConfig, LisResultsConfig):
    idempotent: bool | None = Field(
        True, description="a LIS stores a specimen's item once, so a resend after a lost answer is safe"
    )


class LisHttpAdapter(LisResultsMapping, HttpJsonAdapter):
    name = "lis_http"
    Config = LisHttpConfig  # type: ignore[assignment]  # a subclass of HttpJsonConfig: the base reads it fine
    delivery = Delivery.ASYNC
    idempotent = True
    business_keys = ("specimen_barcode",)
    description = "analyser results as normalised JSON with LIS item codes, POSTed to the LIS"

    def __init__(self, config: AdapterConfig, services: AdapterServices) -> None:
        assert isinstance(config, LisHttpConfig)
        super().__init__(config, services)
        self.mapper = config.mapper()
        log.info("lis code table loaded", table=config.codes, codes=len(self.mapper.codes))

