#!/usr/bin/env bash
# The demo, from a fresh clone: set-up, the build (when the sources changed), the real stack,
# then `vigil demo` (pass --events N).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh
bash scripts/build.sh --if-stale
node bin/vigil.js demo "$@"
