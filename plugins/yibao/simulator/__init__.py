"""A simulated insurance centre (real HTTP) to test the yibao plugin against.

`CentreSimulator` is the ASGI app with its state and fault injection; `SimulatorServer`
serves it with uvicorn; `python -m plugins.yibao.simulator --port N` runs one.
"""

from plugins.yibao.simulator.app import CentreSimulator, Fault
from plugins.yibao.simulator.auth import GatewayAuth
from plugins.yibao.simulator.server import SimulatorServer

__all__ = ["CentreSimulator", "Fault", "GatewayAuth", "SimulatorServer"]
