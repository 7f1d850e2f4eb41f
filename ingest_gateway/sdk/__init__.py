"""The browser SDK (``sdk.js``, plain ES2017, no build step) and the route serving it."""

from ingest_gateway.sdk.route import sdk_router

__all__ = ["sdk_router"]
