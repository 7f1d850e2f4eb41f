"""The one hand-off every door uses: send a request's records, then count the outcome.

Records count as accepted only once Kafka acked them all; a refusal (Kafka unavailable,
rate limited) counts them as rejected under the error's code and propagates.
"""

from __future__ import annotations

import time

from ingest_gateway.errors import GatewayError
from ingest_gateway.metrics import GatewayMetrics
from ingest_gateway.producer import Producer
from ingest_gateway.stamp import Stamped


async def hand_off(producer: Producer, metrics: GatewayMetrics, stamped: Stamped) -> None:
    started = time.perf_counter()
    try:
        await producer.send_batch(stamped.records)
    except GatewayError as exc:
        metrics.count_rejected((kind, exc.code) for kind in stamped.kinds)
        raise
    finally:
        metrics.produce_seconds.observe(time.perf_counter() - started)
    metrics.count_accepted(stamped.kinds)
