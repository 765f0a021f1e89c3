"""Registration (登记) and appointment (预约) requests become exam orders for the PACS.

Each service is a channel: its processor (`pacs_registration`, `pacs_appointment`) checks the
request against the service's model and maps it to the plugin's `ExamOrder`, so any order
destination (`pacs_rest`, `pacs_soap`, `pacs_hl7`, and `pacs_worklist` beside them) carries it
on. A request HIS must fix is refused at intake, stored with party `his`, naming its field.

The raw stage keeps the caller's body exactly. What the URL adds (the operation and, for a
reschedule or cancel, the accession number in the path) travels in the payload's headers
`X-Hisbridge-Operation` and `X-Hisbridge-Accession`, stored with the raw stage, so a replay
does what the first call did. Without them (the generic `POST /api/v1/channels/{channel}`),
the body is a new registration or booking.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, Literal

from engine.errors import InputError
from engine.message import Payload
from engine.processors import Processor
from plugins.pacs.model import ExamOrder, OrderAction
from plugins.pacs.services.models import Appointment, Booking, ExamRef, Registration, parse, parse_body

OPERATION_HEADER = "X-Hisbridge-Operation"
ACCESSION_HEADER = "X-Hisbridge-Accession"

Operation = Literal["register", "book", "reschedule", "cancel"]


def service_payload(
    body: bytes, content_type: str, operation: Operation, accession: str | None = None
) -> Payload:
    """The message a service route hands to its channel."""
    headers: dict[str, str] = {OPERATION_HEADER: operation}
    if accession is not None:
        headers[ACCESSION_HEADER] = accession
    return Payload(body, content_type, headers)


class ExamOrderProcessor(Processor):
    """A service request → the `ExamOrder` JSON every order destination takes."""

    default_operation: ClassVar[Operation]
    operations: ClassVar[frozenset[str]]

    def process(self, payload: Payload) -> Payload:
        operation = payload.headers.get(OPERATION_HEADER, self.default_operation)
        if operation not in self.operations:
            raise InputError(f"{self.name} does not {operation}; it does {', '.join(sorted(self.operations))}",
                             field="operation")
        order = self.order(operation, payload)
        return Payload.from_json(order.model_dump(mode="json", exclude_none=True))

    def order(self, operation: str, payload: Payload) -> ExamOrder:
        if operation == "cancel":
            return ExamOrder(action=OrderAction.CANCEL, accession_number=_path_accession(payload))
        return self.schedule(operation, payload)

    @abstractmethod
    def schedule(self, operation: str, payload: Payload) -> ExamOrder:
        """The new or changed order a request that is not a cancel asks for."""


class RegistrationProcessor(ExamOrderProcessor):
    name: ClassVar[str] = "pacs_registration"
    description: ClassVar[str] = "PACS service 登记: a registration (or its cancel) → an exam order"
    default_operation: ClassVar[Operation] = "register"
    operations: ClassVar[frozenset[str]] = frozenset({"register", "cancel"})

    def schedule(self, operation: str, payload: Payload) -> ExamOrder:
        return parse_body(Registration, payload).to_order()


class AppointmentProcessor(ExamOrderProcessor):
    name: ClassVar[str] = "pacs_appointment"
    description: ClassVar[str] = "PACS service 预约: book, reschedule or cancel an exam on a device or room"
    default_operation: ClassVar[Operation] = "book"
    operations: ClassVar[frozenset[str]] = frozenset({"book", "reschedule", "cancel"})

    def schedule(self, operation: str, payload: Payload) -> ExamOrder:
        booking: Booking = parse_body(Appointment if operation == "book" else Booking, payload)
        if (refusal := booking.unplaced()) is not None:
            raise refusal
        if isinstance(booking, Appointment):
            return booking.to_order(OrderAction.NEW, booking.accession_number)
        return booking.to_order(OrderAction.CHANGE, _path_accession(payload))


def _path_accession(payload: Payload) -> str:
    if payload.headers.get(ACCESSION_HEADER) is None:
        raise InputError(f"the exam's accession number is missing (header {ACCESSION_HEADER})",
                         field="accession_number")
    return parse(ExamRef, {"accession_number": payload.headers[ACCESSION_HEADER]}).accession_number


__all__ = [
    "ACCESSION_HEADER",
    "OPERATION_HEADER",
    "AppointmentProcessor",
    "Operation",
    "RegistrationProcessor",
    "service_payload",
]
