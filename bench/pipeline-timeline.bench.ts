/**
 * Where the wall clock of one `vigil run` goes (issue 12): a timeline from the process's start to
 * every message of a backlog consumed, and per chunk the time in each stage.
 *
 * The traffic is made by the SDK emitter (scripts/simulated-traffic.ts) and produced as a backlog
 * onto fresh topics; then a child process loads the compiled build (`dist/`, `bash
 * scripts/build.sh` first) and starts Vigil through `createVigil`, as `vigil run` does, with
 * listeners on the kafkajs consumers' and producers' events, the Elasticsearch client's
 * `diagnostic` events, Vigil's `pipeline.stage` and `runner.chunk` events, and a hook on
 * `require('geoip-lite')`. It prints the marks (ms since the child started), the event loop's
 * utilization, the chunks and bulk requests in flight over time and the gaps between a partition's
 * chunks. Wall-clock figures move with the machine's load: read the shape, and compare builds in
 * the same minutes.
 *
 *   npx tsx bench/pipeline-timeline.bench.ts [events=30000] [off|on] [root=this checkout]
 *
 * `root` is the checkout whose `dist/` runs (e.g. a build of the commit before a change).
 * Under `--cpu-prof` for the child: BENCH_CPU_PROF_DIR=dir.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import Module, { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Consumer, Kafka, Message, Producer } from 'kafkajs';
import type * as AppModule from '../app';
import type * as PlatformModule from '../platform';
import type { InstrumentationEvents } from '../platform';
import type { Family } from '../schemas';
import { positiveInteger } from './arguments';
import { isolatedNames } from './isolation';

const STARTED = performance.now();
const CHILD = process.argv.includes('--child');
const args = process.argv.slice(2).filter((arg) => arg !== '--child');
const EVENTS = positiveInteger(args[0], 30_000, 'events');
const MODE = args[1] === 'on' ? 'on' : 'off';
const ROOT = resolve(args[2] ?? join(__dirname, '..'));

/** The environment that puts the run on topics, groups, indices and a Redis prefix of its own. */
function isolation(prefix: string): Record<string, string> {
  return {
    ...isolatedNames(prefix),
    VIGIL_DETECTION: MODE,
    VIGIL_RULES_PATH: '',
    VIGIL_RULES_WATCH: 'false',
    VIGIL_HTTP_PORT: '0',
  };
}

/** Produces the backlog, runs the child over it, removes what the run created. */
async function parent(): Promise<void> {
  // Imported here, not at the top: the child loads its modules from the build it measures, and
  // its module loading is part of the timeline.
  const { CompressionTypes, Partitioners } = await import('kafkajs');
  const { deleteKeysUnder } = await import('../detectors');
  const { createEmitter } = await import('../ingest/sdk');
  const { createElasticsearch, createKafka, createLogger, createRedis, ensureTopics, loadConfig } = await import('../platform');
  const { deleteTopics, removeIndicesAndTemplates } = await import('../scripts/cleanup');
  const { emitSimulatedTraffic } = await import('../scripts/simulated-traffic');
  const prefix = `bench-tl-${randomBytes(3).toString('hex')}-${MODE}`;
  const env = { ...process.env, ...isolation(prefix), LOG_LEVEL: 'warn' };
  const config = loadConfig(env);
  const logger = createLogger({ level: 'error' });
  const produced: { family: Family; message: Message }[] = [];
  const standIn = {
    connect: () => Promise.resolve(),
    disconnect: () => Promise.resolve(),
    sendBatch: ({ topicMessages }: { topicMessages: { topic: string; messages: Message[] }[] }) => {
      for (const { topic, messages } of topicMessages) for (const message of messages) produced.push({ family: topic as Family, message: { ...message, value: String(message.value) } });
      return Promise.resolve([]);
    },
  } as unknown as Producer;
  const emitter = createEmitter({
    kafka: { producer: () => standIn },
    topics: { policy: 'policy', invocation: 'invocation', device: 'device' },
    source: { service: 'edge-gateway-bench', kind: 'gateway', instance: 'gw-timeline', environment: 'bench' },
    maxBuffer: EVENTS + 1,
    compression: 'none',
  });
  emitSimulatedTraffic([emitter], EVENTS, { seed: 12 });
  await emitter.close();
  const kafka = createKafka(config, logger, 'bench-timeline');
  const elasticsearch = createElasticsearch(config);
  const redis = createRedis(config, logger);
  try {
    await ensureTopics(kafka, config);
    const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    for (let start = 0; start < produced.length; start += 2000) {
      const byFamily = new Map<Family, Message[]>();
      for (const { family, message } of produced.slice(start, start + 2000)) byFamily.set(family, [...(byFamily.get(family) ?? []), message]);
      await producer.sendBatch({ acks: -1, compression: CompressionTypes.GZIP, topicMessages: [...byFamily].map(([family, messages]) => ({ topic: config.topics[family], messages })) });
    }
    await producer.disconnect();
    const profile = process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];
    const child = spawn(process.execPath, [...process.execArgv, ...profile, __filename, String(EVENTS), MODE, ROOT, '--child'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    const code = await new Promise<number | null>((done) => child.once('exit', done));
    if (code !== 0) process.exitCode = 1;
  } finally {
    await removeIndicesAndTemplates(elasticsearch, prefix).catch(() => undefined);
    await deleteTopics(kafka, config).catch(() => undefined);
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteGroups([config.consumerGroup, config.alerting.group, config.alerting.notifierGroup]).catch(() => undefined);
    await admin.disconnect();
    await deleteKeysUnder(redis, prefix).catch(() => undefined);
    await redis.quit();
    await elasticsearch.close();
  }
}

/** The `p` quantile of some values (nearest rank). */
function quantile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

/** How long (ms) as many intervals as each count overlapped, from the first start to the last end. */
function overlap(intervals: readonly { start: number; end: number }[]): string {
  const edges = intervals.flatMap(({ start, end }) => [{ at: start, step: 1 }, { at: end, step: -1 }]).sort((a, b) => a.at - b.at);
  const time = new Map<number, number>();
  let level = 0;
  let last = edges[0]?.at ?? 0;
  for (const { at, step } of edges) {
    time.set(level, (time.get(level) ?? 0) + (at - last));
    level += step;
    last = at;
  }
  return [...time].sort((a, b) => a[0] - b[0]).map(([count, ms]) => `${count}:${ms.toFixed(0)}`).join(' ');
}

/** Starts Vigil from ROOT's dist/ over the backlog, and prints the timeline once it is consumed. */
async function child(): Promise<void> {
  const marks: [number, string][] = [[STARTED, 'this script runs (node and the TypeScript loader started)']];
  const mark = (what: string): void => void marks.push([performance.now(), what]);
  const load = createRequire(__filename);
  // Every require of geoip-lite goes through Module._load: its synchronous read of the tables is timed here.
  const moduleWithLoad = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
  const originalLoad = moduleWithLoad._load;
  moduleWithLoad._load = function (this: unknown, request: string, ...rest: unknown[]) {
    if (request !== 'geoip-lite') return originalLoad.call(this, request, ...rest);
    mark('geoip-lite load begins');
    try {
      return originalLoad.call(this, request, ...rest);
    } finally {
      mark('geoip-lite loaded');
    }
  };
  const platform = load(join(ROOT, 'dist', 'platform', 'index.js')) as typeof PlatformModule;
  const app = load(join(ROOT, 'dist', 'app', 'index.js')) as typeof AppModule;
  load(join(ROOT, 'dist', 'scripts', 'cli.js'));
  mark(`modules loaded (${ROOT}/dist: app, scripts/cli)`);
  const config = platform.loadConfig(process.env);
  const logger = platform.createLogger({ level: 'warn' });
  const base = platform.createKafka(config, logger, `${config.kafka.clientId}-ingest-alerting`);
  const fetches: { start: number; end?: number }[] = [];
  const chunks: { key: string; messages: number; start: number; end: number }[] = [];
  const bulks: { start: number; end: number }[] = [];
  const stages = new Map<string, number[]>();
  let firstBatch = true;
  let firstCommit = true;
  const watch = (consumer: Consumer, groupId: string): Consumer => {
    const role = groupId === config.consumerGroup ? 'ingest' : groupId === config.alerting.notifierGroup ? 'notifier' : 'alerter';
    consumer.on(consumer.events.CONNECT, () => mark(`${role} consumer connected`));
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => mark(`${role} group joined (the join took ${payload.duration} ms)`));
    if (role !== 'ingest') return consumer;
    consumer.on(consumer.events.FETCH_START, () => {
      if (fetches.length === 0) mark('ingest: first fetch sent');
      fetches.push({ start: performance.now() });
    });
    consumer.on(consumer.events.FETCH, () => {
      const last = fetches[fetches.length - 1];
      if (last) last.end = performance.now();
    });
    consumer.on(consumer.events.START_BATCH_PROCESS, ({ payload }) => {
      if (firstBatch) mark(`ingest: first batch in hand (${payload.topic}/${payload.partition}, ${payload.batchSize} messages)`);
      firstBatch = false;
    });
    consumer.on(consumer.events.COMMIT_OFFSETS, () => {
      if (firstCommit) mark('ingest: first commit');
      firstCommit = false;
    });
    return consumer;
  };
  const kafka = new Proxy(base, {
    get(target, property: keyof Kafka) {
      if (property === 'consumer') return (options: Parameters<Kafka['consumer']>[0]) => watch(target.consumer(options), options.groupId);
      if (property === 'producer') {
        return (options?: Parameters<Kafka['producer']>[0]) => {
          const producer = target.producer(options);
          producer.on(producer.events.CONNECT, () => mark('a producer connected'));
          return producer;
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as (...parameters: unknown[]) => unknown).bind(target) : value;
    },
  });
  const elasticsearch = platform.createElasticsearch(config);
  const sentAt = new Map<unknown, number>();
  let templates = true;
  elasticsearch.diagnostic.on('request', (_error, event) => {
    if (event) sentAt.set(event.meta.request.id, performance.now());
  });
  elasticsearch.diagnostic.on('response', (_error, event) => {
    if (!event) return;
    const path = event.meta.request.params.path;
    if (templates && path.includes('_template')) mark(`first template request answered (${path})`);
    if (path.includes('_template')) templates = false;
    if (path === '/_bulk') bulks.push({ start: sentAt.get(event.meta.request.id) ?? performance.now(), end: performance.now() });
    sentAt.delete(event.meta.request.id);
  });
  const instrumentation = new platform.Instrumentation();
  instrumentation.on('pipeline.stage', (event: InstrumentationEvents['pipeline.stage']) => stages.set(event.stage, [...(stages.get(event.stage) ?? []), event.durationMs]));
  instrumentation.on('runner.chunk', (event) => {
    if (event.component === 'ingest') chunks.push({ key: `${event.topic}/${event.partition}`, messages: event.messages, start: performance.now() - event.durationMs, end: performance.now() });
  });
  const vigil = app.createVigil(config, { kafka, elasticsearch, instrumentation });
  const utilization = performance.eventLoopUtilization();
  mark('start() called');
  await vigil.start();
  mark('start() resolved');
  while ((vigil.stats().ingest?.consumed ?? 0) < EVENTS) await new Promise((done) => setTimeout(done, 20));
  mark('every message consumed');
  const busy = performance.eventLoopUtilization(utilization).utilization;
  const lines = [`== pipeline timeline: ${EVENTS} events, detection ${MODE}, ms since this process started ==`];
  for (const [at, what] of marks.sort((a, b) => a[0] - b[0])) lines.push(`${at.toFixed(0).padStart(8)}  ${what}`);
  lines.push(`event loop utilization from start() to the end: ${(busy * 100).toFixed(0)} %`);
  lines.push(`fetches: ${fetches.map(({ start, end }) => `at ${start.toFixed(0)} for ${((end ?? start) - start).toFixed(0)} ms`).join(', ')}`);
  lines.push(`chunks: ${chunks.length}, ${(chunks.reduce((sum, chunk) => sum + chunk.messages, 0) / Math.max(1, chunks.length)).toFixed(0)} messages each on average, p50 ${quantile(chunks.map((chunk) => chunk.end - chunk.start), 0.5).toFixed(0)} ms`);
  for (const [stage, durations] of stages) lines.push(`  ${stage.padEnd(12)} ${durations.length} times, ${durations.reduce((sum, ms) => sum + ms, 0).toFixed(0)} ms in all, p50 ${quantile(durations, 0.5).toFixed(1)} ms, p90 ${quantile(durations, 0.9).toFixed(1)} ms`);
  lines.push(`chunks in flight (count:ms): ${overlap(chunks)}`);
  lines.push(`bulk requests: ${bulks.length}, p50 ${quantile(bulks.map((bulk) => bulk.end - bulk.start), 0.5).toFixed(0)} ms; in flight (count:ms): ${overlap(bulks)}`);
  const byPartition = new Map<string, typeof chunks>();
  for (const chunk of chunks) byPartition.set(chunk.key, [...(byPartition.get(chunk.key) ?? []), chunk]);
  const gaps = [...byPartition.values()].flatMap((list) => list.slice(1).map((chunk, position) => chunk.start - (list[position]?.end ?? chunk.start)));
  lines.push(`gap between a partition's chunks: mean ${(gaps.reduce((sum, gap) => sum + gap, 0) / Math.max(1, gaps.length)).toFixed(1)} ms over ${gaps.length}`);
  for (const [key, list] of byPartition) lines.push(`  ${key}: ${list.length} chunks, ${list[0]?.start.toFixed(0)} → ${list[list.length - 1]?.end.toFixed(0)}`);
  console.log(lines.join('\n'));
  await vigil.stop();
}

(CHILD ? child() : parent()).then(
  () => process.exit(process.exitCode ?? 0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
