/**
 * Detection latency on the real stack: event produced → its detection on the detections topic,
 * and → the webhook notification received, p50 and p99, at half the maximum sustained rate.
 *
 * One process runs the ingest pipeline (default rule pack, correlation), the alerter with its
 * notifier, a probe consumer on the detections topic and a loopback webhook receiver; the SDK
 * emitter runs in it too, or, with `BENCH_SDK_PROCESS=child`, in a child process of its own
 * (bench/latency-sdk.child.ts), as a service's would, so that it does not share the pipeline's
 * event loop. With `BENCH_ALERTING_PROCESS=child` the alerter and its notifier run in a child
 * process of their own (bench/latency-alerting.child.ts), as `vigil run --roles alerting` beside
 * `vigil run --roles ingest` (docs/deployment.md#one-process-per-role). The traffic is bench/latency-traffic.ts either way. Phase 1 emits a fixed number of events as fast as the SDK takes them and measures
 * events indexed per second end to end (the maximum sustained rate). Phase 2 paces traffic at
 * half that rate; one event in every 100 is a JSON threat protection violation (a `match` rule)
 * from its own API consumer, so each becomes its own detection, its own alert and its own
 * notification. Each trigger is timed from just before `emitter.policy()` to the probe reading
 * its detection (matched on `eventIds`) and to the receiver taking its webhook (matched on the
 * alert's key, the trigger's consumer).
 *
 * Latencies are the figure here, so they print in milliseconds; next to them, a baseline from
 * the same run: produced → indexed (Elasticsearch acknowledged the bulk create) of plain policy
 * events, which no rule fires on, on the triggers' own topic. A detection is published right
 * after its chunk is indexed, so detection / baseline is the cost of detecting on top of
 * indexing, comparable across machines where the milliseconds are not.
 *
 *   npx tsx bench/latency.bench.ts [phase1Events=25000] [phase2Seconds=30] [phase2Rate]
 *
 * phase2Rate (events/s) replaces "half the maximum": to compare two versions at the same load.
 *
 * Targets: detection p99 <= 100 ms (issue 12; issue 2 asked for 250 ms), notification p99 <= 1 s (issue 2).
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { join } from 'node:path';
import type { Client } from '@elastic/elasticsearch';
import type { RedisClient } from '../platform';
import type { Consumer, Kafka } from 'kafkajs';
import { createVigil, type Vigil } from '../app';
import type { IngestPipeline } from '../ingest';
import type { Emitter, EmitterCompression } from '../ingest/sdk';
import type { FromChild, ToChild } from './latency-sdk.child';
import type { FromAlerting, ToAlerting } from './latency-alerting.child';
import { TRIGGER_EVERY, trafficDriver, trafficEmitter, type TrafficDriver, type TrafficSink } from './latency-traffic';
import { rdkafkaClient } from '../ingest/sdk/rdkafka';
import type { Correlator, NotifierStats } from '../detectors';
import { createElasticsearch, createKafka, createRedis, type Instrumentation } from '../platform';
import { deleteTopics, removeIndicesAndTemplates } from '../scripts/cleanup';
import { deleteKeysUnder, verifySignature, type WebhookBody } from '../detectors';
import { createLogger, loadConfig, sleep, type Config, type Logger } from '../platform';
import { alertSchema, detectionSchema } from '../schemas';
import { positiveInteger } from './arguments';
import { isolatedNames } from './isolation';

const PHASE1_EVENTS = positiveInteger(process.argv[2], 25_000, 'phase1Events');
const PHASE2_SECONDS = positiveInteger(process.argv[3], 30, 'phase2Seconds');
const PHASE2_RATE = process.argv[4] === undefined ? undefined : positiveInteger(process.argv[4], 1, 'phase2Rate');
const DETECTION_P99_TARGET_MS = 100;
const NOTIFICATION_P99_TARGET_MS = 1000;
/**
 * The SDK's client: kafkajs (the default), or librdkafka with `BENCH_SDK_CLIENT=rdkafka`
 * (`@vigil/sdk/rdkafka`, which a busy service may choose; docs/sdk.md).
 */
const SDK_CLIENT = process.env.BENCH_SDK_CLIENT === 'rdkafka' ? 'rdkafka' : 'kafkajs';
/** The SDK's compression (`BENCH_SDK_COMPRESSION`), else its client's default: gzip on kafkajs, LZ4 on librdkafka. */
const SDK_COMPRESSION = process.env.BENCH_SDK_COMPRESSION as EmitterCompression | undefined;
/** Where the SDK runs: in the bench's process (the default), or `BENCH_SDK_PROCESS=child`, a process of its own. */
const SDK_PROCESS = process.env.BENCH_SDK_PROCESS === 'child' ? 'child' : 'same';
/** Where the alerter and notifier run: with the pipeline (the default), or `BENCH_ALERTING_PROCESS=child`, a process of their own. */
const ALERTING_PROCESS = process.env.BENCH_ALERTING_PROCESS === 'child' ? 'child' : 'same';
/** The SDK's linger in this bench (its default is 50 ms): how long an event may wait for company. */
const LINGER_MS = 5;
/** The default: each chunk's documents go to Elasticsearch at once (docs/pipeline.md). */
const BULK_FLUSH_MS = 0;
/** The probe's own fetch wait; the broker answers as soon as a byte arrives (minBytes 1) anyway. */
const PROBE_MAX_WAIT_MS = 50;
const SETTLE_TIMEOUT_MS = 30_000;
const RULE_ID = 'json-threat-violation';

const id = randomBytes(4).toString('hex');
const base = `bench-lat-${id}`;
const secret = randomBytes(24).toString('hex');
const logger: Logger = createLogger({ level: process.env.LOG_LEVEL ?? 'error' });

/** The bench's settings over the shell's, as the environment Vigil reads (the alerting child loads the same). */
function envFor(webhookUrl: string): Record<string, string | undefined> {
  return {
    ...process.env,
    ...isolatedNames(base),
    // No metrics listener: another process on this machine may hold the default port.
    VIGIL_HTTP_PORT: '0',
    // The default pack, whatever the shell says; no watcher in a measurement.
    VIGIL_RULES_PATH: '',
    VIGIL_RULES_WATCH: 'false',
    VIGIL_BULK_FLUSH_MS: String(BULK_FLUSH_MS),
    // No group wait: this measures the pipeline's latency, not the grouping's deliberate delay (docs/alerting.md#notification-grouping).
    VIGIL_ALERT_DESTINATIONS: JSON.stringify([{ type: 'webhook', name: 'bench-receiver', url: webhookUrl, secret, groupWaitMs: 0 }]),
    // Each trigger comes from an IP of its own, so each is an alert of its own: no storm guard
    // folding the 6th and later into one campaign alert, and no event-time hold (the watermark's
    // lateness is a deliberate delay too, docs/alerting.md#event-time-the-watermark-and-lateness).
    VIGIL_ALERT_STORM_MAX: '0',
    VIGIL_ALERT_LATENESS_MS: '0',
  };
}

/** Everything known about one trigger event, as performance.now() readings. */
interface Trigger {
  phase: 1 | 2;
  consumerId: string;
  produced: number;
  /** Kafka acknowledged it (acks=-1), sampled every millisecond from the emitter's delivered count. */
  acked?: number;
  /** Handed to correlation: the pipeline has fetched and parsed it. */
  consumed?: number;
  /** The rules have run on its batch. */
  evaluated?: number;
  /** Elasticsearch acknowledged the event document. */
  indexed?: number;
  /** The probe consumer read its detection from the detections topic. */
  detected?: number;
  /** The alerter handed the opened alert to the notifier. */
  alerted?: number;
  /** The loopback receiver took the webhook (body read, signature checked). */
  notified?: number;
}

/** A plain event, for the baseline. */
interface Plain {
  phase: 1 | 2;
  family: 'policy' | 'invocation';
  produced: number;
  indexed?: number;
}

const triggers = new Map<string, Trigger>();
const triggerByConsumer = new Map<string, Trigger>();
/** What names a trigger in its alert's key: its consumer, or its IP (the threat rule keys on the IP when no user is proven). */
const alertKeyOf = (key: Readonly<Record<string, string>>): string => key['actor.consumerId'] ?? key['client.ip'] ?? '';
const plains = new Map<string, Plain>();
/**
 * Pipeline stamps of events the bench did not know yet: with the SDK in a child, an event's
 * record comes over IPC every few milliseconds, and could in principle come after its indexing.
 */
const early = new Map<string, { consumed?: number; evaluated?: number; indexed?: number }>();
const stampEarly = (id: string, stamp: 'consumed' | 'evaluated' | 'indexed', at: number): void => {
  if (SDK_PROCESS !== 'child') return;
  const stamps = early.get(id) ?? {};
  stamps[stamp] ??= at;
  early.set(id, stamps);
};

/** Files what the traffic emitted; times as performance.now() of this process. */
const sink: TrafficSink = {
  trigger(eventId, { phase, consumerId, ip, produced }) {
    const trigger: Trigger = { phase, consumerId, produced, ...early.get(eventId) };
    early.delete(eventId);
    triggers.set(eventId, trigger);
    triggerByConsumer.set(consumerId, trigger);
    // The threat rule keys a detection with no user on its IP, one per trigger (see alertKeyOf).
    triggerByConsumer.set(ip, trigger);
  },
  plain(eventId, { phase, family, produced }) {
    const indexed = early.get(eventId)?.indexed;
    early.delete(eventId);
    plains.set(eventId, { phase, family, produced, ...(indexed === undefined ? {} : { indexed }) });
  },
  acked(eventId, at) {
    const trigger = triggers.get(eventId);
    if (trigger) trigger.acked ??= at;
  },
};
const unmatched = { detections: 0, webhooks: 0, badSignatures: 0, otherRules: 0 };

/**
 * Stamps, from the pipeline's instrumentation events, when each event was handed to correlation,
 * when the rules were done with it, and when Elasticsearch acknowledged its chunk.
 */
function recordPipelineSteps(instrumentation: Instrumentation): void {
  instrumentation.on('pipeline.stage', ({ stage, startedAt, durationMs, eventIds }) => {
    const endedAt = startedAt + durationMs;
    for (const id of eventIds) {
      if (stage === 'correlate') {
        const trigger = triggers.get(id);
        if (trigger) trigger.consumed ??= startedAt;
        else if (!plains.has(id)) stampEarly(id, 'consumed', startedAt);
      } else if (stage === 'detect') {
        const trigger = triggers.get(id);
        if (trigger) trigger.evaluated ??= endedAt;
        else if (!plains.has(id)) stampEarly(id, 'evaluated', endedAt);
      } else if (stage === 'index') {
        const known = triggers.get(id) ?? plains.get(id);
        if (known) known.indexed ??= endedAt;
        else stampEarly(id, 'indexed', endedAt);
      }
    }
  });
}

/** The loopback webhook receiver: verifies the signature on the raw body, then files the alert. */
async function startReceiver(): Promise<{ server: Server; url: string }> {
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const at = performance.now();
      const body = Buffer.concat(chunks);
      const header = request.headers['x-vigil-signature'];
      const verdict = verifySignature(secret, typeof header === 'string' ? header : undefined, body, Date.now() / 1000);
      if (!verdict.ok) {
        unmatched.badSignatures++;
        response.writeHead(401).end();
        return;
      }
      response.writeHead(204).end();
      const parsed = JSON.parse(body.toString('utf8')) as WebhookBody;
      const alert = alertSchema.safeParse(parsed.alert);
      if (parsed.type !== 'vigil.alert.opened' || !alert.success) return;
      const trigger = triggerByConsumer.get(alertKeyOf(alert.data.key));
      if (trigger) trigger.notified ??= at;
      else unmatched.webhooks++;
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/vigil` };
}

/** A consumer of its own on the detections topic: when each trigger's detection is readable there. */
async function startProbe(kafka: Kafka, config: Config): Promise<Consumer> {
  const probe = kafka.consumer({ groupId: `${base}-probe`, allowAutoTopicCreation: false, maxWaitTimeInMs: PROBE_MAX_WAIT_MS });
  await probe.connect();
  await probe.subscribe({ topic: config.topics.detections, fromBeginning: true });
  await probe.run({
    eachMessage: ({ message }) => {
      const at = performance.now();
      const detection = detectionSchema.safeParse(JSON.parse(message.value?.toString('utf8') ?? 'null'));
      if (!detection.success) return Promise.resolve();
      if (detection.data.ruleId !== RULE_ID) unmatched.otherRules++;
      const trigger = detection.data.eventIds.map((eventId) => triggers.get(eventId)).find((found) => found !== undefined);
      if (trigger) trigger.detected ??= at;
      else unmatched.detections++;
      return Promise.resolve();
    },
  });
  return probe;
}

async function waitFor(what: string, done: () => boolean, timeoutMs: number): Promise<boolean> {
  const started = performance.now();
  while (!done()) {
    if (performance.now() - started > timeoutMs) {
      console.error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      return false;
    }
    await sleep(5);
  }
  return true;
}

const notifiedAll = (phase: 1 | 2): boolean => [...triggers.values()].every((trigger) => trigger.phase !== phase || trigger.notified !== undefined);

/**
 * How loaded this process was over a phase: the share of the time its event loop was busy, its
 * CPU (every thread: the SDK's librdkafka, garbage collection) per event, and how many events the
 * ingest consumer handled per chunk. Paced traffic comes in small chunks, which cost more per event
 * than a backlog's; a loop near 1.0 queues every step of every event behind the others.
 */
interface Load {
  loopBusy: number;
  cpuMicrosPerEvent: number;
  eventsPerChunk: number;
}

/** The ingest consumer's chunks and their messages since the bench started (from `runner.chunk`). */
const ingestChunks = { chunks: 0, messages: 0 };

function startLoad(): (events: number) => Load {
  const loop = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const { chunks, messages } = ingestChunks;
  return (events) => {
    const used = process.cpuUsage(cpu);
    const chunked = ingestChunks.chunks - chunks;
    return {
      loopBusy: performance.eventLoopUtilization(loop).utilization,
      cpuMicrosPerEvent: (used.user + used.system) / Math.max(1, events),
      eventsPerChunk: chunked === 0 ? 0 : (ingestChunks.messages - messages) / chunked,
    };
  };
}

const describeLoad = (load: Load): string =>
  `event loop busy ${load.loopBusy.toFixed(2)}, process CPU ${Math.round(load.cpuMicrosPerEvent)} µs per event, ${load.eventsPerChunk.toFixed(0)} events per ingest chunk`;

interface Phase1 {
  events: number;
  seconds: number;
  emitSeconds: number;
  rate: number;
  load: Load;
}

/** Phase 1: a fixed number of events as fast as the SDK takes them; events indexed per second. */
async function measureMaxRate(pipeline: IngestPipeline, driver: TrafficDriver): Promise<Phase1> {
  const before = pipeline.stats().indexed;
  const load = startLoad();
  const started = performance.now();
  await driver.burst(1, PHASE1_EVENTS);
  const emitted = performance.now();
  if (!(await waitFor('phase 1 to be indexed', () => pipeline.stats().indexed - before >= PHASE1_EVENTS, 120_000))) {
    throw new Error(`phase 1: ${pipeline.stats().indexed - before} of ${PHASE1_EVENTS} indexed`);
  }
  const seconds = (performance.now() - started) / 1000;
  return { events: PHASE1_EVENTS, seconds, emitSeconds: (emitted - started) / 1000, rate: PHASE1_EVENTS / seconds, load: load(PHASE1_EVENTS) };
}

interface Phase2 {
  events: number;
  seconds: number;
  rate: number;
  loopDelayP99: number;
  loopDelayMax: number;
  load: Load;
}

/** Phase 2: paced at `rate` events/s for PHASE2_SECONDS; the event-loop delay is this process's (the pipeline's). */
async function pacedRun(driver: TrafficDriver, rate: number): Promise<Phase2> {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const load = startLoad();
  const started = performance.now();
  const emitted = await driver.paced(rate, PHASE2_SECONDS);
  const seconds = (performance.now() - started) / 1000;
  loop.disable();
  return { events: emitted, seconds, rate: emitted / seconds, loopDelayP99: loop.percentile(99) / 1e6, loopDelayMax: loop.max / 1e6, load: load(emitted) };
}

/**
 * The SDK in a child process (bench/latency-sdk.child.ts), driven over IPC: what it emitted comes
 * back with epoch times, filed through `sink` as this process's performance.now().
 */
/**
 * Forks one of the bench's child processes, driven by request and answer over IPC: `ask` sends a
 * message and resolves with the child's next message of the answer's type. Every message also goes
 * to `heard` first; one that `failure` names a failure, or the child's exit, rejects the question.
 */
function forkAsking<To, From extends { type: string }>(
  file: string,
  name: string,
  heard: (message: From) => void,
  failure: (message: From) => string | undefined = () => undefined,
): (message: To, answer: From['type']) => Promise<From> {
  const child = fork(join(__dirname, file), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let waiting: { type: From['type']; resolve: (message: From) => void; reject: (error: Error) => void } | undefined;
  child.on('message', (message: From) => {
    heard(message);
    const failed = failure(message);
    const question = waiting;
    if (question === undefined || (failed === undefined && question.type !== message.type)) return;
    waiting = undefined;
    if (failed === undefined) question.resolve(message);
    else question.reject(new Error(`${name} failed: ${failed}`));
  });
  child.on('exit', (code) => waiting?.reject(new Error(`${name} exited (code ${code}) while the bench waited for '${waiting.type}'`)));
  return (message, answer) =>
    new Promise((resolve, reject) => {
      waiting = { type: answer, resolve, reject };
      child.send(message as object);
    });
}

async function childDriver(config: Config): Promise<TrafficDriver> {
  const local = (at: number): number => at - performance.timeOrigin;
  const ask = forkAsking<ToChild, FromChild>('latency-sdk.child.ts', "the SDK's child process", (message) => {
    if (message.type === 'triggers') for (const [eventId, phase, consumerId, ip, produced] of message.list) sink.trigger(eventId, { phase, consumerId, ip, produced: local(produced) });
    else if (message.type === 'plains') for (const [eventId, phase, family, produced] of message.list) sink.plain(eventId, { phase, family, produced: local(produced) });
    else if (message.type === 'acked') for (const [eventId, at] of message.list) sink.acked(eventId, local(at));
  });
  await ask(
    {
      type: 'start',
      id,
      brokers: config.kafka.brokers,
      topics: { policy: config.topics.policy, invocation: config.topics.invocation, device: config.topics.device },
      client: SDK_CLIENT,
      ...(SDK_COMPRESSION ? { compression: SDK_COMPRESSION } : {}),
      lingerMs: LINGER_MS,
    },
    'ready',
  );
  return {
    async burst(phase, count) {
      await ask({ type: 'burst', phase, count }, 'done');
    },
    async paced(rate, seconds) {
      const done = await ask({ type: 'paced', rate, seconds }, 'done');
      return done.type === 'done' ? (done.emitted ?? 0) : 0;
    },
    async close() {
      const closed = await ask({ type: 'close' }, 'closed');
      if (closed.type !== 'closed') throw new Error('the SDK\'s child process did not report its stats');
      return closed.stats;
    },
  };
}

/** What the bench needs of the notifier, wherever it runs. */
interface NotifierHandle {
  stats(): NotifierStats;
  drain(): Promise<void>;
  /** Stops the alerting child (nothing when the notifier runs in this process: vigil.stop() does). */
  stop(): Promise<void>;
  /** The alerting child's CPU from its start to its stop, in seconds; undefined in this process. */
  cpuSeconds(): number | undefined;
}

/** Alert-opened readings filed against their triggers (by the alert's key). */
function alertOpened(key: Readonly<Record<string, string>>, at: number): void {
  const trigger = triggerByConsumer.get(alertKeyOf(key));
  if (trigger) trigger.alerted ??= at;
}

/**
 * The alerter and notifier in a child process (bench/latency-alerting.child.ts), built from the
 * same environment with the alerting role alone; the alerts it opens come back with epoch times.
 */
async function alertingChild(env: Record<string, string | undefined>): Promise<NotifierHandle> {
  let stats: NotifierStats | undefined;
  let cpuSeconds: number | undefined;
  const ask = forkAsking<ToAlerting, FromAlerting>(
    'latency-alerting.child.ts',
    'the alerting child',
    (message) => {
      if (message.type === 'opened') alertOpened(message.key, message.at - performance.timeOrigin);
      if (message.type === 'drained' || message.type === 'stopped') stats = message.stats;
      if (message.type === 'stopped') cpuSeconds = message.cpuSeconds;
    },
    (message) => (message.type === 'failed' ? message.message : undefined),
  );
  await ask({ type: 'start', env }, 'ready');
  let stopped = false;
  return {
    stats() {
      if (!stats) throw new Error('the alerting child has not reported its notifier yet');
      return stats;
    },
    drain: async () => {
      await ask({ type: 'drain' }, 'drained');
    },
    cpuSeconds: () => cpuSeconds,
    async stop() {
      if (stopped) return;
      stopped = true;
      await ask({ type: 'stop' }, 'stopped');
    },
  };
}

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
      const ours = [config.consumerGroup, config.alerting.group, `${base}-probe`].filter((group) => groups.has(group));
      if (ours.length > 0) await admin.deleteGroups(ours);
    } finally {
      await admin.disconnect();
    }
  });
  await attempt(() => deleteKeysUnder(redis, config.redis.prefix));
  for (const problem of problems) console.error('cleanup:', problem);
}

async function main(): Promise<void> {
  const receiver = await startReceiver();
  const env = envFor(receiver.url);
  const config = loadConfig(env);
  const kafka = createKafka(config, logger, `${base}-bench`);
  const elasticsearch = createElasticsearch(config);
  const redis = createRedis(config);
  let vigil: Vigil | undefined;
  let pipeline: IngestPipeline | undefined;
  let probe: Consumer | undefined;
  let driver: TrafficDriver | undefined;
  let alerting: NotifierHandle | undefined;
  let results:
    | {
        phase1: Phase1;
        phase2: Phase2;
        stats: ReturnType<IngestPipeline['stats']>;
        notifier: NotifierStats;
        alertingCpuSeconds: number | undefined;
        correlation: Correlator['stats'];
        emitter: ReturnType<Emitter['stats']>;
      }
    | undefined;
  try {
    // The same wiring as `vigil run`, through the composition root.
    vigil = createVigil(config, {
      ...(ALERTING_PROCESS === 'child' ? { roles: ['ingest'] as const } : {}),
      kafka,
      elasticsearch,
      logger,
      redis,
      onAlertChange: (change) => {
        if (change.kind === 'opened') alertOpened(change.alert.key, performance.now());
      },
    });
    const { correlator } = vigil;
    if (!correlator) throw new Error('the latency bench needs detection on');
    recordPipelineSteps(vigil.instrumentation);
    vigil.instrumentation.on('runner.chunk', ({ component, messages }) => {
      if (component !== 'ingest') return;
      ingestChunks.chunks++;
      ingestChunks.messages += messages;
    });
    if (!vigil.pipeline) throw new Error('the latency bench needs the ingest role');
    pipeline = vigil.pipeline;
    await vigil.start(); // creates the topics, so the consumers below find them
    const own = vigil.notifier;
    if (ALERTING_PROCESS === 'child') alerting = await alertingChild(env);
    else if (!own) throw new Error('the latency bench needs the alerting role');
    const notifier: NotifierHandle = alerting ?? { stats: () => own?.stats() as NotifierStats, drain: async () => own?.drain(), stop: () => Promise.resolve(), cpuSeconds: () => undefined };
    probe = await startProbe(kafka, config);
    driver =
      SDK_PROCESS === 'child'
        ? await childDriver(config)
        : trafficDriver(
            trafficEmitter(
              SDK_CLIENT === 'rdkafka' ? rdkafkaClient({ brokers: config.kafka.brokers, clientId: `bench-lat-${id}` }) : kafka,
              id,
              { policy: config.topics.policy, invocation: config.topics.invocation, device: config.topics.device },
              { lingerMs: LINGER_MS, logger, ...(SDK_COMPRESSION ? { compression: SDK_COMPRESSION } : {}) },
            ),
            id,
            sink,
          );

    // Warm-up: every group joined, every connection open, one notification through end to end.
    await driver.burst(1, TRIGGER_EVERY);
    const warmedUp = (): boolean => notifiedAll(1) && pipeline?.stats().indexed === plains.size + triggers.size;
    if (!(await waitFor('the warm-up notification', warmedUp, 180_000))) {
      const stats = pipeline.stats();
      const warm = [...triggers.values()].filter((trigger) => trigger.phase === 1);
      throw new Error(
        `warm-up failed: ${stats.indexed} of ${plains.size + triggers.size} indexed, ${stats.detections} detections, ${warm.filter((trigger) => trigger.detected !== undefined).length} of ${warm.length} triggers detected by the probe, ${warm.filter((trigger) => trigger.alerted !== undefined).length} alerted, ${warm.filter((trigger) => trigger.notified !== undefined).length} notified; notifier ${JSON.stringify(notifier.stats())}`,
      );
    }

    const phase1 = await measureMaxRate(pipeline, driver);
    // The notifier delivers one destination's changes in order: let phase 1's drain first.
    await waitFor('phase 1 notifications', () => notifiedAll(1), SETTLE_TIMEOUT_MS);
    await notifier.drain();

    const phase2 = await pacedRun(driver, PHASE2_RATE ?? phase1.rate / 2);
    const everything = plains.size + triggers.size;
    await waitFor('phase 2 indexed and notified', () => notifiedAll(2) && pipeline?.stats().indexed === everything, SETTLE_TIMEOUT_MS);
    const emitterStats = await driver.close();
    driver = undefined;
    await notifier.stop();
    results = { phase1, phase2, stats: pipeline.stats(), notifier: notifier.stats(), alertingCpuSeconds: notifier.cpuSeconds(), correlation: { ...correlator.stats }, emitter: emitterStats };
  } finally {
    await driver?.close();
    await probe?.disconnect();
    await alerting?.stop().catch((error: unknown) => console.error('stopping the alerting child:', error));
    await vigil?.stop();
    await cleanup(kafka, elasticsearch, redis, config);
    await elasticsearch.close();
    await redis.quit();
    receiver.server.closeAllConnections();
    await new Promise<void>((resolve) => receiver.server.close(() => resolve()));
  }
  report(results);
}

/** Nearest-rank percentile; NaN when there is nothing to rank. */
function percentile(values: readonly number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(fraction * sorted.length) - 1)] ?? NaN;
}

const ms = (value: number): string => (Number.isNaN(value) ? '   n/a' : `${value.toFixed(value < 10 ? 1 : 0).padStart(6)} ms`);
const verdict = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');

/** p50 and p99 of `to - from` over the phase 2 triggers (or plains) that have both readings. */
function spans<T>(items: readonly T[], from: (item: T) => number | undefined, to: (item: T) => number | undefined): { p50: number; p99: number; n: number } {
  const values = items.flatMap((item) => {
    const start = from(item);
    const end = to(item);
    return start === undefined || end === undefined ? [] : [end - start];
  });
  return { p50: percentile(values, 0.5), p99: percentile(values, 0.99), n: values.length };
}

function report({
  phase1,
  phase2,
  stats,
  notifier,
  alertingCpuSeconds,
  correlation,
  emitter,
}: {
  phase1: Phase1;
  phase2: Phase2;
  stats: ReturnType<IngestPipeline['stats']>;
  notifier: NotifierStats;
  alertingCpuSeconds: number | undefined;
  correlation: Correlator['stats'];
  emitter: ReturnType<Emitter['stats']>;
}): void {
  const measured = [...triggers.values()].filter((trigger) => trigger.phase === 2);
  const plain = [...plains.values()].filter((event) => event.phase === 2);
  const produced = (item: { produced: number }): number => item.produced;
  const detection = spans(measured, produced, (trigger) => trigger.detected);
  const notification = spans(measured, produced, (trigger) => trigger.notified);
  const baseline = spans(plain.filter((event) => event.family === 'policy'), produced, (event) => event.indexed);
  const invocations = spans(plain.filter((event) => event.family === 'invocation'), produced, (event) => event.indexed);
  const line = (label: string, span: { p50: number; p99: number; n: number }, note = ''): string =>
    `  ${label.padEnd(40)} p50 ${ms(span.p50)}   p99 ${ms(span.p99)}   n=${span.n}${note}`;

  const apart = [...(SDK_PROCESS === 'child' ? ['the SDK'] : []), ...(ALERTING_PROCESS === 'child' ? ['the alerter and notifier'] : [])];
  const together = ['SDK', 'ingest', 'alerter', 'notifier', 'probe consumer', 'webhook receiver'].filter(
    (part) => !(SDK_PROCESS === 'child' && part === 'SDK') && !(ALERTING_PROCESS === 'child' && (part === 'alerter' || part === 'notifier')),
  );
  console.log(
    apart.length > 0
      ? `detection latency on the real stack: ${apart.join(' and ')} in ${apart.length > 1 ? 'processes of their own' : 'a process of its own'}; ${together.join(', ')} in one`
      : `detection latency on the real stack, one process (${together.join(', ')})`,
  );
  console.log(`settings: SDK on ${SDK_CLIENT} (compression ${SDK_COMPRESSION ?? "the client's default"}), lingerMs ${LINGER_MS}, VIGIL_BULK_FLUSH_MS ${BULK_FLUSH_MS}, default rule pack, 1 trigger (JSON threat violation, own consumer) per ${TRIGGER_EVERY} events`);
  console.log('Latency targets are in milliseconds, so the absolute figures are the result; they move with the machine and its load.');
  console.log('The ratio to the baseline (a plain event produced -> indexed, measured in this run) is the figure to compare across machines.');
  console.log(
    apart.length > 0
      ? `The pipeline's process hosts every part but ${apart.join(' and ')} (its event-loop delay and load are printed).`
      : 'One process hosts every part, so they share one event loop (its delay is printed); BENCH_SDK_PROCESS=child gives the SDK a process of its own, BENCH_ALERTING_PROCESS=child the alerter.',
  );
  console.log('');
  console.log(`phase 1, maximum sustained rate   ${Math.round(phase1.rate)} events/s   (${phase1.events} events, first emit to all indexed in ${phase1.seconds.toFixed(1)} s; the SDK took them in ${phase1.emitSeconds.toFixed(1)} s)`);
  console.log(`phase 2, paced at ${PHASE2_RATE === undefined ? 'half of it     ' : 'the rate given '} ${Math.round(phase2.rate)} events/s   (${phase2.events} events in ${phase2.seconds.toFixed(1)} s; event-loop delay p99 ${phase2.loopDelayP99.toFixed(1)} ms, max ${phase2.loopDelayMax.toFixed(0)} ms)`);
  console.log(`  load, phase 1: ${describeLoad(phase1.load)}`);
  console.log(`  load, phase 2: ${describeLoad(phase2.load)}`);
  console.log('');
  console.log('latency, absolute (the figures the targets are about; they move with the machine):');
  console.log(line('produced -> detection on its topic', detection, `   target p99 <= ${DETECTION_P99_TARGET_MS} ms: ${verdict(detection.p99 <= DETECTION_P99_TARGET_MS && detection.n === measured.length)}`));
  console.log(line('produced -> notification received', notification, `   target p99 <= ${NOTIFICATION_P99_TARGET_MS} ms: ${verdict(notification.p99 <= NOTIFICATION_P99_TARGET_MS && notification.n === measured.length)}`));
  console.log('');
  console.log('baseline, same run (a plain event, no rule fires: produced -> Elasticsearch acknowledged its bulk create):');
  console.log(line('plain policy event (triggers\' topic)', baseline));
  console.log(line('plain invocation (waits for correlation)', invocations));
  console.log(`  detection / baseline                     p50 ${(detection.p50 / baseline.p50).toFixed(2)}x     p99 ${(detection.p99 / baseline.p99).toFixed(2)}x   <- comparable across machines`);
  console.log(`  notification / baseline                  p50 ${(notification.p50 / baseline.p50).toFixed(2)}x     p99 ${(notification.p99 / baseline.p99).toFixed(2)}x`);
  console.log('  (indexed is visible to GET at once; to search after the next refresh, refresh_interval 1s, which no detection waits for)');
  console.log('');
  console.log('where a trigger\'s time goes (each step on its own, so the p99s do not add up):');
  console.log(line('SDK: produced -> Kafka acknowledged', spans(measured, produced, (trigger) => trigger.acked), `   linger (${LINGER_MS} ms) + produce acks=-1`));
  console.log(line('Kafka -> ingest took it', spans(measured, (trigger) => trigger.acked, (trigger) => trigger.consumed), '   the ingest consumer\'s next fetch, after its last batches'));
  console.log(line('correlation + rules', spans(measured, (trigger) => trigger.consumed, (trigger) => trigger.evaluated), '   Redis round trips of the chunk'));
  console.log(line('bulk indexing', spans(measured, (trigger) => trigger.evaluated, (trigger) => trigger.indexed), `   flush timer (${BULK_FLUSH_MS} ms) + bulk request`));
  console.log(line('indexed -> detection on its topic', spans(measured, (trigger) => trigger.indexed, (trigger) => trigger.detected), '   publish acks=-1 + the probe\'s fetch'));
  console.log(line('indexed -> alert opened', spans(measured, (trigger) => trigger.indexed, (trigger) => trigger.alerted), '   publish + alerter fetch, Redis, alert bulk'));
  console.log(line('alert opened -> webhook received', spans(measured, (trigger) => trigger.alerted, (trigger) => trigger.notified), '   notifier queue + signed POST'));
  console.log('');
  const missing = measured.filter((trigger) => trigger.detected === undefined || trigger.notified === undefined).length;
  console.log(`checks: ${measured.length} triggers in phase 2, ${missing} without detection or notification; pipeline indexed ${stats.indexed}, dead-lettered ${stats.deadLettered}, detections ${JSON.stringify(stats.detectionsByRule)}, late ${stats.engine?.late ?? 0}`);
  console.log(`        correlation: ${correlation.waited} invocations waited for their request's decisions (each up to VIGIL_CORRELATION_WAIT_MS, holding their chunk), ${correlation.unmatched} found none`);
  console.log(`        emitter delivered ${emitter.delivered}, dropped ${emitter.dropped}, send failures ${emitter.sendFailures}`);
  console.log(`        notifier sent ${notifier.sent}, retried ${notifier.retried}, failed ${notifier.failed}; unmatched detections ${unmatched.detections}, unmatched webhooks ${unmatched.webhooks}, bad signatures ${unmatched.badSignatures}, other rules ${unmatched.otherRules}`);
  if (alertingCpuSeconds !== undefined) console.log(`        the alerting child's CPU, its start to its stop (both phases): ${alertingCpuSeconds.toFixed(1)} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
