/**
 * Detection on the real stack: events/s through the whole ingest pipeline with the default rule
 * pack on (B), as a ratio against the same pipeline with detectors off (A), both in this process
 * over the same pre-loaded topics, alternated (A B, B A, A B) so machine noise falls on both.
 * Redis cost per event comes from INFO commandstats (commands run inside scripts included);
 * round trips are counted per evaluateBatch call from the engine's `state.round_trip` events,
 * split into state round trips and claims.
 * Absolute rates on a shared machine move from run to run; the ratio is what to compare.
 *
 *   npx tsx bench/detectors.bench.ts [events=20000] [rounds=3]
 *
 * Targets (from the issue): detection costs under 30% of the pipeline's throughput; at most one
 * Redis round trip per batch per stateful rule (the design aims at one for state plus one to
 * claim detections, whatever the number of rules).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { RedisClient } from '../platform';
import type { Client } from '@elastic/elasticsearch';
import type { Kafka } from 'kafkajs';
import { createVigil } from '../app';
import { deleteTopics, removeIndicesAndTemplates } from '../scripts/cleanup';
import type { IngestPipeline } from '../ingest';
import { createEmitter } from '../ingest/sdk';
import { deleteKeysUnder } from '../detectors';
import { createElasticsearch, createKafka, createLogger, createRedis, ensureTopics, loadConfig, sleep, type Config, type Instrumentation, type Logger } from '../platform';
import { SIMULATED_SOURCES, emitSimulatedTraffic } from '../scripts/simulated-traffic';
import { injectAttacks } from '../scripts/attack-traffic';
import { positiveInteger } from './arguments';

const EVENTS = positiveInteger(process.argv[2], 20_000, 'events');
const ROUNDS = positiveInteger(process.argv[3], 3, 'rounds');
const RUN_TIMEOUT_MS = 120_000;
const DETECTION_COST_TARGET = 0.3;
/** Script commands as INFO commandstats names them; everything else in a script's delta ran inside one. */
const SCRIPT_COMMANDS = new Set(['evalsha', 'eval', 'evalsha_ro', 'eval_ro']);

const id = randomBytes(4).toString('hex');
const base = `bench-${id}`;
const logger: Logger = createLogger({ level: process.env.LOG_LEVEL ?? 'error' });

/** Shared topics (every run reads the same events); group, indices and Redis keys new per run. */
function configFor(run: string): Config {
  return loadConfig({
    ...process.env,
    VIGIL_TOPIC_POLICY: `${base}.policy`,
    VIGIL_TOPIC_INVOCATION: `${base}.invocation`,
    VIGIL_TOPIC_DEVICE: `${base}.device`,
    VIGIL_TOPIC_DEADLETTER: `${base}.deadletter`,
    VIGIL_TOPIC_DETECTIONS: `${base}.detections`,
    VIGIL_TOPIC_NOTIFICATION_DEADLETTER: `${base}.notifications.deadletter`,
    VIGIL_CONSUMER_GROUP: `${base}-${run}`,
    VIGIL_INDEX_PREFIX: `${base}-${run}`,
    VIGIL_REDIS_PREFIX: `${base}:${run}`,
    // The default pack, whatever the shell says; no watcher in a measurement.
    VIGIL_RULES_PATH: '',
    VIGIL_RULES_WATCH: 'false',
    // Events are stamped when pre-loaded; a late last round must still run the stateful rules.
    VIGIL_ALLOWED_LATENESS_MS: String(3_600_000),
  });
}

/** Calls of one command, and the server time they took (microseconds). */
interface CommandCount {
  calls: number;
  usec: number;
}

/** Per command since the server started, from INFO commandstats. */
async function commandStats(redis: RedisClient): Promise<Map<string, CommandCount>> {
  const counts = new Map<string, CommandCount>();
  for (const match of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    counts.set(match[1] ?? '', { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return counts;
}

/** What happened in Redis between two snapshots, leaving out the bench's own INFO calls. */
function commandDelta(before: Map<string, CommandCount>, after: Map<string, CommandCount>): Map<string, CommandCount> {
  const delta = new Map<string, CommandCount>();
  for (const [name, { calls, usec }] of after) {
    const earlier = before.get(name) ?? { calls: 0, usec: 0 };
    if (calls > earlier.calls && name !== 'info') delta.set(name, { calls: calls - earlier.calls, usec: usec - earlier.usec });
  }
  return delta;
}

/** One evaluateBatch call: its round trips (state reads/writes, detection claims) and how long it took. */
interface BatchTrips {
  state: number;
  claims: number;
  milliseconds: number;
}

/**
 * Records each batch the engine evaluated (`detectors.batch`: its own state and claim round
 * trips, and how long it took) and counts every engine round trip (`state.round_trip`) apart,
 * so the two can be checked against each other: a trip no batch reports is "unattributed".
 */
function recordBatches(instrumentation: Instrumentation, batches: BatchTrips[]): { unattributed: () => number } {
  let trips = 0;
  instrumentation.on('state.round_trip', ({ operation }) => {
    // Correlation runs before the rules, outside any batch: its trips are not the engine's.
    if (operation !== 'correlation state') trips++;
  });
  instrumentation.on('detectors.batch', ({ stateRoundTrips, claimRoundTrips, durationMs }) => {
    batches.push({ state: stateRoundTrips, claims: claimRoundTrips, milliseconds: durationMs });
  });
  return { unattributed: () => trips - batches.reduce((total, batch) => total + batch.state + batch.claims, 0) };
}

interface Loaded {
  events: number;
  attackEvents: number;
}

interface RunResult {
  seconds: number;
  startSeconds: number;
  redis: Map<string, CommandCount>;
  batches: BatchTrips[];
  roundTrips: number;
  unattributed: number;
  detections: number;
  late: number;
  statefulRules: number;
  dependentRules: number;
  rules: number;
}

const prefixes: string[] = [];
const groups: string[] = [];

async function run(kafka: Kafka, elasticsearch: Client, probe: RedisClient, expected: number, detectors: boolean, round: number): Promise<RunResult> {
  const config = configFor(`${detectors ? 'on' : 'off'}${round}`);
  prefixes.push(config.indices.prefix);
  groups.push(config.consumerGroup);
  const batches: BatchTrips[] = [];
  let counted: { unattributed: () => number } | undefined;
  const redis: RedisClient = createRedis(config);
  await redis.ping(); // connected (and its ready check done) before the first snapshot
  // The same wiring as `vigil run`, through the composition root (correlation included).
  const vigil = createVigil({ ...config, detection: { ...config.detection, enabled: detectors } }, { roles: ['ingest'], kafka, elasticsearch, logger, redis });
  if (vigil.engine) counted = recordBatches(vigil.instrumentation, batches);
  const pipeline = vigil.pipeline as IngestPipeline;
  try {
    const before = await commandStats(probe);
    const started = performance.now();
    await vigil.start();
    const joined = performance.now();
    for (;;) {
      const stats = pipeline.stats();
      if (stats.indexed + stats.duplicates + stats.deadLettered >= expected) {
        if (stats.indexed !== expected) throw new Error(`expected ${expected} events indexed, got ${JSON.stringify(stats)}`);
        break;
      }
      if (performance.now() - started > RUN_TIMEOUT_MS) throw new Error(`timed out after ${RUN_TIMEOUT_MS} ms: ${JSON.stringify(stats)}`);
      await sleep(10);
    }
    const finished = performance.now();
    const after = await commandStats(probe);
    const engineStats = vigil.engine?.stats();
    const rules = vigil.ruleSet?.rules ?? [];
    return {
      seconds: (finished - started) / 1000,
      startSeconds: (joined - started) / 1000,
      redis: commandDelta(before, after),
      batches,
      roundTrips: engineStats?.roundTrips ?? 0,
      unattributed: counted?.unattributed() ?? 0,
      detections: pipeline.stats().detections,
      late: engineStats?.late ?? 0,
      rules: rules.length,
      statefulRules: rules.filter((compiled) => compiled.rule.type !== 'match').length,
      dependentRules: rules.filter((compiled) => compiled.dependsOn.length > 0).length,
    };
  } finally {
    await vigil.stop();
    await redis.quit();
  }
}

/**
 * The simulated traffic, plus the demo's attacks (about 1% of it) so that the detection path
 * runs too: detections claimed in Redis, indexed and published. Benign traffic alone fires nothing.
 */
async function preload(kafka: Kafka, config: Config): Promise<Loaded> {
  await ensureTopics(kafka, config);
  // One emitter per simulated gateway and service, as the demo sends them.
  const emitters = SIMULATED_SOURCES.map((source) =>
    createEmitter({
      kafka,
      topics: { policy: config.topics.policy, invocation: config.topics.invocation, device: config.topics.device },
      source,
      maxBuffer: EVENTS * 2, // the traffic is generated in one synchronous loop: hold all of it
      logger,
    }),
  );
  emitSimulatedTraffic(emitters, EVENTS, { seed: 1 });
  const [first] = emitters;
  const attacks = first ? injectAttacks(first, { runId: id }) : [];
  await Promise.all(emitters.map((emitter) => emitter.close()));
  const attackEvents = sum(attacks.map((attack) => attack.events));
  const delivered = sum(emitters.map((emitter) => emitter.stats().delivered));
  if (delivered !== EVENTS + attackEvents) throw new Error(`pre-load delivered ${delivered} of ${EVENTS + attackEvents} events`);
  return { events: delivered, attackEvents };
}

async function cleanup(kafka: Kafka, elasticsearch: Client, probe: RedisClient, config: Config): Promise<void> {
  const problems: unknown[] = [];
  const attempt = async (step: () => Promise<unknown>): Promise<void> => {
    await step().catch((error: unknown) => problems.push(error));
  };
  for (const prefix of prefixes) await attempt(() => removeIndicesAndTemplates(elasticsearch, prefix));
  await attempt(() => deleteTopics(kafka, config));
  await attempt(async () => {
    if (groups.length === 0) return;
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.deleteGroups(groups);
    } finally {
      await admin.disconnect();
    }
  });
  await attempt(() => deleteKeysUnder(probe, base));
  for (const problem of problems) console.error('cleanup:', problem);
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? NaN) : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2;
};
const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);
const verdict = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');

async function main(): Promise<void> {
  const config = configFor('load');
  const kafka = createKafka(config, logger, `${base}-bench`);
  const elasticsearch = createElasticsearch(config);
  const probe = createRedis(config);
  const off: RunResult[] = [];
  const on: RunResult[] = [];
  let loaded: Loaded = { events: 0, attackEvents: 0 };
  try {
    loaded = await preload(kafka, config);
    // A B, B A, A B, ...: a drift across the bench (warm caches, a neighbour's load) falls on both.
    for (let round = 0; round < ROUNDS; round++) {
      for (const detectors of round % 2 === 0 ? [false, true] : [true, false]) {
        (detectors ? on : off).push(await run(kafka, elasticsearch, probe, loaded.events, detectors, round));
      }
    }
  } finally {
    await cleanup(kafka, elasticsearch, probe, config);
    await elasticsearch.close();
    await probe.quit();
  }
  report(loaded, off, on);
}

function report(loaded: Loaded, off: readonly RunResult[], on: readonly RunResult[]): void {
  const offSeconds = median(off.map((result) => result.seconds));
  const onSeconds = median(on.map((result) => result.seconds));
  const ratio = offSeconds / onSeconds;
  const steadyRatio = median(off.map((result) => result.seconds - result.startSeconds)) / median(on.map((result) => result.seconds - result.startSeconds));
  const events = loaded.events * on.length;
  const redisTotals = new Map<string, number>();
  for (const result of on) for (const [name, { calls }] of result.redis) redisTotals.set(name, (redisTotals.get(name) ?? 0) + calls);
  const commands = sum([...redisTotals.values()]);
  // A script's usec already includes the commands it ran, which are also listed on their own.
  const scriptUsec = sum(on.flatMap((result) => [...result.redis].filter(([name]) => SCRIPT_COMMANDS.has(name)).map(([, count]) => count.usec)));
  const scriptCalls = sum([...redisTotals].filter(([name]) => SCRIPT_COMMANDS.has(name)).map(([, calls]) => calls));
  const background = sum(off.flatMap((result) => [...result.redis.values()].map((count) => count.calls)));
  const batches = on.flatMap((result) => result.batches);
  const roundTrips = sum(on.map((result) => result.roundTrips));
  const counted = sum(batches.map((trips) => trips.state + trips.claims));
  const unattributed = sum(on.map((result) => result.unattributed));
  const perBatch = roundTrips / batches.length;
  const maxTrips = Math.max(0, ...batches.map((trips) => trips.state + trips.claims));
  const maxState = Math.max(0, ...batches.map((trips) => trips.state));
  const maxClaims = Math.max(0, ...batches.map((trips) => trips.claims));
  const overBudget = batches.filter((trips) => trips.state > 1 || trips.claims > 1).length;
  const rules = on[0]?.rules ?? 0;
  const statefulRules = on[0]?.statefulRules ?? 0;
  const dependentRules = on[0]?.dependentRules ?? 0;
  const byCommand = [...redisTotals]
    .sort(([, a], [, b]) => b - a)
    .slice(0, 6)
    .map(([name, calls]) => `${name} ${(calls / events).toFixed(2)}`)
    .join(', ');
  const batchMilliseconds = batches.map((trips) => trips.milliseconds);
  const rate = (seconds: number): string => `${Math.round(loaded.events / seconds)} events/s`;
  const runs = (results: readonly RunResult[]): string => results.map((result) => result.seconds.toFixed(1)).join(', ');
  const starts = (results: readonly RunResult[]): string => median(results.map((result) => result.startSeconds)).toFixed(2);

  console.log(`detectors on the real stack, ${loaded.events} events (${EVENTS} simulated + ${loaded.attackEvents} attack), A/B alternated, median of ${ROUNDS} rounds each`);
  console.log(`default pack: ${rules} rules, ${statefulRules} stateful, ${dependentRules} running in a second pass (after the rules it depends on)`);
  console.log('');
  console.log(`  B/A throughput                 ${ratio.toFixed(2)}x   <- the figure to compare (absolute rates below move with the machine)`);
  console.log(`  detection cost (1 - B/A)       ${((1 - ratio) * 100).toFixed(1)}%   target < ${DETECTION_COST_TARGET * 100}%: ${verdict(1 - ratio < DETECTION_COST_TARGET)}`);
  console.log(`    excluding start()            ${((1 - steadyRatio) * 100).toFixed(1)}%   (start() took ${starts(off)} s off, ${starts(on)} s on)`);
  console.log(`  A detectors off                ${rate(offSeconds)}  (${offSeconds.toFixed(2)} s from start() to all indexed; runs ${runs(off)} s)`);
  console.log(`  B detectors on                 ${rate(onSeconds)}  (${onSeconds.toFixed(2)} s; runs ${runs(on)} s)`);
  console.log('');
  console.log(`  Redis commands per event       ${(commands / events).toFixed(2)}   (INFO commandstats delta over the B runs, commands inside scripts included)`);
  console.log(`    script calls per event       ${(scriptCalls / events).toFixed(2)}   (evalsha + eval)`);
  console.log(`    by command, per event        ${byCommand}`);
  console.log(`    script time per event        ${(scriptUsec / events).toFixed(1)} µs   (Redis server time, commandstats usec; the engine's evaluateBatch took ${median(batchMilliseconds).toFixed(0)} ms median per batch, ${Math.max(0, ...batchMilliseconds).toFixed(0)} ms max)`);
  console.log(`    other clients' commands      ${background} during the ${off.length} detectors-off runs (noise in the figures above when not 0)`);
  console.log(`  round trips per batch          ${perBatch.toFixed(2)} mean, ${maxTrips} max   (${roundTrips} in ${batches.length} evaluateBatch calls of ${Math.round(events / batches.length)} events on average; ${((roundTrips / events) * 1000).toFixed(2)} per 1000 events)`);
  console.log(`    state round trips per batch  ${maxState} max;  claim round trips per batch ${maxClaims} max`);
  console.log(`    at most 1 state + 1 claim    ${verdict(overBudget === 0)}   (${overBudget} of ${batches.length} batches over)`);
  console.log(`    per stateful rule            ${(maxTrips / statefulRules).toFixed(2)} max   target <= 1 per batch per stateful rule: ${verdict(maxTrips <= statefulRules)}`);
  console.log(`  detections per B run           ${on.map((result) => result.detections).join(', ')};  late events ${sum(on.map((result) => result.late))}`);
  if (counted !== roundTrips || unattributed > 0) {
    console.log(`  note: engine.stats().roundTrips ${roundTrips}, state.round_trip events ${counted} (+${unattributed} outside evaluateBatch)`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
