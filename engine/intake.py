"""Intake: a message from a source becomes a stored message with its deliveries.

Validation, processors, routing and the adapters' request transforms all run before the
message is stored, so input HIS must fix is answered at once, stored with party `his`,
and never sent anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.business_keys import Keys, merge, normalise
from engine.channels import Channel, Destination
from engine.errors import InputError
from engine.formats.registry import FormatRegistry
from engine.message import Delivery, Payload, Status
from engine.routing import passes


@dataclass
class Routed:
    """A processed message and, per routed destination, the request to send it."""

    payload: Payload
    requests: dict[str, Payload]
    routed: list[Destination]
    skipped: list[Destination]
    business_keys: Keys
    store_and_forward: bool = False  # the source acknowledges on store: every delivery is queued

    @property
    def sync(self) -> Destination | None:
        if self.store_and_forward:
            return None
        return next((d for d in self.routed if d.delivery is Delivery.SYNC), None)

    @property
    def queued(self) -> list[Destination]:
        return [d for d in self.routed if d is not self.sync]

    def initial_status(self) -> Status:
        if not self.routed:
            return Status.FILTERED
        return Status.RECEIVED if self.sync else Status.QUEUED


def check_content(channel: Channel, payload: Payload) -> None:
    """Reject bytes that are not what the channel or their content type says (malformed JSON,
    also when a caller labelled its JSON body as a form or plain text)."""
    if "json" not in channel.config.content_type and "json" not in payload.content_type:
        return
    try:
        json.loads(payload.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"body is not valid JSON: {exc}", field="body") from exc


def run_processors(channel: Channel, payload: Payload) -> Payload | None:
    current: Payload | None = payload
    for processor in channel.processors:
        if current is None:
            break
        current = processor.process(current)
    return current


def route(channel: Channel, payload: Payload, formats: FormatRegistry) -> Routed:
    """Pick the destinations whose filter passes and build each one's request."""
    routed = [d for d in channel.destinations if passes(d.config.filter, payload, formats)]
    skipped = [d for d in channel.destinations if d not in routed]
    requests = {d.name: d.adapter.transform(payload) for d in routed}
    return Routed(payload, requests, routed, skipped, business_keys(routed, payload))


def business_keys(destinations: list[Destination], payload: Payload) -> Keys:
    keys: Keys = {}
    for destination in destinations:
        merge(keys, normalise(destination.adapter.extract_keys(payload)))
    return keys
