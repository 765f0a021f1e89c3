"""A simulated PACS: a SOAP exam-order service with its WSDL, REST endpoints and an MLLP endpoint
for ORM^O01 orders, with faults; it also sends reports back (ORU^R01 over MLLP, SOAP callbacks,
REST posts) and asks a worklist as a modality would."""

from plugins.pacs.simulator.app import PacsSimulator
from plugins.pacs.simulator.mllp import build_oru, send_report
from plugins.pacs.simulator.reports import ReportSender, ReportWriting, SentReport, query_worklist
from plugins.pacs.simulator.server import PacsServer
from plugins.pacs.simulator.state import Fault, PacsState

__all__ = [
    "Fault",
    "PacsServer",
    "PacsSimulator",
    "PacsState",
    "ReportSender",
    "ReportWriting",
    "SentReport",
    "build_oru",
    "query_worklist",
    "send_report",
]
