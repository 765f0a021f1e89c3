"""Pydantic validation errors worded as config problems: `dotted.path[0].field: message`.

`Input should be greater than 0` becomes `must be > 0`; a literal where a secret belongs says
how to give a secret; an unknown setting suggests the closest known name.
"""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from engine.config.secrets import SECRET_HINT

_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "missing": "is required",
    "string_pattern_mismatch": "must match the pattern {pattern}",
    "string_too_short": "must be at least {min_length} characters",
    "string_too_long": "must be at most {max_length} characters",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "url_parsing": "must be a URL",
    "url_scheme": "URL scheme must be {expected_schemes}",
}


def describe_validation_error(
    exc: ValidationError, prefix: str = "", schema: type[BaseModel] | None = None
) -> list[str]:
    """One `dotted.path[0].field: message` line per pydantic error, prefixed with `prefix`.
    With the validated `schema`, an unknown setting's message suggests the known ones."""
    lines = []
    for error in exc.errors(include_url=False):
        if error["type"] == "extra_forbidden":
            message = _unknown_setting(error["loc"], schema)
        else:
            message = _message(error)
        lines.append(f"{_path(prefix, error['loc'])}: {message}")
    return lines


def _unknown_setting(loc: tuple[int | str, ...], schema: type[BaseModel] | None) -> str:
    known = _settings_at(schema, loc[:-1]) if schema else []
    if not known:
        return "unknown setting"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f"unknown setting; did you mean `{close[0]}`?"
    return f"unknown setting (known: {', '.join(known)})"


def _settings_at(schema: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The setting names of the model found by following `loc` from `schema`; [] when the
    path runs through a union of several models, where the names depend on the variant."""
    annotation: Any = schema
    for part in loc:
        models = _models_in(annotation)
        if isinstance(part, int) or not models:  # a list index or a mapping key
            args = typing.get_args(annotation)
            annotation = args[-1] if args else None
            continue
        if len(models) > 1:
            return []
        fields = {info.alias or name: info for name, info in models[0].model_fields.items()}
        if part not in fields:
            return []
        annotation = fields[part].annotation
    models = _models_in(annotation)
    if len(models) != 1:
        return []
    return [info.alias or name for name, info in models[0].model_fields.items()]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (list, dict):
        return []
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _message(error: ErrorDetails) -> str:
    context = error.get("ctx") or {}
    text = error["msg"]
    if (
        error["type"] in {"model_type", "model_attributes_type"}
        and context.get("class_name") == "SecretRef"
    ):
        return SECRET_HINT
    if error["type"] == "value_error":
        return str(context.get("error", text))
    template = _MESSAGES.get(error["type"])
    if template is None:
        return text[:1].lower() + text[1:]
    try:
        return template.format(**{key: _plain(value) for key, value in context.items()})
    except KeyError:
        return text


def _plain(value: Any) -> Any:
    """0.0 reads as 0 in a message about a config value."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
