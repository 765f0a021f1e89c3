from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.config.model import SecretRef
from engine.config.secrets import is_secret_annotation, resolve
from engine.errors import ConfigError


def test_env_reference_reads_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SECRET", "s-1")

    assert resolve(SecretRef.model_validate({"$env": "TEST_SECRET"})) == "s-1"


def test_missing_variable_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_SECRET_UNSET", raising=False)

    with pytest.raises(ConfigError, match="TEST_SECRET_UNSET: environment variable is not set"):
        resolve(SecretRef(env="TEST_SECRET_UNSET"))


def test_empty_secret_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SECRET_EMPTY", "")

    with pytest.raises(ConfigError, match="secret is empty"):
        resolve(SecretRef(env="TEST_SECRET_EMPTY"))


@pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
def test_file_reference_is_relative_to_the_base_dir_without_its_newline(
    tmp_path: Path, ending: str
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text(f"f-2{ending}", newline="")

    assert resolve(SecretRef.model_validate({"$file": "secrets/token"}), tmp_path) == "f-2"


def test_absolute_file_reference_ignores_the_base_dir(tmp_path: Path) -> None:
    secret = tmp_path / "abs.token"
    secret.write_text("abs-3\n")

    assert resolve(SecretRef(file=str(secret)), Path("/nonexistent")) == "abs-3"


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        resolve(SecretRef(file="missing.token"), tmp_path)

    assert str(tmp_path / "missing.token") in str(raised.value)


@pytest.mark.parametrize(
    "value",
    ["literal", {"$env": "A", "$file": "b"}, {}, {"value": "x"}],
    ids=["literal", "both", "neither", "unknown-key"],
)
def test_schema_accepts_only_one_reference(value: object) -> None:
    with pytest.raises(ValidationError):
        SecretRef.model_validate(value)


def test_secret_annotations_are_recognised_inside_optionals_and_lists() -> None:
    assert is_secret_annotation(SecretRef | None)
    assert is_secret_annotation(list[SecretRef])
    assert not is_secret_annotation(str | None)
