/**
 * Throughput on the real stack (issue 12): how close `vigil run` comes to the box's own indexing
 * ceiling, over the same events, in one run.
 *
 * The traffic (scripts/simulated-traffic.ts: per simulated request the gateway's policy decisions
 * and the invocation, logins with their device) is made once by the real SDK emitter into memory,
 * then produced byte for byte, as a backlog, onto fresh topics for each path:
 *
 * - `vigil run` as a child process (the compiled CLI, `bash scripts/build.sh` first), with
 *   `VIGIL_DETECTION=off` and with the default rules on; each timed from its spawn to every
 *   message committed by the ingest group (offsets are committed only once Elasticsearch
 *   acknowledged the chunk), then its event indices are counted after a refresh;
 * - the ceiling: the very documents the rules-on run indexed, read back from its indices and
 *   bulk-created into fresh indices with Vigil's templates by 2 concurrent streams of
 *   1,000-document requests, bodies built before the clock starts.
 *
 * Each path runs on its own topics, groups, indices and Redis prefix, removed afterwards. CPU per
 * event is each process's utime + stime delta (/proc/<pid>/stat) over the path divided by the
 * events: Vigil's own process, Elasticsearch's and redis-server's. The stores are shared with
 * whatever else runs on the machine, so their figures include it; the load average is printed.
 * Throughput moves with the machine: compare the ratios to the same round's ceiling, and CPU and
 * bytes per event, not events/s across runs.
 *
 *   npx tsx bench/throughput.bench.ts [events=30000] [rounds=1]
 *
 * Environment:
 * - BENCH_CPU_PROF_DIR: run each `vigil run` under `node --cpu-prof`, profiles written there;
 * - BENCH_COMPARE_BIN: the bin/vigil.js of another build (e.g. the commit before a change): its
 *   rows run in the same rounds, alternating order with this build's, for before/after ratios;
 * - BENCH_PATHS: the paths to run, of `off,on,ceiling` (the ceiling needs `on`). @defaultValue all
 *
 * Exits non-zero when any path indexed a different number of events than was produced.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Client } from '@elastic/elasticsearch';
import type { RedisClient } from '../platform';
import { CompressionTypes, Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import { deleteKeysUnder } from '../detectors';
import { createEmitter } from '../ingest/sdk';
import { createElasticsearch, createKafka, createLogger, createRedis, ensureTopics, installTemplates, loadConfig, sleep, type Config } from '../platform';
import { FAMILIES, indexNames, type Family } from '../schemas';
import { deleteTopics, removeIndicesAndTemplates } from '../scripts/cleanup';
import { emitSimulatedTraffic } from '../scripts/simulated-traffic';
import { positiveInteger } from './arguments';

const EVENTS = positiveInteger(process.argv[2], 30_000, 'events');
const ROUNDS = positiveInteger(process.argv[3], 1, 'rounds');
const ROOT = resolve(__dirname, '..');
const VIGIL_BIN = join(ROOT, 'bin', 'vigil.js');
const COMPARE_BIN = process.env.BENCH_COMPARE_BIN;
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF_DIR;
const PATHS = new Set((process.env.BENCH_PATHS ?? 'off,on,ceiling').split(',').map((path) => path.trim()));
/** The ceiling's request size and concurrency (issue 12). */
const CEILING_DOCS_PER_REQUEST = 1000;
const CEILING_STREAMS = 2;
/** How often a running path's committed offsets are read. */
const POLL_MS = 200;
/** Produce requests of this many messages, compressed as the SDK compresses them. */
const PRODUCE_BATCH = 2000;
const CLOCK_TICKS_PER_SECOND = 100;

const runId = randomBytes(3).toString('hex');
const benchStarted = performance.now();
/** A progress line on stderr, with the seconds since the bench started. */
const progress = (line: string): void => void process.stderr.write(`[${((performance.now() - benchStarted) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'error' });

/** One produced message, as the SDK emitter made it. */
interface Produced {
  family: Family;
  message: Message & { value: string };
}

/** What one path measured. */
interface PathResult {
  path: string;
  events: number;
  seconds: number;
  /** Vigil's process (or the ceiling's sender), µs of CPU per event. */
  ownCpuUs: number;
  elasticsearchCpuUs: number;
  redisCpuUs: number;
  /** VmHWM of Vigil's process, MB; undefined for the ceiling. */
  peakRssMb?: number;
  /** Primary store bytes of the event indices after refresh + flush, per event. */
  diskBytes: number;
  /** Time to the first committed offset (Vigil's start-up and first chunk), s. */
  firstCommitSeconds?: number;
  /** Vigil's CPU per event after its first commit: start-up (module loading, connecting, joining) left out. */
  steadyCpuUs?: number;
  indexed: number;
  deadLettered?: number;
}

/** The SDK emitter's messages for `count` events, caught by a stand-in producer (the SDK allows one). */
async function makeTraffic(count: number): Promise<Produced[]> {
  const produced: Produced[] = [];
  const standIn = {
    connect: () => Promise.resolve(),
    disconnect: () => Promise.resolve(),
    sendBatch: ({ topicMessages }: { topicMessages: { topic: string; messages: Message[] }[] }) => {
      for (const { topic, messages } of topicMessages) {
        for (const message of messages) produced.push({ family: topic as Family, message: { ...message, value: String(message.value) } });
      }
      return Promise.resolve([]);
    },
  } as unknown as Producer;
  const emitter = createEmitter({
    kafka: { producer: () => standIn },
    topics: { policy: 'policy', invocation: 'invocation', device: 'device' },
    source: { service: 'edge-gateway-bench', kind: 'gateway', instance: `gw-${runId}`, environment: 'bench' },
    maxBuffer: count + 1,
    compression: 'none',
  });
  emitSimulatedTraffic([emitter], count, { seed: 12 });
  await emitter.close();
  if (produced.length !== count) throw new Error(`the traffic generator made ${produced.length} events, not ${count}`);
  return produced;
}

/** The environment that puts one path on topics, groups, indices and a Redis prefix of its own. */
function isolation(prefix: string, detection: boolean): Record<string, string> {
  return {
    VIGIL_TOPIC_POLICY: `${prefix}.policy`,
    VIGIL_TOPIC_INVOCATION: `${prefix}.invocation`,
    VIGIL_TOPIC_DEVICE: `${prefix}.device`,
    VIGIL_TOPIC_DEADLETTER: `${prefix}.deadletter`,
    VIGIL_TOPIC_DETECTIONS: `${prefix}.detections`,
    VIGIL_TOPIC_NOTIFICATIONS: `${prefix}.notifications`,
    VIGIL_TOPIC_NOTIFICATION_DEADLETTER: `${prefix}.notifications-deadletter`,
    VIGIL_CONSUMER_GROUP: `${prefix}-ingest`,
    VIGIL_ALERTER_GROUP: `${prefix}-alerter`,
    VIGIL_NOTIFIER_GROUP: `${prefix}-notifier`,
    VIGIL_REDIS_PREFIX: prefix,
    VIGIL_INDEX_PREFIX: prefix,
    VIGIL_DETECTION: detection ? 'on' : 'off',
    // The default pack and no file watcher, whatever the shell says; no metrics listener.
    VIGIL_RULES_PATH: '',
    VIGIL_RULES_WATCH: 'false',
    VIGIL_HTTP_PORT: '0',
  };
}

/** utime + stime of a process, in µs. */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces: fields count from after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS_PER_SECOND;
}

/** VmHWM (peak resident set) of a process, in MB. */
function peakRssMb(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

/** The pids of redis-server and Elasticsearch, as they report them (both run on this machine). */
async function storePids(redis: RedisClient, elasticsearch: Client): Promise<{ redis: number; elasticsearch: number }> {
  const info = await redis.info('server');
  const redisPid = Number(/process_id:(\d+)/.exec(info)?.[1]);
  const nodes = await elasticsearch.nodes.info({ node_id: '_local', metric: 'process' });
  const esPid = Object.values(nodes.nodes)[0]?.process?.id;
  if (!Number.isInteger(redisPid) || esPid === undefined) throw new Error('could not find the pids of redis-server and Elasticsearch');
  return { redis: redisPid, elasticsearch: esPid };
}

/** Produces the traffic onto a path's topics (created first, as `vigil topics ensure` would). */
async function produceBacklog(kafka: Kafka, config: Config, traffic: readonly Produced[]): Promise<void> {
  await ensureTopics(kafka, config);
  // Idempotent: a produce retried after a leader change must not write a batch twice.
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    for (let start = 0; start < traffic.length; start += PRODUCE_BATCH) {
      const byFamily = new Map<Family, Message[]>();
      for (const { family, message } of traffic.slice(start, start + PRODUCE_BATCH)) {
        const messages = byFamily.get(family) ?? [];
        messages.push(message);
        byFamily.set(family, messages);
      }
      await producer.sendBatch({ acks: -1, compression: CompressionTypes.GZIP, topicMessages: [...byFamily].map(([family, messages]) => ({ topic: config.topics[family], messages })) });
    }
  } finally {
    await producer.disconnect();
  }
}

/** The sum of the high watermarks of a path's event topics, and a reader of its committed offsets. */
async function offsetsOf(kafka: Kafka, config: Config): Promise<{ end: number; committed: () => Promise<number>; close: () => Promise<void> }> {
  const admin = kafka.admin();
  await admin.connect();
  const topics = FAMILIES.map((family) => config.topics[family]);
  let end = 0;
  for (const topic of topics) for (const partition of await admin.fetchTopicOffsets(topic)) end += Number(partition.high);
  return {
    end,
    committed: async () => {
      let sum = 0;
      let offsets;
      try {
        offsets = await admin.fetchOffsets({ groupId: config.consumerGroup, topics });
      } catch (error) {
        // A fresh broker loads its offsets topic first (GROUP_LOAD_IN_PROGRESS): nothing committed yet, ask again.
        if ((error as { retriable?: boolean }).retriable === true) return 0;
        throw error;
      }
      for (const { partitions } of offsets) {
        for (const { offset } of partitions) sum += Math.max(0, Number(offset));
      }
      return sum;
    },
    close: () => admin.disconnect(),
  };
}

/** Refreshes and flushes a prefix's event indices; their document count and primary store bytes. */
async function settleIndices(elasticsearch: Client, prefix: string): Promise<{ count: number; storeBytes: number }> {
  const pattern = indexNames(prefix).eventPattern;
  await elasticsearch.indices.refresh({ index: pattern, allow_no_indices: true });
  await elasticsearch.indices.flush({ index: pattern, allow_no_indices: true });
  const { count } = await elasticsearch.count({ index: pattern, allow_no_indices: true });
  const stats = await elasticsearch.indices.stats({ index: pattern, metric: 'store' });
  return { count, storeBytes: stats._all.primaries?.store?.size_in_bytes ?? 0 };
}

/** Waits for a child process to exit; kills it if it takes longer than `timeoutMs`. */
function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolveExit) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolveExit(code);
    });
  });
}

/** Everything one path created: topics, groups, indices, templates, Redis keys. */
async function cleanup(kafka: Kafka, elasticsearch: Client, redis: RedisClient, config: Config): Promise<void> {
  const problems: unknown[] = [];
  const attempt = async (step: () => Promise<unknown>): Promise<void> => {
    await step().catch((error: unknown) => problems.push(error));
  };
  await attempt(() => removeIndicesAndTemplates(elasticsearch, config.indices.prefix));
  await attempt(() => deleteTopics(kafka, config));
  await attempt(async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const groups = new Set((await admin.listGroups()).groups.map((group) => group.groupId));
      const ours = [config.consumerGroup, config.alerting.group, config.alerting.notifierGroup].filter((group) => groups.has(group));
      if (ours.length > 0) await admin.deleteGroups(ours);
    } finally {
      await admin.disconnect();
    }
  });
  await attempt(() => deleteKeysUnder(redis, config.redis.prefix));
  for (const problem of problems) console.error('cleanup:', problem);
}

interface Stores {
  kafka: Kafka;
  elasticsearch: Client;
  redis: RedisClient;
  pids: { redis: number; elasticsearch: number };
}

/** A document Vigil indexed: where, its id, and its source as sent. */
interface StoredDocument {
  index: string;
  id: string;
  source: string;
}

/** Every event document under a prefix, read back in index order. */
async function readDocuments(elasticsearch: Client, prefix: string): Promise<StoredDocument[]> {
  const documents: StoredDocument[] = [];
  let page = await elasticsearch.search<object>({ index: indexNames(prefix).eventPattern, scroll: '1m', size: 5000, sort: ['_doc'] });
  while (page.hits.hits.length > 0) {
    for (const hit of page.hits.hits) {
      if (hit._id !== undefined && hit._source !== undefined) documents.push({ index: hit._index, id: hit._id, source: JSON.stringify(hit._source) });
    }
    if (page._scroll_id === undefined) break;
    page = await elasticsearch.scroll<object>({ scroll_id: page._scroll_id, scroll: '1m' });
  }
  if (page._scroll_id !== undefined) await elasticsearch.clearScroll({ scroll_id: page._scroll_id });
  return documents;
}

/**
 * One `vigil run` over a fresh backlog: spawned, polled until the ingest group committed every
 * message, measured, stopped with SIGTERM, its indices counted; everything removed.
 */
async function runVigil(stores: Stores, traffic: readonly Produced[], path: string, bin: string, detection: boolean, keep?: (documents: StoredDocument[]) => void): Promise<PathResult> {
  const prefix = `bench-tp-${runId}-${path.replace(/[^a-z]+/g, '')}`;
  const env = { ...process.env, ...isolation(prefix, detection), LOG_LEVEL: 'warn' };
  const config = loadConfig(env);
  const { kafka, elasticsearch, redis, pids } = stores;
  try {
    progress(`${path}: producing the backlog`);
    await produceBacklog(kafka, config, traffic);
    const offsets = await offsetsOf(kafka, config);
    if (offsets.end !== traffic.length) throw new Error(`${path}: ${offsets.end} messages on the topics, ${traffic.length} produced`);
    const logFile = join(tmpdir(), `${prefix}.log`);
    const log = createWriteStream(logFile);
    const profile = CPU_PROF_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`, `--cpu-prof-name=${prefix}.cpuprofile`];
    const redisBefore = cpuMicros(pids.redis);
    const esBefore = cpuMicros(pids.elasticsearch);
    progress(`${path}: vigil run`);
    const started = performance.now();
    const child = spawn(process.execPath, [...profile, bin, 'run'], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    const pid = child.pid;
    if (pid === undefined) throw new Error(`${path}: vigil run did not start`);
    let firstCommit: number | undefined;
    let firstCommitted = 0;
    let firstCpu = 0;
    let ended: number | undefined;
    let cpu = 0;
    let rss = 0;
    try {
      const deadline = started + Math.max(180_000, traffic.length * 5);
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${path}: vigil run exited early (${child.exitCode ?? child.signalCode}); see ${logFile}`);
        const committed = await offsets.committed();
        if (committed > 0 && firstCommit === undefined) {
          firstCommit = performance.now();
          firstCommitted = committed;
          firstCpu = cpuMicros(pid);
        }
        if (committed >= offsets.end) {
          ended = performance.now();
          break;
        }
        if (performance.now() > deadline) throw new Error(`${path}: ${committed} of ${offsets.end} messages committed after ${((performance.now() - started) / 1000).toFixed(0)} s; see ${logFile}`);
        await sleep(POLL_MS);
      }
      // Read before the stop: shutting down is not part of the path.
      cpu = cpuMicros(pid);
      rss = peakRssMb(pid);
    } finally {
      child.kill('SIGTERM');
      const code = await exited(child, 30_000);
      await offsets.close();
      log.end();
      if (code !== 0 && ended !== undefined) console.error(`${path}: vigil run exited with ${code} after SIGTERM; see ${logFile}`);
      // Its log is kept only when something went wrong.
      else if (ended !== undefined) rmSync(logFile, { force: true });
    }
    const redisCpu = cpuMicros(pids.redis) - redisBefore;
    const esCpu = cpuMicros(pids.elasticsearch) - esBefore;
    progress(`${path}: counting`);
    const { count, storeBytes } = await settleIndices(elasticsearch, prefix);
    const deadLetterAdmin = kafka.admin();
    await deadLetterAdmin.connect();
    const deadLettered = (await deadLetterAdmin.fetchTopicOffsets(config.topics.deadLetter)).reduce((sum, partition) => sum + Number(partition.high), 0);
    await deadLetterAdmin.disconnect();
    if (keep) keep(await readDocuments(elasticsearch, prefix));
    if (ended === undefined) throw new Error(`${path}: never finished`);
    const events = traffic.length;
    return {
      path,
      events,
      seconds: (ended - started) / 1000,
      ownCpuUs: cpu / events,
      elasticsearchCpuUs: esCpu / events,
      redisCpuUs: redisCpu / events,
      peakRssMb: rss,
      diskBytes: storeBytes / events,
      firstCommitSeconds: firstCommit === undefined ? undefined : (firstCommit - started) / 1000,
      steadyCpuUs: events > firstCommitted ? (cpu - firstCpu) / (events - firstCommitted) : undefined,
      indexed: count,
      deadLettered,
    };
  } finally {
    progress(`${path}: cleaning up`);
    await cleanup(kafka, elasticsearch, redis, config);
  }
}

/** The ceiling: the documents bulk-created into fresh indices by 2 streams of 1,000-document requests. */
async function runCeiling(stores: Stores, documents: readonly StoredDocument[], fromPrefix: string): Promise<PathResult & { bodyBytes: number }> {
  const prefix = `bench-tp-${runId}-ceiling`;
  const config = loadConfig({ ...process.env, ...isolation(prefix, false) });
  const { kafka, elasticsearch, redis, pids } = stores;
  try {
    progress('ceiling: building the bodies');
    await installTemplates(elasticsearch, config);
    const bodies: Buffer[] = [];
    for (let start = 0; start < documents.length; start += CEILING_DOCS_PER_REQUEST) {
      const lines: string[] = [];
      for (const { index, id, source } of documents.slice(start, start + CEILING_DOCS_PER_REQUEST)) {
        lines.push(JSON.stringify({ create: { _index: prefix + index.slice(fromPrefix.length), _id: id } }), source);
      }
      bodies.push(Buffer.from(`${lines.join('\n')}\n`));
    }
    const bodyBytes = bodies.reduce((sum, body) => sum + body.length, 0);
    let next = 0;
    let created = 0;
    const redisBefore = cpuMicros(pids.redis);
    const esBefore = cpuMicros(pids.elasticsearch);
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const stream = async (): Promise<void> => {
      for (let body = bodies[next++]; body !== undefined; body = bodies[next++]) {
        const response = await elasticsearch.transport.request<{ errors: boolean; items?: Record<string, { status: number }>[] }>({
          method: 'POST',
          path: '/_bulk',
          querystring: { filter_path: 'errors,items.*.status' },
          bulkBody: body,
        });
        for (const item of response.items ?? []) if (item.create?.status === 201) created++;
      }
    };
    await Promise.all(Array.from({ length: CEILING_STREAMS }, stream));
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const redisCpu = cpuMicros(pids.redis) - redisBefore;
    const esCpu = cpuMicros(pids.elasticsearch) - esBefore;
    const { count, storeBytes } = await settleIndices(elasticsearch, prefix);
    if (created !== documents.length) console.error(`ceiling: ${created} of ${documents.length} documents created`);
    const events = documents.length;
    return {
      path: 'ceiling',
      events,
      seconds,
      ownCpuUs: (cpu.user + cpu.system) / events,
      elasticsearchCpuUs: esCpu / events,
      redisCpuUs: redisCpu / events,
      diskBytes: storeBytes / events,
      indexed: count,
      bodyBytes: bodyBytes / events,
    };
  } finally {
    await cleanup(kafka, elasticsearch, redis, config);
  }
}

function median(values: readonly number[]): number {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

const LABELS: Record<string, string> = {
  ceiling: `ceiling: raw _bulk of the documents Vigil indexed, Vigil's templates, ${CEILING_STREAMS} streams x ${CEILING_DOCS_PER_REQUEST} docs`,
  off: 'vigil run, VIGIL_DETECTION=off',
  on: 'vigil run, default rules on',
  'off-compare': 'vigil run, VIGIL_DETECTION=off (compare build)',
  'on-compare': 'vigil run, default rules on (compare build)',
};

function printTable(title: string, rows: readonly { path: string; rate: number; ratio: number; own: number; es: number; redis: number; rss?: number; disk: number; firstCommit?: number; steady?: number }[]): void {
  const cell = (value: number | undefined, digits = 0): string => (value === undefined || Number.isNaN(value) ? '-' : value.toFixed(digits));
  console.log(`\n${title}`);
  console.log('| path | events/s | x ceiling | Vigil (or sender) CPU us/event | after first commit | Elasticsearch us/event | Redis us/event | peak RSS MB | on-disk B/event | first commit s |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    console.log(
      `| ${LABELS[row.path] ?? row.path} | ${cell(row.rate)} | ${cell(row.ratio, 2)} | ${cell(row.own)} | ${cell(row.steady)} | ${cell(row.es)} | ${cell(row.redis, 1)} | ${cell(row.rss)} | ${cell(row.disk)} | ${cell(row.firstCommit, 1)} |`,
    );
  }
}

async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, ...isolation(`bench-tp-${runId}`, false) });
  const kafka = createKafka(config, logger, `bench-tp-${runId}`);
  const elasticsearch = createElasticsearch(config);
  const redis = createRedis(config);
  const failures: string[] = [];
  const rounds: { results: PathResult[]; bodyBytes?: number; load: number[] }[] = [];
  let producedBytes = 0;
  try {
    const stores: Stores = { kafka, elasticsearch, redis, pids: await storePids(redis, elasticsearch) };
    const traffic = await makeTraffic(EVENTS);
    producedBytes = traffic.reduce((sum, { message }) => sum + Buffer.byteLength(message.value), 0) / traffic.length;
    const families = FAMILIES.map((family) => `${family} ${traffic.filter((item) => item.family === family).length}`).join(', ');
    console.log(`throughput bench ${runId}: ${EVENTS} events (${families}), ${producedBytes.toFixed(0)} B each as produced, ${ROUNDS} round(s); load average ${loadavg().map((value) => value.toFixed(2)).join(' ')}`);
    for (let round = 1; round <= ROUNDS; round++) {
      const results: PathResult[] = [];
      const load = loadavg();
      let documents: StoredDocument[] | undefined;
      let documentsPrefix = '';
      const vigilPaths: { path: string; bin: string; detection: boolean }[] = [];
      for (const detection of [false, true]) {
        const name = detection ? 'on' : 'off';
        if (!PATHS.has(name)) continue;
        const ours = { path: name, bin: VIGIL_BIN, detection };
        const theirs = COMPARE_BIN === undefined ? undefined : { path: `${name}-compare`, bin: COMPARE_BIN, detection };
        // Alternate which build goes first, round by round, so drift of the box favours neither.
        vigilPaths.push(...(theirs === undefined ? [ours] : round % 2 === 1 ? [theirs, ours] : [ours, theirs]));
      }
      for (const { path, bin, detection } of vigilPaths) {
        const keep =
          path === 'on' && PATHS.has('ceiling')
            ? (stored: StoredDocument[]) => {
                documents = stored;
                documentsPrefix = `bench-tp-${runId}-on`;
              }
            : undefined;
        const result = await runVigil(stores, traffic, path, bin, detection, keep);
        console.log(`round ${round}: ${path} ${result.seconds.toFixed(1)} s, ${result.indexed} indexed, ${result.deadLettered ?? 0} dead-lettered`);
        if (result.indexed !== EVENTS) failures.push(`round ${round}, ${path}: ${result.indexed} events indexed, ${EVENTS} produced`);
        results.push(result);
      }
      let bodyBytes: number | undefined;
      if (PATHS.has('ceiling')) {
        if (documents === undefined) throw new Error('the ceiling needs the documents of the rules-on path (BENCH_PATHS must include on)');
        if (documents.length !== EVENTS) failures.push(`round ${round}, ceiling: ${documents.length} documents read back, ${EVENTS} produced`);
        const ceiling = await runCeiling(stores, documents, documentsPrefix);
        console.log(`round ${round}: ceiling ${ceiling.seconds.toFixed(1)} s, ${ceiling.indexed} indexed`);
        if (ceiling.indexed !== documents.length) failures.push(`round ${round}, ceiling: ${ceiling.indexed} documents indexed, ${documents.length} sent`);
        bodyBytes = ceiling.bodyBytes;
        results.unshift(ceiling);
      }
      rounds.push({ results, load, ...(bodyBytes === undefined ? {} : { bodyBytes }) });
    }
  } finally {
    await elasticsearch.close();
    await redis.quit();
  }

  const rowOf = (result: PathResult, ceilingRate: number) => ({
    path: result.path,
    rate: result.events / result.seconds,
    ratio: result.events / result.seconds / ceilingRate,
    own: result.ownCpuUs,
    es: result.elasticsearchCpuUs,
    redis: result.redisCpuUs,
    disk: result.diskBytes,
    ...(result.peakRssMb === undefined ? {} : { rss: result.peakRssMb }),
    ...(result.firstCommitSeconds === undefined ? {} : { firstCommit: result.firstCommitSeconds }),
    ...(result.steadyCpuUs === undefined ? {} : { steady: result.steadyCpuUs }),
  });
  const perRound = rounds.map(({ results }) => {
    const ceiling = results.find((result) => result.path === 'ceiling');
    return results.map((result) => rowOf(result, ceiling ? ceiling.events / ceiling.seconds : NaN));
  });
  perRound.forEach((rows, index) => printTable(`round ${index + 1} (load average at its start ${rounds[index]?.load.map((value) => value.toFixed(2)).join(' ')})`, rows));
  if (rounds.length > 1) {
    const paths = perRound[0]?.map((row) => row.path) ?? [];
    const rowsOf = (path: string) => perRound.flatMap((rows) => rows.filter((row) => row.path === path));
    const medianOf = (path: string, pick: (row: ReturnType<typeof rowOf>) => number | undefined) => median(rowsOf(path).map((row) => pick(row) ?? NaN));
    printTable(
      `median of ${rounds.length} rounds (x ceiling: the median of each round's ratio)`,
      paths.map((path) => ({
        path,
        rate: medianOf(path, (row) => row.rate),
        ratio: medianOf(path, (row) => row.ratio),
        own: medianOf(path, (row) => row.own),
        es: medianOf(path, (row) => row.es),
        redis: medianOf(path, (row) => row.redis),
        rss: medianOf(path, (row) => row.rss),
        disk: medianOf(path, (row) => row.disk),
        firstCommit: medianOf(path, (row) => row.firstCommit),
        steady: medianOf(path, (row) => row.steady),
      })),
    );
  }
  if (COMPARE_BIN !== undefined) {
    for (const name of ['off', 'on']) {
      const ratios = perRound.flatMap((rows) => {
        const ours = rows.find((row) => row.path === name);
        const theirs = rows.find((row) => row.path === `${name}-compare`);
        return ours && theirs ? [{ rate: ours.rate / theirs.rate, cpu: ours.own / theirs.own }] : [];
      });
      if (ratios.length > 0) {
        console.log(`${name}: this build / compare build, per round: events/s ${ratios.map((ratio) => ratio.rate.toFixed(2)).join(' ')}; Vigil CPU per event ${ratios.map((ratio) => ratio.cpu.toFixed(2)).join(' ')}`);
      }
    }
  }
  const bodies = rounds.flatMap((round) => (round.bodyBytes === undefined ? [] : [round.bodyBytes]));
  if (bodies.length > 0) console.log(`\nbulk body bytes per event (action line + document): ${median(bodies).toFixed(0)}; produced message value: ${producedBytes.toFixed(0)}`);
  console.log(`load average at the end ${loadavg().map((value) => value.toFixed(2)).join(' ')}`);
  console.log('CPU: utime+stime deltas over each path from /proc (Elasticsearch and Redis are shared with anything else running here).');
  if (failures.length > 0) {
    for (const failure of failures) console.error(`FAIL: ${failure}`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
