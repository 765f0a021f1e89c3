from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from engine.adapters.http_json import HttpJsonConfig
from engine.catalogue import Catalogue
from engine.config.loader import (
    adapter_config,
    base_dir,
    load_config,
    processor_config,
    resolve_store_url,
    resolve_tokens,
)
from engine.config.model import ApiSettings, ApiToken, SecretRef
from engine.errors import ConfigError
from engine.message import Delivery
from engine.plugin_manager import create_plugin_manager
from engine.processors_builtin import RequireFieldsConfig

WriteConf = Callable[..., Path]
REPO_CONF = Path(__file__).parents[3] / "conf"

SETTLE = """\
destinations:
  - name: settle_out
    adapter: http_json
    config: {url: 'http://127.0.0.1:8701/settle', timeout: 5}
"""


def problems_of(conf: Path, catalogue: Catalogue | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(conf, catalogue=catalogue)
    return raised.value.problems


def test_the_shipped_example_conf_is_valid() -> None:
    """With every installed plugin, since the example conf has a channel for each demo act."""
    catalogue = Catalogue.build(create_plugin_manager())
    config = load_config(REPO_CONF, catalogue=catalogue)

    assert {"demo_settle", "demo_upload"} <= set(config.channels)
    assert config.store.url == f"sqlite:///{REPO_CONF.parent.resolve()}/var/hisbridge.db"
    settle = config.channels["demo_settle"].destinations[0]
    upload = config.channels["demo_upload"].destinations[0]
    assert adapter_config(catalogue, settle).url == "http://127.0.0.1:8701/settle"  # type: ignore[attr-defined]
    assert adapter_config(catalogue, upload).url == "http://127.0.0.1:8701/upload"  # type: ignore[attr-defined]
    assert [token.token.env for token in config.api.tokens] == [
        "HISBRIDGE_HIS_TOKEN",
        "HISBRIDGE_OPERATOR_TOKEN",
    ]


def test_channel_name_defaults_to_the_file_stem(
    write_conf: WriteConf, catalogue: Catalogue
) -> None:
    config = load_config(write_conf(settle=SETTLE), catalogue=catalogue)

    assert list(config.channels) == ["settle"]
    assert config.channels["settle"].destinations[0].name == "settle_out"


def test_every_problem_is_reported_at_once_with_file_and_path(
    write_conf: WriteConf, catalogue: Catalogue
) -> None:
    conf = write_conf(
        daemon="api: {port: 70000}\noutbox: {batch: 0}\n",
        demo="""\
        destinations:
          - name: demo_out
            adapter: http_json
            config: {url: 'http://127.0.0.1:1/x', timeout: 0, colour: blue}
        """,
        other="""\
        destinations:
          - name: Bad-Name
            adapter: http_json
        """,
    )

    problems = problems_of(conf, catalogue)

    daemon, demo, other = (
        conf / "hisbridge.yaml",
        conf / "channels/demo.yaml",
        conf / "channels/other.yaml",
    )
    assert f"{daemon}: api.port: must be <= 65535" in problems
    assert f"{daemon}: outbox.batch: must be > 0" in problems
    assert f"{demo}: channels.demo.destinations[0].config.timeout: must be > 0" in problems
    assert any(
        p.startswith(f"{demo}: channels.demo.destinations[0].config.colour: unknown setting")
        for p in problems
    )
    assert any(
        p.startswith(f"{other}: channels.other.destinations[0].name: must match") for p in problems
    )
    # The bad name makes the channel invalid; its adapter settings are still checked.
    assert f"{other}: channels.other.destinations[0].config.url: is required" in problems
    assert len(problems) == 6


def test_unknown_names_list_the_known_ones(write_conf: WriteConf, catalogue: Catalogue) -> None:
    conf = write_conf(
        lab="""\
        source: {kind: astm_serial}
        processors: [{name: require_feilds}]
        destinations: [{name: lab_out, adapter: yibao_settle}]
        """
    )

    problems = problems_of(conf, catalogue)

    lab = conf / "channels/lab.yaml"
    sources = ", ".join(sorted([*catalogue.sources, "http"]))
    processors, adapters = (
        ", ".join(sorted(catalogue.processors)),
        ", ".join(sorted(catalogue.adapters)),
    )
    assert "require_fields" in processors and "http_json" in adapters
    assert problems == [
        f"{lab}: channels.lab.source.kind: unknown source kind 'astm_serial' (known: {sources})",
        f"{lab}: channels.lab.processors[0].name: unknown processor 'require_feilds' "
        f"(known: {processors})",
        f"{lab}: channels.lab.destinations[0].adapter: unknown adapter 'yibao_settle' "
        f"(known: {adapters})",
    ]


def test_processor_config_is_checked_against_its_schema(
    write_conf: WriteConf, catalogue: Catalogue
) -> None:
    conf = write_conf(
        checked="""\
        processors: [{name: require_fields, config: {fields: []}}]
        destinations: [{name: checked_out, adapter: http_json, config: {url: 'http://h/'}}]
        """
    )

    assert problems_of(conf, catalogue) == [
        f"{conf / 'channels/checked.yaml'}: channels.checked.processors[0].config.fields: "
        f"must have at least 1 item(s)"
    ]


def test_destination_names_are_unique_across_channels(
    write_conf: WriteConf, catalogue: Catalogue
) -> None:
    conf = write_conf(first=SETTLE, second=SETTLE)

    assert problems_of(conf, catalogue) == [
        f"{conf / 'channels/second.yaml'}: channels.second.destinations[0].name: destination "
        f"'settle_out' is already declared in channel first; destination names are unique "
        f"across channels"
    ]


def test_two_channel_files_with_the_same_name_are_an_error(write_conf: WriteConf) -> None:
    conf = write_conf(one=SETTLE, two="name: one\n" + SETTLE.replace("settle_out", "other_out"))

    problems = problems_of(conf)

    assert problems == [
        f"{conf / 'channels/two.yaml'}: channels.one.name: channel 'one' is already declared "
        f"in {conf / 'channels/one.yaml'}"
    ]


def test_at_most_one_sync_destination_per_channel(
    write_conf: WriteConf, catalogue: Catalogue
) -> None:
    conf = write_conf(
        fanout="""\
        destinations:
          - {name: a_out, adapter: http_json, config: {url: 'http://h/a'}}
          - {name: b_out, adapter: http_json, config: {url: 'http://h/b'}}
          - {name: c_out, adapter: http_json, delivery: async, config: {url: 'http://h/c'}}
        """
    )

    problems = problems_of(conf, catalogue)

    assert len(problems) == 1
    assert "channels.fanout.destinations: at most one sync destination per channel" in problems[0]
    assert "a_out, b_out" in problems[0]


def test_yaml_syntax_error_names_file_and_line(write_conf: WriteConf) -> None:
    conf = write_conf(broken="destinations:\n  - name: x\n    adapter: [unclosed\n")

    (problem,) = problems_of(conf)

    assert problem.startswith(f"{conf / 'channels/broken.yaml'}:4:")
    assert "YAML syntax error" in problem
    assert "flow sequence that starts at line 3" in problem


def test_literal_secret_is_rejected_with_the_accepted_forms(write_conf: WriteConf) -> None:
    conf = write_conf(daemon="api:\n  tokens: [{name: his, role: his, token: s3cret}]\n")

    assert problems_of(conf) == [
        f"{conf / 'hisbridge.yaml'}: api.tokens[0].token: "
        "secrets must be given as {$env: NAME} or {$file: PATH}"
    ]


def test_secret_in_an_adapter_config_must_be_a_reference(
    write_conf: WriteConf, catalogue: Catalogue
) -> None:
    conf = write_conf(
        secured="""\
        destinations:
          - name: secured_out
            adapter: http_json
            config: {url: 'https://h/', bearer_token: abc123}
        """
    )

    assert problems_of(conf, catalogue) == [
        f"{conf / 'channels/secured.yaml'}: channels.secured.destinations[0].config.bearer_token: "
        "secrets must be given as {$env: NAME} or {$file: PATH}"
    ]


def test_missing_daemon_file_and_channels_in_it_are_reported(
    write_conf: WriteConf, tmp_path: Path
) -> None:
    missing = write_conf(daemon=None)
    assert problems_of(missing)[0].startswith(f"{missing / 'hisbridge.yaml'}: not found")

    misplaced = write_conf(daemon="channels: {}\n")
    assert "declare each channel in its own file" in problems_of(misplaced)[0]

    assert problems_of(tmp_path / "nowhere") == [
        f"{tmp_path / 'nowhere'}: config directory not found (use --conf or HISBRIDGE_CONF)"
    ]


def test_adapter_config_resolves_file_secrets_against_the_base_dir(
    write_conf: WriteConf, catalogue: Catalogue
) -> None:
    conf = write_conf(
        secured="""\
        destinations:
          - name: secured_out
            adapter: http_json
            config: {url: 'https://h/', bearer_token: {$file: secrets/token}}
        """
    )
    destination = load_config(conf, catalogue=catalogue).channels["secured"].destinations[0]

    settings = adapter_config(catalogue, destination, base_dir(conf))

    assert isinstance(settings, HttpJsonConfig)
    assert settings.bearer_token == SecretRef(file=str(base_dir(conf) / "secrets/token"))


def test_processor_config_returns_the_processor_model(
    write_conf: WriteConf, catalogue: Catalogue
) -> None:
    conf = write_conf(
        checked="""\
        processors: [{name: require_fields, config: {fields: [$.infno]}}]
        destinations: [{name: checked_out, adapter: http_json, config: {url: 'http://h/'}}]
        """
    )
    spec = load_config(conf, catalogue=catalogue).channels["checked"].processors[0]

    assert processor_config(catalogue, spec) == RequireFieldsConfig(fields=["$.infno"])


def test_delivery_defaults_to_the_adapter_declaration(
    write_conf: WriteConf, catalogue: Catalogue
) -> None:
    from engine.config.loader import delivery_of

    conf = write_conf(settle=SETTLE)
    destination = load_config(conf, catalogue=catalogue).channels["settle"].destinations[0]

    assert delivery_of(catalogue, destination) is Delivery.SYNC
    assert (
        delivery_of(catalogue, destination.model_copy(update={"delivery": Delivery.ASYNC}))
        is Delivery.ASYNC
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///var/hisbridge.db", "sqlite:////srv/app/var/hisbridge.db"),
        ("sqlite+aiosqlite:///data.db", "sqlite+aiosqlite:////srv/app/data.db"),
        ("sqlite:////abs/hisbridge.db", "sqlite:////abs/hisbridge.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql+psycopg://u:p@db/hisbridge", "postgresql+psycopg://u:p@db/hisbridge"),
    ],
)
def test_relative_sqlite_paths_start_from_the_base_dir(url: str, expected: str) -> None:
    assert resolve_store_url(url, Path("/srv/app")) == expected


def test_resolve_tokens_reads_every_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "operator.token").write_text("op-token\n")
    monkeypatch.setenv("TEST_HIS_TOKEN", "his-token")
    api = ApiSettings(
        tokens=[
            ApiToken(name="his", role="his", token=SecretRef(env="TEST_HIS_TOKEN")),
            ApiToken(name="ops", role="operator", token=SecretRef(file="operator.token")),
        ]
    )

    assert resolve_tokens(api, tmp_path) == [
        ("his", "his", "his-token"),
        ("ops", "operator", "op-token"),
    ]


def test_resolve_tokens_reports_every_unresolvable_or_shared_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TEST_MISSING_TOKEN", raising=False)
    monkeypatch.setenv("TEST_SHARED_TOKEN", "same")
    api = ApiSettings(
        tokens=[
            ApiToken(name="a", role="his", token=SecretRef(env="TEST_MISSING_TOKEN")),
            ApiToken(name="b", role="his", token=SecretRef(env="TEST_SHARED_TOKEN")),
            ApiToken(name="c", role="operator", token=SecretRef(env="TEST_SHARED_TOKEN")),
        ]
    )

    with pytest.raises(ConfigError) as raised:
        resolve_tokens(api, tmp_path)

    assert raised.value.problems == [
        "api.tokens[0].token: $env TEST_MISSING_TOKEN: environment variable is not set",
        "api.tokens[2].token: same value as token 'b'; give each caller its own token",
    ]


def test_unknown_settings_suggest_the_close_or_known_names(
    write_conf: WriteConf, catalogue: Catalogue
) -> None:
    conf = write_conf(
        daemon="api: {prot: 8700}\n",
        typo="""\
        destinations:
          - name: typo_out
            adapter: http_json
            breaker: {fail_mx: 3}
            config: {url: 'http://h/', zzz: 1}
          - {name: typo_two, adapter: http_jsn}
        """,
    )

    problems = problems_of(conf, catalogue)

    # The breaker typo makes the channel invalid; its destinations are still checked.
    daemon, typo = conf / "hisbridge.yaml", conf / "channels/typo.yaml"
    assert problems == [
        f"{daemon}: api.prot: unknown setting; did you mean `port`?",
        f"{typo}: channels.typo.destinations[0].breaker.fail_mx: unknown setting; "
        "did you mean `fail_max`?",
        f"{typo}: channels.typo.destinations[0].config.zzz: unknown setting (known: url, "
        "method, timeout, connect_timeout, headers, bearer_token, verify, idempotent)",
        f"{typo}: channels.typo.destinations[1].adapter: unknown adapter 'http_jsn' "
        f"(known: {', '.join(sorted(catalogue.adapters))})",
    ]
