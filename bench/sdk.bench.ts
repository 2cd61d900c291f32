/**
 * What the SDK costs the service that embeds it.
 *
 * 1. Memory: the RSS a process gains by importing it. Each case is a fresh `node -e` child that
 *    loads one thing, collects garbage and reports its RSS; the gain is that minus a bare Node
 *    child's, median of several children. The cases are the compiled SDK (what a service
 *    installs), the SDK after creating an emitter and emitting once (no network), kafkajs alone
 *    (what the service pays for its own client anyway), and the old way in: the ingest barrel,
 *    which the docs used to point services at, through tsx and compiled. Target: the SDK at most
 *    15 MB over bare Node (issue 8).
 * 2. Time: `emit()` (fill the envelope, zod validation, serialise, buffer), against baselines run
 *    in the same process: JSON.stringify of the same input, and the zod parse alone. The emitter's
 *    producer never connects: linger and batch size are set so no send is ever due, and a fresh
 *    emitter takes over every batch of events, as a sent batch would be freed.
 *
 *   npm run bench:sdk [-- --children N --events N --rounds N]
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel } from 'kafkajs';
import { createEmitter, type Emitter } from '../ingest/sdk';
import { CURRENT_SCHEMA_VERSION, familySchemas } from '../schemas';
import { positiveInteger } from './arguments';
import { gatewayEvents, type Emitted } from './gateway-events';

const ROOT = join(__dirname, '..');
const TARGET_MB = 15;

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}
const CHILDREN = positiveInteger(argument('--children'), 5, '--children');
const EVENTS = positiveInteger(argument('--events'), 20_000, '--events');
const ROUNDS = positiveInteger(argument('--rounds'), 7, '--rounds');

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1).padStart(6);

// ---- 1. memory -------------------------------------------------------------------------------

interface MemoryCase {
  name: string;
  /** Extra node flags, e.g. a loader. */
  flags?: string[];
  /** Code the child runs before measuring. */
  load: string;
}

const sdk = JSON.stringify(join(ROOT, 'dist', 'ingest', 'sdk'));
const cases: MemoryCase[] = [
  { name: 'bare Node', load: '' },
  { name: '@vigil/sdk, compiled', load: `require(${sdk});` },
  {
    name: '@vigil/sdk + createEmitter + one emit',
    load:
      `const { createEmitter } = require(${sdk});` +
      // A stand-in client: with this linger and batch size the emitter never asks it for a producer.
      `const e = createEmitter({ kafka: { producer() { throw new Error('never used'); } }, source: { service: 'bench', kind: 'service' }, lingerMs: 3600000 });` +
      `e.policy({ policy: { kind: 'authn', name: 'p', outcome: 'fail', group: 'g', resource: { api: 'a', method: 'GET', path: '/' } } });`,
  },
  { name: 'kafkajs alone (the service has it anyway)', load: `require('kafkajs');` },
  { name: 'ingest barrel, compiled', load: `require(${JSON.stringify(join(ROOT, 'dist', 'ingest'))});` },
  { name: 'ingest barrel through tsx (old docs)', flags: ['--require', 'tsx/cjs'], load: `require(${JSON.stringify(join(ROOT, 'ingest'))});` },
];

/** The RSS of a fresh child after it ran `load` and collected garbage. */
function rssOf(memoryCase: MemoryCase): number {
  const code = `${memoryCase.load} global.gc(); process.stdout.write(String(process.memoryUsage().rss));`;
  const child = spawnSync(process.execPath, ['--expose-gc', ...(memoryCase.flags ?? []), '-e', code], { cwd: ROOT, encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`${memoryCase.name}: the child failed: ${child.stderr}`);
  return Number(child.stdout);
}

// The compiled SDK and pipeline are what a service and `vigil` run: build them if the sources moved.
const build = spawnSync('bash', [join(ROOT, 'scripts', 'build.sh'), '--if-stale'], { stdio: 'inherit' });
if (build.status !== 0) throw new Error('npm run build failed');

const samples = new Map<string, number[]>(cases.map((memoryCase) => [memoryCase.name, []]));
// Interleaved, so a change in the machine's load touches every case alike.
for (let child = 0; child < CHILDREN; child++) {
  for (const memoryCase of cases) samples.get(memoryCase.name)?.push(rssOf(memoryCase));
}
const rss = new Map(cases.map((memoryCase) => [memoryCase.name, median(samples.get(memoryCase.name) ?? [])]));
const bare = rss.get('bare Node') ?? NaN;
const sdkGain = (rss.get('@vigil/sdk, compiled') ?? NaN) - bare;

console.log(`memory: RSS gained over bare Node (${mb(bare).trim()} MB), median of ${CHILDREN} children each`);
console.log(`  ${'case'.padEnd(44)} ${'MB'.padStart(6)}  vs SDK`);
for (const memoryCase of cases.slice(1)) {
  const gain = (rss.get(memoryCase.name) ?? NaN) - bare;
  console.log(`  ${memoryCase.name.padEnd(44)} ${mb(gain)}  ${(gain / sdkGain).toFixed(1).padStart(5)}x`);
}
const met = sdkGain <= TARGET_MB * 1024 * 1024;
console.log(`  target: the SDK at most ${TARGET_MB} MB over bare Node: ${met ? 'met' : 'MISSED'}`);
if (!met) process.exitCode = 1;

// ---- 2. emit() -------------------------------------------------------------------------------

const inputs = (count: number): Emitted[] => gatewayEvents(count, { varied: false });

const events = inputs(EVENTS);
const source = { service: 'bench', kind: 'service' } as const;
const time = new Date().toISOString();
// What the emitter hands to zod, prepared beforehand so the zod case measures the parse alone.
const candidates = events.map(({ family, input }, n) => ({ family, candidate: { ...input, family, id: `bench-event-${n}`, schemaVersion: CURRENT_SCHEMA_VERSION, time, source } }));
// A real client for an address nothing listens on; never used, as no send is ever due.
const kafka = new Kafka({ brokers: ['127.0.0.1:1'], clientId: 'sdk-bench', logLevel: logLevel.NOTHING });
/** The emitter's default batch size. */
const BATCH = 500;
const freshEmitter = (): Emitter => createEmitter({ kafka, source, lingerMs: 3_600_000, maxBatch: BATCH + 1, maxBuffer: BATCH + 1 });

const emitCases: Record<'stringify' | 'zod' | 'emit', () => void> = {
  stringify: () => {
    for (const { input } of events) JSON.stringify(input);
  },
  zod: () => {
    for (const { family, candidate } of candidates) familySchemas[family].safeParse(candidate);
  },
  emit: () => {
    let emitter = freshEmitter();
    let accepted = 0;
    events.forEach((event, n) => {
      // A service's buffer holds one batch (500 by default) before it is sent and freed; keeping
      // all the events of a round alive instead would measure the garbage collector's old space.
      if (n % BATCH === 0) {
        accepted += emitter.stats().accepted;
        emitter = freshEmitter();
      }
      // The switch keeps each call typed by its family, as a service's call would be.
      if (event.family === 'policy') emitter.policy(event.input);
      else if (event.family === 'invocation') emitter.invocation(event.input);
      else emitter.device(event.input);
    });
    accepted += emitter.stats().accepted;
    if (accepted !== EVENTS) throw new Error(`expected ${EVENTS} accepted events, got ${accepted}`);
  },
};

const timings: Record<keyof typeof emitCases, number[]> = { stringify: [], zod: [], emit: [] };
for (const run of Object.values(emitCases)) run(); // warm-up: JIT and zod's compiled checks
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(emitCases) as Array<[keyof typeof emitCases, () => void]>) {
    const started = performance.now();
    run();
    timings[name].push(performance.now() - started);
  }
}
const perEvent = (name: keyof typeof emitCases): number => (median(timings[name]) / EVENTS) * 1e6;
const baseline = perEvent('stringify');
console.log(`\nemit(): ${EVENTS} events of the three families, median of ${ROUNDS} rounds, producer never connected`);
console.log(`  baseline JSON.stringify(input)          1.00x  (${baseline.toFixed(0)} ns/event)`);
console.log(`  zod parse of the filled-in event   ${(perEvent('zod') / baseline).toFixed(2).padStart(9)}x  (${perEvent('zod').toFixed(0)} ns/event)`);
console.log(
  `  emit(): envelope + zod + buffer    ${(perEvent('emit') / baseline).toFixed(2).padStart(9)}x  (${perEvent('emit').toFixed(0)} ns/event, ${(perEvent('emit') / perEvent('zod')).toFixed(2)}x the zod parse)`,
);
