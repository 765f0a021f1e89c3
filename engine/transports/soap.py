"""SOAP destinations: zeep builds and reads the envelopes, the engine's HTTP client carries them.

zeep knows the WSDL (operations, types, SOAPAction, SOAP 1.1/1.2); everything about the
wire stays the engine's: the envelope is posted with the shared httpx client from
`AdapterServices.http_client` (same transport, timeouts and TLS settings as every other
destination) through `engine.transports.http.exchange`, so the exact request and response
bytes become the `sent` and `response_raw` stages and httpx failures are translated as for
any HTTP destination. zeep's own exceptions (a SOAP fault, a reply that is not XML, a WSDL
that cannot be used) are translated by `engine.transports.translate_zeep`.

WSDLs are loaded lazily, on the first call, so the daemon starts while the remote service
is down; a WSDL from a URL is fetched with the same TLS setting. A parsed WSDL is kept in
memory per location (`WsdlCache`): measured, a one-operation WSDL from a file takes ~2.5 ms
to parse (20 ms for the first in a process) and a cached lookup ~1 µs; zeep's SqliteCache
would only save the fetch, not the parse, and would outlive a changed service. A daemon
restart reloads it; a failed load is not cached, so the next call tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import structlog
import zeep
from pydantic import Field
from zeep.helpers import serialize_object
from zeep.proxy import AsyncServiceProxy
from zeep.wsdl import Document
from zeep.wsdl.utils import etree_to_string

from engine.adapters.base import AdapterConfig, AdapterServices, Wire
from engine.errors import PermanentError
from engine.transports import translate_errors, translate_zeep
from engine.transports.http import exchange

log = structlog.get_logger(__name__)

_current_wire: ContextVar[Wire] = ContextVar("soap_wire")

ZEEP_SETTINGS = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True)
"""Replies with a DTD or entities are refused: XML from outside never expands anything."""


class SoapDestinationConfig(AdapterConfig):
    """Config fields every SOAP destination shares; a plugin's config subclasses this."""

    wsdl: str = Field(
        description="WSDL location: an http(s) URL, or a file path (relative to the conf dir)",
        examples=["http://pacs.example.org/ExamService?wsdl", "wsdl/pacs.wsdl"],
    )
    address: str | None = Field(
        None,
        description="endpoint URL to post to, overriding the WSDL's soap:address "
        "(vendors often publish an internal host name there)",
        examples=["http://10.1.2.3:8080/ExamService"],
        pattern=r"^https?://",
    )
    service: str | None = Field(None, description="WSDL service name; default the first one")
    port: str | None = Field(None, description="WSDL port name; default the service's first one")
    timeout: float = Field(10.0, gt=0, description="seconds to wait for an answer (and for the WSDL)")
    verify: bool | str = Field(True, description="verify the server's TLS certificate (or a CA bundle path)")


def wsdl_location(wsdl: str, base_dir: Path | None) -> str:
    """URLs stay as they are; a relative file path is read relative to the conf dir."""
    scheme = urlparse(wsdl).scheme
    if scheme in ("http", "https"):
        return wsdl
    path = Path(unquote(urlparse(wsdl).path)) if scheme == "file" else Path(wsdl)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return str(path.resolve())


class WsdlLoader:
    """What zeep calls to fetch the WSDL and the schemas it imports (from a worker thread)."""

    def __init__(self, *, verify: bool | str, timeout: float) -> None:
        self.verify = verify
        self.timeout = timeout
        self.fetched: list[str] = []

    def load(self, url: str) -> bytes:
        self.fetched.append(url)
        scheme = urlparse(url).scheme
        if scheme not in ("http", "https"):
            path = Path(unquote(urlparse(url).path)) if scheme == "file" else Path(url)
            try:
                return path.read_bytes()
            except OSError as exc:
                raise PermanentError(
                    f"wsdl: cannot read {path}: {exc.strerror}",
                    detail={"condition": "wsdl", "exception": type(exc).__name__, "request_left": False},
                ) from exc
        with translate_errors(), httpx.Client(verify=self.verify, timeout=self.timeout) as http:
            response = http.get(url)
            response.raise_for_status()
            return response.content


class WsdlCache:
    """Parsed WSDL documents by (location, TLS setting), loaded once per process."""

    def __init__(self) -> None:
        self._documents: dict[tuple[str, str], Document] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.loads = 0

    async def document(self, location: str, *, verify: bool | str, timeout: float) -> Document:
        key = (location, repr(verify))
        cached = self._documents.get(key)
        if cached is not None:
            return cached
        async with self._locks.setdefault(key, asyncio.Lock()):
            cached = self._documents.get(key)
            if cached is None:
                cached = await asyncio.to_thread(self._load, location, verify, timeout)
                self._documents[key] = cached
            return cached

    def _load(self, location: str, verify: bool | str, timeout: float) -> Document:
        self.loads += 1
        loader = WsdlLoader(verify=verify, timeout=timeout)
        with translate_errors():
            document = Document(location, loader, settings=ZEEP_SETTINGS)  # type: ignore[arg-type]  # duck-typed transport
        log.info("wsdl loaded", location=location, documents=len(loader.fetched))
        return document

    def clear(self) -> None:
        self._documents.clear()


wsdl_cache = WsdlCache()
"""The process's WSDL cache; tests pass their own to `SoapCaller`."""


@dataclass(frozen=True)
class _Reply:
    """The parts of a `requests.Response` zeep reads when it parses an answer."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]
    encoding: str | None


class EngineSoapTransport:
    """zeep's transport, duck-typed: posts envelopes with the engine's client and records them.

    The wire of the running call comes from a context variable, so one transport serves
    concurrent calls. Only SOAP bindings are used (no HTTP GET/POST bindings).
    """

    def __init__(self, http: httpx.AsyncClient, loader: WsdlLoader) -> None:
        self.http = http
        self.loader = loader

    def load(self, url: str) -> bytes:
        return self.loader.load(url)

    async def post_xml(self, address: str, envelope: Any, headers: Mapping[str, str]) -> _Reply:
        request = self.http.build_request("POST", address, content=etree_to_string(envelope), headers=headers)
        response = await exchange(self.http, request, _current_wire.get())
        return _Reply(response.status_code, response.content, response.headers, response.encoding)


class SoapCaller:
    """Calls operations of one SOAP service: `await caller.call("PlaceOrder", wire, Order=...)`.

    Returns the operation's result as plain Python values (dicts, lists, strings, numbers,
    dates). Raises engine errors only: a SOAP fault is a `PermanentError` whose detail holds
    `condition="soap_fault"`, `faultcode` and `faultstring`.
    """

    def __init__(
        self,
        wsdl: str,
        services: AdapterServices,
        *,
        timeout: float,
        verify: bool | str = True,
        address: str | None = None,
        service: str | None = None,
        port: str | None = None,
        base_dir: Path | None = None,
        cache: WsdlCache = wsdl_cache,
    ) -> None:
        self.location = wsdl_location(wsdl, base_dir)
        self.timeout = timeout
        self.verify = verify
        self.address = address
        self.service_name = service
        self.port_name = port
        self._cache = cache
        self._transport = EngineSoapTransport(
            services.http_client(timeout=timeout, verify=verify), WsdlLoader(verify=verify, timeout=timeout)
        )
        self._proxy: AsyncServiceProxy | None = None

    @classmethod
    def from_config(
        cls, config: SoapDestinationConfig, services: AdapterServices, *, base_dir: Path | None = None
    ) -> SoapCaller:
        return cls(
            config.wsdl,
            services,
            timeout=config.timeout,
            verify=config.verify,
            address=config.address,
            service=config.service,
            port=config.port,
            base_dir=base_dir,
        )

    async def operations(self) -> list[str]:
        """The operation names of the bound port (loads the WSDL when not yet loaded)."""
        proxy = await self._service()
        return sorted(proxy._binding._operations)  # zeep offers no public listing

    async def call(self, operation: str, wire: Wire, **arguments: Any) -> Any:
        known_operations = await self.operations()
        proxy = await self._service()
        if operation not in known_operations:
            known = ", ".join(known_operations)
            raise PermanentError(
                f"wsdl: operation {operation} is not in {self.location} (it has {known})",
                detail={"condition": "wsdl", "exception": "", "request_left": False},
            )
        if wire.current.sent is None:
            wire.current.detail["soap_operation"] = operation
        else:
            wire.step(soap_operation=operation)
        token = _current_wire.set(wire)
        try:
            result = await proxy[operation](**arguments)
        except zeep.exceptions.Error as exc:
            raise translate_zeep(exc, request_left=wire.request_left, status_code=wire.current.status_code) from exc
        finally:
            _current_wire.reset(token)
        return serialize_object(result, dict)

    async def _service(self) -> AsyncServiceProxy:
        if self._proxy is None:
            document = await self._cache.document(self.location, verify=self.verify, timeout=self.timeout)
            client = zeep.AsyncClient(
                document,
                transport=self._transport,
                settings=ZEEP_SETTINGS,
                service_name=self.service_name,
                port_name=self.port_name,
            )
            try:
                proxy = client.service if self.address is None else self._proxy_at(client, self.address)
            except ValueError as exc:  # zeep's words for a service or port the WSDL lacks
                raise PermanentError(
                    f"wsdl: {exc} in {self.location}",
                    detail={"condition": "wsdl", "exception": type(exc).__name__, "request_left": False},
                ) from exc
            self._proxy = proxy
        return self._proxy

    def _proxy_at(self, client: zeep.AsyncClient, address: str) -> AsyncServiceProxy:
        bound = client.service
        return AsyncServiceProxy(client, bound._binding, address=address)


__all__ = ["EngineSoapTransport", "SoapCaller", "SoapDestinationConfig", "WsdlCache", "wsdl_cache", "wsdl_location"]
