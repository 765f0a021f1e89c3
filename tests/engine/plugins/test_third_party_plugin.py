"""A plugin installed as its own distribution, found only through its entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from engine.catalogue import Catalogue
from engine.cli import main
from engine.config.loader import adapter_config, load_config
from engine.plugin_manager import create_plugin_manager

InstallDistribution = Callable[..., Path]

PLUGIN_SOURCE = """
import click
from pydantic import Field

from engine import hookimpl
from engine.adapters.base import Adapter, AdapterConfig
from engine.message import Delivery


class WardConfig(AdapterConfig):
    endpoint: str = Field(description="where the ward system listens")
    timeout: float = Field(5.0, gt=0, description="seconds")


class WardAdapter(Adapter):
    name = "acme_ward"
    Config = WardConfig
    delivery = Delivery.ASYNC
    description = "Acme ward system"

    async def send(self, request, wire):
        return request


@click.command("acme-hello")
def hello():
    click.echo("hello from acme")


@hookimpl
def hisbridge_register_adapters():
    return [WardAdapter]


@hookimpl
def hisbridge_register_commands(cli):
    cli.add_command(hello)
"""

TYPO_SOURCE = """
from engine import hookimpl


@hookimpl
def hisbridge_register_adaptors():
    return []
"""


@pytest.fixture
def acme_installed(install_distribution: InstallDistribution) -> None:
    install_distribution(
        distribution="acme-hisbridge-ward",
        version="1.2.3",
        module="acme_hisbridge_ward",
        source=PLUGIN_SOURCE,
        entry_point="acme_ward",
    )


def write_conf(root: Path, destination_config: str) -> Path:
    conf = root / "conf"
    (conf / "channels").mkdir(parents=True)
    (conf / "hisbridge.yaml").write_text("store: {url: 'sqlite:///var/test.db'}\n")
    (conf / "channels" / "ward.yaml").write_text(
        "destinations:\n"
        "  - name: ward_out\n"
        "    adapter: acme_ward\n"
        f"    config: {destination_config}\n"
    )
    return conf


@pytest.mark.usefixtures("acme_installed")
def test_entry_point_plugin_is_loaded_and_its_adapter_catalogued() -> None:
    pm = create_plugin_manager()

    assert pm.has_plugin("acme_ward")
    catalogue = Catalogue.build(pm)
    assert catalogue.contributed_by["adapters"]["acme_ward"] == "acme_ward"


@pytest.mark.usefixtures("acme_installed")
def test_plugins_json_lists_it_with_its_distribution_version() -> None:
    result = CliRunner().invoke(main, ["plugins", "--json"])

    assert result.exit_code == 0, result.output
    entries = {entry["name"]: entry for entry in json.loads(result.stdout)}
    acme = entries["acme_ward"]
    assert (acme["distribution"], acme["version"]) == ("acme-hisbridge-ward", "1.2.3")
    assert acme["adapters"] == ["acme_ward"]
    assert acme["hooks"] == ["hisbridge_register_adapters", "hisbridge_register_commands"]


@pytest.mark.usefixtures("acme_installed")
def test_its_command_joins_the_cli() -> None:
    result = CliRunner().invoke(main, ["acme-hello"])

    assert result.exit_code == 0, result.output
    assert "hello from acme" in result.stdout


@pytest.mark.usefixtures("acme_installed")
def test_channels_validate_against_its_config_schema(tmp_path: Path) -> None:
    catalogue = Catalogue.build(create_plugin_manager())
    conf = write_conf(tmp_path, "{endpoint: 'tcp://ward:9000', timeout: 2}")

    config = load_config(conf, catalogue=catalogue)

    destination = config.channels["ward"].destinations[0]
    settings = adapter_config(catalogue, destination, tmp_path)
    assert type(settings).__name__ == "WardConfig"
    assert settings.model_dump() == {"endpoint": "tcp://ward:9000", "timeout": 2.0}


@pytest.mark.usefixtures("acme_installed")
def test_disabling_it_makes_its_adapter_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = write_conf(tmp_path, "{endpoint: 'tcp://ward:9000'}")
    monkeypatch.setenv("HISBRIDGE_DISABLE_PLUGINS", "acme_ward")

    result = CliRunner().invoke(main, ["--conf", str(conf), "check-config"])

    assert result.exit_code == 2
    assert "unknown adapter 'acme_ward'" in result.stderr


def test_a_broken_installed_plugin_stops_the_cli_with_a_clean_message(
    install_distribution: InstallDistribution,
) -> None:
    install_distribution(
        distribution="acme-typo",
        version="0.0.1",
        module="acme_typo_plugin",
        source=TYPO_SOURCE,
        entry_point="acme_typo",
    )

    result = CliRunner().invoke(main, ["plugins"])

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "plugin acme_typo" in result.stderr and "hisbridge_register_adaptors" in result.stderr
    assert "HISBRIDGE_DISABLE_PLUGINS" in result.stderr
