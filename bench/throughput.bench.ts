/**
 * Throughput on the real stack (issue 12): how close `vigil run` comes to the box's own indexing
 * ceiling, over the same events, in one run.
 *
 * The traffic (scripts/simulated-traffic.ts: per simulated request the gateway's policy decisions
 * and the invocation, logins with their device, spread in order over an hour of event time as the
 * issue's 133,850 events were) is made once by the real SDK emitter into memory, then produced
 * byte for byte, as a backlog, onto fresh topics for each path:
 *
 * - `vigil run` as a child process (the compiled CLI, `bash scripts/build.sh` first), with
 *   `VIGIL_DETECTION=off` and with the default rules on; each timed from its spawn to every
 *   message committed by the ingest group (offsets are committed only once Elasticsearch
 *   acknowledged the chunk), then its event indices are counted after a refresh;
 * - with BENCH_INSTANCES, the same with N `vigil run` processes in one ingest group on the same
 *   backlog (spawned together, timed until the group committed everything), CPU summed over them;
 * - with BENCH_REDIS including `cluster`, the rules-on paths again with their state on a Redis
 *   Cluster (`bash scripts/stack.sh up-cluster`: three masters on 127.0.0.1:7001-7003);
 * - the ceiling: the very documents the rules-on run indexed, read back from its indices and
 *   bulk-created into fresh indices with Vigil's templates by 2 concurrent streams of
 *   1,000-document requests, bodies built before the clock starts;
 * - rsyslog (bench/rsyslog.ts): imkafka -> omelasticsearch, bulk mode, 2 workers, shipping the
 *   same backlog's raw events unchanged into one fresh index with the default dynamic mapping, what
 *   a user who only wants the events in Elasticsearch would run; timed from rsyslogd's start to
 *   every event indexed.
 *
 * Each path runs on its own topics, groups, indices and Redis prefix, removed afterwards. CPU per
 * event is each process's utime + stime delta (/proc/<pid>/stat) over the path divided by the
 * events: Vigil's own processes (summed), Elasticsearch's and redis-server's (the three masters'
 * on the cluster). The stores are shared with
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
 * - BENCH_PATHS: the paths to run, of `off,on,ceiling,rsyslog` (the ceiling needs `on`). @defaultValue all
 * - BENCH_INSTANCES: the instance counts to run each Vigil path with, e.g. `1,2,3`; the event
 *   topics get at least as many partitions as the largest (VIGIL_TOPIC_PARTITIONS, same for
 *   every path of the run). @defaultValue 1
 * - BENCH_REDIS: where the rules-on paths keep their state, of `single,cluster` (the ceiling
 *   takes the documents of the first rules-on path). @defaultValue single
 * - BENCH_REDIS_CLUSTER_NODES: the cluster's seeds. @defaultValue 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
 * - BENCH_TRAFFIC_MINUTES: the event time the traffic spans, in order. @defaultValue 60
 *
 * Exits non-zero when any path indexed a different number of events than was produced: with
 * several instances, a lost or doubled event (ids are the events' own) shows as a different count.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Client } from '@elastic/elasticsearch';
import type { RedisClient } from '../platform';
import { CompressionTypes, Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import { deleteKeysUnder } from '../detectors';
import { createEmitter } from '../ingest/sdk';
import { createElasticsearch, createKafka, createLogger, createRedis, ensureTopics, installTemplates, isCluster, loadConfig, sleep, type Config } from '../platform';
import { FAMILIES, indexNames, type Family } from '../schemas';
import { deleteTopics, removeIndicesAndTemplates } from '../scripts/cleanup';
import { emitSimulatedTraffic } from '../scripts/simulated-traffic';
import { positiveInteger } from './arguments';
import { isolatedNames } from './isolation';
import { RSYSLOGD, RSYSLOG_BATCH, RSYSLOG_WORKERS, checkRsyslog, rsyslogConfig, rsyslogRefusal } from './rsyslog';

const EVENTS = positiveInteger(process.argv[2], 30_000, 'events');
const ROUNDS = positiveInteger(process.argv[3], 1, 'rounds');
const ROOT = resolve(__dirname, '..');
const VIGIL_BIN = join(ROOT, 'bin', 'vigil.js');
const COMPARE_BIN = process.env.BENCH_COMPARE_BIN;
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF_DIR;
/** NODE_OPTIONS for the `vigil run` processes only (e.g. a heap limit the bench itself would not fit in). */
const VIGIL_NODE_OPTIONS = process.env.BENCH_VIGIL_NODE_OPTIONS;
const PATHS = new Set((process.env.BENCH_PATHS ?? 'off,on,ceiling,rsyslog').split(',').map((path) => path.trim()));
const listOf = (value: string | undefined, fallback: string): string[] => (value ?? fallback).split(',').map((item) => item.trim()).filter((item) => item !== '');
const INSTANCES = [...new Set(listOf(process.env.BENCH_INSTANCES, '1').map((count) => positiveInteger(count, 1, 'BENCH_INSTANCES')))];
const REDIS_KINDS = listOf(process.env.BENCH_REDIS, 'single');
for (const kind of REDIS_KINDS) if (kind !== 'single' && kind !== 'cluster') throw new Error(`BENCH_REDIS: single or cluster, got ${kind}`);
const CLUSTER_NODES = process.env.BENCH_REDIS_CLUSTER_NODES ?? '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003';
const TRAFFIC_MINUTES = positiveInteger(process.env.BENCH_TRAFFIC_MINUTES, 60, 'BENCH_TRAFFIC_MINUTES');
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
  /** The Kafka broker, when it runs here (NaN otherwise): fetches, commits, dead letters and detections written. */
  kafkaCpuUs: number;
  /** VmHWM of Vigil's process, MB (the largest of its instances); undefined for the ceiling. */
  peakRssMb?: number;
  /** VmHWM of each instance, MB. */
  peakRssMbs?: number[];
  /** `vigil run` processes in the group. */
  instances?: number;
  /** The row's name in the table. */
  label?: string;
  /** The path of the same build, detection and Redis with one instance. */
  single?: string;
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
    // Nothing is sent until the generator returns: the whole traffic is buffered at once.
    maxBufferBytes: Number.MAX_SAFE_INTEGER,
    compression: 'none',
  });
  emitSimulatedTraffic([emitter], count, { seed: 12, periodMs: TRAFFIC_MINUTES * 60_000 });
  await emitter.close();
  if (produced.length !== count) throw new Error(`the traffic generator made ${produced.length} events, not ${count}`);
  return produced;
}

/** Partitions per event topic: the default, or as many as the most instances of the run. */
const PARTITIONS = Math.max(loadConfig(process.env).topics.partitions, ...INSTANCES);

/** Where a path keeps its rule state. */
type RedisKind = 'single' | 'cluster';

/** The environment that puts one path on topics, groups, indices and a Redis prefix of its own. */
function isolation(prefix: string, detection: boolean, redisKind: RedisKind = 'single'): Record<string, string | undefined> {
  return {
    VIGIL_TOPIC_PARTITIONS: String(PARTITIONS),
    REDIS_CLUSTER_NODES: redisKind === 'cluster' ? CLUSTER_NODES : undefined,
    ...isolatedNames(prefix),
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

/**
 * The pid of the Kafka broker when it runs on this machine: the one process whose command line
 * holds `kafka.Kafka` (the broker's main class). Kafka cannot say its own pid, so a broker
 * elsewhere, or more than one here, leaves the column empty.
 */
function kafkaBrokerPid(): number | undefined {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let commandLine: string;
    try {
      commandLine = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // gone since the listing
    }
    if (commandLine.split('\0').includes('kafka.Kafka')) found.push(Number(entry));
  }
  return found.length === 1 ? found[0] : undefined;
}

/** CPU of a process that may not be known (`undefined`: not measured). */
const cpuMicrosOf = (pid: number | undefined): number => (pid === undefined ? NaN : cpuMicros(pid));

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

/** A path's CPU per event, from each process's µs of CPU over it. */
function cpuPerEvent(events: number, micros: { own: number; elasticsearch: number; redis: number; kafka: number }): Pick<PathResult, 'ownCpuUs' | 'elasticsearchCpuUs' | 'redisCpuUs' | 'kafkaCpuUs'> {
  return { ownCpuUs: micros.own / events, elasticsearchCpuUs: micros.elasticsearch / events, redisCpuUs: micros.redis / events, kafkaCpuUs: micros.kafka / events };
}

/** Refreshes and flushes a prefix's event indices (or the indices `pattern` names); their document count and primary store bytes. */
async function settleIndices(elasticsearch: Client, prefix: string, pattern = indexNames(prefix).eventPattern): Promise<{ count: number; storeBytes: number }> {
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
  pids: { redis: number; elasticsearch: number; kafka: number | undefined };
  /** The Redis Cluster (BENCH_REDIS=cluster): a client of it and the pids of its masters. */
  cluster?: { redis: RedisClient; pids: number[] };
}

/** The pids of a Redis Cluster's masters, as they report them (the cluster runs on this machine). */
async function clusterPids(cluster: RedisClient): Promise<number[]> {
  if (!isCluster(cluster)) throw new Error('BENCH_REDIS_CLUSTER_NODES did not give a Cluster client');
  // The slots must be known before the masters can be listed.
  await cluster.ping();
  const pids = await Promise.all(cluster.nodes('master').map(async (node) => Number(/process_id:(\d+)/.exec(await node.info('server'))?.[1])));
  if (pids.length === 0 || !pids.every(Number.isInteger)) throw new Error(`could not find the pids of the cluster's masters at ${CLUSTER_NODES}`);
  return pids;
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

/** One Vigil path: which build, detection on or off, how many instances, which Redis. */
interface VigilRun {
  path: string;
  bin: string;
  detection: boolean;
  instances: number;
  redisKind: RedisKind;
  label?: string;
  single?: string;
}

/**
 * `vigil run` over a fresh backlog, as `instances` processes in one ingest group spawned together:
 * polled until the group committed every message, measured, stopped with SIGTERM, its indices
 * counted; everything removed.
 */
async function runVigil(stores: Stores, traffic: readonly Produced[], run: VigilRun, keep?: (documents: StoredDocument[], prefix: string) => void): Promise<PathResult> {
  const { path, bin, detection, instances, redisKind } = run;
  const prefix = `bench-tp-${runId}-${path.replace(/[^a-z0-9]+/g, '')}`;
  const env = { ...process.env, ...isolation(prefix, detection, redisKind), LOG_LEVEL: 'warn', ...(VIGIL_NODE_OPTIONS === undefined ? {} : { NODE_OPTIONS: VIGIL_NODE_OPTIONS }) };
  const config = loadConfig(env);
  const { kafka, elasticsearch } = stores;
  const store = redisKind === 'cluster' ? stores.cluster : { redis: stores.redis, pids: [stores.pids.redis] };
  if (store === undefined) throw new Error(`${path}: no Redis Cluster client (BENCH_REDIS must include cluster)`);
  const redisCpuNow = (): number => store.pids.reduce((sum, pid) => sum + cpuMicros(pid), 0);
  try {
    progress(`${path}: producing the backlog`);
    await produceBacklog(kafka, config, traffic);
    const offsets = await offsetsOf(kafka, config);
    if (offsets.end !== traffic.length) throw new Error(`${path}: ${offsets.end} messages on the topics, ${traffic.length} produced`);
    const logFile = join(tmpdir(), `${prefix}.log`);
    const log = createWriteStream(logFile);
    const redisBefore = redisCpuNow();
    const esBefore = cpuMicros(stores.pids.elasticsearch);
    const kafkaBefore = cpuMicrosOf(stores.pids.kafka);
    progress(`${path}: vigil run${instances > 1 ? ` x ${instances}` : ''}`);
    const started = performance.now();
    const children = Array.from({ length: instances }, (_, index) => {
      const name = instances > 1 ? `${prefix}-${index + 1}` : prefix;
      const profile = CPU_PROF_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`, `--cpu-prof-name=${name}.cpuprofile`];
      const child = spawn(process.execPath, [...profile, bin, 'run'], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      // One log for the group; each instance's lines keep their own order.
      child.stdout.pipe(log, { end: false });
      child.stderr.pipe(log, { end: false });
      if (child.pid === undefined) throw new Error(`${path}: vigil run did not start`);
      return { child, pid: child.pid };
    });
    const cpuOfAll = (): number => children.reduce((sum, { pid }) => sum + cpuMicros(pid), 0);
    let firstCommit: number | undefined;
    let firstCommitted = 0;
    let firstCpu = 0;
    let ended: number | undefined;
    let cpu = 0;
    let rss: number[] = [];
    try {
      const deadline = started + Math.max(180_000, traffic.length * 5);
      for (;;) {
        for (const { child } of children) {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${path}: vigil run exited early (${child.exitCode ?? child.signalCode}); see ${logFile}`);
        }
        const committed = await offsets.committed();
        if (committed > 0 && firstCommit === undefined) {
          firstCommit = performance.now();
          firstCommitted = committed;
          firstCpu = cpuOfAll();
        }
        if (committed >= offsets.end) {
          ended = performance.now();
          break;
        }
        if (performance.now() > deadline) throw new Error(`${path}: ${committed} of ${offsets.end} messages committed after ${((performance.now() - started) / 1000).toFixed(0)} s; see ${logFile}`);
        await sleep(POLL_MS);
      }
      // Read before the stop: shutting down is not part of the path.
      cpu = cpuOfAll();
      rss = children.map(({ pid }) => peakRssMb(pid));
    } finally {
      for (const { child } of children) child.kill('SIGTERM');
      const codes = await Promise.all(children.map(({ child }) => exited(child, 30_000)));
      await offsets.close();
      log.end();
      const failed = codes.filter((code) => code !== 0);
      if (failed.length > 0 && ended !== undefined) console.error(`${path}: vigil run exited with ${failed.join(', ')} after SIGTERM; see ${logFile}`);
      // Its log is kept only when something went wrong.
      else if (ended !== undefined) rmSync(logFile, { force: true });
    }
    const redisCpu = redisCpuNow() - redisBefore;
    const esCpu = cpuMicros(stores.pids.elasticsearch) - esBefore;
    const kafkaCpu = cpuMicrosOf(stores.pids.kafka) - kafkaBefore;
    progress(`${path}: counting`);
    const { count, storeBytes } = await settleIndices(elasticsearch, prefix);
    const deadLetterAdmin = kafka.admin();
    await deadLetterAdmin.connect();
    const deadLettered = (await deadLetterAdmin.fetchTopicOffsets(config.topics.deadLetter)).reduce((sum, partition) => sum + Number(partition.high), 0);
    await deadLetterAdmin.disconnect();
    if (keep) keep(await readDocuments(elasticsearch, prefix), prefix);
    if (ended === undefined) throw new Error(`${path}: never finished`);
    const events = traffic.length;
    return {
      path,
      events,
      seconds: (ended - started) / 1000,
      ...cpuPerEvent(events, { own: cpu, elasticsearch: esCpu, redis: redisCpu, kafka: kafkaCpu }),
      peakRssMb: Math.max(...rss),
      peakRssMbs: rss,
      instances,
      ...(run.label === undefined ? {} : { label: run.label }),
      ...(run.single === undefined ? {} : { single: run.single }),
      diskBytes: storeBytes / events,
      firstCommitSeconds: firstCommit === undefined ? undefined : (firstCommit - started) / 1000,
      steadyCpuUs: events > firstCommitted ? (cpu - firstCpu) / (events - firstCommitted) : undefined,
      indexed: count,
      deadLettered,
    };
  } finally {
    progress(`${path}: cleaning up`);
    await cleanup(kafka, elasticsearch, store.redis, config);
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
    const kafkaBefore = cpuMicrosOf(pids.kafka);
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
    const kafkaCpu = cpuMicrosOf(pids.kafka) - kafkaBefore;
    const { count, storeBytes } = await settleIndices(elasticsearch, prefix);
    if (created !== documents.length) console.error(`ceiling: ${created} of ${documents.length} documents created`);
    const events = documents.length;
    return {
      path: 'ceiling',
      events,
      seconds,
      ...cpuPerEvent(events, { own: cpu.user + cpu.system, elasticsearch: esCpu, redis: redisCpu, kafka: kafkaCpu }),
      diskBytes: storeBytes / events,
      indexed: count,
      bodyBytes: bodyBytes / events,
    };
  } finally {
    await cleanup(kafka, elasticsearch, redis, config);
  }
}

/** Documents indexed into `index` so far, refreshed or not, and those refused (primaries' index operations). */
async function indexedSoFar(elasticsearch: Client, index: string): Promise<{ indexed: number; failed: number }> {
  const stats = await elasticsearch.indices.stats({ index, metric: 'indexing' }, { ignore: [404] });
  const indexing = stats._all?.primaries?.indexing;
  return { indexed: indexing?.index_total ?? 0, failed: indexing?.index_failed ?? 0 };
}

/** The files and configuration of one rsyslog path. */
function rsyslogFiles(prefix: string): { config: Config; index: string; workDirectory: string; configFile: string; errorFile: string } {
  const config = loadConfig({ ...process.env, ...isolation(prefix, false) });
  const workDirectory = join(tmpdir(), prefix);
  return { config, index: `${config.indices.prefix}-raw`, workDirectory, configFile: join(workDirectory, 'rsyslog.conf'), errorFile: join(workDirectory, 'errors.json') };
}

/** Writes a path's rsyslog configuration; throws when rsyslog can't run against these stores. */
function writeRsyslogConfig(files: ReturnType<typeof rsyslogFiles>): void {
  const { config, index, workDirectory, configFile, errorFile } = files;
  const refusal = rsyslogRefusal(config);
  if (refusal !== undefined) throw new Error(`${refusal}; BENCH_PATHS without rsyslog leaves the row out`);
  mkdirSync(workDirectory, { recursive: true });
  writeFileSync(
    configFile,
    rsyslogConfig({ brokers: config.kafka.brokers, topics: FAMILIES.map((family) => config.topics[family]), consumerGroup: config.consumerGroup, elasticsearchUrl: config.elasticsearch.url, index, workDirectory, errorFile }),
  );
}

/** Before any path runs: rsyslogd and its modules load the configuration the path would write. */
async function preflightRsyslog(): Promise<void> {
  const files = rsyslogFiles(`bench-tp-${runId}-rsyslog-check`);
  try {
    writeRsyslogConfig(files);
    await checkRsyslog(files.configFile);
  } finally {
    rmSync(files.workDirectory, { recursive: true, force: true });
  }
}

const RSYSLOG_LABEL = `rsyslog (imkafka -> omelasticsearch, bulk, ${RSYSLOG_WORKERS} workers x ${RSYSLOG_BATCH}), raw events, dynamic mapping`;

/**
 * rsyslog shipping the backlog's messages unchanged: its own topics and group, one fresh index
 * with the default dynamic mapping. Timed from rsyslogd's spawn to every event indexed (the
 * primaries' index operations, which need no refresh).
 */
async function runRsyslog(stores: Stores, traffic: readonly Produced[]): Promise<PathResult> {
  const prefix = `bench-tp-${runId}-rsyslog`;
  const files = rsyslogFiles(prefix);
  const { config, index, workDirectory, configFile, errorFile } = files;
  const { kafka, elasticsearch, redis, pids } = stores;
  const logFile = join(tmpdir(), `${prefix}.log`);
  let ended: number | undefined;
  try {
    writeRsyslogConfig(files);
    progress('rsyslog: producing the backlog');
    await produceBacklog(kafka, config, traffic);
    const redisBefore = cpuMicros(pids.redis);
    const esBefore = cpuMicros(pids.elasticsearch);
    const kafkaBefore = cpuMicrosOf(pids.kafka);
    progress('rsyslog: rsyslogd');
    const log = createWriteStream(logFile);
    const started = performance.now();
    const child = spawn(RSYSLOGD, ['-n', '-f', configFile, '-i', join(workDirectory, 'rsyslogd.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    const pid = child.pid;
    if (pid === undefined) throw new Error('rsyslog: rsyslogd did not start');
    let cpu = 0;
    let rss = 0;
    try {
      const deadline = started + Math.max(180_000, traffic.length * 5);
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`rsyslog: rsyslogd exited early (${child.exitCode ?? child.signalCode}); see ${logFile}`);
        const { indexed, failed } = await indexedSoFar(elasticsearch, index);
        // A refused document never comes (omelasticsearch writes it to its error file): no clock to wait out.
        if (failed > 0 || existsSync(errorFile)) throw new Error(`rsyslog: Elasticsearch refused ${failed} of its documents; see ${errorFile} and ${logFile}`);
        if (indexed >= traffic.length) {
          ended = performance.now();
          break;
        }
        if (performance.now() > deadline) throw new Error(`rsyslog: ${indexed} of ${traffic.length} events indexed after ${((performance.now() - started) / 1000).toFixed(0)} s; see ${logFile} and ${errorFile}`);
        await sleep(POLL_MS);
      }
      cpu = cpuMicros(pid);
      rss = peakRssMb(pid);
    } finally {
      child.kill('SIGTERM');
      await exited(child, 30_000);
      log.end();
    }
    const redisCpu = cpuMicros(pids.redis) - redisBefore;
    const esCpu = cpuMicros(pids.elasticsearch) - esBefore;
    const kafkaCpu = cpuMicrosOf(pids.kafka) - kafkaBefore;
    progress('rsyslog: counting');
    const { count, storeBytes } = await settleIndices(elasticsearch, prefix, index);
    const events = traffic.length;
    return {
      path: 'rsyslog',
      label: RSYSLOG_LABEL,
      events,
      seconds: (ended - started) / 1000,
      ...cpuPerEvent(events, { own: cpu, elasticsearch: esCpu, redis: redisCpu, kafka: kafkaCpu }),
      peakRssMb: rss,
      diskBytes: storeBytes / events,
      indexed: count,
    };
  } finally {
    progress('rsyslog: cleaning up');
    await cleanup(kafka, elasticsearch, redis, config);
    // Its files are kept only when something went wrong.
    if (ended !== undefined) {
      rmSync(workDirectory, { recursive: true, force: true });
      rmSync(logFile, { force: true });
    }
  }
}

function median(values: readonly number[]): number {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

const CEILING_LABEL = `ceiling: raw _bulk of the documents Vigil indexed, Vigil's templates, ${CEILING_STREAMS} streams x ${CEILING_DOCS_PER_REQUEST} docs`;

/** The Vigil paths of a round: per detection, Redis and instance count, this build's and the compare build's. */
function vigilRuns(round: number): VigilRun[] {
  const runs: VigilRun[] = [];
  for (const detection of [false, true]) {
    const name = detection ? 'on' : 'off';
    if (!PATHS.has(name)) continue;
    // Detection off keeps no state: one Redis or a cluster would make the same row.
    for (const redisKind of detection ? (REDIS_KINDS as RedisKind[]) : ['single' as const]) {
      for (const instances of INSTANCES) {
        const make = (bin: string, compare: boolean): VigilRun => {
          const base = `${name}${redisKind === 'cluster' ? '-cluster' : ''}`;
          const suffix = compare ? '-compare' : '';
          const label = [
            `vigil run${instances > 1 ? ` x ${instances}` : ''}, ${detection ? 'default rules on' : 'VIGIL_DETECTION=off'}`,
            redisKind === 'cluster' ? ', Redis Cluster' : '',
            compare ? ' (compare build)' : '',
          ].join('');
          return { path: `${base}${instances > 1 ? `-x${instances}` : ''}${suffix}`, bin, detection, instances, redisKind, label, single: `${base}${suffix}` };
        };
        const ours = make(VIGIL_BIN, false);
        const theirs = COMPARE_BIN === undefined ? undefined : make(COMPARE_BIN, true);
        // Alternate which build goes first, round by round, so drift of the box favours neither.
        runs.push(...(theirs === undefined ? [ours] : round % 2 === 1 ? [theirs, ours] : [ours, theirs]));
      }
    }
  }
  return runs;
}

interface Row {
  path: string;
  label: string;
  instances?: number;
  rate: number;
  ratio: number;
  /** events/s over the same round's rsyslog row. */
  vsRsyslog?: number;
  /** events/s over the same build, detection and Redis with one instance, same round. */
  scale?: number;
  own: number;
  es: number;
  redis: number;
  kafka: number;
  rss?: number;
  rssEach?: number[];
  disk: number;
  firstCommit?: number;
  steady?: number;
}

function printTable(title: string, rows: readonly Row[]): void {
  const cell = (value: number | undefined, digits = 0): string => (value === undefined || Number.isNaN(value) ? '-' : value.toFixed(digits));
  const several = rows.some((row) => (row.instances ?? 1) > 1);
  const shipped = rows.some((row) => row.vsRsyslog !== undefined);
  console.log(`\n${title}`);
  console.log(
    `| path | events/s | x ceiling |${shipped ? ' x rsyslog |' : ''}${several ? ' x 1 instance |' : ''} Vigil (or sender, rsyslogd) CPU us/event${several ? ', all instances' : ''} | after first commit | Elasticsearch us/event | Redis us/event | Kafka broker us/event | peak RSS MB${several ? ' (each instance)' : ''} | on-disk B/event | first commit s |`,
  );
  console.log(`|---|---|---|${shipped ? '---|' : ''}${several ? '---|' : ''}---|---|---|---|---|---|---|---|`);
  for (const row of rows) {
    const rss = row.rssEach !== undefined && row.rssEach.length > 1 ? row.rssEach.map((value) => cell(value)).join(' / ') : cell(row.rss);
    console.log(
      `| ${row.label} | ${cell(row.rate)} | ${cell(row.ratio, 2)} |${shipped ? ` ${cell(row.vsRsyslog, 2)} |` : ''}${several ? ` ${cell(row.scale, 2)} |` : ''} ${cell(row.own)} | ${cell(row.steady)} | ${cell(row.es)} | ${cell(row.redis, 1)} | ${cell(row.kafka, 1)} | ${rss} | ${cell(row.disk)} | ${cell(row.firstCommit, 1)} |`,
    );
  }
}

async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, ...isolation(`bench-tp-${runId}`, false) });
  const kafka = createKafka(config, logger, `bench-tp-${runId}`);
  const elasticsearch = createElasticsearch(config);
  const redis = createRedis(config);
  const cluster = REDIS_KINDS.includes('cluster') ? createRedis(loadConfig({ ...process.env, ...isolation(`bench-tp-${runId}`, true, 'cluster') })) : undefined;
  const failures: string[] = [];
  const rounds: { results: PathResult[]; bodyBytes?: number; load: number[] }[] = [];
  let producedBytes = 0;
  try {
    const stores: Stores = {
      kafka,
      elasticsearch,
      redis,
      pids: { ...(await storePids(redis, elasticsearch)), kafka: kafkaBrokerPid() },
      ...(cluster === undefined ? {} : { cluster: { redis: cluster, pids: await clusterPids(cluster) } }),
    };
    // Checked before anything runs: found missing after the Vigil paths, it would lose their rows.
    if (PATHS.has('rsyslog')) await preflightRsyslog();
    const traffic = await makeTraffic(EVENTS);
    producedBytes = traffic.reduce((sum, { message }) => sum + Buffer.byteLength(message.value), 0) / traffic.length;
    const families = FAMILIES.map((family) => `${family} ${traffic.filter((item) => item.family === family).length}`).join(', ');
    console.log(`throughput bench ${runId}: ${EVENTS} events (${families}), ${producedBytes.toFixed(0)} B each as produced, over ${TRAFFIC_MINUTES} min of event time, ${PARTITIONS} partitions per topic, ${ROUNDS} round(s); load average ${loadavg().map((value) => value.toFixed(2)).join(' ')}`);
    for (let round = 1; round <= ROUNDS; round++) {
      const results: PathResult[] = [];
      const load = loadavg();
      let documents: StoredDocument[] | undefined;
      let documentsPrefix = '';
      for (const run of vigilRuns(round)) {
        const { path } = run;
        // The ceiling's documents: those of the round's first rules-on path of this build.
        const keep =
          run.detection && run.bin === VIGIL_BIN && documents === undefined && PATHS.has('ceiling')
            ? (stored: StoredDocument[], prefix: string) => {
                documents = stored;
                documentsPrefix = prefix;
              }
            : undefined;
        const result = await runVigil(stores, traffic, run, keep);
        console.log(`round ${round}: ${path} ${result.seconds.toFixed(1)} s, ${result.indexed} indexed, ${result.deadLettered ?? 0} dead-lettered`);
        if (result.indexed !== EVENTS) failures.push(`round ${round}, ${path}: ${result.indexed} events indexed, ${EVENTS} produced`);
        results.push(result);
      }
      if (PATHS.has('rsyslog')) {
        const shipped = await runRsyslog(stores, traffic);
        console.log(`round ${round}: rsyslog ${shipped.seconds.toFixed(1)} s, ${shipped.indexed} indexed`);
        if (shipped.indexed !== EVENTS) failures.push(`round ${round}, rsyslog: ${shipped.indexed} events indexed, ${EVENTS} produced`);
        results.push(shipped);
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
    await cluster?.quit();
  }

  const rowOf = (result: PathResult, ceilingRate: number, singleRate: number | undefined, rsyslogRate: number | undefined): Row => ({
    path: result.path,
    label: result.label ?? CEILING_LABEL,
    ...(result.instances === undefined ? {} : { instances: result.instances }),
    rate: result.events / result.seconds,
    ratio: result.events / result.seconds / ceilingRate,
    ...(rsyslogRate === undefined ? {} : { vsRsyslog: result.events / result.seconds / rsyslogRate }),
    ...(singleRate === undefined ? {} : { scale: result.events / result.seconds / singleRate }),
    own: result.ownCpuUs,
    es: result.elasticsearchCpuUs,
    redis: result.redisCpuUs,
    kafka: result.kafkaCpuUs,
    disk: result.diskBytes,
    ...(result.peakRssMb === undefined ? {} : { rss: result.peakRssMb }),
    ...(result.peakRssMbs === undefined ? {} : { rssEach: result.peakRssMbs }),
    ...(result.firstCommitSeconds === undefined ? {} : { firstCommit: result.firstCommitSeconds }),
    ...(result.steadyCpuUs === undefined ? {} : { steady: result.steadyCpuUs }),
  });
  const perRound = rounds.map(({ results }) => {
    const ceiling = results.find((result) => result.path === 'ceiling');
    const rateOf = (path: string | undefined): number | undefined => {
      const single = results.find((result) => result.path === path);
      return single === undefined ? undefined : single.events / single.seconds;
    };
    return results.map((result) => rowOf(result, ceiling ? ceiling.events / ceiling.seconds : NaN, rateOf(result.single), rateOf('rsyslog')));
  });
  perRound.forEach((rows, index) => printTable(`round ${index + 1} (load average at its start ${rounds[index]?.load.map((value) => value.toFixed(2)).join(' ')})`, rows));
  if (rounds.length > 1) {
    const paths = perRound[0]?.map((row) => row.path) ?? [];
    const rowsOf = (path: string) => perRound.flatMap((rows) => rows.filter((row) => row.path === path));
    const medianOf = (path: string, pick: (row: Row) => number | undefined) => median(rowsOf(path).map((row) => pick(row) ?? NaN));
    printTable(
      `median of ${rounds.length} rounds (x ceiling, x 1 instance: the median of each round's ratio; peak RSS: of the largest instance)`,
      paths.map((path) => ({
        path,
        label: rowsOf(path)[0]?.label ?? path,
        instances: rowsOf(path)[0]?.instances ?? 1,
        rate: medianOf(path, (row) => row.rate),
        ratio: medianOf(path, (row) => row.ratio),
        ...(rowsOf(path).some((row) => row.vsRsyslog !== undefined) ? { vsRsyslog: medianOf(path, (row) => row.vsRsyslog) } : {}),
        scale: medianOf(path, (row) => row.scale),
        own: medianOf(path, (row) => row.own),
        es: medianOf(path, (row) => row.es),
        redis: medianOf(path, (row) => row.redis),
        kafka: medianOf(path, (row) => row.kafka),
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
  console.log('CPU: utime+stime deltas over each path from /proc (Elasticsearch, Redis and the Kafka broker are shared with anything else running here; the broker\'s column is empty when it is not one local process).');
  if (failures.length > 0) {
    for (const failure of failures) console.error(`FAIL: ${failure}`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
