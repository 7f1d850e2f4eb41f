# syntax=docker/dockerfile:1
# One image for every Pulseline service; the command picks the service:
#   pulseline gateway | processors | storage | topics create | migrate | status --once
# Build: docker build -t pulseline:0.1.0 .

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---- build: install the package and its dependencies into a virtualenv ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/pulseline
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pulseline ./pulseline
COPY ingest_gateway ./ingest_gateway
COPY stream_processors ./stream_processors
COPY storage ./storage
COPY alerting ./alerting
COPY deploy/__init__.py ./deploy/__init__.py
COPY deploy/local ./deploy/local
RUN /opt/pulseline/bin/pip install --upgrade pip \
 && /opt/pulseline/bin/pip install .

# ---- runtime: the virtualenv only, run as an unprivileged user ----
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 pulseline \
 && useradd --system --uid 10001 --gid pulseline --home-dir /var/lib/pulseline \
      --shell /usr/sbin/nologin pulseline \
 && mkdir -p /var/lib/pulseline \
 && chown pulseline:pulseline /var/lib/pulseline
COPY --from=build /opt/pulseline /opt/pulseline
ENV PATH=/opt/pulseline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PULSELINE_DATA_DIR=/var/lib/pulseline \
    PULSELINE_GATEWAY_HOST=0.0.0.0 \
    PULSELINE_API_HOST=0.0.0.0 \
    PULSELINE_PROCESSORS_WEB_HOST=0.0.0.0 \
    PULSELINE_HEALTHCHECK_URL=http://127.0.0.1:8000/healthz
WORKDIR /var/lib/pulseline
USER 10001:10001
# gateway, read API, processors' /metrics
EXPOSE 8000 8001 6066
# Each service sets PULSELINE_HEALTHCHECK_URL to its own /healthz (see deploy/docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['PULSELINE_HEALTHCHECK_URL'], timeout=3)"]
ENTRYPOINT ["pulseline"]
CMD ["--help"]
