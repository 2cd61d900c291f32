/**
 * What the SDK's `compression` option costs and saves, to choose its default.
 *
 * Each round emits the same events through a fresh emitter per case (`none`, `gzip`) and flushes
 * it to the real local Kafka (`bash scripts/stack.sh up`), in batches of the emitter's default
 * size, on a throwaway topic. Per event it records:
 * - wall time of emit + send until Kafka acknowledged (loopback, so the network costs nothing
 *   here: this is compression's worst case);
 * - CPU time of the process (user + system, gzip's thread-pool work included);
 * - bytes on the wire: the sizes of the Produce requests, which kafkajs reports only in its debug
 *   log (its `request` instrumentation event carries the response's size). So the bytes come
 *   from one extra, untimed run per case on a client logging at debug level.
 * Cases alternate within each round; the medians print as ratios against `none` of the same run.
 *
 *   npx tsx bench/compression.bench.ts [-- --events N --rounds N]
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import { createEmitter, type EmitterCompression } from '../ingest/sdk';
import { positiveInteger } from './arguments';
import { gatewayEvents, type Emitted } from './gateway-events';
import { median } from './stats';

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}
const EVENTS = positiveInteger(argument('--events'), 10_000, '--events');
const ROUNDS = positiveInteger(argument('--rounds'), 5, '--rounds');
const BROKERS = (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(',');
const CASES: readonly EmitterCompression[] = ['none', 'gzip'];

const inputs = (count: number): Emitted[] => gatewayEvents(count, { varied: true });

async function main(): Promise<void> {
  const id = randomBytes(4).toString('hex');
  const topics = { policy: `bench-${id}.policy`, invocation: `bench-${id}.invocation`, device: `bench-${id}.device` };
  const kafka = new Kafka({ brokers: BROKERS, clientId: 'compression-bench', logLevel: logLevel.WARN });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: Object.values(topics).map((topic) => ({ topic, numPartitions: 3, replicationFactor: 1 })) });

  let wireBytes = 0;
  // Only for counting bytes: kafkajs logs each request's size at debug level, and nothing else does.
  const counting = new Kafka({
    brokers: BROKERS,
    clientId: 'compression-bench-bytes',
    logLevel: logLevel.DEBUG,
    logCreator:
      () =>
      ({ log }: LogEntry) => {
        if (log.message.startsWith('Request Produce') && typeof log.size === 'number') wireBytes += log.size;
      },
  });
  const events = inputs(EVENTS);
  const source = { service: 'bench', kind: 'service' } as const;

  async function run(compression: EmitterCompression, client: Kafka = kafka): Promise<{ wallMs: number; cpuMs: number; bytes: number }> {
    const emitter = createEmitter({ kafka: client, topics, source, compression, maxBuffer: EVENTS + 1 });
    wireBytes = 0;
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (const event of events) {
      if (event.family === 'policy') emitter.policy(event.input);
      else if (event.family === 'invocation') emitter.invocation(event.input);
      else emitter.device(event.input);
    }
    await emitter.flush();
    const wallMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    const bytes = wireBytes;
    if (emitter.stats().delivered !== EVENTS) throw new Error(`${compression}: ${emitter.stats().delivered} of ${EVENTS} delivered`);
    await emitter.close();
    return { wallMs, cpuMs: (used.user + used.system) / 1000, bytes };
  }

  try {
    for (const compression of CASES) await run(compression); // warm-up: connections, JIT, zod
    const bytes = new Map<EmitterCompression, number>();
    for (const compression of CASES) bytes.set(compression, (await run(compression, counting)).bytes);
    const samples = new Map(CASES.map((compression) => [compression, { wallMs: [] as number[], cpuMs: [] as number[] }]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const compression of round % 2 === 0 ? CASES : [...CASES].reverse()) {
        const result = await run(compression);
        const sample = samples.get(compression);
        sample?.wallMs.push(result.wallMs);
        sample?.cpuMs.push(result.cpuMs);
      }
    }
    const perEvent = (compression: EmitterCompression, field: 'wallMs' | 'cpuMs' | 'bytes'): number =>
      (field === 'bytes' ? (bytes.get(compression) ?? NaN) : median(samples.get(compression)?.[field] ?? [])) / EVENTS;
    console.log(`compression: ${EVENTS} events emitted and flushed to ${BROKERS.join(',')} (batches of 500), median of ${ROUNDS} rounds`);
    console.log(`  ${'case'.padEnd(6)} ${'emit+send'.padStart(20)} ${'CPU'.padStart(20)} ${'bytes on the wire'.padStart(22)}`);
    for (const compression of CASES) {
      const cell = (field: 'wallMs' | 'cpuMs' | 'bytes', unit: string, scale: number): string =>
        `${(perEvent(compression, field) / perEvent('none', field)).toFixed(2)}x (${(perEvent(compression, field) * scale).toFixed(field === 'bytes' ? 0 : 1)} ${unit})`.padStart(field === 'bytes' ? 22 : 20);
      console.log(`  ${compression.padEnd(6)} ${cell('wallMs', 'µs/event', 1000)} ${cell('cpuMs', 'µs/event', 1000)} ${cell('bytes', 'B/event', 1)}`);
    }
  } finally {
    await admin.deleteTopics({ topics: Object.values(topics) });
    await admin.disconnect();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
