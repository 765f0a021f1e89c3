"""The engine's own payload formats, registered through the same hook a plugin uses."""

from __future__ import annotations

from engine import hookimpl
from engine.formats.base import PayloadFormat
from engine.formats.json_format import JsonFormat
from engine.formats.text_format import TextFormat
from engine.formats.xml_format import XmlFormat


@hookimpl
def hisbridge_register_formats() -> list[PayloadFormat]:
    return [JsonFormat(), XmlFormat(), TextFormat()]
