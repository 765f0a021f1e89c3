from __future__ import annotations

import inspect

import aiohttp
import httpx

from engine.transports import HTTPX_DECISIONS, decide
from engine.transports.aiohttp_transport import AIOHTTP_TO_HTTPX, httpx_error_for


def test_every_exception_class_aiohttp_exports_has_a_mapping() -> None:
    exported = {
        obj
        for obj in vars(aiohttp).values()
        if inspect.isclass(obj) and issubclass(obj, aiohttp.ClientError)
    }
    undecided = sorted(cls.__name__ for cls in exported - set(AIOHTTP_TO_HTTPX))
    assert undecided == [], f"decide how to map: {undecided}"


def test_every_mapping_target_has_an_engine_decision() -> None:
    for target in AIOHTTP_TO_HTTPX.values():
        assert target in HTTPX_DECISIONS


def test_disconnect_after_sending_is_not_reported_as_a_connect_failure() -> None:
    request = httpx.Request("POST", "http://centre.test/settle")
    mapped = httpx_error_for(aiohttp.ServerDisconnectedError(), request)
    assert isinstance(mapped, httpx.RemoteProtocolError)
    assert decide(type(mapped)).request_left is True
    assert mapped.request is request


def test_connector_failures_never_left() -> None:
    for cls, target in AIOHTTP_TO_HTTPX.items():
        if issubclass(cls, aiohttp.ClientConnectorError) or cls is aiohttp.ConnectionTimeoutError:
            assert decide(target).request_left is False, cls.__name__
