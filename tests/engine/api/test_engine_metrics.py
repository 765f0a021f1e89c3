"""EngineMetrics: own registry per instance, the series the pipeline feeds, queue refresh."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from engine.metrics import EngineMetrics
from engine.resilience.breaker import BreakerStatus


class FixedQueues:
    def __init__(self, depths: dict[str, tuple[int, float]]) -> None:
        self.depths = depths

    async def queue_depths(self) -> dict[str, tuple[int, float]]:
        return dict(self.depths)


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_two_engines_do_not_share_a_registry() -> None:
    first, second = EngineMetrics(), EngineMetrics()
    first.message_received("yibao_settle")
    first.message_received("yibao_settle")
    second.message_received("yibao_settle")

    first_text = samples(await first.render(FixedQueues({})))
    second_text = samples(await second.render(FixedQueues({})))

    key = ("hisbridge_received_total", (("channel", "yibao_settle"),))
    assert first_text[key] == 2
    assert second_text[key] == 1


async def test_deliveries_are_counted_by_status_and_timed_per_destination() -> None:
    metrics = EngineMetrics()
    metrics.delivery_finished("lab", "lis", "sent", 0.02)
    metrics.delivery_finished("lab", "lis", "sent", 0.3)
    metrics.delivery_finished("lab", "lis", "dead", 7.0)

    found = samples(await metrics.render(FixedQueues({})))

    labels = (("channel", "lab"), ("destination", "lis"))
    assert found[("hisbridge_deliveries_total", (*labels, ("status", "sent")))] == 2
    assert found[("hisbridge_deliveries_total", (*labels, ("status", "dead")))] == 1
    assert found[("hisbridge_delivery_seconds_count", labels)] == 3
    assert found[("hisbridge_delivery_seconds_bucket", (*labels, ("le", "0.025")))] == 1
    assert found[("hisbridge_delivery_seconds_bucket", (*labels, ("le", "0.5")))] == 2
    assert abs(found[("hisbridge_delivery_seconds_sum", labels)] - 7.32) < 1e-9


async def test_breaker_transitions_set_the_gauge_and_count() -> None:
    metrics = EngineMetrics()
    metrics.breaker_state("yibao", "open")
    metrics.breaker_state("yibao", "half_open")
    metrics.breaker_state("yibao", "open")

    found = samples(await metrics.render(FixedQueues({})))

    assert found[("hisbridge_breaker_state", (("breaker", "yibao"),))] == 2
    assert found[("hisbridge_breaker_transitions_total", (("breaker", "yibao"), ("to", "open")))] == 2
    assert found[("hisbridge_breaker_transitions_total", (("breaker", "yibao"), ("to", "half_open")))] == 1


async def test_render_sets_breaker_gauges_from_states_without_counting_transitions() -> None:
    metrics = EngineMetrics()
    states = [
        BreakerStatus("yibao", "suspended", datetime.now(UTC), "centre maintenance", 0, "ops"),
        BreakerStatus("lis", "closed", None, "", 0),
    ]

    found = samples(await metrics.render(FixedQueues({}), states))

    assert found[("hisbridge_breaker_state", (("breaker", "yibao"),))] == 3
    assert found[("hisbridge_breaker_state", (("breaker", "lis"),))] == 0
    assert not any(name == "hisbridge_breaker_transitions_total" for name, _ in found)


async def test_queue_gauges_follow_the_store_and_drop_to_zero_when_drained() -> None:
    metrics = EngineMetrics()
    queues = FixedQueues({"drug_trace": (12, 40.5)})

    found = samples(await metrics.render(queues))
    assert found[("hisbridge_queue_depth", (("destination", "drug_trace"),))] == 12
    assert found[("hisbridge_queue_oldest_age_seconds", (("destination", "drug_trace"),))] == 40.5

    queues.depths = {}
    found = samples(await metrics.render(queues))
    assert found[("hisbridge_queue_depth", (("destination", "drug_trace"),))] == 0
    assert found[("hisbridge_queue_oldest_age_seconds", (("destination", "drug_trace"),))] == 0
