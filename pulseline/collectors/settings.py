"""Where collectors send to and what they read, from ``PULSELINE_*`` variables.

Flags of ``pulseline collect`` override these. The key and the DSN are ``SecretStr`` so
that ``redacted()`` and a stray ``repr`` never show them.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from pulseline.settings import _Settings


class CollectSettings(_Settings):
    url: str = Field("http://127.0.0.1:8000", description="Base URL of the ingest gateway")
    ingest_key: SecretStr = Field(SecretStr(""), description="An API key of scope ingest")
    postgres_dsn: SecretStr = Field(
        SecretStr(""), description="libpq DSN or URI; empty = libpq's PG* variables"
    )
