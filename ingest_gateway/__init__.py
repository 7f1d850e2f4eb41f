"""The HTTP front door: events in, Kafka records out, an answer only after the acks.

The path of a request, one module per step:

``auth``      the ingest key, from ``Authorization: Bearer`` or ``?key=``
``body``      Content-Type check, size-limited read, JSON parse into raw events
``stamp``     validate each event, stamp it into an ``Event`` v1, pick topic and key (pure)
``producer``  hand the records to Kafka and wait for every ack (``KafkaProducer``), or
              keep them in a list (``ListProducer``, the twin for tests)
``errors``    the exception tree and the one mapping to HTTP status codes
``metrics``   per-app Prometheus registry; ``probes`` serves it with /healthz, /readyz
``ingest``    ``POST /v1/events``, tying the steps together
``app``       ``create_app``; ``server`` runs it under uvicorn
"""
