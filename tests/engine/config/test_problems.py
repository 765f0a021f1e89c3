from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.config.model import SecretRef
from engine.config.problems import describe_validation_error


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retries: int = Field(3, ge=0)
    ratio: float = Field(0.5, lt=1)


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["his", "operator"] = "his"
    tags: list[str] = Field(default_factory=list, min_length=1)
    limits: list[Limits] = Field(default_factory=list)
    token: SecretRef | None = None


def problems(data: object) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        Sample.model_validate(data)
    return describe_validation_error(raised.value, "sample", Sample)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"role": "admin"}, "sample.role: must be one of 'his' or 'operator'"),
        ({"tags": []}, "sample.tags: must have at least 1 item(s)"),
        ({"tags": "x"}, "sample.tags: must be a list"),
        (
            {"tags": ["a"], "limits": [{}, {"retries": -1}]},
            "sample.limits[1].retries: must be >= 0",
        ),
        ({"tags": ["a"], "limits": [{"ratio": 1.5}]}, "sample.limits[0].ratio: must be < 1"),
        (
            {"tags": ["a"], "limits": [{"retries": "many"}]},
            "sample.limits[0].retries: must be a whole number",
        ),
        (
            {"tags": ["a"], "limits": [{"retires": 1}]},
            "sample.limits[0].retires: unknown setting; did you mean `retries`?",
        ),
        (
            {"tags": ["a"], "token": "abc"},
            "sample.token: secrets must be given as {$env: NAME} or {$file: PATH}",
        ),
        (
            {"tags": ["a"], "token": {"$env": "A", "$file": "b"}},
            "sample.token: give exactly one of $env or $file",
        ),
        (
            {"tags": ["a"], "zzz": 1},
            "sample.zzz: unknown setting (known: role, tags, limits, token)",
        ),
    ],
)
def test_pydantic_errors_read_as_config_problems(data: object, expected: str) -> None:
    assert problems(data) == [expected]


def test_top_level_errors_without_a_prefix() -> None:
    with pytest.raises(ValidationError) as raised:
        Sample.model_validate("not a mapping")

    assert describe_validation_error(raised.value) == ["(top level): must be a mapping"]
