"""The pacs plugin's hooks: order adapters (HL7/MLLP, SOAP, REST), the ORU^R01 report step, its 故障责任清单."""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import TYPE_CHECKING

import yaml

from engine import hookimpl
from engine.adapters.base import Adapter
from engine.attribution.loader import parse_rules
from engine.attribution.rules import FaultRule
from engine.processors import Processor
from engine.sources import Source
from plugins.pacs.hl7_adapter import PacsHl7Adapter
from plugins.pacs.report_adapter import PacsReportHisAdapter
from plugins.pacs.report_intake import bind_engine, release_engine
from plugins.pacs.report_processor import JsonReportProcessor, OruReportProcessor
from plugins.pacs.report_sources import PacsOruSource, PacsReportHttpSource
from plugins.pacs.rest_adapter import PacsRestAdapter
from plugins.pacs.services import SERVICE_ADAPTERS, SERVICE_PROCESSORS
from plugins.pacs.soap_adapter import PacsSoapAdapter
from plugins.pacs.worklist_adapter import PacsWorklistAdapter, start_worklists

if TYPE_CHECKING:
    import click
    from starlette.routing import BaseRoute

    from engine.demo.acts import DemoAct
    from engine.runtime import Engine

_background: set[asyncio.Task[None]] = set()


def fault_rules() -> list[FaultRule]:
    """The rules shipped in plugins/pacs/rules.yaml, validated by the engine's rule loader."""
    text = resources.files("plugins.pacs").joinpath("rules.yaml").read_text(encoding="utf-8")
    return parse_rules(yaml.safe_load(text), source="plugins/pacs/rules.yaml")


@hookimpl
def hisbridge_register_adapters() -> list[type[Adapter]]:
    return [
        PacsHl7Adapter, PacsSoapAdapter, PacsRestAdapter, PacsWorklistAdapter, PacsReportHisAdapter, *SERVICE_ADAPTERS,
    ]


@hookimpl
def hisbridge_register_sources() -> list[type[Source]]:
    return [PacsOruSource, PacsReportHttpSource]


@hookimpl
def hisbridge_register_fault_rules() -> list[FaultRule]:
    return fault_rules()


@hookimpl
def hisbridge_register_processors() -> list[type[Processor]]:
    return [OruReportProcessor, JsonReportProcessor, *SERVICE_PROCESSORS]


@hookimpl
def hisbridge_register_routes(engine: Engine) -> list[BaseRoute]:
    from plugins.pacs.services.routes import pacs_service_routes  # lazily: only the API needs it

    return pacs_service_routes(engine)


@hookimpl
def hisbridge_register_commands(cli: click.Group) -> None:
    from plugins.pacs.cli import register  # lazily: only the CLI needs it

    register(cli)


@hookimpl
def hisbridge_register_demo_acts() -> list[type[DemoAct]]:
    from plugins.pacs.demo_act import ExamAct  # lazily: only the demo needs it

    return [ExamAct]


@hookimpl
def hisbridge_startup(engine: Engine) -> None:
    """Start the worklist SCPs once their stored orders are replayed (in the background: the
    hook is synchronous, and a large replay must not hold up the daemon's start); give the
    report sources, started next, their engine."""
    bind_engine(engine)
    task = asyncio.get_running_loop().create_task(start_worklists(engine), name="pacs-worklists")
    _background.add(task)
    task.add_done_callback(_background.discard)


@hookimpl
def hisbridge_shutdown(engine: Engine) -> None:
    release_engine(engine)
    for task in list(_background):
        task.cancel()
