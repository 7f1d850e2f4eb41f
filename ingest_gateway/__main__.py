"""``python -m ingest_gateway``: serve with settings from the ``PULSELINE_*`` environment."""

from __future__ import annotations

import sys

from ingest_gateway.server import serve
from pulseline.settings import ConfigError, GatewaySettings


def main() -> int:
    try:
        settings = GatewaySettings.from_env()
    except ConfigError as exc:
        print(f"ingest_gateway: {exc}", file=sys.stderr)
        return 2
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
