"""REST services of the PACS for other hospital systems: 登记 registration, 预约 appointment,
结果查询 result query and 工作量统计 workload statistics, with their OpenAPI description.

Each service is a channel (see plugins/pacs/README.md, "REST services"); the pieces the
plugin registers are listed here so plugin.py adds them in one line each.
"""

from __future__ import annotations

from engine.adapters.base import Adapter
from engine.processors import Processor
from plugins.pacs.services.queries import PacsResultsAdapter, PacsWorkloadAdapter
from plugins.pacs.services.scheduling import AppointmentProcessor, RegistrationProcessor

SERVICE_ADAPTERS: list[type[Adapter]] = [PacsResultsAdapter, PacsWorkloadAdapter]
SERVICE_PROCESSORS: list[type[Processor]] = [RegistrationProcessor, AppointmentProcessor]

__all__ = ["SERVICE_ADAPTERS", "SERVICE_PROCESSORS"]
