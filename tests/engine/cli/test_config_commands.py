from __future__ import annotations

import asyncio
import json
import types
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from engine import hookimpl
from engine.catalogue import Catalogue, hisbridge_version
from engine.cli import CliContext, main
from engine.demo.runner import demo_environment
from engine.errors import StoreError
from engine.plugin_manager import create_plugin_manager

REPO = Path(__file__).parents[3]
REPO_CONF = REPO / "conf"


def run(*args: str, obj: CliContext | None = None) -> Result:
    return CliRunner().invoke(main, list(args), obj=obj)


def broken_conf(tmp_path: Path) -> Path:
    conf = tmp_path / "conf"
    (conf / "channels").mkdir(parents=True)
    (conf / "hisbridge.yaml").write_text("api: {port: -1}\n")
    (conf / "channels" / "demo.yaml").write_text(
        "destinations:\n"
        "  - {name: demo_out, adapter: http_json, config: {url: 'http://h/', timeout: 0}}\n"
        "  - {name: demo_two, adapter: nope}\n"
    )
    return conf


def test_check_config_summarises_the_example_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    acts = Catalogue.build(create_plugin_manager()).demo_acts.values()
    for name, value in demo_environment(list(acts)).items():
        monkeypatch.setenv(name, value)

    result = run("--conf", str(REPO_CONF), "check-config")

    assert result.exit_code == 0, result.output
    channels = len(list((REPO_CONF / "channels").glob("*.yaml")))
    assert f"configuration is valid, {channels} channel(s)" in result.stdout
    assert "demo_settle_centre (http_json, sync)" in result.stdout
    assert "demo_upload_platform (http_json, async)" in result.stdout
    assert "warning" not in result.stderr


def test_check_config_warns_about_secrets_the_daemon_will_need(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HISBRIDGE_HIS_TOKEN", raising=False)
    monkeypatch.setenv("HISBRIDGE_OPERATOR_TOKEN", "operator-secret")

    result = run("--conf", str(REPO_CONF), "check-config")

    assert result.exit_code == 0
    assert (
        "api.tokens[0].token: $env HISBRIDGE_HIS_TOKEN: environment variable is not set"
        in result.stderr
    )


def test_conf_dir_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HISBRIDGE_CONF", str(broken_conf(tmp_path)))

    assert run("check-config").exit_code == 2


def test_check_config_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    conf = broken_conf(tmp_path)

    result = run("--conf", str(conf), "check-config")

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "the configuration has 3 problem(s)" in result.stderr
    for problem in (
        f"{conf / 'hisbridge.yaml'}: api.port: must be >= 0",
        f"{conf / 'channels/demo.yaml'}: channels.demo.destinations[0].config.timeout: must be > 0",
        f"{conf / 'channels/demo.yaml'}: channels.demo.destinations[1].adapter: "
        "unknown adapter 'nope'",
    ):
        assert problem in result.stderr


def test_plugins_table_and_json_agree() -> None:
    table = run("plugins")
    listing = run("plugins", "--json")

    assert table.exit_code == listing.exit_code == 0
    entries = json.loads(listing.stdout)
    for entry in entries:
        assert entry["name"] in table.stdout
    builtin = next(e for e in entries if e["name"] == "engine.processors_builtin")
    assert builtin["processors"] == ["require_fields"]
    assert "    processors: require_fields" in table.stdout


def test_plugin_commands_do_not_leak_between_invocations() -> None:
    greeting = click.Command("acme-greet", callback=lambda: click.echo("hi"))
    plugin = types.ModuleType("acme_cli_commands")
    plugin.hisbridge_register_commands = hookimpl(  # type: ignore[attr-defined]
        lambda cli: cli.add_command(greeting)
    )
    pm = create_plugin_manager(load_entry_points=False, extra_plugins=[plugin])

    with_plugin = run("acme-greet", obj=CliContext(pm))
    without = run("acme-greet")

    assert with_plugin.exit_code == 0 and with_plugin.stdout == "hi\n"
    assert without.exit_code == 2 and "No such command" in without.stderr
    assert "acme-greet" not in main.commands


def test_missing_store_says_how_to_create_it(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "hisbridge.yaml").write_text("store: {url: 'sqlite:///var/none.db'}\n")
    context = CliContext(create_plugin_manager(load_entry_points=False), conf)

    with pytest.raises(StoreError) as raised:
        asyncio.run(context.open_store())

    assert f"no message store at {tmp_path / 'var/none.db'}" in str(raised.value)
    assert "hisbridge run" in str(raised.value)


def test_docs_check_passes_on_the_committed_reference() -> None:
    result = run("docs", "--check", "--out", str(REPO / "docs" / "reference"))

    assert result.exit_code == 0, result.output


def test_docs_writes_pages_and_check_detects_staleness(tmp_path: Path) -> None:
    out = tmp_path / "reference"

    assert run("docs", "--check", "--out", str(out)).exit_code == 1
    assert run("docs", "--out", str(out)).exit_code == 0
    assert run("docs", "--check", "--out", str(out)).exit_code == 0

    (out / "config.md").write_text("edited by hand\n")
    stale = run("docs", "--check", "--out", str(out))
    assert stale.exit_code == 1 and "config.md" in stale.stderr


def test_generated_docs_cover_every_component_and_mark_secrets(tmp_path: Path) -> None:
    out = tmp_path / "reference"
    run("docs", "--out", str(out))
    config_md = (out / "config.md").read_text()
    adapters_md = (out / "adapters.md").read_text()
    listing = json.loads(run("plugins", "--json").stdout)

    bundled = [entry for entry in listing if entry["distribution"] == "hisbridge"]
    for entry in bundled:
        for name in [*entry["adapters"], *entry["sources"], *entry["processors"]]:
            assert f"### `{name}`" in adapters_md
    assert "| `token` | secret (`$env`/`$file`) | required |" in config_md
    assert "`fail_max` | integer > 0 | `5` | consecutive transient failures" in config_md


def test_version_and_verbosity() -> None:
    assert run("--version").stdout.endswith(f" {hisbridge_version()}\n")
    quiet = run("--conf", str(REPO_CONF), "check-config")
    verbose = run("-vv", "--conf", str(REPO_CONF), "check-config")
    assert "config loaded" not in quiet.stderr
    assert "config loaded" in verbose.stderr
