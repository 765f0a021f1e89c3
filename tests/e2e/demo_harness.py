"""Play a `hisbridge demo` act against a daemon on a copy of the example `conf/`.

Every port in the copy (the API's, and each simulator's a channel points at) is moved to a
free one, the same old port to the same new one, so an act can run beside anything else on
the machine and still find its simulators where its channels point.
"""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path

import pytest

from engine.catalogue import Catalogue
from engine.demo.acts import DemoAct
from engine.demo.runner import demo_environment, run_acts
from engine.plugin_manager import create_plugin_manager
from tests.e2e.harness import running_daemon

PROJECT = Path(__file__).resolve().parents[2]
PORT = re.compile(r"(?<=127\.0\.0\.1:)(\d{4,5})\b|(?<=\bport: )(\d{4,5})\b")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def copy_example_conf(root: Path) -> Path:
    """`conf/` copied under `root` with every port moved; returns the copy."""
    conf = root / "conf"
    shutil.copytree(PROJECT / "conf", conf)
    moved: dict[str, str] = {}

    def move(match: re.Match[str]) -> str:
        return moved.setdefault(match.group(0), str(free_port()))

    for path in conf.rglob("*.yaml"):
        path.write_text(PORT.sub(move, path.read_text(encoding="utf-8")), encoding="utf-8")
    return conf


async def play(act: type[DemoAct], root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[bool, str]:
    """Run one act as `hisbridge demo --act NAME` would; returns its verdict and what it said."""
    every_act = Catalogue.build(create_plugin_manager()).demo_acts.values()
    for name, value in demo_environment(list(every_act)).items():  # the conf names them all
        monkeypatch.setenv(name, value)
    lines: list[str] = []
    async with running_daemon(copy_example_conf(root)) as daemon:
        ok = await run_acts(daemon, [act], lines.append)
    return ok, "\n".join(lines)
