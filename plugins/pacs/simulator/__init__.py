"""A simulated PACS: a SOAP exam-order service with its WSDL, REST endpoints and an MLLP endpoint
for ORM^O01 orders, with faults; it also sends ORU^R01 reports."""

from plugins.pacs.simulator.app import PacsSimulator
from plugins.pacs.simulator.mllp import build_oru, send_report
from plugins.pacs.simulator.server import PacsServer
from plugins.pacs.simulator.state import Fault, PacsState

__all__ = ["Fault", "PacsServer", "PacsSimulator", "PacsState", "build_oru", "send_report"]
