from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import pytest

from engine.catalogue import Catalogue
from engine.plugin_manager import create_plugin_manager

DAEMON_YAML = """\
store:
  url: sqlite:///var/hisbridge.db
api:
  tokens:
    - {name: his, role: his, token: {$env: TEST_HIS_TOKEN}}
"""


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.build(create_plugin_manager(load_entry_points=False))


@pytest.fixture
def write_conf(tmp_path: Path) -> Callable[..., Path]:
    """`write_conf(daemon_yaml, **channel_files)`: a conf dir under tmp_path/project."""

    def write(daemon: str | None = DAEMON_YAML, **channels: str) -> Path:
        conf = tmp_path / "project" / "conf"
        (conf / "channels").mkdir(parents=True, exist_ok=True)
        if daemon is not None:
            (conf / "hisbridge.yaml").write_text(textwrap.dedent(daemon), encoding="utf-8")
        for stem, text in channels.items():
            (conf / "channels" / f"{stem}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
        return conf

    return write
