"""The processor contract: a step between source and destinations (filter, map, enrich)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from engine.message import Payload


class ProcessorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Processor(ABC):
    """`name` is the key under `processors:` in a channel; `Config` its schema.

    `process()` returns the payload for the next step, or None to filter the message out
    (stored with status `filtered`). Raise `InputError` for input HIS must fix.
    """

    name: ClassVar[str]
    Config: ClassVar[type[ProcessorConfig]] = ProcessorConfig
    description: ClassVar[str] = ""

    def __init__(self, config: ProcessorConfig) -> None:
        self.config = config

    @abstractmethod
    def process(self, payload: Payload) -> Payload | None:
        """Transform or filter one message."""
