"""Collectors: poll a system and send what they read to the gateway as ``metric`` events.

Each collector keeps its pure parts (parsing, rates, mapping rows to metrics) apart from
the thin shell that talks to the system and to the gateway, so the parts are table-tested
without a server. ``pulseline collect postgres`` is the first (``docs/POSTGRES_COLLECTOR.md``).
"""
