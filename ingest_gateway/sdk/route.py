"""``GET /sdk.js``: the browser SDK, gzipped when the client accepts it, with an ETag.

The file is read and compressed once, when the router is built. The URL carries no
version, so browsers cache it for an hour and revalidate with ``If-None-Match``.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

SDK_PATH = Path(__file__).with_name("sdk.js")
CACHE_CONTROL = "public, max-age=3600"
MEDIA_TYPE = "application/javascript"


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` lists gzip (or ``*``) without ``q=0``."""
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() not in ("gzip", "*"):
            continue
        quality = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
        try:
            if float(quality) > 0:
                return True
        except ValueError:
            continue
    return False


def sdk_router(source: bytes | None = None) -> APIRouter:
    """Serve ``source`` (the bundled ``sdk.js`` by default) at ``/sdk.js``."""
    plain = SDK_PATH.read_bytes() if source is None else source
    packed = gzip.compress(plain, compresslevel=9, mtime=0)
    digest = hashlib.sha256(plain).hexdigest()[:20]
    # Each encoding is its own representation, so each needs its own strong ETag.
    etags = {False: f'"{digest}"', True: f'"{digest}-gz"'}
    router = APIRouter()

    async def serve_sdk(request: Request) -> Response:
        zipped = accepts_gzip(request.headers.get("accept-encoding", ""))
        headers = {
            "Cache-Control": CACHE_CONTROL,
            "ETag": etags[zipped],
            "Vary": "Accept-Encoding",
            "Access-Control-Allow-Origin": "*",
        }
        asked = {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}
        if etags[zipped] in asked or "*" in asked:
            return Response(status_code=304, headers=headers)
        if zipped:
            headers["Content-Encoding"] = "gzip"
        return Response(packed if zipped else plain, headers=headers, media_type=MEDIA_TYPE)

    router.add_api_route("/sdk.js", serve_sdk, methods=["GET", "HEAD"], include_in_schema=False)
    return router
