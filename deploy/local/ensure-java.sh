#!/usr/bin/env bash
# The bundled broker needs Java 17+ and Maven. Install them from Debian when they are missing
# and we may (root with apt-get); otherwise say exactly what is missing.
set -euo pipefail
java_ok() {
  command -v java >/dev/null 2>&1 || return 1
  local major
  major=$(java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -1)
  [ -n "$major" ] && [ "$major" -ge 17 ]
}
if java_ok && command -v mvn >/dev/null 2>&1; then exit 0; fi
if [ -n "${PULSELINE_KAFKA_BOOTSTRAP:-}" ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Java 17 and Maven from Debian (needed for the bundled Kafka broker)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
  exit 0
fi
echo "Java 17+ and Maven are needed for the bundled Kafka broker." >&2
echo "Install them, or set PULSELINE_KAFKA_BOOTSTRAP to your own Kafka." >&2
exit 1
