"""Healthchecks-compatible ping API: ``/ping/<uuid>[/start|/fail|/log|/<exit>]`` and
``/ping/<ping_key>/<slug>[...]``; each ping becomes one ``check_in`` event.

``paths`` parses a ping URL, ``event`` maps a ping to an ``EventIn`` dict (both pure);
``routes`` is the HTTP shell.
"""

from ingest_gateway.pings.routes import ping_router

__all__ = ["ping_router"]
