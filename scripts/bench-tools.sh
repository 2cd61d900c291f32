#!/usr/bin/env bash
# Installs what the benchmarks need beyond the tests' set-up, and nothing already there: rsyslog
# with its Kafka input and Elasticsearch output (Debian's rsyslog, rsyslog-kafka and
# rsyslog-elasticsearch), the reference shipper of the throughput bench's rsyslog row. Nothing
# when BENCH_PATHS leaves that row out. The bench starts its own rsyslogd with its own
# configuration; on a machine run by systemd, Debian's package also enables and starts the
# system's rsyslog service (this kind of machine has no systemd).
set -euo pipefail

if [[ -n "${BENCH_PATHS:-}" && ",${BENCH_PATHS// /}," != *",rsyslog,"* ]]; then exit 0; fi

missing=()
for package in rsyslog rsyslog-kafka rsyslog-elasticsearch; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  echo "[bench-tools] installing Debian packages: ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
