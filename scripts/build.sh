#!/usr/bin/env bash
# npm run build: compiles Vigil to CommonJS JavaScript in dist/, which bin/vigil.js runs.
#   1. the SDK package with its own tsconfig (ingest/sdk/tsconfig.json, declarations included),
#      into dist/sdk/: proof that the package compiles on its own. The tarball itself is made by
#      `npm pack -w @vigil/sdk` (see scripts/check-sdk-package.sh);
#   2. the application (tsconfig.build.json) into dist/, mirroring the source tree;
#   3. the files the code reads from __dirname at run time, at the same relative paths: every
#      .lua file wherever it lives, and everything under detectors/rules/.
# With --if-stale it does nothing when dist/ is newer than every source file and build setting
# (scripts/demo.sh and scripts/test.sh use it, so a fresh clone builds and a warm one doesn't).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SOURCES=(platform schemas ingest detectors dashboards app scripts)
SETTINGS=(package.json package-lock.json tsconfig.json tsconfig.build.json ingest/sdk/tsconfig.json ingest/sdk/package.json scripts/build.sh)
STAMP=dist/.build-stamp

# Source folders that exist (app/ may not yet), without output or installed folders.
existing() { local folder; for folder in "${SOURCES[@]}"; do [[ -d "$folder" ]] && echo "$folder"; done; }
source_files() { find $(existing) \( -name dist -o -name node_modules \) -prune -o -type f "$@" -print; }

if [[ "${1:-}" == "--if-stale" && -f "$STAMP" ]]; then
  if [[ -z "$( { source_files -newer "$STAMP"; find "${SETTINGS[@]}" -newer "$STAMP"; } | head -n 1)" ]]; then
    echo "[build] dist/ is up to date" >&2
    exit 0
  fi
fi

# From scratch: a file deleted or moved in the sources must not live on in dist/.
rm -rf dist
echo "[build] the SDK package (ingest/sdk/tsconfig.json -> dist/sdk)" >&2
npx tsc -p ingest/sdk/tsconfig.json --outDir dist/sdk
echo "[build] the application (tsconfig.build.json -> dist)" >&2
npx tsc -p tsconfig.build.json
echo "[build] run-time files (**/*.lua, detectors/rules/**)" >&2
{ source_files -name '*.lua'; find detectors/rules -type f; } | while IFS= read -r file; do
  mkdir -p "dist/$(dirname "$file")"
  cp "$file" "dist/$file"
done
touch "$STAMP"
