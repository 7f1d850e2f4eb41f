"""Pulseline's shared contracts: settings, the topic registry, event schemas and the CLI.

The path of an event is told in docs/ARCHITECTURE.md; each stage lives in its own
top-level package (ingest_gateway, stream_processors, storage, alerting).
"""

__version__ = "0.1.0"
