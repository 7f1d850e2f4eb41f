"""The steps every door shares once a request is stamped: charge its limits, hand it off.

``admit`` charges the project's rate and quota (``ingest_gateway.limits``); a refusal
counts the request's valid events as rejected under its code (``rate_limited``,
``quota_exceeded``) and propagates as a 429. ``hand_off`` sends the records; they count
as accepted only once Kafka acked them all, and a failure (Kafka unavailable) counts
them as rejected under the error's code and propagates.
"""

from __future__ import annotations

import time
from datetime import datetime

from ingest_gateway.errors import GatewayError, RateLimited
from ingest_gateway.limits import Gate
from ingest_gateway.metrics import GatewayMetrics
from ingest_gateway.producer import Producer
from ingest_gateway.stamp import Stamped


def admit(
    gate: Gate, metrics: GatewayMetrics, project_id: int, stamped: Stamped, now: datetime
) -> None:
    try:
        gate.check(project_id, len(stamped.records), now)
    except RateLimited as exc:
        metrics.count_rejected((kind, exc.code) for kind in stamped.kinds)
        raise


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
