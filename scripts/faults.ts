/**
 * The fault-injection suite (`npm run faults`, issue 10; docs/faults.md). It starts a copy of the
 * stack on ports of its own (`scripts/stack.sh up-faults`), so the plain stack other tests use is
 * never touched, then, once per fault, runs the compiled `vigil run` as child processes on topics,
 * indices and a Redis prefix of the fault's own, paces a known set of events (normal traffic and
 * attacks the default rules detect) through it, injects the fault in the middle, and accounts from
 * Elasticsearch, the Kafka topics and the webhook receiver. A fault-free reference run comes first,
 * to compare detections with. Prints a table and exits 1 when a target is missed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { z } from 'zod';
import { createEmitter, type EmitInput, type EmitResult, type Emitter, type Family } from '../ingest/sdk';
import { alertKeys } from '../detectors';
import { ValidationError } from '../platform';
import { alertIndexNames, detectionIndexNames, indexNames } from '../schemas';
import { injectAttacks } from './attack-traffic';
import { accountFault, formatTable, missedTargets, type FaultObservation, type FaultResult, type ObservedDetection, type ObservedNotification } from './faults-accounting';
import { onlyWords, selectFaults } from './faults-select';
import { emitSimulatedTraffic } from './simulated-traffic';

const ROOT = resolve(__dirname, '..');
const STACK_SCRIPT = join(ROOT, 'scripts', 'stack.sh');
const SECRET = 'faults-webhook-secret-0123456789';
const DESTINATION = 'faults-webhook';

const ms = (fallback: number) => z.coerce.number().int().min(0).default(fallback);
/** The suite's knobs: the issue's durations by default; shorter ones for a quick local iteration. */
const options = z
  .object({
    VIGIL_FAULTS_EVENTS: ms(4000),
    VIGIL_FAULTS_PACE_MS: ms(60_000),
    VIGIL_FAULTS_KAFKA_DOWN_MS: ms(30_000),
    VIGIL_FAULTS_ES_DOWN_MS: ms(60_000),
    VIGIL_FAULTS_REDIS_DOWN_MS: ms(10_000),
    VIGIL_FAULTS_RECEIVER_DOWN_MS: ms(120_000),
    VIGIL_FAULTS_RECOVERY_MS: ms(300_000),
    VIGIL_FAULTS_GROUP_INTERVAL_MS: ms(30_000),
    VIGIL_FAULTS_ONLY: z.string().optional(),
    VIGIL_FAULTS_KEEP_STACK: z.enum(['0', '1']).default('0'),
    VIGIL_FAULTS_KAFKA_PORT: ms(9292),
    VIGIL_FAULTS_ES_PORT: ms(9202),
    VIGIL_FAULTS_REDIS_PORT: ms(6392),
  })
  .parse(process.env);

const KAFKA_BROKERS = `127.0.0.1:${options.VIGIL_FAULTS_KAFKA_PORT}`;
const ELASTICSEARCH_URL = `http://127.0.0.1:${options.VIGIL_FAULTS_ES_PORT}`;
const REDIS_URL = `redis://127.0.0.1:${options.VIGIL_FAULTS_REDIS_PORT}`;
const LOG_DIR = join(tmpdir(), `vigil-faults-${new Date().toISOString().replace(/[:.]/g, '-')}`);

const say = (message: string): void => console.log(`[faults ${new Date().toISOString().slice(11, 19)}] ${message}`);
const sleep = (delayMs: number): Promise<void> => new Promise((done) => setTimeout(done, delayMs));

/** Runs scripts/stack.sh with the faults copy's ports. */
function stack(...args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn('bash', [STACK_SCRIPT, ...args], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        ...process.env,
        VIGIL_FAULTS_KAFKA_PORT: String(options.VIGIL_FAULTS_KAFKA_PORT),
        VIGIL_FAULTS_ES_PORT: String(options.VIGIL_FAULTS_ES_PORT),
        VIGIL_FAULTS_REDIS_PORT: String(options.VIGIL_FAULTS_REDIS_PORT),
      },
    });
    child.on('exit', (code) => (code === 0 ? done() : fail(new Error(`scripts/stack.sh ${args.join(' ')} exited with ${String(code)}`))));
  });
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  await new Promise((done) => server.close(done));
  return port;
}

// --- the webhook receiver, which can be taken down and brought back on the same port ----------

const receivedSchema = z.object({ type: z.string(), deliveryId: z.string(), alert: z.object({ id: z.string(), revision: z.number() }) });

interface Receiver {
  url: string;
  /** Received webhooks by fault (the path names the fault). */
  received: Map<string, ObservedNotification[]>;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const port = await freePort();
  const received = new Map<string, ObservedNotification[]>();
  const handle = (path: string, body: string, response: ServerResponse): void => {
    const parsed = receivedSchema.safeParse(JSON.parse(body));
    if (!parsed.success) {
      response.writeHead(400).end('not a Vigil webhook');
      return;
    }
    const fault = path.split('/')[2] ?? '';
    const list = received.get(fault) ?? [];
    list.push({ deliveryId: parsed.data.deliveryId, alertId: parsed.data.alert.id, revision: parsed.data.alert.revision, kind: parsed.data.type.replace(/^vigil\.alert\./, '') });
    received.set(fault, list);
    response.writeHead(200).end('ok');
  };
  let server: Server | undefined;
  const up = async (): Promise<void> => {
    const created = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => handle(request.url ?? '/', Buffer.concat(chunks).toString('utf8'), response));
    });
    await new Promise<void>((done) => created.listen(port, '127.0.0.1', done));
    server = created;
  };
  const down = async (): Promise<void> => {
    const current = server;
    server = undefined;
    if (!current) return;
    // Kept-alive connections too: from now on a delivery meets a refused connection.
    current.closeAllConnections();
    await new Promise((done) => current.close(done));
  };
  await up();
  return { url: `http://127.0.0.1:${port}`, received, up, down, close: down };
}

// --- vigil run as a child process, restarted by the suite when it exits by itself ---------------

class VigilProcess {
  private child: ChildProcess | undefined;
  private expected = false;
  private starts = 0;
  /** Exits the process made by itself (each followed by a restart, as a supervisor would). */
  unexpectedExits = 0;

  constructor(
    private readonly name: string,
    private readonly env: Record<string, string>,
    private readonly httpPort: number,
  ) {}

  start(): void {
    this.starts++;
    const log = openSync(join(LOG_DIR, `${this.name}-${this.starts}.log`), 'a');
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'vigil.js'), 'run'], { cwd: ROOT, env: { ...process.env, ...this.env }, stdio: ['ignore', log, log] });
    closeSync(log);
    this.child = child;
    child.on('exit', (code, signal) => {
      if (this.child !== child || this.expected) return;
      this.unexpectedExits++;
      say(`${this.name} exited by itself (code ${String(code)}, signal ${String(signal)}); restarting it in 1 s`);
      setTimeout(() => this.start(), 1000);
    });
  }

  private exited(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((done) => child.once('exit', () => done()));
  }

  /** SIGKILL, then a start 1 s later: a crash and its supervisor's restart. */
  async crashAndRestart(): Promise<void> {
    this.expected = true;
    this.child?.kill('SIGKILL');
    await this.exited();
    this.expected = false;
    await sleep(1000);
    this.start();
  }

  /** SIGTERM; SIGKILL after 60 s. Resolves with the exit code. */
  async stop(): Promise<number | null> {
    this.expected = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await this.exited();
    clearTimeout(timer);
    return child.exitCode;
  }

  async ready(): Promise<boolean> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.httpPort}/readyz`, { signal: AbortSignal.timeout(5000) });
      return response.status === 200;
    } catch {
      return false;
    }
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await check()) return true;
    } catch {
      // not yet: a store still down answers with an error
    }
    await sleep(1000);
  }
  say(`gave up waiting for ${what} after ${timeoutMs / 1000} s`);
  return false;
}

// --- the known set of events ----------------------------------------------------------------

interface Planned {
  family: Family;
  input: EmitInput<Family>;
  time: number;
}

/**
 * The events of one run, in event-time order: five minutes of normal traffic (seeded, so every
 * run gets the same) and the attack set of the demo, ending at `end`. Ids name the fault.
 */
function planEvents(fault: string, end: Date): Planned[] {
  const planned: Planned[] = [];
  const record =
    <F extends Family>(family: F) =>
    (input: EmitInput<F>): EmitResult => {
      const id = `${fault}-${planned.length}`;
      const time = input.time instanceof Date ? input.time.getTime() : Date.parse(input.time ?? end.toISOString());
      planned.push({ family, input: { ...input, id }, time });
      return { id, accepted: true };
    };
  const recorder: Emitter = {
    policy: record('policy'),
    invocation: record('invocation'),
    device: record('device'),
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
    stats: () => ({ accepted: planned.length, delivered: 0, dropped: 0, sendFailures: 0, buffered: 0, bufferedBytes: 0 }),
  };
  const slices = 5;
  for (let slice = 0; slice < slices; slice++) {
    emitSimulatedTraffic([recorder], Math.floor(options.VIGIL_FAULTS_EVENTS / slices), { seed: 42 + slice, now: new Date(end.getTime() - (slices - 1 - slice) * 60_000) });
  }
  injectAttacks(recorder, { now: end, runId: 'faults' });
  return planned.sort((a, b) => a.time - b.time);
}

// --- reading back ----------------------------------------------------------------------------

const kafka = new Kafka({ clientId: 'vigil-faults', brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING, retry: { retries: 10 } });
const elasticsearch = new Client({ node: ELASTICSEARCH_URL, requestTimeout: 30_000 });
const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });

/** Every message of a topic, read from the start to its end at the time of the call. */
async function readTopic(topic: string): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, number>;
  try {
    const topics = await admin.listTopics();
    if (!topics.includes(topic)) return [];
    ends = new Map((await admin.fetchTopicOffsets(topic)).map((item) => [item.partition, Number(item.high)]));
  } finally {
    await admin.disconnect();
  }
  const values: string[] = [];
  const pending = new Set([...ends].filter(([, high]) => high > 0).map(([partition]) => partition));
  if (pending.size === 0) return values;
  const consumer = kafka.consumer({ groupId: `vigil-faults-reader-${Math.random().toString(36).slice(2)}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ partition, message }) => {
        if (Number(message.offset) < (ends.get(partition) ?? 0)) values.push(message.value?.toString('utf8') ?? '');
        if (Number(message.offset) >= (ends.get(partition) ?? 0) - 1) pending.delete(partition);
        return Promise.resolve();
      },
    });
    const deadline = Date.now() + 60_000;
    while (pending.size > 0 && Date.now() < deadline) await sleep(200);
    if (pending.size > 0) throw new Error(`could not read ${topic} to its end`);
  } finally {
    await consumer.disconnect();
  }
  return values;
}

/** Every document's `_id` and chosen fields under an index pattern. */
async function readAll(index: string, fields: string[]): Promise<{ id: string; source: Record<string, unknown> }[]> {
  await elasticsearch.indices.refresh({ index, allow_no_indices: true, ignore_unavailable: true });
  const found: { id: string; source: Record<string, unknown> }[] = [];
  let page = await elasticsearch.search({ index, allow_no_indices: true, ignore_unavailable: true, scroll: '1m', size: 5000, _source: fields.length > 0 ? fields : false });
  while (page.hits.hits.length > 0) {
    for (const hit of page.hits.hits) found.push({ id: hit._id ?? '', source: (hit._source ?? {}) as Record<string, unknown> });
    if (!page._scroll_id) break;
    page = await elasticsearch.scroll({ scroll_id: page._scroll_id, scroll: '1m' });
  }
  if (page._scroll_id) await elasticsearch.clearScroll({ scroll_id: page._scroll_id }).catch(() => undefined);
  return found;
}

async function countEvents(prefix: string): Promise<number> {
  const index = indexNames(prefix).eventPattern;
  await elasticsearch.indices.refresh({ index, allow_no_indices: true, ignore_unavailable: true });
  return (await elasticsearch.count({ index, allow_no_indices: true, ignore_unavailable: true })).count;
}

const detectionSource = z.object({ event: z.object({ id: z.string() }), rule: z.object({ id: z.string() }), vigil: z.object({ detection: z.object({ key_text: z.string() }) }) });
const outboxSource = z.object({ deliveryId: z.string(), destination: z.string(), change: z.object({ kind: z.string(), alert: z.object({ id: z.string(), revision: z.number() }) }) });

async function readDetections(prefix: string): Promise<ObservedDetection[]> {
  const documents = await readAll(detectionIndexNames(prefix).pattern, ['event.id', 'rule.id', 'vigil.detection.key_text']);
  return documents.map(({ source }) => {
    const parsed = detectionSource.parse(source);
    return { id: parsed.event.id, rule: parsed.rule.id, key: parsed.vigil.detection.key_text };
  });
}

/**
 * What the alerter has not finished with: detections held until its watermark passes them (the
 * newest held can wait for the wall-clock fallback, VIGIL_ALERT_LATENESS_MS without a new
 * detection) and alert changes not yet written to the outbox. Until both are empty, alerts may
 * still open and notifications still be owed.
 */
async function readAlerterPending(prefix: string): Promise<number> {
  const keys = alertKeys(prefix);
  const [held, unsent] = await Promise.all([redis.zcard(keys.held), redis.hlen(keys.unsent)]);
  return held + unsent;
}

async function readOutbox(topic: string): Promise<ObservedNotification[]> {
  return (await readTopic(topic))
    .map((value) => outboxSource.parse(JSON.parse(value)))
    .filter((record) => record.destination === DESTINATION)
    .map((record) => ({ deliveryId: record.deliveryId, alertId: record.change.alert.id, revision: record.change.alert.revision, kind: record.change.kind }));
}

// --- one fault -------------------------------------------------------------------------------

interface FaultContext {
  primary: VigilProcess;
  receiver: Receiver;
  /** Starts an extra instance of the fault's Vigil (same groups and topics). */
  addInstance: () => Promise<VigilProcess>;
}

interface Fault {
  /** The word that picks it with `--only`. */
  key: string;
  name: string;
  /** When to inject it, as a fraction of the pacing. */
  at: number;
  /** Injects the fault and resolves when it is over (the service is back). */
  inject(context: FaultContext): Promise<void>;
}

const FAULTS: Fault[] = [
  { key: 'reference', name: 'none (reference)', at: 0, inject: () => Promise.resolve() },
  { key: 'kill', name: 'vigil run SIGKILLed mid-batch', at: 0.4, inject: ({ primary }) => primary.crashAndRestart() },
  {
    key: 'kafka',
    name: `Kafka broker stopped ${options.VIGIL_FAULTS_KAFKA_DOWN_MS / 1000} s`,
    at: 0.3,
    async inject() {
      await stack('faults-stop', 'kafka');
      await sleep(options.VIGIL_FAULTS_KAFKA_DOWN_MS);
      await stack('faults-start', 'kafka');
    },
  },
  {
    key: 'elasticsearch',
    name: `Elasticsearch stopped ${options.VIGIL_FAULTS_ES_DOWN_MS / 1000} s`,
    at: 0.3,
    async inject() {
      await stack('faults-stop', 'elasticsearch');
      await sleep(options.VIGIL_FAULTS_ES_DOWN_MS);
      await stack('faults-start', 'elasticsearch');
    },
  },
  {
    key: 'redis',
    name: `Redis restarted (down ${options.VIGIL_FAULTS_REDIS_DOWN_MS / 1000} s, AOF)`,
    at: 0.4,
    async inject() {
      await stack('faults-stop', 'redis');
      await sleep(options.VIGIL_FAULTS_REDIS_DOWN_MS);
      await stack('faults-start', 'redis');
    },
  },
  {
    key: 'rebalance',
    name: 'second vigil run added, then removed (rebalance)',
    at: 0.25,
    async inject({ addInstance }) {
      const second = await addInstance();
      await sleep(options.VIGIL_FAULTS_PACE_MS * 0.4);
      const code = await second.stop();
      if (code !== 0) say(`the second instance exited with ${String(code)} on SIGTERM`);
    },
  },
  {
    key: 'webhook',
    name: `webhook receiver down ${options.VIGIL_FAULTS_RECEIVER_DOWN_MS / 1000} s`,
    // Late in the pacing: the alerts open only once the alerter's watermark passes the attacks at
    // the end of the events (the newest wait for VIGIL_ALERT_LATENESS_MS without a detection), and
    // their first notification waits the group wait; struck at 20%, the receiver was back before
    // most of them were due, and only one met the outage.
    at: 0.9,
    async inject({ receiver }) {
      await receiver.down();
      await sleep(options.VIGIL_FAULTS_RECEIVER_DOWN_MS);
      await receiver.up();
    },
  },
];

const slug = (name: string): string => name.split(' ')[0]?.toLowerCase().replace(/[^a-z0-9]/g, '') ?? 'fault';

function faultEnv(id: string, receiverUrl: string, httpPort: number): Record<string, string> {
  return {
    KAFKA_BROKERS,
    ELASTICSEARCH_URL,
    REDIS_URL,
    VIGIL_TOPIC_POLICY: `${id}.policy`,
    VIGIL_TOPIC_INVOCATION: `${id}.invocation`,
    VIGIL_TOPIC_DEVICE: `${id}.device`,
    VIGIL_TOPIC_DEADLETTER: `${id}.deadletter`,
    VIGIL_TOPIC_DETECTIONS: `${id}.detections`,
    VIGIL_TOPIC_NOTIFICATIONS: `${id}.notifications`,
    VIGIL_TOPIC_NOTIFICATION_DEADLETTER: `${id}.notifications-deadletter`,
    VIGIL_CONSUMER_GROUP: `${id}-ingest`,
    VIGIL_ALERTER_GROUP: `${id}-alerter`,
    VIGIL_NOTIFIER_GROUP: `${id}-notifier`,
    VIGIL_INDEX_PREFIX: id,
    VIGIL_REDIS_PREFIX: id,
    VIGIL_TOPIC_PARTITIONS: '3',
    VIGIL_RULES_WATCH: 'false',
    VIGIL_HTTP_HOST: '127.0.0.1',
    VIGIL_HTTP_PORT: String(httpPort),
    // No resolve during a run: the notifications to account for are the openings and escalations.
    VIGIL_ALERT_RESOLVE_AFTER_MS: '3600000',
    // Grouping as by default (an incident's first notification waits 30 s for what follows), but
    // an escalation after it waits VIGIL_FAULTS_GROUP_INTERVAL_MS, not the default 5 minutes:
    // otherwise each run would wait 5 minutes more for the escalations it owes.
    VIGIL_ALERT_DESTINATIONS: JSON.stringify([
      { name: DESTINATION, type: 'webhook', url: `${receiverUrl}/webhook/${id}`, secret: SECRET, groupIntervalMs: options.VIGIL_FAULTS_GROUP_INTERVAL_MS },
    ]),
    LOG_LEVEL: 'info',
  };
}

interface Reference {
  detections: readonly ObservedDetection[];
  alerts: number;
}

async function runFault(fault: Fault, receiver: Receiver, reference: Reference | undefined): Promise<{ result: FaultResult; reference: Reference }> {
  const id = `f${Date.now().toString(36)}-${slug(fault.name)}`;
  const instances: VigilProcess[] = [];
  const newInstance = async (): Promise<VigilProcess> => {
    const port = await freePort();
    const instance = new VigilProcess(`${id}-${instances.length + 1}`, faultEnv(id, receiver.url, port), port);
    instances.push(instance);
    instance.start();
    if (!(await until(`${id} instance ${instances.length} to be ready`, () => instance.ready(), 120_000))) throw new Error(`${id}: vigil run did not become ready; see ${LOG_DIR}`);
    return instance;
  };
  say(`${fault.name}: starting vigil run (${id}), logs in ${LOG_DIR}`);
  const primary = await newInstance();

  const end = new Date(Date.now() + options.VIGIL_FAULTS_PACE_MS);
  const planned = planEvents(id, end);
  const first = planned[0]?.time ?? end.getTime();
  const span = Math.max(1, end.getTime() - first);
  const started = Date.now();
  const dropped: string[] = [];
  const emitter = createEmitter({
    kafka,
    topics: { policy: `${id}.policy`, invocation: `${id}.invocation`, device: `${id}.device` },
    source: { service: 'faults-suite', kind: 'service' },
    lingerMs: 20,
    maxBuffer: 1_000_000,
    onDrop: (event) => dropped.push(event.id),
  });
  const sentIds: string[] = [];
  const emitOne = (item: Planned): void => {
    const result = item.family === 'policy' ? emitter.policy(item.input as EmitInput<'policy'>) : item.family === 'invocation' ? emitter.invocation(item.input as EmitInput<'invocation'>) : emitter.device(item.input as EmitInput<'device'>);
    if (result.accepted) sentIds.push(result.id);
  };

  let faultEnd: number | undefined;
  let caughtUp: number | undefined;
  const context: FaultContext = { primary, receiver, addInstance: newInstance };
  const injection = (async () => {
    await sleep(options.VIGIL_FAULTS_PACE_MS * fault.at);
    say(`${fault.name}: injecting (${sentIds.length}/${planned.length} events sent)`);
    const injectedAt = Date.now();
    await fault.inject(context);
    faultEnd = Date.now();
    say(`${fault.name}: fault over after ${((faultEnd - injectedAt) / 1000).toFixed(1)} s (stopping and starting included)`);
    // Caught up: everything sent before the fault ended is indexed.
    const owed = sentIds.length;
    if (await until(`the ${owed} events sent before the fault ended`, async () => (await countEvents(id)) >= owed, options.VIGIL_FAULTS_RECOVERY_MS)) caughtUp = Date.now();
  })();
  // Paced: each event goes out when its share of the pacing is reached, in event-time order.
  let next = 0;
  while (next < planned.length) {
    const due = first + ((Date.now() - started) / options.VIGIL_FAULTS_PACE_MS) * span;
    while (next < planned.length && (planned[next] as Planned).time <= due) emitOne(planned[next++] as Planned);
    await sleep(200);
  }
  await injection;
  for (;;) {
    try {
      await emitter.flush();
      if (emitter.stats().buffered === 0) break;
    } catch {
      await sleep(1000);
    }
  }
  await emitter.close();
  say(`${fault.name}: ${sentIds.length} events sent (${dropped.length} dropped by the emitter); waiting for them in Elasticsearch`);

  const indexedAll = await until(`${sentIds.length} events indexed`, async () => (await countEvents(id)) >= sentIds.length, options.VIGIL_FAULTS_RECOVERY_MS);
  // The instance that stays (a second one was added and removed by then) answers /readyz again.
  const readyAll = await until('vigil run to be ready', () => primary.ready(), 60_000);

  // Settle: detections, alerts and deliveries stop changing and every outbox record has arrived.
  let observation: FaultObservation | undefined;
  let previous = '';
  let stableSince = Date.now();
  const settleDeadline = Date.now() + options.VIGIL_FAULTS_RECOVERY_MS;
  for (;;) {
    try {
      const [documents, detections, alerts, outbox, eventDeadLetters, notificationDeadLetters, alerterPending] = await Promise.all([
        readAll(indexNames(id).eventPattern, []),
        readDetections(id),
        readAll(alertIndexNames(id).index, []),
        readOutbox(`${id}.notifications`),
        readTopic(`${id}.deadletter`),
        readTopic(`${id}.notifications-deadletter`),
        readAlerterPending(id),
      ]);
      observation = {
        fault: fault.name,
        sentIds,
        droppedByProducer: dropped.length,
        indexedIds: documents.map((document) => document.id),
        eventDeadLetters: eventDeadLetters.length,
        detections,
        ...(reference ? { reference: reference.detections, referenceAlerts: reference.alerts } : {}),
        alertIds: alerts.map((alert) => alert.id),
        alerterPending,
        outbox,
        received: [...(receiver.received.get(id) ?? [])],
        notificationDeadLetters: notificationDeadLetters.length,
        supervisorRestarts: instances.reduce((sum, instance) => sum + instance.unexpectedExits, 0),
        recovered: indexedAll && readyAll && (fault.at === 0 || caughtUp !== undefined),
        ...(faultEnd === undefined || caughtUp === undefined || fault.at === 0 ? {} : { catchUpMs: Math.max(0, caughtUp - faultEnd) }),
      };
      const row = accountFault(observation);
      const state = JSON.stringify([row.detections, row.alerts, row.alerterPending, row.notificationsExpected, observation.received.length, row.notificationDeadLetters]);
      if (state !== previous) {
        previous = state;
        stableSince = Date.now();
      }
      if (row.alerterPending === 0 && row.notificationsLost === 0 && Date.now() - stableSince >= 10_000) break;
    } catch (error) {
      say(`${fault.name}: reading back failed (${error instanceof Error ? error.message : String(error)}); retrying`);
    }
    if (Date.now() > settleDeadline) break;
    await sleep(3000);
  }
  for (const instance of instances) {
    const code = await instance.stop();
    if (code !== 0) say(`${fault.name}: an instance exited with ${String(code)} on SIGTERM`);
  }
  if (!observation) throw new Error(`${fault.name}: nothing could be read back`);
  const result = accountFault(observation);
  const missed = missedTargets(result);
  say(`${fault.name}: ${missed.length === 0 ? 'pass' : `FAIL (${missed.join(', ')})`}`);
  return { result, reference: { detections: [...observation.detections], alerts: observation.alertIds.length } };
}

async function main(): Promise<number> {
  const began = Date.now();
  mkdirSync(LOG_DIR, { recursive: true });
  // Before anything starts: a misspelt fault fails at once, naming the ones there are.
  const chosen = selectFaults(FAULTS, onlyWords(process.argv.slice(2), options.VIGIL_FAULTS_ONLY));
  say(`starting the faults copy of the stack (${KAFKA_BROKERS}, ${ELASTICSEARCH_URL}, ${REDIS_URL})`);
  await stack('up-faults');
  const receiver = await startReceiver();
  const results: FaultResult[] = [];
  let reference: Reference | undefined;
  try {
    for (const fault of chosen) {
      const { result, reference: observed } = await runFault(fault, receiver, reference);
      if (fault.at === 0) reference = observed;
      results.push(result);
    }
  } finally {
    await receiver.close();
    await elasticsearch.close();
    redis.disconnect();
    if (options.VIGIL_FAULTS_KEEP_STACK !== '1') await stack('down-faults');
  }
  const minutes = (Date.now() - began) / 60_000;
  console.log(`\n${formatTable(results)}\n`);
  const failed = results.filter((result) => missedTargets(result).length > 0);
  console.log(
    `${results.length} runs in ${minutes.toFixed(1)} min (${options.VIGIL_FAULTS_EVENTS} events paced over ${options.VIGIL_FAULTS_PACE_MS / 1000} s each); ` +
      (failed.length === 0 ? 'every target met' : `targets missed: ${failed.map((result) => result.fault).join('; ')}`),
  );
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    // A wrong argument is one line; anything else with its stack.
    console.error(error instanceof ValidationError ? `faults: ${error.message}` : error);
    process.exit(1);
  },
);
