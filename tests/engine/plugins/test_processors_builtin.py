from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.errors import InputError
from engine.message import Payload
from engine.processors_builtin import RequireFields, RequireFieldsConfig


def require(*fields: str) -> RequireFields:
    return RequireFields(RequireFieldsConfig(fields=list(fields)))


def test_payload_with_every_field_passes_unchanged() -> None:
    payload = Payload.from_json({"infno": "2207", "input": {"data": [{"psn_no": "P001"}]}})

    assert require("$.infno", "$.input.data[0].psn_no").process(payload) is payload


@pytest.mark.parametrize(
    "document",
    [
        {"infno": "2207", "input": {}},
        {"infno": "2207", "input": {"data": []}},
        {"infno": "2207", "input": {"data": [{"psn_no": ""}]}},
        {"infno": "2207", "input": {"data": [{"psn_no": None}]}},
        {"infno": "2207", "input": "not an object"},
    ],
    ids=["absent", "index-out-of-range", "empty-string", "null", "wrong-shape"],
)
def test_missing_or_empty_field_blames_his_naming_the_path(document: object) -> None:
    with pytest.raises(InputError) as raised:
        require("$.infno", "$.input.data[0].psn_no").process(Payload.from_json(document))

    assert raised.value.field == "$.input.data[0].psn_no"
    assert raised.value.party == "his"
    assert raised.value.reason == "required field is missing"


def test_non_json_payload_blames_his() -> None:
    with pytest.raises(InputError, match="not valid JSON") as raised:
        require("$.infno").process(Payload(b"MSH|^~\\&|", "x-application/hl7-v2+er7"))

    assert raised.value.party == "his"


@pytest.mark.parametrize(
    "fields", [[], ["infno"], ["$..deep"]], ids=["none", "no-dollar", "recursive"]
)
def test_config_rejects_unusable_paths(fields: list[str]) -> None:
    with pytest.raises(ValidationError):
        RequireFieldsConfig(fields=fields)
