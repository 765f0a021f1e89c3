"""The simulated PACS's exam-order service description (SOAP 1.1, document/literal).

Shaped like the WebServices Chinese PACS vendors publish: one operation per order action,
an order structure of flat fields, and a result with a numeric `resultCode` (0 = success)
and a `resultMessage`, beside SOAP faults for requests the service cannot process.
"""

from __future__ import annotations

NAMESPACE = "urn:hisbridge:pacs:exam-order:1"
SOAP_ACTION_BASE = f"{NAMESPACE}#"
OPERATIONS = ("PlaceExamOrder", "ChangeExamOrder", "CancelExamOrder")

ORDER_FIELDS: tuple[tuple[str, str, bool], ...] = (
    # (element, xsd type, required)
    ("accessionNumber", "xsd:string", True),
    ("requestedProcedureId", "xsd:string", False),
    ("scheduledStepId", "xsd:string", False),
    ("placerOrderNumber", "xsd:string", False),
    ("patientId", "xsd:string", True),
    ("patientName", "xsd:string", True),
    ("patientSex", "xsd:string", False),
    ("patientBirthDate", "xsd:date", False),
    ("visitNumber", "xsd:string", False),
    ("patientClass", "xsd:string", False),
    ("procedureCode", "xsd:string", True),
    ("procedureName", "xsd:string", True),
    ("bodyPart", "xsd:string", False),
    ("modality", "xsd:string", True),
    ("scheduledAt", "xsd:dateTime", True),
    ("stationAE", "xsd:string", False),
    ("room", "xsd:string", False),
    ("requestingPhysicianId", "xsd:string", False),
    ("requestingPhysicianName", "xsd:string", False),
    ("reason", "xsd:string", False),
    ("priority", "xsd:string", False),
)


def _order_type() -> str:
    optional = ' minOccurs="0"'
    elements = "\n".join(
        f'          <xsd:element name="{name}" type="{kind}"{"" if required else optional}/>'
        for name, kind, required in ORDER_FIELDS
    )
    return f"""      <xsd:complexType name="ExamOrderType">
        <xsd:sequence>
{elements}
        </xsd:sequence>
      </xsd:complexType>"""


def _messages_and_operations() -> tuple[str, str, str]:
    messages, port_ops, binding_ops = [], [], []
    for operation in OPERATIONS:
        for direction, suffix in (("In", "Request"), ("Out", "Response")):
            messages.append(
                f'  <wsdl:message name="{operation}{direction}">'
                f'<wsdl:part name="parameters" element="tns:{operation}{suffix}"/></wsdl:message>'
            )
        port_ops.append(
            f'    <wsdl:operation name="{operation}"><wsdl:input message="tns:{operation}In"/>'
            f'<wsdl:output message="tns:{operation}Out"/></wsdl:operation>'
        )
        binding_ops.append(
            f'    <wsdl:operation name="{operation}">\n'
            f'      <soap:operation soapAction="{SOAP_ACTION_BASE}{operation}"/>\n'
            '      <wsdl:input><soap:body use="literal"/></wsdl:input>\n'
            '      <wsdl:output><soap:body use="literal"/></wsdl:output>\n'
            "    </wsdl:operation>"
        )
    return "\n".join(messages), "\n".join(port_ops), "\n".join(binding_ops)


def service_wsdl(address: str) -> str:
    """The WSDL with its soap:address pointing at `address`."""
    messages, port_ops, binding_ops = _messages_and_operations()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="{NAMESPACE}"
    targetNamespace="{NAMESPACE}" name="ExamOrderService">
  <wsdl:types>
    <xsd:schema targetNamespace="{NAMESPACE}" elementFormDefault="qualified">
{_order_type()}
      <xsd:complexType name="ExamOrderResultType">
        <xsd:sequence>
          <xsd:element name="resultCode" type="xsd:int"/>
          <xsd:element name="resultMessage" type="xsd:string"/>
          <xsd:element name="accessionNumber" type="xsd:string" minOccurs="0"/>
          <xsd:element name="studyInstanceUid" type="xsd:string" minOccurs="0"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:element name="PlaceExamOrderRequest"><xsd:complexType><xsd:sequence>
        <xsd:element name="order" type="tns:ExamOrderType"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="ChangeExamOrderRequest"><xsd:complexType><xsd:sequence>
        <xsd:element name="order" type="tns:ExamOrderType"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="CancelExamOrderRequest"><xsd:complexType><xsd:sequence>
        <xsd:element name="accessionNumber" type="xsd:string"/>
        <xsd:element name="reason" type="xsd:string" minOccurs="0"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="PlaceExamOrderResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="result" type="tns:ExamOrderResultType"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="ChangeExamOrderResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="result" type="tns:ExamOrderResultType"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="CancelExamOrderResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="result" type="tns:ExamOrderResultType"/></xsd:sequence></xsd:complexType></xsd:element>
    </xsd:schema>
  </wsdl:types>
{messages}
  <wsdl:portType name="ExamOrderPort">
{port_ops}
  </wsdl:portType>
  <wsdl:binding name="ExamOrderBinding" type="tns:ExamOrderPort">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
{binding_ops}
  </wsdl:binding>
  <wsdl:service name="ExamOrderService">
    <wsdl:port name="ExamOrderPort" binding="tns:ExamOrderBinding"><soap:address location="{address}"/></wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""
