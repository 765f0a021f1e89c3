"""mypy (strict, as configured in pyproject.toml: engine/ and plugins/) and ruff (all code)
report nothing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
RUFF_TARGETS = ["engine", "plugins", "tests", "bench"]
# A cold mypy run over ~130 modules takes 20-40 s on two cores; a warm cache a few seconds.
TIMEOUT_SECONDS = 600


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
    )


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")


@pytest.mark.slow
def test_mypy_strict_finds_nothing() -> None:
    _require("mypy")
    # No paths: mypy checks `[tool.mypy] files`, so the test and the config cannot drift apart.
    result = _run("mypy")

    assert result.returncode == 0, f"mypy reported errors:\n{result.stdout}{result.stderr}"


def test_ruff_finds_nothing() -> None:
    _require("ruff")
    result = _run("ruff", "check", "--no-cache", *RUFF_TARGETS)

    assert result.returncode == 0, f"ruff reported errors:\n{result.stdout}{result.stderr}"
