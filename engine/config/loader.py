"""Load and validate everything under conf/ before the daemon starts.

Layout: `conf/hisbridge.yaml` holds the daemon settings (store, api, outbox, logging) and
`conf/channels/*.yaml` one channel each, whose `name` defaults to the file stem. Every
problem is collected and reported at once as `file: config.path: message`, e.g.
`conf/channels/demo.yaml: channels.demo.destinations[0].config.timeout: must be > 0`.

Paths in the config are relative to the *base dir*, the directory that contains the conf dir
(the project or working directory): a relative SQLite `store.url` is made absolute at load,
and `$file` secrets are resolved against it (see `base_dir()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, TypeVar

import structlog
import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from engine.adapters.base import AdapterConfig
from engine.catalogue import Catalogue
from engine.config import secrets
from engine.config.model import (
    ApiSettings,
    ChannelConfig,
    DestinationConfig,
    EngineConfig,
    ProcessorSpec,
)
from engine.config.problems import describe_validation_error
from engine.errors import ConfigError
from engine.message import Delivery
from engine.processors import ProcessorConfig
from engine.sources import SourceConfig

log = structlog.get_logger(__name__)

DAEMON_FILE = "hisbridge.yaml"
CHANNELS_DIR = "channels"
_Model = TypeVar("_Model", bound=BaseModel)

ENGINE_API_SOURCE = "http"
"""Source kind served by the engine's own HTTP API; needs no registered Source class."""


def base_dir(conf_dir: Path) -> Path:
    """The directory relative config paths (SQLite files, `$file` secrets) start from."""
    return conf_dir.resolve().parent


def load_config(conf_dir: Path, *, catalogue: Catalogue | None = None) -> EngineConfig:
    """Read and validate conf_dir; raise ConfigError listing every problem.

    With a catalogue, also check that adapter, source and processor names are registered,
    that their `config:` blocks match their schemas, that destination names are unique
    across channels and that no channel has more than one sync destination.
    The returned config's `store.url` is absolute for SQLite files.
    """
    problems: list[str] = []
    if not conf_dir.is_dir():
        raise ConfigError(
            [f"{conf_dir}: config directory not found (use --conf or HISBRIDGE_CONF)"]
        )
    daemon = _load_daemon(conf_dir / DAEMON_FILE, problems)
    channels, invalid = _load_channels(conf_dir / CHANNELS_DIR, problems)
    if catalogue is not None:
        _check_against_catalogue(channels, invalid, catalogue, base_dir(conf_dir), problems)
    if problems or daemon is None:
        raise ConfigError(problems)
    resolved_store = daemon.store.model_copy(
        update={"url": resolve_store_url(daemon.store.url, base_dir(conf_dir))}
    )
    config = daemon.model_copy(
        update={"store": resolved_store, "channels": {c.config.name: c.config for c in channels}}
    )
    log.debug("config loaded", conf_dir=str(conf_dir), channels=sorted(config.channels))
    return config


@dataclass(frozen=True)
class _LoadedChannel:
    file: Path
    config: ChannelConfig


@dataclass(frozen=True)
class _InvalidChannel:
    """A channel file that failed validation, kept so its valid parts are checked too."""

    file: Path
    prefix: str
    data: dict[str, Any]


def _load_daemon(path: Path, problems: list[str]) -> EngineConfig | None:
    if not path.is_file():
        problems.append(
            f"{path}: not found (the daemon settings file; see docs/reference/config.md)"
        )
        return None
    data = _read_yaml(path, problems)
    if data is None:
        return None
    if "channels" in data:
        problems.append(
            f"{path}: channels: declare each channel in its own file under "
            f"{path.parent / CHANNELS_DIR}/"
        )
        return None
    try:
        return EngineConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(
            f"{path}: {line}" for line in describe_validation_error(exc, "", EngineConfig)
        )
        return None


def _load_channels(
    channels_dir: Path, problems: list[str]
) -> tuple[list[_LoadedChannel], list[_InvalidChannel]]:
    if not channels_dir.is_dir():
        return [], []
    loaded: dict[str, _LoadedChannel] = {}
    invalid: list[_InvalidChannel] = []
    files = sorted([*channels_dir.glob("*.yaml"), *channels_dir.glob("*.yml")])
    for path in files:
        data = _read_yaml(path, problems)
        if data is None:
            continue
        name = data.setdefault("name", path.stem)
        prefix = f"channels.{name}" if isinstance(name, str) else f"channels.{path.stem}"
        try:
            channel = ChannelConfig.model_validate(data)
        except ValidationError as exc:
            problems.extend(
                f"{path}: {line}" for line in describe_validation_error(exc, prefix, ChannelConfig)
            )
            invalid.append(_InvalidChannel(path, prefix, data))
            continue
        if channel.name in loaded:
            problems.append(
                f"{path}: {prefix}.name: channel {channel.name!r} is already declared in "
                f"{loaded[channel.name].file}"
            )
            continue
        loaded[channel.name] = _LoadedChannel(path, channel)
    return list(loaded.values()), invalid


def _read_yaml(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        problems.append(_yaml_problem(path, exc))
        return None
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read: {exc}")
        return None
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(f"{path}: must be a mapping of settings, got {type(data).__name__}")
        return None
    return data


def _yaml_problem(path: Path, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    message = exc.problem or exc.context
    if exc.problem and exc.context and exc.context_mark:
        # The problem is often found at the end of the file; say where the construct began.
        message = f"{exc.problem} ({exc.context} that starts at line {exc.context_mark.line + 1})"
    return f"{where}: YAML syntax error: {message}"


# --- checks that need the registered plugins ---------------------------------------------


def _check_against_catalogue(
    channels: list[_LoadedChannel],
    invalid: list[_InvalidChannel],
    catalogue: Catalogue,
    base: Path,
    problems: list[str],
) -> None:
    checks = _CatalogueChecks(catalogue, base)
    declared_in: dict[str, str] = {}
    for loaded in channels:
        found = _channel_problems(loaded.config, checks, catalogue, declared_in)
        problems.extend(f"{loaded.file}: {line}" for line in found)
    for broken in invalid:
        problems.extend(f"{broken.file}: {line}" for line in _salvaged_problems(broken, checks))


class _CatalogueChecks:
    """Registered names and their config schemas, checked part by part."""

    def __init__(self, catalogue: Catalogue, base: Path) -> None:
        self.base = base
        self.sources: dict[str, type[BaseModel]] = {ENGINE_API_SOURCE: SourceConfig}
        self.sources.update({kind: cls.Config for kind, cls in catalogue.sources.items()})
        self.processors = {name: cls.Config for name, cls in catalogue.processors.items()}
        self.adapters = {name: cls.Config for name, cls in catalogue.adapters.items()}

    def source(self, kind: str, config: dict[str, Any], prefix: str) -> list[str]:
        return self._check("source kind", self.sources, kind, config, f"{prefix}.source", "kind")

    def processor(self, name: str, config: dict[str, Any], path: str) -> list[str]:
        return self._check("processor", self.processors, name, config, path, "name")

    def destination(self, adapter: str, config: dict[str, Any], path: str) -> list[str]:
        return self._check("adapter", self.adapters, adapter, config, path, "adapter")

    def _check(
        self,
        what: str,
        schemas: Mapping[str, type[BaseModel]],
        name: str,
        config: dict[str, Any],
        path: str,
        key: str,
    ) -> list[str]:
        schema = schemas.get(name)
        if schema is None:
            return [f"{path}.{key}: unknown {what} {name!r} (known: {_names(schemas)})"]
        return _schema_problems(schema, config, f"{path}.config", self.base)


def _channel_problems(
    channel: ChannelConfig,
    checks: _CatalogueChecks,
    catalogue: Catalogue,
    declared_in: dict[str, str],
) -> list[str]:
    """Problems of one channel; `declared_in` maps destination names seen so far to their
    channel and is updated."""
    prefix = f"channels.{channel.name}"
    found = checks.source(channel.source.kind, channel.source.config, prefix)
    for index, spec in enumerate(channel.processors):
        found += checks.processor(spec.name, spec.config, f"{prefix}.processors[{index}]")
    sync_names = []
    for index, destination in enumerate(channel.destinations):
        path = f"{prefix}.destinations[{index}]"
        if destination.name in declared_in:
            found.append(
                f"{path}.name: destination {destination.name!r} is already declared in channel "
                f"{declared_in[destination.name]}; destination names are unique across channels"
            )
        declared_in.setdefault(destination.name, channel.name)
        found += checks.destination(destination.adapter, destination.config, path)
        known = destination.adapter in catalogue.adapters
        if known and delivery_of(catalogue, destination) is Delivery.SYNC:
            sync_names.append(destination.name)
    if len(sync_names) > 1:
        found.append(
            f"{prefix}.destinations: at most one sync destination per channel, found "
            f"{len(sync_names)}: {', '.join(sync_names)} (set `delivery: async` on the others)"
        )
    return found


def _salvaged_problems(channel: _InvalidChannel, checks: _CatalogueChecks) -> list[str]:
    """Catalogue problems in a channel that failed validation, for every part whose name and
    `config` are well-formed, so one run also reports unknown adapters and bad settings."""
    data, prefix = channel.data, channel.prefix
    found = []
    source = data.get("source", {})
    for _, kind, config in _well_formed([source], "kind", default=ENGINE_API_SOURCE):
        found += checks.source(kind, config, prefix)
    for index, name, config in _well_formed(data.get("processors"), "name"):
        found += checks.processor(name, config, f"{prefix}.processors[{index}]")
    for index, adapter, config in _well_formed(data.get("destinations"), "adapter"):
        found += checks.destination(adapter, config, f"{prefix}.destinations[{index}]")
    return found


def _well_formed(
    items: Any, key: str, default: str | None = None
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(index, name, config) of the mapping items whose `key` is a string and whose `config`
    is a mapping."""
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        name, config = item.get(key, default), item.get("config", {})
        if isinstance(name, str) and isinstance(config, dict):
            yield index, name, config


def _schema_problems(
    schema: type[BaseModel], data: dict[str, Any], path: str, base: Path
) -> list[str]:
    try:
        schema.model_validate(data, context={"base_dir": base})
    except ValidationError as exc:
        return describe_validation_error(exc, path, schema)
    return []


def _names(items: Iterable[str]) -> str:
    return ", ".join(sorted(items)) or "(none registered)"


# --- what the runtime uses once the config is valid ---------------------------------------


def delivery_of(catalogue: Catalogue, destination: DestinationConfig) -> Delivery:
    """The destination's `delivery:` override, else its adapter's declared default."""
    return destination.delivery or catalogue.adapters[destination.adapter].delivery


def adapter_config(
    catalogue: Catalogue, destination: DestinationConfig, base_dir: Path | None = None
) -> AdapterConfig:
    """The destination's `config:` block validated into its adapter's Config model.

    SecretRef fields stay references; the adapter resolves them with `secrets.resolve`.
    Validation runs with context `{"base_dir": base_dir}` so a Config validator can make a
    relative file path (a certificate, a key) absolute."""
    adapter = catalogue.adapters[destination.adapter]
    path = f"destinations.{destination.name}.config"
    return _validated(adapter.Config, destination.config, path, base_dir)


def source_config(
    catalogue: Catalogue, channel: ChannelConfig, base_dir: Path | None = None
) -> SourceConfig:
    """The channel's `source.config` validated into its source kind's Config model."""
    source_class = catalogue.sources.get(channel.source.kind)
    schema = source_class.Config if source_class else SourceConfig
    path = f"channels.{channel.name}.source.config"
    return _validated(schema, channel.source.config, path, base_dir)


def processor_config(
    catalogue: Catalogue, spec: ProcessorSpec, base_dir: Path | None = None
) -> ProcessorConfig:
    """A processor spec's `config` validated into the processor's Config model."""
    processor = catalogue.processors[spec.name]
    return _validated(processor.Config, spec.config, f"processors.{spec.name}.config", base_dir)


def _validated(
    schema: type[_Model], data: dict[str, Any], path: str, base_dir: Path | None
) -> _Model:
    try:
        return schema.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path, schema)) from None


def resolve_tokens(api: ApiSettings, base_dir: Path) -> list[tuple[str, str, str]]:
    """(name, role, token) for every API token, secrets resolved. Raises ConfigError listing
    every token that cannot be resolved and any token value given to two names."""
    resolved: list[tuple[str, str, str]] = []
    problems: list[str] = []
    for index, token in enumerate(api.tokens):
        try:
            value = secrets.resolve(token.token, base_dir)
        except ConfigError as exc:
            problems.extend(f"api.tokens[{index}].token: {problem}" for problem in exc.problems)
            continue
        for other_name, _, other_value in resolved:
            if other_value == value:
                problems.append(
                    f"api.tokens[{index}].token: same value as token {other_name!r}; "
                    f"give each caller its own token"
                )
        resolved.append((token.name, token.role, value))
    if problems:
        raise ConfigError(problems)
    return resolved


def sqlite_file(url: str) -> Path | None:
    """The database file of a file-backed SQLite URL; None for other URLs and `:memory:`."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else Path(database)


def resolve_store_url(url: str, base_dir: Path) -> str:
    """A SQLite URL with a relative file path made absolute under `base_dir`;
    other URLs unchanged. `sqlite:///var/hisbridge.db` → `sqlite:////<base>/var/hisbridge.db`."""
    database = sqlite_file(url)
    if database is None or database.is_absolute():
        return url
    return (
        make_url(url).set(database=str(base_dir / database)).render_as_string(hide_password=False)
    )
