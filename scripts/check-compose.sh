#!/usr/bin/env bash
# Validates docker-compose.yml with Debian's docker-compose (installed by scripts/setup.sh), with
# every profile on so the optional services (dashboards, demo) are checked too. `config` only
# parses and resolves the file: no Docker engine is needed. test/unit/deployment.test.ts checks
# what it means (services, healthchecks, Vigil's variables, the Dockerfile's user).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
docker-compose --profile dashboards --profile demo config -q
echo "[compose] docker-compose.yml is valid ($(docker-compose --profile dashboards --profile demo config --services | tr '\n' ' '))" >&2
