"""What the drug_trace adapters' configs share: paths and secrets relative to the base dir."""

from __future__ import annotations

from pathlib import Path

from pydantic import PrivateAttr, ValidationInfo, model_validator

from engine.adapters.base import AdapterConfig


class BaseDirConfig(AdapterConfig):
    """An adapter config whose relative paths start at the deployment's base dir (the
    parent of conf/), like the engine's SQLite files and `$file` secrets."""

    _base_dir: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _remember_base_dir(self, info: ValidationInfo) -> BaseDirConfig:
        context = info.context if isinstance(info.context, dict) else {}
        base_dir = context.get("base_dir")
        self._base_dir = Path(base_dir) if base_dir else None
        return self

    @property
    def base_dir(self) -> Path | None:
        return self._base_dir

    def path(self, name: str) -> Path:
        path = Path(name)
        return path if path.is_absolute() or self._base_dir is None else self._base_dir / path
