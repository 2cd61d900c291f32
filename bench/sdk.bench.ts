/**
 * What the SDK costs the service that embeds it.
 *
 * 1. Memory: the RSS a process gains by importing it. Each case is a fresh `node -e` child that
 *    loads one thing, collects garbage and reports its RSS; the gain is that minus a bare Node
 *    child's, median of several children. The cases are the compiled SDK (what a service
 *    installs), the SDK after creating an emitter and emitting once (no network), kafkajs alone
 *    (what the service pays for its own client anyway), and the old way in: the ingest barrel,
 *    which the docs used to point services at, through tsx and compiled. Target: the SDK at most
 *    15 MB over bare Node (issue 8).
 * 2. Time: `emit()` (fill the envelope, zod validation, serialise, buffer), against baselines run
 *    in the same process: JSON.stringify of the same input, and the zod parse alone. The emitter's
 *    producer never connects: linger and batch size are set so no send is ever due, and a fresh
 *    emitter takes over every batch of events, as a sent batch would be freed. Target: at most
 *    5 µs per emit() (issue 12; pino logs a line in about 1 µs).
 * 3. Delivery: events per second from emit() to Kafka's acknowledgement, one process to the
 *    local broker, against raw kafkajs `sendBatch` of the very same message bytes (serialised
 *    beforehand, requests of at most 900 kB, one in flight) in the same run, each with no
 *    compression and with gzip (LZ4 too for raw kafkajs, with Vigil's codec, as the baseline of
 *    the LZ4 rows); and the same on librdkafka, with LZ4 as well: raw node-rdkafka `produce()` of
 *    the same bytes (as Buffers, made beforehand) until its queue is flushed, and the emitter on
 *    `rdkafkaClient()` (@vigil/sdk/rdkafka). The emitter is fed as a busy service
 *    would: as fast as it takes events, pausing only while its buffer is full. Beside each rate:
 *    the CPU per event of this process (librdkafka's threads included) and of the broker (from
 *    /proc, when the broker runs on this machine), which say what caps delivery, and the bytes
 *    per event the broker's log grew by (from the stack's data directory), what each codec saves. Target: at least
 *    100,000 events/s, judged on the emitter's own rate, per client.
 * 4. Buffer memory: the heap an emitter holds with 200,000 events buffered while Kafka is away
 *    (the issue measured 817 MB of RSS), and that the byte bound holds.
 *
 *   npm run bench:sdk [-- --children N --events N --rounds N --deliver N --buffered N]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Kafka, Partitioners, logLevel, type Message } from 'kafkajs';
import { randomUUID } from 'node:crypto';
import { Producer as RdkafkaProducer } from 'node-rdkafka';
import { createEmitter, partitionKeyOf, type Emitter, type EmitterCompression, type EmitterKafka } from '../ingest/sdk';
import { librdkafkaConfig, rdkafkaClient } from '../ingest/sdk/rdkafka';
import { registerCodecs, sleep } from '../platform';
import { CURRENT_SCHEMA_VERSION, familySchemas } from '../schemas';
import { positiveInteger } from './arguments';
import { gatewayEvents, type Emitted } from './gateway-events';
import { median } from './stats';

const ROOT = join(__dirname, '..');
const TARGET_MB = 15;

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}
const CHILDREN = positiveInteger(argument('--children'), 5, '--children');
const EVENTS = positiveInteger(argument('--events'), 20_000, '--events');
const ROUNDS = positiveInteger(argument('--rounds'), 7, '--rounds');
const DELIVER = positiveInteger(argument('--deliver'), 200_000, '--deliver');
const BUFFERED = positiveInteger(argument('--buffered'), 200_000, '--buffered');
const BROKERS = (process.env.KAFKA_BROKERS || '127.0.0.1:9092').split(',');
const TARGET_EMIT_US = 5;
const TARGET_EVENTS_PER_SECOND = 100_000;
/** Clock ticks per second, the unit of /proc/PID/stat's CPU times. */
const CLOCK_TICKS = process.platform === 'linux' ? Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100 : 100;

const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1).padStart(6);

// ---- 1. memory -------------------------------------------------------------------------------

interface MemoryCase {
  name: string;
  /** Extra node flags, e.g. a loader. */
  flags?: string[];
  /** Code the child runs before measuring. */
  load: string;
}

const sdk = JSON.stringify(join(ROOT, 'dist', 'ingest', 'sdk'));
const cases: MemoryCase[] = [
  { name: 'bare Node', load: '' },
  { name: '@vigil/sdk, compiled', load: `require(${sdk});` },
  {
    name: '@vigil/sdk + createEmitter + one emit',
    load:
      `const { createEmitter } = require(${sdk});` +
      // A stand-in client: with this linger and batch size the emitter never asks it for a producer.
      `const e = createEmitter({ kafka: { producer() { throw new Error('never used'); } }, source: { service: 'bench', kind: 'service' }, lingerMs: 3600000 });` +
      `e.policy({ policy: { kind: 'authn', name: 'p', outcome: 'fail', group: 'g', resource: { api: 'a', method: 'GET', path: '/' } } });`,
  },
  { name: 'kafkajs alone (the service has it anyway)', load: `require('kafkajs');` },
  { name: 'ingest barrel, compiled', load: `require(${JSON.stringify(join(ROOT, 'dist', 'ingest'))});` },
  { name: 'ingest barrel through tsx (old docs)', flags: ['--require', 'tsx/cjs'], load: `require(${JSON.stringify(join(ROOT, 'ingest'))});` },
];

/** The RSS of a fresh child after it ran `load` and collected garbage. */
function rssOf(memoryCase: MemoryCase): number {
  const code = `${memoryCase.load} global.gc(); process.stdout.write(String(process.memoryUsage().rss));`;
  const child = spawnSync(process.execPath, ['--expose-gc', ...(memoryCase.flags ?? []), '-e', code], { cwd: ROOT, encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`${memoryCase.name}: the child failed: ${child.stderr}`);
  return Number(child.stdout);
}

// The compiled SDK and pipeline are what a service and `vigil` run: build them if the sources moved.
const build = spawnSync('bash', [join(ROOT, 'scripts', 'build.sh'), '--if-stale'], { stdio: 'inherit' });
if (build.status !== 0) throw new Error('npm run build failed');

const samples = new Map<string, number[]>(cases.map((memoryCase) => [memoryCase.name, []]));
// Interleaved, so a change in the machine's load touches every case alike.
for (let child = 0; child < CHILDREN; child++) {
  for (const memoryCase of cases) samples.get(memoryCase.name)?.push(rssOf(memoryCase));
}
const rss = new Map(cases.map((memoryCase) => [memoryCase.name, median(samples.get(memoryCase.name) ?? [])]));
const bare = rss.get('bare Node') ?? NaN;
const sdkGain = (rss.get('@vigil/sdk, compiled') ?? NaN) - bare;

console.log(`memory: RSS gained over bare Node (${mb(bare).trim()} MB), median of ${CHILDREN} children each`);
console.log(`  ${'case'.padEnd(44)} ${'MB'.padStart(6)}  vs SDK`);
for (const memoryCase of cases.slice(1)) {
  const gain = (rss.get(memoryCase.name) ?? NaN) - bare;
  console.log(`  ${memoryCase.name.padEnd(44)} ${mb(gain)}  ${(gain / sdkGain).toFixed(1).padStart(5)}x`);
}
const met = sdkGain <= TARGET_MB * 1024 * 1024;
console.log(`  target: the SDK at most ${TARGET_MB} MB over bare Node: ${met ? 'met' : 'MISSED'}`);
if (!met) process.exitCode = 1;

// ---- 2. emit() -------------------------------------------------------------------------------

const inputs = (count: number): Emitted[] => gatewayEvents(count, { varied: false });

const events = inputs(EVENTS);
const source = { service: 'bench', kind: 'service' } as const;
const time = new Date().toISOString();
// What the emitter hands to zod, prepared beforehand so the zod case measures the parse alone.
const candidates = events.map(({ family, input }, n) => ({ family, candidate: { ...input, family, id: `bench-event-${n}`, schemaVersion: CURRENT_SCHEMA_VERSION, time, source } }));
// A real client for an address nothing listens on; never used, as no send is ever due.
const kafka = new Kafka({ brokers: ['127.0.0.1:1'], clientId: 'sdk-bench', logLevel: logLevel.NOTHING });
/** The emitter's default batch size. */
const BATCH = 500;
const freshEmitter = (): Emitter => createEmitter({ kafka, source, lingerMs: 3_600_000, maxBatch: BATCH + 1, maxBuffer: BATCH + 1 });

const emitCases: Record<'stringify' | 'zod' | 'emit', () => void> = {
  stringify: () => {
    for (const { input } of events) JSON.stringify(input);
  },
  zod: () => {
    for (const { family, candidate } of candidates) familySchemas[family].safeParse(candidate);
  },
  emit: () => {
    let emitter = freshEmitter();
    let accepted = 0;
    events.forEach((event, n) => {
      // A service's buffer holds one batch (500 by default) before it is sent and freed; keeping
      // all the events of a round alive instead would measure the garbage collector's old space.
      if (n % BATCH === 0) {
        accepted += emitter.stats().accepted;
        emitter = freshEmitter();
      }
      // The switch keeps each call typed by its family, as a service's call would be.
      if (event.family === 'policy') emitter.policy(event.input);
      else if (event.family === 'invocation') emitter.invocation(event.input);
      else emitter.device(event.input);
    });
    accepted += emitter.stats().accepted;
    if (accepted !== EVENTS) throw new Error(`expected ${EVENTS} accepted events, got ${accepted}`);
  },
};

const timings: Record<keyof typeof emitCases, number[]> = { stringify: [], zod: [], emit: [] };
// CPU time as well as wall time: on a machine loaded past its cores, wall time counts the turns
// other processes took; the process's CPU time counts only its own work (GC threads included).
const cpuTimings: Record<keyof typeof emitCases, number[]> = { stringify: [], zod: [], emit: [] };
/** The process's CPU time so far, in milliseconds. */
const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
for (const run of Object.values(emitCases)) run(); // warm-up: JIT and zod's compiled checks
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(emitCases) as Array<[keyof typeof emitCases, () => void]>) {
    const started = performance.now();
    const cpuStarted = cpuMs();
    run();
    timings[name].push(performance.now() - started);
    cpuTimings[name].push(cpuMs() - cpuStarted);
  }
}
const perEvent = (name: keyof typeof emitCases): number => (median(timings[name]) / EVENTS) * 1e6;
const cpuPerEvent = (name: keyof typeof emitCases): number => (median(cpuTimings[name]) / EVENTS) * 1e6;
const baseline = perEvent('stringify');
console.log(`\nemit(): ${EVENTS} events of the three families, median of ${ROUNDS} rounds, producer never connected`);
console.log(`  baseline JSON.stringify(input)          1.00x  (${baseline.toFixed(0)} ns/event)`);
console.log(`  zod parse of the filled-in event   ${(perEvent('zod') / baseline).toFixed(2).padStart(9)}x  (${perEvent('zod').toFixed(0)} ns/event)`);
console.log(
  `  emit(): envelope + check + buffer  ${(perEvent('emit') / baseline).toFixed(2).padStart(9)}x  (${perEvent('emit').toFixed(0)} ns/event, ${(perEvent('emit') / perEvent('zod')).toFixed(2)}x the zod parse)`,
);
console.log(
  `  process CPU per event: stringify ${cpuPerEvent('stringify').toFixed(0)} ns, zod ${cpuPerEvent('zod').toFixed(0)} ns, emit() ${cpuPerEvent('emit').toFixed(0)} ns (${(cpuPerEvent('emit') / cpuPerEvent('stringify')).toFixed(2)}x stringify)`,
);
const emitMet = perEvent('emit') <= TARGET_EMIT_US * 1000;
console.log(`  target: emit() at most ${TARGET_EMIT_US} µs: ${emitMet ? 'met' : 'MISSED'} by wall time, ${cpuPerEvent('emit') <= TARGET_EMIT_US * 1000 ? 'met' : 'MISSED'} by CPU time`);
if (!emitMet) process.exitCode = 1;

// ---- 3. delivery -----------------------------------------------------------------------------

/** Resolves on the next turn of the event loop, after pending I/O callbacks. */
const yieldToIo = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Events per second of wall time, and per second of the process's CPU time. */
interface Rate {
  rate: number;
  perCpuSecond: number;
  /** The broker's CPU per event, in µs (NaN when its process is not on this machine). */
  brokerUs: number;
  /** Bytes per event the broker's log grew by (batches stay compressed there); NaN without a local broker's files. */
  storedBytes: number;
}

/** Where the stack script keeps the local broker's log (scripts/stack.sh). */
const KAFKA_DATA = join(process.env.VIGIL_STATE_DIR ?? '/var/lib/vigil', 'kafka-data');
/** The bytes of `topic`'s log segments on the local broker; NaN if its files can't be read. */
function topicLogBytes(topic: string): number {
  try {
    let total = 0;
    for (const partition of readdirSync(KAFKA_DATA).filter((name) => name.startsWith(`${topic}-`))) {
      for (const file of readdirSync(join(KAFKA_DATA, partition)).filter((name) => name.endsWith('.log'))) total += statSync(join(KAFKA_DATA, partition, file)).size;
    }
    return total;
  } catch {
    return Number.NaN;
  }
}

/**
 * The process ids of the Kafka brokers running on this machine, if any: their CPU time says
 * whether the broker or the producing process is what limits delivery. All of them: the stack's
 * secured copy may run beside the plain broker, idle, and picking it alone would read zero.
 */
function brokerPids(): string[] {
  const pids: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('kafka.Kafka')) pids.push(entry);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}
const BROKER_PIDS = process.platform === 'linux' ? brokerPids() : [];
/** The brokers' CPU time so far (user and system), in milliseconds; NaN without a local broker. */
function brokerCpuMs(): number {
  if (BROKER_PIDS.length === 0) return Number.NaN;
  let total = 0;
  for (const pid of BROKER_PIDS) {
    try {
      // Fields 14 and 15 of /proc/PID/stat, after the command name in parentheses, in clock ticks.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      total += ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    } catch {
      return Number.NaN;
    }
  }
  return total;
}

/** The emitter's buffer bound in the delivery runs: the bench stops feeding when it is reached. */
const FEED_BUFFER = 20_000;
/** The raw baseline's request size: the emitter's default maxBatchBytes. */
const RAW_BATCH_BYTES = 900_000;

async function delivery(): Promise<void> {
  // Raw kafkajs writes LZ4 with Vigil's codec (lz4-napi) for the LZ4 baseline.
  registerCodecs();
  const live = new Kafka({ brokers: BROKERS, clientId: 'sdk-bench-delivery', logLevel: logLevel.WARN });
  const admin = live.admin();
  await admin.connect();
  const topic = `bench.sdk.${process.pid}.${Date.now()}`;
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] });
  const topics = { policy: topic, invocation: topic, device: topic };
  const sent = gatewayEvents(DELIVER, { varied: true });
  try {
    // The bytes the emitter would send, made beforehand: what raw kafkajs is handed.
    const messages: Message[] = sent.map(({ family, input }) => {
      const event = familySchemas[family].parse({ ...input, family, id: randomUUID(), schemaVersion: CURRENT_SCHEMA_VERSION, time, source });
      return { key: partitionKeyOf(event), value: JSON.stringify(event), headers: { 'vigil-family': family } };
    });
    const bytes = messages.reduce((sum, message) => sum + Buffer.byteLength(message.value as string), 0);
    // Requests of at most RAW_BATCH_BYTES of keys and values: the broker refuses a record batch
    // over its message.max.bytes (1 MB by default), as a first run with 10,000 messages showed.
    const batches: Message[][] = [[]];
    let batchBytes = 0;
    for (const message of messages) {
      const size = Buffer.byteLength(message.value as string) + Buffer.byteLength(message.key as string) + 64;
      if (batchBytes + size > RAW_BATCH_BYTES && (batches.at(-1)?.length ?? 0) > 0) {
        batches.push([]);
        batchBytes = 0;
      }
      batches.at(-1)?.push(message);
      batchBytes += size;
    }

    /** Times `deliver` (every message acknowledged when it resolves): wall, this process's and the broker's CPU, the broker's log growth. */
    const timed = async (deliver: () => Promise<void>): Promise<Rate> => {
      const started = performance.now();
      const cpuStarted = cpuMs();
      const brokerStarted = brokerCpuMs();
      const storedStarted = topicLogBytes(topic);
      await deliver();
      const elapsed = performance.now() - started;
      const cpu = cpuMs() - cpuStarted;
      const broker = brokerCpuMs() - brokerStarted;
      const count = messages.length;
      return { rate: (count / elapsed) * 1000, perCpuSecond: (count / cpu) * 1000, brokerUs: (broker / count) * 1000, storedBytes: (topicLogBytes(topic) - storedStarted) / count };
    };
    const raw = async (compression: number): Promise<Rate> => {
      const producer = live.producer({ allowAutoTopicCreation: false, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      const measured = await timed(async () => {
        for (const batch of batches) await producer.sendBatch({ acks: -1, compression, topicMessages: [{ topic, messages: batch }] });
      });
      await producer.disconnect();
      return measured;
    };
    /**
     * node-rdkafka's own loop: every message handed to librdkafka, then its queue flushed (the
     * client's configuration reports failed messages only, so a flush is when all are acknowledged).
     */
    const rawRdkafka = async (compression: number): Promise<Rate> => {
      // The configuration the SDK's client uses, so the two differ only by the emitter.
      const { global, topic: topicConfig } = librdkafkaConfig({ brokers: BROKERS, clientId: 'sdk-bench-rdkafka' }, compression, -1);
      const producer = new RdkafkaProducer(global, topicConfig);
      await new Promise<void>((resolve, reject) => producer.connect({ timeout: 10_000 }, (error) => (error ? reject(new Error(error.message)) : resolve())));
      producer.setPollInterval(5);
      const values = messages.map((message) => ({ key: message.key as string, value: Buffer.from(message.value as string), family: message.headers?.['vigil-family'] as string }));
      const headers = new Map(['policy', 'invocation', 'device'].map((family) => [family, [{ 'vigil-family': family }]]));
      let failed = 0;
      producer.on('delivery-report', (error) => {
        if (error) failed++;
      });
      const measured = await timed(async () => {
        for (let n = 0; n < values.length; ) {
          const message = values[n];
          if (message === undefined) break;
          try {
            producer.produce(topic, null, message.value, message.key, null, undefined, headers.get(message.family));
            n++;
          } catch {
            await sleep(5); // librdkafka's queue is full: let it send
          }
        }
        await new Promise<void>((resolve, reject) => producer.flush(60_000, (error) => (error ? reject(new Error(error.message)) : resolve())));
      });
      await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
      if (failed > 0) throw new Error(`raw node-rdkafka: ${failed} of ${values.length} not delivered`);
      return measured;
    };
    const emitter = async (compression: EmitterCompression, client: EmitterKafka): Promise<Rate> => {
      const sdkEmitter = createEmitter({ kafka: client, source, topics, compression, maxBuffer: FEED_BUFFER });
      const measured = await timed(async () => {
        let n = 0;
        while (n < sent.length) {
          // A busy service emits until the emitter pushes back (a full buffer), then lets I/O run.
          for (let room = FEED_BUFFER - sdkEmitter.stats().buffered; room > 0 && n < sent.length; room--, n++) {
            const event = sent[n];
            if (event === undefined) break;
            const result =
              event.family === 'policy' ? sdkEmitter.policy(event.input) : event.family === 'invocation' ? sdkEmitter.invocation(event.input) : sdkEmitter.device(event.input);
            if (!result.accepted) throw new Error('the bench fed a full buffer');
          }
          await yieldToIo();
        }
        await sdkEmitter.flush();
      });
      const { delivered } = sdkEmitter.stats();
      await sdkEmitter.close();
      if (delivered !== sent.length) throw new Error(`delivered ${delivered} of ${sent.length}`);
      return measured;
    };

    // LZ4 only on librdkafka for the emitter (kafkajs writes it only with a codec package, which
    // the SDK does not bring); raw kafkajs writes it here with Vigil's codecs, as the baseline.
    const CODECS = [
      ['none', 0],
      ['gzip', 1],
      ['lz4', 3],
    ] as const;
    const onKafkajs = (codec: EmitterCompression): boolean => codec !== 'lz4';
    const rates: Record<string, Rate[]> = {};
    const record = (name: string, measured: Rate): void => void (rates[name] ??= []).push(measured);
    // Two rounds, interleaved, so the machine's load touches every case alike; the better of two is kept.
    for (let round = 0; round < 2; round++) {
      for (const [codec, compression] of CODECS) {
        record(`raw kafkajs ${codec}`, await raw(compression));
        if (onKafkajs(codec)) record(`emitter kafkajs ${codec}`, await emitter(codec, live));
        record(`raw rdkafka ${codec}`, await rawRdkafka(compression));
        record(`emitter rdkafka ${codec}`, await emitter(codec, rdkafkaClient({ brokers: BROKERS, clientId: 'sdk-bench-emitter' })));
      }
    }
    const best = (name: string): number => Math.max(...(rates[name] ?? []).map((measured) => measured.rate));
    const bestPerCpu = (name: string): number => Math.max(...(rates[name] ?? []).map((measured) => measured.perCpuSecond));
    const broker = (name: string): number => median((rates[name] ?? []).map((measured) => measured.brokerUs));
    const stored = (name: string): number => median((rates[name] ?? []).map((measured) => measured.storedBytes));
    const rate = (value: number): string => `${Math.round(value).toLocaleString('en-US').padStart(9)} events/s`;
    const cpuUs = (name: string): string => `${(1e6 / bestPerCpu(name)).toFixed(1).padStart(5)} µs`;
    console.log(
      `\ndelivery: ${DELIVER} events (${(bytes / DELIVER).toFixed(0)} B each) to ${BROKERS.join(',')}, 3 partitions, acks all, best of 2 rounds; ` +
        `the baseline is raw kafkajs in its fixed configuration: ${batches.length} sendBatch requests of <= ${RAW_BATCH_BYTES} B, one in flight`,
    );
    console.log(`  ${'codec'.padEnd(5)} ${'case'.padEnd(46)} ${'x raw kafkajs'.padStart(13)}  ${'wall'.padStart(18)}  process CPU/event  broker CPU/event  broker log/event`);
    for (const [codec] of CODECS) {
      const baseline = best(`raw kafkajs ${codec}`);
      for (const [name, label] of [
        [`raw kafkajs ${codec}`, 'raw kafkajs sendBatch of the same bytes'],
        ...(onKafkajs(codec) ? ([[`emitter kafkajs ${codec}`, 'emitter on kafkajs, emit() to acknowledged']] as const) : []),
        [`raw rdkafka ${codec}`, 'raw node-rdkafka produce() of the same bytes'],
        [`emitter rdkafka ${codec}`, 'emitter on rdkafkaClient(), emit() to acked'],
      ] as const) {
        console.log(
          `  ${codec.padEnd(5)} ${label.padEnd(46)} ${`${(best(name) / baseline).toFixed(2)}x`.padStart(13)}  ${rate(best(name))}  ${cpuUs(name).padStart(17)}  ${`${broker(name).toFixed(1)} µs`.padStart(16)}  ${`${stored(name).toFixed(0)} B`.padStart(16)}`,
        );
      }
      console.log(`  ${codec.padEnd(5)} emitter on rdkafkaClient() against raw node-rdkafka: ${(best(`emitter rdkafka ${codec}`) / best(`raw rdkafka ${codec}`)).toFixed(2)}x`);
    }
    // Judged on the emitter's own events per second, not on a ratio: what issue 12 asks of it.
    const verdict = (client: string): string =>
      CODECS.filter(([codec]) => client === 'rdkafka' || onKafkajs(codec)).map(([codec]) => `${best(`emitter ${client} ${codec}`) >= TARGET_EVENTS_PER_SECOND ? 'met' : 'MISSED'} with ${codec}`).join(', ');
    const deliveryMet = CODECS.some(([codec]) => best(`emitter rdkafka ${codec}`) >= TARGET_EVENTS_PER_SECOND || (onKafkajs(codec) && best(`emitter kafkajs ${codec}`) >= TARGET_EVENTS_PER_SECOND));
    console.log(
      `  target: the emitter delivers at least ${TARGET_EVENTS_PER_SECOND.toLocaleString('en-US')} events/s: on kafkajs ${verdict('kafkajs')}; on librdkafka ${verdict('rdkafka')} ` +
        `(the default compression is gzip on kafkajs, LZ4 on librdkafka); on kafkajs the producing process's CPU per event sets the ceiling: ` +
        `${TARGET_EVENTS_PER_SECOND.toLocaleString('en-US')} events/s needs at most ${(1e6 / TARGET_EVENTS_PER_SECOND).toFixed(0)} µs of it per event on one core`,
    );
    if (!deliveryMet) process.exitCode = 1;
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

// ---- 4. buffer memory ------------------------------------------------------------------------

function bufferMemory(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const held = gatewayEvents(BUFFERED, { varied: true });
  gc();
  const before = process.memoryUsage();
  // No send is ever due: the buffer fills as it would while Kafka is away.
  const away = createEmitter({ kafka, source, lingerMs: 3_600_000, maxBatch: BUFFERED + 1, maxBuffer: BUFFERED, maxBufferBytes: 1024 * 1024 * 1024 });
  for (const { family, input } of held) {
    if (family === 'policy') away.policy(input);
    else if (family === 'invocation') away.invocation(input);
    else away.device(input);
  }
  gc();
  const after = process.memoryUsage();
  const stats = away.stats();
  console.log(`\nbuffer memory: ${stats.buffered} events buffered while Kafka is away (${((stats.bufferedBytes ?? NaN) / 1024 / 1024).toFixed(1)} MB of message bytes)`);
  console.log(`  heap held   ${mb(after.heapUsed - before.heapUsed)} MB  (${((after.heapUsed - before.heapUsed) / stats.buffered).toFixed(0)} B/event)`);
  console.log(`  RSS gained  ${mb(after.rss - before.rss)} MB`);
  // The byte bound: a small one must stop the buffer well before the event bound.
  const bounded = createEmitter({ kafka, source, lingerMs: 3_600_000, maxBatch: BUFFERED + 1, maxBuffer: BUFFERED, maxBufferBytes: 1024 * 1024, onDrop: () => undefined });
  for (const { family, input } of held) {
    if (family === 'policy') bounded.policy(input);
    else if (family === 'invocation') bounded.invocation(input);
    else bounded.device(input);
  }
  const boundedStats = bounded.stats();
  const boundHeld = (boundedStats.bufferedBytes ?? Infinity) <= 1024 * 1024;
  console.log(`  maxBufferBytes 1 MB: ${boundedStats.buffered} buffered (${boundedStats.bufferedBytes ?? NaN} B), ${boundedStats.dropped} dropped: bound ${boundHeld ? 'held' : 'NOT HELD'}`);
  if (!boundHeld) process.exitCode = 1;
}

bufferMemory();
delivery().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
