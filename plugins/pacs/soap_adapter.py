"""`pacs_soap`: HIS exam orders to a PACS WebService (new / change / cancel operations).

The request HIS posts is the plugin's `ExamOrder` JSON. transform() validates it (an
unusable order is HIS's fault and is never sent) and stores it normalised; send() calls
the configured operation through the engine's SOAP transport, so the exact envelopes are
the `sent` and `response_raw` stages. The service answers with a result code: 0 accepts,
anything else is the PACS refusing the order (`condition: pacs_rejected`, with the code
and message), as Chinese PACS WebServices report business errors; a SOAP fault is
translated by the engine (`condition: soap_fault`, with faultcode and faultstring).

Field names follow the hisbridge reference service (plugins/pacs/simulator/wsdl.py);
`operations` renames the operations for a vendor whose WSDL has the same shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

from engine.adapters.base import AdapterConfig, AdapterServices, Wire
from engine.errors import PermanentError
from engine.message import Payload
from engine.transports.soap import SoapCaller, SoapDestinationConfig
from plugins.pacs.model import ExamOrder, OrderAction
from plugins.pacs.order_adapter import JsonOrderAdapter

SYSTEM = "pacs"


class OperationNames(BaseModel):
    model_config = ConfigDict(extra="forbid")

    new: str = Field("PlaceExamOrder", description="operation placing a new exam order")
    change: str = Field("ChangeExamOrder", description="operation changing a scheduled order")
    cancel: str = Field("CancelExamOrder", description="operation cancelling an order")


class PacsSoapConfig(SoapDestinationConfig):
    operations: OperationNames = Field(
        default_factory=lambda: OperationNames.model_validate({}), description="operation names in the WSDL"
    )
    idempotent: bool = Field(False, description="the PACS ignores an accession number it already has (safe to resend)")

    _base_dir: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _remember_base_dir(self, info: ValidationInfo) -> PacsSoapConfig:
        base_dir = (info.context or {}).get("base_dir") if isinstance(info.context, dict) else None
        self._base_dir = Path(base_dir) if base_dir else None
        return self


class PacsSoapAdapter(JsonOrderAdapter):
    name: ClassVar[str] = "pacs_soap"
    Config: ClassVar[type[AdapterConfig]] = PacsSoapConfig
    description: ClassVar[str] = "exam orders (new/change/cancel) to a PACS SOAP WebService with a WSDL"

    def __init__(self, config: AdapterConfig, services: AdapterServices) -> None:
        assert isinstance(config, PacsSoapConfig)
        super().__init__(config, services)
        self.settings = config
        self.idempotent = config.idempotent  # type: ignore[misc]  # instance overrides class
        self.soap = SoapCaller.from_config(config, services, base_dir=config._base_dir)

    async def send(self, request: Payload, wire: Wire) -> Payload:
        order = ExamOrder.model_validate(request.json())
        operation = getattr(self.settings.operations, order.action.value)
        answer = await self.soap.call(operation, wire, **soap_arguments(order))
        result = _result_of(answer, operation)
        return Payload.from_json({"action": order.action.value, "operation": operation, **result})

    def transform_response(self, response: Payload) -> Payload:
        answer = response.json()
        return Payload.from_json(
            {
                "accession_number": answer.get("accessionNumber"),
                "action": answer.get("action"),
                "accepted": True,
                "study_instance_uid": answer.get("studyInstanceUid"),
                "message": answer.get("resultMessage", ""),
            }
        )

    async def aclose(self) -> None:
        """The HTTP client is the engine's shared one; nothing of our own to release."""


def soap_arguments(order: ExamOrder) -> dict[str, Any]:
    """The operation's arguments for one order (field names of the reference WSDL)."""
    if order.action is OrderAction.CANCEL:
        return {"accessionNumber": order.accession_number, "reason": order.reason or None}
    assert order.patient is not None and order.procedure is not None
    physician = order.requesting_physician
    fields: dict[str, Any] = {
        "accessionNumber": order.accession_number,
        "requestedProcedureId": order.requested_procedure_id,
        "scheduledStepId": order.scheduled_step_id,
        "placerOrderNumber": order.placer_order_number,
        "patientId": order.patient.id,
        "patientName": order.patient.name,
        "patientSex": order.patient.sex.value,
        "patientBirthDate": order.patient.birth_date,
        "visitNumber": order.visit_number,
        "patientClass": order.patient_class,
        "procedureCode": order.procedure.code,
        "procedureName": order.procedure.name,
        "bodyPart": order.procedure.body_part or None,
        "modality": order.modality,
        "scheduledAt": order.scheduled_at,
        "stationAE": order.station_ae,
        "room": order.room,
        "requestingPhysicianId": physician.id if physician else None,
        "requestingPhysicianName": physician.name if physician and physician.name else None,
        "reason": order.reason or None,
        "priority": order.priority,
    }
    return {"order": {name: value for name, value in fields.items() if value is not None}}


def _result_of(answer: Any, operation: str) -> dict[str, Any]:
    result = answer.get("result") if isinstance(answer, dict) and "result" in answer else answer
    if not isinstance(result, dict) or "resultCode" not in result:
        raise PermanentError(
            f"pacs_answer: {operation} answered without a resultCode",
            detail={"condition": "pacs_answer", "system": SYSTEM, "operation": operation, "request_left": True},
        )
    code = result["resultCode"]
    if code != 0:
        message = str(result.get("resultMessage") or "")
        raise PermanentError(
            f"pacs_rejected: {operation} result {code}: {message}",
            detail={
                "condition": "pacs_rejected",
                "system": SYSTEM,
                "operation": operation,
                "result_code": code,
                "result_message": message,
                "request_left": True,
            },
        )
    return {key: value for key, value in result.items() if value is not None}


__all__ = ["OperationNames", "PacsSoapAdapter", "PacsSoapConfig", "soap_arguments"]
