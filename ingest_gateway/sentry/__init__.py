"""Sentry-compatible ingestion: ``/api/<project>/envelope/`` and ``/api/<project>/store/``.

A Sentry DSN's public key is a Pulseline ingest key (``http://<key>@host:port/<project>``),
so an unmodified Sentry SDK reports into Pulseline. The modules are small and, except
``router``, pure: ``envelope`` parses, ``decode`` inflates, ``auth`` finds the key,
``mapping`` turns Sentry payloads into ``EventIn`` dicts, ``errors`` holds what only
these endpoints answer (403, 429).
"""

from ingest_gateway.sentry.router import sentry_router

__all__ = ["sentry_router"]
