"""Processor and source configs are validated with the conf's base directory, like adapter
configs, so a relative file (a code table, a certificate) resolves against the project."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationInfo, field_validator

from engine import hookimpl
from engine.message import Payload
from engine.processors import Processor, ProcessorConfig
from engine.sources import Source, SourceConfig
from tests.engine.pipeline.test_routing_and_storage import start_engine


def under_base_dir(value: str, info: ValidationInfo) -> str:
    base = (info.context or {}).get("base_dir")
    return str(Path(base) / value) if base is not None else value


class TableConfig(ProcessorConfig):
    table: str
    _resolve = field_validator("table")(under_base_dir)


class TableProcessor(Processor):
    name = "table_probe"
    Config = TableConfig

    def process(self, payload: Payload) -> Payload:
        return payload


class ListenerConfig(SourceConfig):
    certificate: str
    _resolve = field_validator("certificate")(under_base_dir)


class ListenerProbe(Source):
    kind = "listener_probe"
    Config = ListenerConfig
    started: ClassVar[list[Any]] = []

    async def start(self) -> None:
        ListenerProbe.started.append(self.config)

    async def stop(self) -> None:
        """Nothing to close."""


class ProbePlugin:
    @hookimpl
    def hisbridge_register_processors(self) -> list[type[Processor]]:
        return [TableProcessor]

    @hookimpl
    def hisbridge_register_sources(self) -> list[type[Source]]:
        return [ListenerProbe]


async def test_processor_and_source_configs_see_the_base_dir(tmp_path: Path) -> None:
    channel = {
        "source": {"kind": "listener_probe", "config": {"certificate": "conf/tls/device.pem"}},
        "processors": [{"name": "table_probe", "config": {"table": "conf/codes.csv"}}],
        "destinations": [{"name": "out", "adapter": "memory", "delivery": "async", "config": {"peer": "out"}}],
    }
    engine = await start_engine(tmp_path, {"probe": channel}, plugins=(ProbePlugin(),))
    try:
        [processor] = engine.channel("probe").processors
        assert isinstance(processor.config, TableConfig)
        assert processor.config.table == str(tmp_path / "conf" / "codes.csv")
        [listener] = ListenerProbe.started
        assert listener.certificate == str(tmp_path / "conf" / "tls" / "device.pem")
    finally:
        await engine.stop()
