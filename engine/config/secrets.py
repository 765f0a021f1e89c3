"""Secrets are read where they live (`$env` or `$file`), never written in config files.

The schema types every secret-bearing field as `SecretRef`, so a literal string there fails
validation; the loader words that failure as `SECRET_HINT`. Values are resolved only when
needed (adapters at construction, API tokens at start-up), so a config can be checked on a
machine that does not hold the secrets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.config.model import SecretRef
from engine.errors import ConfigError

SECRET_HINT = "secrets must be given as {$env: NAME} or {$file: PATH}"


def resolve(ref: SecretRef, base_dir: Path | None = None) -> str:
    """The secret's value. `$file` paths are relative to `base_dir` (the directory holding
    the conf dir; the working directory when None); one trailing newline is dropped.
    Raises ConfigError saying which variable or file to provide."""
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if value is None:
            raise ConfigError([f"$env {ref.env}: environment variable is not set"])
        where = f"$env {ref.env}"
    else:
        assert ref.file is not None  # the model guarantees exactly one of the two
        path = Path(ref.file)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        try:
            value = path.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
        except OSError as exc:
            raise ConfigError([f"$file {path}: cannot read secret: {exc.strerror or exc}"]) from exc
        where = f"$file {path}"
    if not value:
        raise ConfigError([f"{where}: secret is empty"])
    return value


def is_secret_annotation(annotation: Any) -> bool:
    """True when a field's type is SecretRef or a container/union holding one."""
    if annotation is SecretRef:
        return True
    return any(is_secret_annotation(arg) for arg in getattr(annotation, "__args__", ()))
