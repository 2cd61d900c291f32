#!/usr/bin/env bash
# Proof that @vigil/sdk is a package a service can install on its own:
#   1. `npm pack` of the workspace (its prepack compiles it, postpack removes the output again);
#   2. the tarball holds the compiled JavaScript, the .d.ts and the JSON Schemas, and no sources;
#   3. `npm install --omit=dev <tarball>` into an empty folder installs only the SDK, kafkajs, zod
#      and what those two depend on;
#   4. `require('@vigil/sdk')` and an ES-module `import` work there, and test/sdk-package/smoke.js emits a valid event and
#      has a bad one refused with a ValidationError naming the field (no Kafka needed);
#   5. test/sdk-package/consumer.ts type-checks against the installed .d.ts, with the classic
#      (node10) and the exports-aware (node16) module resolution; so do consumer-rdkafka.ts, the
#      librdkafka entry point (node-rdkafka not installed: an optional peer), and
#      consumer-schema.ts, which imports a JSON Schema;
#   6. that entry point loads without node-rdkafka, and a client made from it names it at once.
# Any failure stops it with a message and a non-zero status.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vigil-sdk-package.XXXXXX")"
# ingest/sdk/dist exists only while npm pack runs; if pack was interrupted it must not stay, or
# in-repo imports of ../ingest/sdk would resolve to it through the package's "types".
cleanup() { rm -rf "$WORK" "$ROOT/ingest/sdk/dist"; }
trap cleanup EXIT
fail() {
  echo "[sdk-package] FAILED: $*" >&2
  exit 1
}
say() { echo "[sdk-package] $*" >&2; }

say "npm pack -w @vigil/sdk"
npm pack -w @vigil/sdk --pack-destination "$WORK" --silent >"$WORK/pack.out" || fail "npm pack failed"
tarball="$WORK/$(tail -n 1 "$WORK/pack.out")"
[[ -f "$tarball" ]] || fail "npm pack wrote no tarball (it said: $(cat "$WORK/pack.out"))"
[[ ! -e ingest/sdk/dist ]] || fail "ingest/sdk/dist survived npm pack (postpack should remove it)"

tar -tzf "$tarball" | sort >"$WORK/contents"
for expected in package/package.json package/README.md package/dist/ingest/sdk/index.js package/dist/ingest/sdk/index.d.ts \
  package/dist/ingest/sdk/rdkafka.js package/dist/ingest/sdk/rdkafka.d.ts \
  package/dist/schemas/event.js package/dist/platform/errors.js package/dist/schemas/json/event.schema.json \
  package/dist/schemas/json/policy.schema.json package/dist/schemas/json/invocation.schema.json package/dist/schemas/json/device.schema.json; do
  grep -qx "$expected" "$WORK/contents" || fail "the tarball lacks $expected"
done
sources="$(grep -E '\.ts$' "$WORK/contents" | grep -vE '\.d\.ts$' || true)"
[[ -z "$sources" ]] || fail "the tarball holds TypeScript sources: $sources"
say "tarball $(basename "$tarball"): $(wc -l <"$WORK/contents") files, $(du -k "$tarball" | cut -f1) kB"

service="$WORK/service"
mkdir "$service"
cd "$service"
echo '{ "name": "a-service", "version": "1.0.0", "private": true }' >package.json
say "npm install --omit=dev into an empty folder"
npm install --omit=dev --no-audit --no-fund --loglevel=error "$tarball" >/dev/null || fail "npm install of the tarball failed"

# What was installed, against what may be: the SDK, its two dependencies and theirs.
node - <<'NODE' || fail "the install holds packages besides @vigil/sdk, kafkajs, zod and their dependencies"
const { readFileSync } = require('node:fs');
const lock = JSON.parse(readFileSync('node_modules/.package-lock.json', 'utf8'));
const installed = Object.keys(lock.packages).map((path) => path.replace(/^.*node_modules\//, '')).sort();
const allowed = new Set(['@vigil/sdk']);
const visit = (name) => {
  if (allowed.has(name) && name !== '@vigil/sdk') return;
  allowed.add(name);
  const manifest = JSON.parse(readFileSync(`node_modules/${name}/package.json`, 'utf8'));
  for (const dependency of Object.keys(manifest.dependencies ?? {})) visit(dependency);
};
const sdk = JSON.parse(readFileSync('node_modules/@vigil/sdk/package.json', 'utf8'));
const declared = Object.keys(sdk.dependencies ?? {}).sort();
if (JSON.stringify(declared) !== JSON.stringify(['kafkajs', 'zod'])) {
  console.error(`[sdk-package] @vigil/sdk declares ${declared.join(', ')}; expected kafkajs and zod only`);
  process.exit(1);
}
// Tools that ignore "exports" (older bundlers and resolvers) read "main" and "types".
for (const field of ['main', 'types']) {
  if (typeof sdk[field] !== 'string' || !require('node:fs').existsSync(`node_modules/@vigil/sdk/${sdk[field]}`)) {
    console.error(`[sdk-package] @vigil/sdk's "${field}" (${sdk[field]}) names no file in the package`);
    process.exit(1);
  }
}
for (const name of declared) visit(name);
const extra = installed.filter((name) => !allowed.has(name));
console.error(`[sdk-package] installed: ${installed.join(', ')}`);
if (extra.length > 0) {
  console.error(`[sdk-package] not allowed: ${extra.join(', ')}`);
  process.exit(1);
}
NODE

node -e "require('@vigil/sdk')" || fail "require('@vigil/sdk') failed"
# An ES-module service imports the CommonJS build by name, too.
node --input-type=module -e "import { createEmitter, ValidationError } from '@vigil/sdk'; if (typeof createEmitter !== 'function' || typeof ValidationError !== 'function') process.exit(1);" ||
  fail "import { createEmitter } from '@vigil/sdk' failed in an ES module"
cp "$ROOT/test/sdk-package/smoke.js" "$service/smoke.js"
node smoke.js || fail "the smoke test failed"

# The librdkafka entry point loads without node-rdkafka (an optional peer, not installed here), and
# a client made from it says how to install it at once (it used to accept events, then retry for ever).
node -e "
const { rdkafkaClient } = require('@vigil/sdk/rdkafka');
try {
  rdkafkaClient({ brokers: ['127.0.0.1:1'] });
} catch (error) {
  if (!/node-rdkafka is not installed; .npm install node-rdkafka./.test(error.message)) { console.error(error.message); process.exit(1); }
  process.exit(0);
}
console.error('rdkafkaClient() succeeded without node-rdkafka');
process.exit(1);
" || fail "@vigil/sdk/rdkafka without node-rdkafka did not fail with the install hint"
say "@vigil/sdk/rdkafka loads without node-rdkafka, and a client made from it names it"

cp "$ROOT/test/sdk-package/consumer.ts" "$service/consumer.ts"
for resolution in node10 node16; do
  module=commonjs
  [[ "$resolution" == node16 ]] && module=node16
  # The repository's compiler and Node types: a service brings its own, the check needs no download.
  "$ROOT/node_modules/.bin/tsc" --noEmit --strict --skipLibCheck false --target ES2022 --lib ES2023 \
    --module "$module" --moduleResolution "$resolution" --esModuleInterop \
    --typeRoots "$ROOT/node_modules/@types" --types node consumer.ts ||
    fail "consumer.ts does not type-check against the package's .d.ts (moduleResolution $resolution)"
done
cp "$ROOT/test/sdk-package/consumer-rdkafka.ts" "$service/consumer-rdkafka.ts"
cp "$ROOT/test/sdk-package/consumer-schema.ts" "$service/consumer-schema.ts"
# The subpaths (@vigil/sdk/rdkafka, @vigil/sdk/json/*) too: node10, the default of a CommonJS
# TypeScript service, knows no "exports" and finds their types through "typesVersions".
for resolution in node10 node16; do
  module=commonjs
  [[ "$resolution" == node16 ]] && module=node16
  "$ROOT/node_modules/.bin/tsc" --noEmit --strict --skipLibCheck false --target ES2022 --lib ES2023 \
    --module "$module" --moduleResolution "$resolution" --esModuleInterop --resolveJsonModule \
    --typeRoots "$ROOT/node_modules/@types" --types node consumer-rdkafka.ts consumer-schema.ts ||
    fail "consumer-rdkafka.ts or consumer-schema.ts does not type-check against the package (moduleResolution $resolution; node-rdkafka not installed)"
done
say "TypeScript consumer OK (moduleResolution node10 and node16, the main entry point, @vigil/sdk/rdkafka and @vigil/sdk/json/*)"
say "OK"
