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
 */
import { performance } from 'node:perf_hooks';
import type { Vigil } from '../app';
import { fuzzTraffic } from '../test/support/fuzz';
import { produceTraffic } from '../test/support/produce';
import { isolatedConfig, openStack, vigilOn, waitFor } from '../test/support/harness';
import { positiveInteger } from './arguments';

const MESSAGES = positiveInteger(process.argv[2], 25_000, 'messages');
const ROUNDS = positiveInteger(process.argv[3], 3, 'rounds');
const GOOD_PERCENT = positiveInteger(process.argv[4], 20, 'goodPercent');
const TARGET = 0.9;

interface RunResult {
  good: number;
  messages: number;
  seconds: number;
  goodPerSecond: number;
  /** Milliseconds spent in each pipeline stage, summed over chunks: where a slowdown comes from. */
  stages: Record<string, number>;
}

async function run(label: 'clean' | 'hostile', seed: number): Promise<RunResult> {
  const stack = openStack(isolatedConfig({ VIGIL_BULK_FLUSH_MS: '50' }));
  const traffic = fuzzTraffic({
    seed,
    count: MESSAGES,
    goodShare: GOOD_PERCENT / 100,
    idPrefix: `bench-${stack.config.indices.prefix}`,
    maxMessageBytes: stack.config.limits.maxMessageBytes,
    maxJsonDepth: stack.config.limits.maxJsonDepth,
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
    vigil.instrumentation.on('pipeline.stage', ({ stage, durationMs }) => {
      stages[stage] = (stages[stage] ?? 0) + durationMs;
    });
    const running = vigil;
    await running.start();
    await waitFor(`${good} good events indexed (${label})`, () => (running.pipeline?.stats().indexed ?? 0) >= good, 600_000);
    const seconds = (performance.now() - (firstChunkAt ?? performance.now())) / 1000;
    return { good, messages: sent.length, seconds, goodPerSecond: good / seconds, stages };
  } finally {
    await vigil?.stop();
    await stack.cleanup();
  }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

async function main(): Promise<void> {
  const ratios: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const seed = 1000 + round;
    const clean = await run('clean', seed);
    const hostile = await run('hostile', seed);
    const ratio = hostile.goodPerSecond / clean.goodPerSecond;
    ratios.push(ratio);
    const stages = (result: RunResult): string => Object.entries(result.stages).map(([stage, ms]) => `${stage} ${ms.toFixed(0)}`).join(', ');
    process.stdout.write(`  stage ms, clean: ${stages(clean)}\n  stage ms, hostile: ${stages(hostile)}\n`);
    process.stdout.write(
      `round ${round}: clean ${clean.good} good in ${clean.seconds.toFixed(2)} s (${clean.goodPerSecond.toFixed(0)}/s); ` +
        `hostile ${hostile.good} good of ${hostile.messages} in ${hostile.seconds.toFixed(2)} s (${hostile.goodPerSecond.toFixed(0)}/s); ratio ${ratio.toFixed(3)}\n`,
    );
  }
  const result = median(ratios);
  process.stdout.write(`good-event throughput, hostile / clean (median of ${ROUNDS}): ${result.toFixed(3)} (target >= ${TARGET})\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
