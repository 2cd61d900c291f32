#!/usr/bin/env bash
# Installs what Vigil needs on a fresh machine of this kind, and nothing that is already there:
# Node dependencies (npm ci; g++, make and python3 for node-rdkafka, compiled from source), Maven
# and unzip (to fetch Kafka and Elasticsearch), kcat (tests), docker-compose (CI validates
# docker-compose.yml with it; no Docker engine is needed for that) and chromium (the headless
# browser the report test renders `vigil report` in, through playwright-core).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

need=()
command -v mvn >/dev/null || need+=(maven)
command -v unzip >/dev/null || need+=(unzip)
command -v curl >/dev/null || need+=(curl)
command -v kcat >/dev/null || need+=(kcat)
# node-gyp's toolchain, for node-rdkafka (below).
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
# Without their recommended packages: docker-compose recommends the Docker engine (docker.io,
# containerd), which validating a file doesn't use and which doubles the install time.
lean=()
command -v docker-compose >/dev/null || lean+=(docker-compose)
command -v chromium >/dev/null || lean+=(chromium)
if ((${#need[@]} + ${#lean[@]} > 0)); then
  echo "[setup] installing Debian packages: ${need[*]} ${lean[*]}" >&2
  apt-get update -qq >/dev/null
  if ((${#need[@]} > 0)); then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
  if ((${#lean[@]} > 0)); then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null; fi
fi

# npm ci only when the lock changed since the last install: a warm run costs nothing.
stamp="node_modules/.vigil-lock-hash"
hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$hash" ]]; then
  # node-rdkafka (a development dependency: the SDK's native transport, tested and benchmarked
  # here) compiles librdkafka from its package's sources with node-gyp, which would download
  # Node's headers unless told where they are; the Node this machine runs ships them.
  nodedir="$(node -p 'require("node:path").resolve(process.execPath, "..", "..")')"
  if [[ -z "${npm_config_nodedir:-}" && -f "$nodedir/include/node/node.h" ]]; then export npm_config_nodedir="$nodedir"; fi
  echo "[setup] npm ci (node-rdkafka compiles librdkafka: about 2 minutes on 2 cores)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$hash" >"$stamp"
fi
