"""A simulated PACS: a SOAP exam-order service with its WSDL and REST endpoints, with faults."""

from plugins.pacs.simulator.app import PacsSimulator
from plugins.pacs.simulator.server import PacsServer
from plugins.pacs.simulator.state import Fault, PacsState

__all__ = ["Fault", "PacsServer", "PacsSimulator", "PacsState"]
