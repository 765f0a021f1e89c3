"""Throwaway plugins: in-process modules, and real distributions found through entry points."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from engine import hookimpl


def _make_plugin(name: str, **hooks: Callable[..., Any]) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


@pytest.fixture
def make_plugin() -> Callable[..., types.ModuleType]:
    """`make_plugin(name, hook_name=function, ...)`: a module named `name` whose attributes
    are the given functions marked as hook implementations."""
    return _make_plugin


@pytest.fixture
def install_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Path]]:
    """Write a package plus its `*.dist-info` (METADATA, entry_points.txt) into a directory
    on sys.path, so importlib.metadata finds it exactly as it finds a pip-installed plugin."""
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    imported: list[str] = []

    def install(
        *, distribution: str, version: str, module: str, source: str, entry_point: str
    ) -> Path:
        package = site / module
        package.mkdir()
        (package / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
        dist_info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n", encoding="utf-8"
        )
        (dist_info / "entry_points.txt").write_text(
            f"[hisbridge.plugins]\n{entry_point} = {module}\n", encoding="utf-8"
        )
        imported.append(module)
        return package

    yield install
    for module in imported:
        sys.modules.pop(module, None)
