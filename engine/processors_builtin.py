"""Built-in processors, registered through the same hook a third-party plugin uses."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import Field

from engine import hookimpl
from engine.errors import InputError
from engine.message import Payload
from engine.processors import Processor, ProcessorConfig

_JSON_PATH = r"^\$(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])+$"
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_MISSING = object()


class RequireFieldsConfig(ProcessorConfig):
    fields: list[Annotated[str, Field(pattern=_JSON_PATH)]] = Field(
        min_length=1,
        description="JSON paths that must be present and non-empty, e.g. `$.input.data.psn_no`",
        examples=[["$.infno", "$.input.data.psn_no"]],
    )


class RequireFields(Processor):
    """Reject a JSON message that lacks a required field, blaming the sender (party `his`),
    before anything is sent to the remote system."""

    name = "require_fields"
    Config = RequireFieldsConfig
    description = "reject JSON messages missing required fields (blames the sender)"

    def __init__(self, config: RequireFieldsConfig) -> None:
        super().__init__(config)
        self.fields = config.fields

    def process(self, payload: Payload) -> Payload:
        try:
            document = json.loads(payload.body)
        except ValueError:
            raise InputError("payload is not valid JSON", field="$") from None
        for path in self.fields:
            if _is_empty(_lookup(document, path)):
                raise InputError("required field is missing", field=path)
        return payload


def _lookup(document: Any, path: str) -> Any:
    value = document
    for key, index in _STEP.findall(path[1:]):
        if key and isinstance(value, dict):
            value = value.get(key, _MISSING)
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return _MISSING
    return value


def _is_empty(value: Any) -> bool:
    return value is _MISSING or value is None or value == "" or value == [] or value == {}


@hookimpl
def hisbridge_register_processors() -> list[type[Processor]]:
    return [RequireFields]
