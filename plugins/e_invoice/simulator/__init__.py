"""A simulated fiscal e-invoice platform (real HTTP) to test the e_invoice plugin against.

`PlatformSimulator` is the ASGI app with its state and fault injection; `PlatformServer`
serves it with uvicorn; `python -m plugins.e_invoice.simulator --port N` runs one.
"""

from plugins.e_invoice.simulator.app import Fault, PlatformSimulator
from plugins.e_invoice.simulator.server import PlatformServer

__all__ = ["Fault", "PlatformServer", "PlatformSimulator"]
