/**
 * The ingest hot path per message, without I/O: classify (size, depth scan, JSON.parse, zod),
 * enrich (IP scope, geoip lookup) and build the ECS document. Printed as ratios against a
 * baseline measured in the same run: JSON.parse + JSON.stringify of the same bytes, the least
 * any consumer must do. Absolute times on a shared machine move; the ratio is what to compare.
 *
 *   npx tsx bench/ingest-transform.bench.ts
 */
import { performance } from 'node:perf_hooks';
import { classifyMessage, enrich, openGeoipLite, toEventDocument, type GeoLookup } from '../ingest';
import { emitSimulatedTraffic } from '../scripts/simulated-traffic';
import type { Emitter, EmitResult } from '../ingest/sdk';

const MESSAGES = 20_000;
const ROUNDS = 5;

/** An emitter that only records what it is given: the bench measures the consumer side. */
function recordingEmitter(into: Buffer[]): Emitter {
  let n = 0;
  const record = (family: string) => (input: object): EmitResult => {
    const id = `evt-bench-${(n++).toString(36).padStart(8, '0')}`;
    into.push(Buffer.from(JSON.stringify({ ...input, id, schemaVersion: 1, family, time: new Date().toISOString(), source: { service: 'bench', kind: 'gateway' } })));
    return { id, accepted: true };
  };
  return {
    policy: record('policy'),
    invocation: record('invocation'),
    device: record('device'),
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
    stats: () => ({ accepted: n, delivered: 0, dropped: 0, sendFailures: 0, buffered: 0, bufferedBytes: 0 }),
  };
}

function time(run: () => void): number {
  const started = performance.now();
  run();
  return performance.now() - started;
}

const messages: Buffer[] = [];
emitSimulatedTraffic([recordingEmitter(messages)], MESSAGES, { seed: 1 });
const limits = { maxMessageBytes: 256 * 1024, maxJsonDepth: 16 };
const position = { topic: 'bench', partition: 0, offset: '0' };
const now = new Date();

const baseline = (): void => {
  for (const message of messages) JSON.stringify(JSON.parse(message.toString('utf8')));
};
const classifyOnly = (): void => {
  for (const message of messages) classifyMessage(message, limits);
};
async function main(): Promise<void> {
  // The geo database is opened as the composition root opens it, before anything is measured.
  const geoLookup: GeoLookup = await openGeoipLite();
  const fullPath = (): void => {
    for (const message of messages) {
      const verdict = classifyMessage(message, limits);
      if (verdict.ok) JSON.stringify(toEventDocument(verdict.event, enrich(verdict.event, geoLookup), position, now));
    }
  };

  // Warm up the JIT and geoip-lite's caches before measuring.
  baseline();
  fullPath();
  const results = { baseline: [] as number[], classify: [] as number[], full: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    results.baseline.push(time(baseline));
    results.classify.push(time(classifyOnly));
    results.full.push(time(fullPath));
  }
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
  const base = median(results.baseline);
  console.log(`ingest transform, ${MESSAGES} simulated messages, median of ${ROUNDS} rounds`);
  console.log(`  baseline JSON.parse+stringify        1.00x  (${((MESSAGES / base) * 1000).toFixed(0)} msg/s)`);
  console.log(`  classify (depth scan + parse + zod)  ${(median(results.classify) / base).toFixed(2)}x`);
  console.log(`  classify + enrich + ECS document     ${(median(results.full) / base).toFixed(2)}x`);
}

main().catch((error: unknown) => {
  process.exitCode = 1;
  throw error;
});
