"""A small real SOAP 1.1 service for transport tests: a hand-written WSDL and an ASGI app.

`GET /echo?wsdl` serves the WSDL (its soap:address is this server); `POST /echo` answers
the `Echo` operation (document/literal). `service.mode` makes it misbehave: `fault` (a
SOAP fault, HTTP 500), `malformed` (200 with broken XML), `html500` (an HTML error page),
`slow` (answers after `delay` seconds).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.serving import LocalServer

NS = "urn:hisbridge:test:echo"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"

WSDL = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="urn:hisbridge:test:echo"
    targetNamespace="urn:hisbridge:test:echo" name="EchoService">
  <types>
    <xsd:schema targetNamespace="urn:hisbridge:test:echo" elementFormDefault="qualified">
      <xsd:element name="EchoRequest">
        <xsd:complexType><xsd:sequence>
          <xsd:element name="text" type="xsd:string"/>
          <xsd:element name="count" type="xsd:int" minOccurs="0"/>
        </xsd:sequence></xsd:complexType>
      </xsd:element>
      <xsd:element name="EchoResponse">
        <xsd:complexType><xsd:sequence>
          <xsd:element name="text" type="xsd:string"/>
          <xsd:element name="length" type="xsd:int"/>
        </xsd:sequence></xsd:complexType>
      </xsd:element>
    </xsd:schema>
  </types>
  <message name="EchoIn"><part name="parameters" element="tns:EchoRequest"/></message>
  <message name="EchoOut"><part name="parameters" element="tns:EchoResponse"/></message>
  <portType name="EchoPort">
    <operation name="Echo"><input message="tns:EchoIn"/><output message="tns:EchoOut"/></operation>
  </portType>
  <binding name="EchoBinding" type="tns:EchoPort">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="Echo">
      <soap:operation soapAction="urn:hisbridge:test:echo#Echo"/>
      <input><soap:body use="literal"/></input>
      <output><soap:body use="literal"/></output>
    </operation>
  </binding>
  <service name="EchoService">
    <port name="EchoPort" binding="tns:EchoBinding"><soap:address location="{address}"/></port>
  </service>
</definitions>
"""


def envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP_ENV}">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def fault(code: str, text: str) -> bytes:
    return envelope(
        f"<soap:Fault><faultcode>soap:{code}</faultcode><faultstring>{escape(text)}</faultstring></soap:Fault>"
    )


@dataclass
class EchoService:
    mode: str = "normal"
    delay: float = 0.0
    fault_text: str = "echo refused"
    received: list[bytes] = field(default_factory=list)
    wsdl_requests: int = 0
    address: str = ""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/echo", self.handle, methods=["GET", "POST"])])

    async def handle(self, request: Request) -> Response:
        if request.method == "GET":
            self.wsdl_requests += 1
            return Response(WSDL.replace("{address}", self.address), media_type="text/xml")
        body = await request.body()
        self.received.append(body)
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
        if self.mode == "fault":
            return Response(fault("Server", self.fault_text), 500, media_type="text/xml")
        if self.mode == "malformed":
            return Response(b"<?xml version='1.0'?><soap:Envelope><oops", media_type="text/xml")
        if self.mode == "html500":
            return Response(b"<html><body>Internal Server Error</body></html>", 500, media_type="text/html")
        text = _echo_text(body)
        answer = f'<EchoResponse xmlns="{NS}"><text>{escape(text)}</text><length>{len(text)}</length></EchoResponse>'
        return Response(envelope(answer), media_type="text/xml; charset=utf-8")


def _echo_text(body: bytes) -> str:
    root: Any = SafeET.fromstring(body)
    node = root.find(f".//{{{NS}}}text")
    return "" if node is None or node.text is None else str(node.text)


class EchoServer(LocalServer):
    """`async with EchoServer(service) as server:` serves it on 127.0.0.1 (a free port)."""

    def __init__(self, service: EchoService) -> None:
        super().__init__(service.app())
        self.service = service

    async def start(self) -> None:
        await super().start()
        self.service.address = f"{self.url}/echo"
