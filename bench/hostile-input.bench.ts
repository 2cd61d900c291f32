/**
 * Good-event throughput under hostile input, on the real stack, as a ratio against a clean run
 * in the same process: does a flood of bad messages slow down the good ones?
 *
 * The fuzz test's generator (test/support/fuzz.ts) makes `messages` messages, a fifth of them
 * good by default. Run 1 (clean) produces only the good events to fresh topics; run 2 (hostile)
 * produces all of them, in the same order, to other fresh topics. Each run is then consumed by
 * Vigil as `vigil run` builds it (ingest role, the default rules), and timed from the start of
 * its first chunk to the moment its last good event is indexed. The figure is
 *
 *   ratio = good events/s (hostile) / good events/s (clean)
 *
 * Target (issue 10): ratio >= 0.9. Absolute rates on a shared machine move; the ratio is the one
 * figure to compare. The clean run goes first and the two alternate `rounds` times (median).
 *
 *   npx tsx bench/hostile-input.bench.ts [messages=25000] [rounds=3] [goodPercent=20]
 *
 * - BENCH_COMPARE_DIR: another checkout of Vigil (e.g. `git archive` of the commit before a change,
 *   with a `node_modules` link): each round then also runs its clean and hostile pair, on the same
 *   traffic, the two versions' pairs in alternating order, so a before/after comparison shares the
 *   machine's load of the moment. Its Vigil is built by its own test harness.
 * - BENCH_TIMES=ordered: event times rise with the position, as a live feed's do, instead of
 *   falling anywhere in the hour (the fuzz test's traffic). Event-time alignment then moves every
 *   partition in steps of its skew bound, so both runs are mostly those steps' round trips.
 * - BENCH_PROFILE: a directory; each run's timed window (start to last good event indexed) is
 *   recorded by the V8 sampling profiler into `<label>-<round>.cpuprofile` there, so the bench's own
 *   work (generating and producing the traffic) stays out of it.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Vigil } from '../app';
import { fuzzTraffic } from '../test/support/fuzz';
import { produceTraffic } from '../test/support/produce';
import * as localHarness from '../test/support/harness';
import { positiveInteger } from './arguments';
import { median } from './stats';

const MESSAGES = positiveInteger(process.argv[2], 25_000, 'messages');
const ROUNDS = positiveInteger(process.argv[3], 3, 'rounds');
const GOOD_PERCENT = positiveInteger(process.argv[4], 20, 'goodPercent');
const TARGET = 0.9;
const COMPARE_DIR = process.env.BENCH_COMPARE_DIR;
const PROFILE_DIR = process.env.BENCH_PROFILE;
const TIMES = process.env.BENCH_TIMES === 'ordered' ? 'ordered' : 'random';

/** What a run needs from a checkout's test harness: the one under test, or the one compared with. */
type Harness = Pick<typeof localHarness, 'isolatedConfig' | 'openStack' | 'vigilOn' | 'waitFor'>;

interface RunResult {
  good: number;
  messages: number;
  seconds: number;
  goodPerSecond: number;
  /** Milliseconds spent in each pipeline stage, summed over chunks: where a slowdown comes from. */
  stages: Record<string, number>;
  /** CPU time of this process (Vigil, with the bench's own small share) until the last good event was indexed. */
  cpuSeconds: number;
  /** Chunks handled (each one a commit): hostile traffic cuts the same good events into more of them. */
  chunks: number;
  /** Events sent to Elasticsearch (the index stage's items): the good ones, plus the redeliveries and id collisions not decided before. */
  sentToIndex: number;
  /** Dead-lettered and duplicate messages once everything was consumed: proof nothing was skipped. */
  deadLettered: number;
  duplicates: number;
}

async function run(label: 'clean' | 'hostile', seed: number, harness: Harness): Promise<RunResult> {
  const { isolatedConfig, openStack, vigilOn, waitFor } = harness;
  const stack = openStack(isolatedConfig());
  const traffic = fuzzTraffic({
    seed,
    count: MESSAGES,
    goodShare: GOOD_PERCENT / 100,
    idPrefix: `bench-${stack.config.indices.prefix}`,
    maxMessageBytes: stack.config.limits.maxMessageBytes,
    maxJsonDepth: stack.config.limits.maxJsonDepth,
    times: TIMES,
  });
  const sent = label === 'clean' ? traffic.filter((message) => message.kind === 'good') : traffic;
  const good = sent.filter((message) => message.kind === 'good').length;
  let vigil: Vigil | undefined;
  try {
    // Topics first (start() creates them), then the traffic, then the clock: the run times
    // consumption alone, not the producer.
    const setup = vigilOn(stack, { roles: ['ingest'] });
    await setup.start();
    await setup.stop();
    await produceTraffic(stack.kafka, stack.config, sent);

    vigil = vigilOn(stack, { roles: ['ingest'] });
    let firstChunkAt: number | undefined;
    vigil.instrumentation.on('runner.chunk', ({ durationMs }) => {
      const startedAt = performance.now() - durationMs;
      if (firstChunkAt === undefined || startedAt < firstChunkAt) firstChunkAt = startedAt;
    });
    const stages: Record<string, number> = {};
    let sentToIndex = 0;
    vigil.instrumentation.on('pipeline.stage', ({ stage, durationMs, items }) => {
      stages[stage] = (stages[stage] ?? 0) + durationMs;
      if (stage === 'index') sentToIndex += items;
    });
    let chunks = 0;
    vigil.instrumentation.on('runner.chunk', () => chunks++);
    const running = vigil;
    const profiler = PROFILE_DIR === undefined ? undefined : new Session();
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
      await profiler.post('Profiler.start');
    }
    const cpuBefore = process.cpuUsage();
    await running.start();
    await waitFor(`${good} good events indexed (${label})`, () => (running.pipeline?.stats().indexed ?? 0) >= good, 600_000);
    const seconds = (performance.now() - (firstChunkAt ?? performance.now())) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    if (profiler && PROFILE_DIR !== undefined) {
      const { profile } = await profiler.post('Profiler.stop');
      writeFileSync(resolve(PROFILE_DIR, `${label}-${seed}.cpuprofile`), JSON.stringify(profile));
      profiler.disconnect();
    }
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    // Off the clock: the rest of the run is consumed too, and every message must be accounted
    // for (indexed, a duplicate, or dead-lettered), so a fast run can't be one that skipped work.
    await waitFor(`${sent.length} messages consumed (${label})`, () => (running.pipeline?.stats().consumed ?? 0) >= sent.length, 600_000);
    const stats = running.pipeline?.stats();
    const accounted = (stats?.indexed ?? 0) + (stats?.duplicates ?? 0) + (stats?.deadLettered ?? 0);
    if (stats?.indexed !== good || accounted !== sent.length) {
      throw new Error(`${label}: ${sent.length} messages, ${good} good, but ${stats?.indexed} indexed, ${stats?.duplicates} duplicates, ${stats?.deadLettered} dead-lettered`);
    }
    return { good, messages: sent.length, seconds, cpuSeconds, goodPerSecond: good / seconds, stages, chunks, sentToIndex, deadLettered: stats.deadLettered, duplicates: stats.duplicates };
  } finally {
    await vigil?.stop();
    await stack.cleanup();
  }
}

async function main(): Promise<void> {
  process.stdout.write(
    `good-event throughput under hostile input: ${MESSAGES} messages per run, ${GOOD_PERCENT}% good, ${ROUNDS} rounds.\n` +
      '  clean = only the good events; hostile = the same good events in the same order, with the hostile rest between them.\n' +
      '  Each run is timed from its first chunk to its last good event indexed; ratio = good events/s hostile / good events/s clean.\n',
  );
  const versions: { name: string; harness: Harness; ratios: number[] }[] = [{ name: COMPARE_DIR ? 'this build' : '', harness: localHarness, ratios: [] }];
  if (COMPARE_DIR) {
    const harness = (await import(resolve(COMPARE_DIR, 'test/support/harness'))) as Harness;
    versions.push({ name: `compared (${COMPARE_DIR})`, harness, ratios: [] });
  }
  for (let round = 1; round <= ROUNDS; round++) {
    const seed = 1000 + round;
    // Alternating which version goes first, so neither always meets the same moment of load.
    const order = round % 2 === 1 ? versions : [...versions].reverse();
    for (const version of order) {
      const clean = await run('clean', seed, version.harness);
      const hostile = await run('hostile', seed, version.harness);
      const ratio = hostile.goodPerSecond / clean.goodPerSecond;
      version.ratios.push(ratio);
      const label = version.name ? ` [${version.name}]` : '';
      const stages = (result: RunResult): string => Object.entries(result.stages).map(([stage, ms]) => `${stage} ${ms.toFixed(0)}`).join(', ');
      process.stdout.write(`  stage ms, clean: ${stages(clean)}\n  stage ms, hostile: ${stages(hostile)}\n`);
      process.stdout.write(
        `round ${round}${label}: clean ${clean.good} good in ${clean.seconds.toFixed(2)} s (${clean.goodPerSecond.toFixed(0)}/s, ${clean.chunks} chunks, CPU ${clean.cpuSeconds.toFixed(1)} s); ` +
          `hostile ${hostile.good} good of ${hostile.messages} in ${hostile.seconds.toFixed(2)} s (${hostile.goodPerSecond.toFixed(0)}/s, ${hostile.chunks} chunks, CPU ${hostile.cpuSeconds.toFixed(1)} s, ` +
          `${hostile.deadLettered} dead-lettered, ${hostile.duplicates} duplicates, ${hostile.sentToIndex} events sent to index); ratio ${ratio.toFixed(3)}\n`,
      );
    }
  }
  for (const version of versions) {
    const label = version.name ? ` [${version.name}]` : '';
    process.stdout.write(`good-event throughput, hostile / clean (median of ${ROUNDS})${label}: ${median(version.ratios).toFixed(3)} (target >= ${TARGET}); rounds ${version.ratios.map((ratio) => ratio.toFixed(3)).join(', ')}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
