import type { randomFillSync as RandomFillSync } from 'node:crypto';
import type { Message, ProducerConfig } from 'kafkajs';
// The contract and the two plumbing files are imported one by one, never through their barrels:
// `schemas/` also holds the Elasticsearch templates and `platform/` pulls in pino and the config,
// none of which belongs in a service that only emits. test/unit/architecture.test.ts keeps it so.
import { CURRENT_SCHEMA_VERSION, FAMILIES, envelopeShape, type Family } from '../../schemas/envelope';
import { describeIssues, familySchemas, type EventInputOf, type VigilEvent } from '../../schemas/event';
import { ValidationError, errorMessage } from '../../platform/errors';
import { backoffDelay } from '../../platform/retry';
import { fastMessage } from './fast-check';
import type { SdkLogger } from './logger';

type Source = EventInputOf<'policy'>['source'];

/**
 * What a caller passes to one of the emitter's methods: the event without its family, and with
 * `id`, `time`, `schemaVersion` and `source` optional (the emitter fills them in).
 */
export type EmitInput<F extends Family> = Omit<EventInputOf<F>, 'family' | 'id' | 'time' | 'schemaVersion' | 'source'> & {
  id?: string;
  time?: string | Date;
  source?: Source;
};

/** What the emitter does when its buffer is full. */
export type OverflowPolicy = 'drop-newest' | 'drop-oldest';

/**
 * How the emitter compresses each produce request. Any client writes `none` and `gzip` (kafkajs
 * without a codec package: the SDK brings no dependency beyond kafkajs and zod); `snappy` and
 * `lz4` only a client that says so in its `compressions` (librdkafka's). Vigil reads all four, and ZSTD.
 */
export type EmitterCompression = 'none' | 'gzip' | 'snappy' | 'lz4';

/** What every client writes. */
const COMPRESSIONS: readonly EmitterCompression[] = ['none', 'gzip'];
// kafkajs's CompressionTypes values, written out: the enum would load kafkajs at import.
const COMPRESSION_TYPE: Record<EmitterCompression, number> = { none: 0, gzip: 1, snappy: 2, lz4: 3 };

/** One produce request as the emitter makes it: the part of kafkajs's `sendBatch` argument it uses. */
export interface EmitterBatch {
  /** -1: every in-sync replica. */
  acks: number;
  /** kafkajs's `CompressionTypes` value: 0 none, 1 gzip, 2 Snappy, 3 LZ4. */
  compression: number;
  topicMessages: { topic: string; messages: Message[] }[];
}

/** The producer the emitter drives: kafkajs's, or librdkafka's from `@vigil/sdk/rdkafka`. */
export interface EmitterProducer {
  connect(): Promise<void>;
  /** Resolves once Kafka acknowledged every message of the batch; rejects if any was not. */
  sendBatch(batch: EmitterBatch): Promise<unknown>;
  disconnect(): Promise<void>;
}

/** The Kafka client the emitter produces with: a kafkajs `Kafka` is one, `rdkafkaClient()` another. */
export interface EmitterKafka {
  producer(config?: ProducerConfig): EmitterProducer;
  /**
   * The most bytes one `sendBatch` may carry, when that is more than one produce request: a
   * client that cuts a batch into requests itself (librdkafka) takes larger batches, and the
   * emitter then waits for fewer acknowledgements. Without it, a batch is one request
   * (kafkajs), bounded by the emitter's `maxBatchBytes`.
   */
  readonly maxSendBytes?: number;
  /** The compressions it writes, when more than `none` and `gzip` (kafkajs needs codec packages for the others). */
  readonly compressions?: readonly EmitterCompression[];
  /** The compression the emitter uses on it when its options name none. @defaultValue 'gzip' */
  readonly defaultCompression?: EmitterCompression;
}

/** Options of {@link createEmitter}. */
export interface EmitterOptions {
  /**
   * The Kafka client to produce with: a kafkajs `Kafka`, or `rdkafkaClient()` from
   * `@vigil/sdk/rdkafka` (librdkafka; several times the events per second, see its docs). Only
   * its `producer()` is used, so a stand-in that has just that method will do (in tests, say).
   */
  kafka: EmitterKafka;
  /** Where each family goes. @defaultValue vigil.events.policy / .invocation / .device */
  topics?: Partial<Record<Family, string>>;
  /** The `source` of every event that doesn't name its own. */
  source?: Source;
  /** How long an event may wait for others to share its request. @defaultValue 50 */
  lingerMs?: number;
  /** The most events per produce request. @defaultValue 10000 */
  maxBatch?: number;
  /**
   * The most bytes (keys and values, before compression) per produce request. It keeps each
   * request under the broker's default `message.max.bytes` (1 MB) whatever the compression; an
   * event larger than this on its own is refused by emit() with a ValidationError. A client that
   * cuts batches into requests itself (`maxSendBytes`, librdkafka's) gets batches of up to that.
   * @defaultValue 900000
   */
  maxBatchBytes?: number;
  /**
   * Compression of each produce request. gzip makes a batch of typical events about a sixth of
   * its size on the wire and in the broker's log, for a little CPU (docs/sdk.md has the
   * measurement). On `rdkafkaClient()` the default is `'lz4'`: librdkafka compresses on threads of
   * its own, and LZ4 costs the process less CPU per event than gzip for a batch about twice
   * gzip's size (docs/sdk.md). @defaultValue the client's `defaultCompression`, else 'gzip'
   */
  compression?: EmitterCompression;
  /** The most events held in memory while Kafka is slow or away. @defaultValue 100000 */
  maxBuffer?: number;
  /**
   * The most bytes of messages (keys and values) held in memory while Kafka is slow or away,
   * the request in flight included. The buffer is full when either bound is reached.
   * @defaultValue 33554432 (32 MiB)
   */
  maxBufferBytes?: number;
  /**
   * When the buffer is full: `drop-newest` refuses the new event, `drop-oldest` evicts the
   * oldest waiting ones (as many as the new one needs room). Either way the drop is counted and
   * reported to `onDrop`, never silent.
   * @defaultValue 'drop-newest'
   */
  overflow?: OverflowPolicy;
  /** Called with every event that will not be delivered, and why. */
  onDrop?: (event: VigilEvent, reason: 'buffer_full' | 'closed') => void;
  /** Where delivery problems and drops are logged (a pino logger fits). @defaultValue no logging */
  logger?: SdkLogger;
  /** @defaultValue () => new Date() */
  clock?: () => Date;
  /** @defaultValue a random (version 4) UUID, from node:crypto's random bytes */
  newId?: () => string;
  /**
   * How long `close()` waits for Kafka to acknowledge what is buffered. Past it, what is left is
   * reported to `onDrop` as `closed`, the producer is disconnected and `close()` rejects: a stop
   * must end within the supervisor's grace period (Kubernetes' is 30 s). From 0 to 2147483647
   * (setTimeout's longest delay). @defaultValue 10000
   */
  closeTimeoutMs?: number;
  /**
   * When the process is about to end on its own with events buffered and `close()` not called,
   * close the emitter first so they are sent (with a warning). Off, they are lost (and counted
   * nowhere): for tests and tools that drop their emitters on purpose. @defaultValue true
   */
  closeAtExit?: boolean;
}

/** Counters of an emitter since it was created. */
export interface EmitterStats {
  /** Accepted into the buffer. */
  accepted: number;
  /** Acknowledged by Kafka. */
  delivered: number;
  /** Refused or evicted because the buffer was full, or emitted after close. */
  dropped: number;
  /** Produce attempts that failed (the events went back to the buffer). */
  sendFailures: number;
  /** Waiting to be sent, or in the request in flight. */
  buffered: number;
  /** The bytes of those events' messages (keys and values, before compression). */
  bufferedBytes: number;
}

/** The result of one emit: the event's id, and whether it was taken (false: dropped on overflow). */
export interface EmitResult {
  id: string;
  accepted: boolean;
}

/** A producer of Vigil events, one method per family. */
export interface Emitter {
  policy(input: EmitInput<'policy'>): EmitResult;
  invocation(input: EmitInput<'invocation'>): EmitResult;
  device(input: EmitInput<'device'>): EmitResult;
  /** Sends everything buffered; resolves when Kafka acknowledged it. */
  flush(): Promise<void>;
  /**
   * Flushes, then disconnects. Later emits are dropped and counted. Waits at most `timeoutMs`
   * (the emitter's `closeTimeoutMs`) for Kafka: then what is unacknowledged is dropped as
   * `closed` and it rejects, saying how many. A disconnect that does not answer is given what is
   * left of `timeoutMs`, and at least 1 s (or `timeoutMs` if shorter). A `timeoutMs` that is no
   * finite number from 0 to 2147483647 rejects with a ValidationError (`options_invalid`) and
   * closes nothing.
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
  stats(): EmitterStats;
}

/**
 * One event of the request in flight: its Kafka message, serialised at emit time, handed to
 * kafkajs as it is (kafkajs reads key, value and headers and nothing else). The event object
 * itself is never kept (zod's output held about 4 kB per event); onDrop gets it back by parsing
 * the value. Waiting events have no object of their own (see the queue in createEmitter).
 */
interface Buffered extends Message {
  key: string;
  value: string;
  family: Family;
  bytes: number;
  /** Its place in the order events were accepted: what a flush waits for. */
  seq: number;
}

/** Per record, what the message costs besides its key and value (kafkajs's record framing). */
const RECORD_OVERHEAD_BYTES = 64;
// One headers object per family, shared by every message of that family.
const HEADERS: Record<Family, Record<string, string>> = {
  policy: { 'vigil-family': 'policy' },
  invocation: { 'vigil-family': 'invocation' },
  device: { 'vigil-family': 'device' },
};

/** Random bytes for the default ids, 256 ids' worth, refilled when used up. */
const idBytes = new Uint8Array(4096);
let idAt = idBytes.length;
let fillRandom: ((bytes: Uint8Array) => unknown) | undefined;
/** The character codes of each byte's two hex digits: byte b's are at 2b and 2b + 1. */
const HEX = new Uint8Array(512);
for (let byte = 0; byte < 256; byte++) {
  const digits = byte.toString(16).padStart(2, '0');
  HEX[2 * byte] = digits.charCodeAt(0);
  HEX[2 * byte + 1] = digits.charCodeAt(1);
}

/** The first and second hex digit of the random byte at `at`. */
const hi = (at: number): number => HEX[2 * idBytes[at]!]!;
const lo = (at: number): number => HEX[2 * idBytes[at]! + 1]!;

/**
 * A random (version 4) UUID, as node:crypto's randomUUID makes it: from a pool of random bytes
 * filled in batches by node:crypto's randomFillSync, found on first use through
 * process.getBuiltinModule so importing the SDK loads nothing (the global Web Crypto's
 * getRandomValues on a Node without it, before 20.16). Written in one String.fromCharCode, so the
 * id is one flat string: randomUUID's is a rope of some twenty pieces, which flattening the
 * message then walks (measured: 283 ns with that flattening, against 137 ns for this one).
 */
function randomId(): string {
  if (idAt === idBytes.length) {
    fillRandom ??=
      (process.getBuiltinModule?.('node:crypto') as { randomFillSync: typeof RandomFillSync } | undefined)?.randomFillSync ??
      ((bytes: Uint8Array) => globalThis.crypto.getRandomValues(bytes));
    fillRandom(idBytes);
    idAt = 0;
  }
  const at = idAt;
  idAt += 16;
  // Byte 6's high nibble is the version (4); byte 8's two high bits the variant (10).
  const version = 2 * ((idBytes[at + 6]! & 0x0f) | 0x40);
  const variant = 2 * ((idBytes[at + 8]! & 0x3f) | 0x80);
  return String.fromCharCode(
    hi(at), lo(at), hi(at + 1), lo(at + 1), hi(at + 2), lo(at + 2), hi(at + 3), lo(at + 3), 0x2d,
    hi(at + 4), lo(at + 4), hi(at + 5), lo(at + 5), 0x2d,
    HEX[version]!, HEX[version + 1]!, hi(at + 7), lo(at + 7), 0x2d,
    HEX[variant]!, HEX[variant + 1]!, hi(at + 9), lo(at + 9), 0x2d,
    hi(at + 10), lo(at + 10), hi(at + 11), lo(at + 11), hi(at + 12), lo(at + 12), hi(at + 13), lo(at + 13), hi(at + 14), lo(at + 14), hi(at + 15), lo(at + 15),
  );
}

/** The longest delay setTimeout keeps: a longer one (or NaN, or a negative one) fires after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

/** What is wrong with a close deadline, if anything: setTimeout would fire at once for NaN, a negative value or one past {@link MAX_TIMER_MS}. */
function timeoutProblem(name: string, value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_TIMER_MS) return undefined;
  return `${name}: must be a finite number from 0 to ${MAX_TIMER_MS}, got ${typeof value === 'number' ? String(value) : JSON.stringify(value)}`;
}

/**
 * Refuses options that would stall or unbound the emitter: `maxBatch: 0` or `NaN` (often
 * `Number(process.env.X)` of an unset variable) looped on empty batches and froze the process, a
 * `NaN` bound let the buffer grow without one, and a `NaN` close deadline (or one past 2^31 - 1 ms,
 * which setTimeout fires at once) dropped everything. A `source` the contract refuses made every
 * emit() throw; it is refused here, once.
 * @throws ValidationError (`options_invalid`) naming each option at fault
 */
function optionProblems(options: EmitterOptions): void {
  const issues: string[] = [];
  const check = (name: keyof EmitterOptions, integer: boolean, min: number): void => {
    const value: unknown = options[name];
    if (value === undefined) return;
    const fine = typeof value === 'number' && (integer ? Number.isSafeInteger(value) : Number.isFinite(value)) && value >= min;
    if (!fine) issues.push(`${name}: must be ${integer ? 'a whole number' : 'a finite number'} of at least ${min}, got ${typeof value === 'number' ? String(value) : JSON.stringify(value)}`);
  };
  if (options.source !== undefined) {
    const parsed = envelopeShape.source.safeParse(options.source);
    // Named as emit() would name them (`source.environment: ...`), the schema being the contract's own.
    if (!parsed.success) issues.push(...parsed.error.issues.map((issue) => `${['source', ...issue.path.map(String)].join('.')}: ${issue.message}`));
  }
  check('lingerMs', false, 0);
  check('maxBatch', true, 1);
  check('maxBatchBytes', true, 1);
  // 0 buffers nothing (every event dropped as buffer_full): a choice, not a stall.
  check('maxBuffer', true, 0);
  check('maxBufferBytes', true, 0);
  const closeProblem = options.closeTimeoutMs === undefined ? undefined : timeoutProblem('closeTimeoutMs', options.closeTimeoutMs);
  if (closeProblem !== undefined) issues.push(closeProblem);
  const overflow: unknown = options.overflow;
  if (overflow !== undefined && overflow !== 'drop-newest' && overflow !== 'drop-oldest') issues.push(`overflow: must be drop-newest or drop-oldest, got ${JSON.stringify(overflow)}`);
  if (issues.length > 0) throw new ValidationError('invalid emitter options', issues, 'options_invalid');
}

/** An invalid Date becomes text the schema refuses by name (`time`), not a RangeError. */
function dateText(date: Date): string {
  return Number.isNaN(date.getTime()) ? 'Invalid Date' : date.toISOString();
}

/** Orders one entity's events: the user's, else the API consumer's, else the client IP's. */
export function partitionKeyOf(event: VigilEvent): string {
  return event.actor.userId ?? event.actor.consumerId ?? event.client.ip ?? event.id;
}

/** Whether a failed send says a topic is missing (kafkajs's error type, librdkafka's text), its cause included. */
export function missingTopic(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const { type, message, cause } = current as { type?: unknown; message?: unknown; cause?: unknown };
    if (type === 'UNKNOWN_TOPIC_OR_PARTITION') return true;
    if (typeof message === 'string' && /unknown topic|does not host this topic/i.test(message)) return true;
    current = cause;
  }
  return false;
}

/**
 * Callbacks run on a process event, with the listener added once, at the first callback (an SDK
 * that is only imported adds none). Each emitter registers while it holds events and unregisters
 * once they are delivered or reported.
 */
function onProcess(event: 'beforeExit' | 'exit'): { readonly callbacks: Set<() => void>; add(callback: () => void): void } {
  const callbacks = new Set<() => void>();
  let listening = false;
  return {
    callbacks,
    add(callback) {
      callbacks.add(callback);
      if (listening) return;
      listening = true;
      process.on(event, () => {
        for (const run of [...callbacks]) run();
      });
    },
  };
}

/**
 * Emitters holding events that a process ending on its own would lose: kafkajs's sockets keep a
 * process up once the producer is connected, but an emitter whose first batch still waits for
 * its (unref'd) linger timer holds nothing open, and a script that emits and returns without
 * close() would exit with its events unsent. When the event loop empties, each is closed
 * (flushed, then disconnected), and the process exits once they are delivered or dropped.
 */
const beforeExit = onProcess('beforeExit');
const holding = beforeExit.callbacks;
const guardExit = (release: () => void): void => beforeExit.add(release);

/**
 * Whether a send failed for a reason retrying alone will not fix (a refused login, a missing
 * library). kafkajs wraps the last error of its retrier in KafkaJSNumberOfRetriesExceeded, itself
 * not retriable, even around a timeout: the error under it decides.
 */
function refusedForGood(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error && current.name === 'KafkaJSNumberOfRetriesExceeded' && current.cause !== undefined; depth++) current = current.cause;
  return (current as { retriable?: unknown } | undefined)?.retriable === false;
}

/**
 * Emitters with events buffered, for a process that ends by `process.exit()` (or a signal's
 * default handler after it): nothing can be sent then, but the loss is reported, each event to
 * `onDrop` with reason `closed` and one warning, as the docs promise for every event not
 * delivered. A process that ends on its own is closed first instead (see `holding`).
 */
const atExit = onProcess('exit');
const exiting = atExit.callbacks;
const reportAtExit = (report: () => void): void => atExit.add(report);

/**
 * Creates the SDK emitter. Each method validates synchronously and throws a ValidationError
 * naming the fields at fault (nothing is sent); a valid event is buffered and sent in batches on
 * `lingerMs` or `maxBatch`. Emitting never blocks and never throws for Kafka's sake: while
 * Kafka is away events wait in a bounded buffer and are retried with backoff.
 */
export function createEmitter(options: EmitterOptions): Emitter {
  const topics: Record<Family, string> = {
    policy: options.topics?.policy ?? 'vigil.events.policy',
    invocation: options.topics?.invocation ?? 'vigil.events.invocation',
    device: options.topics?.device ?? 'vigil.events.device',
  };
  const compression = options.compression ?? options.kafka.defaultCompression ?? 'gzip';
  const writable = options.kafka.compressions ?? COMPRESSIONS;
  if (!writable.includes(compression)) {
    const others =
      options.kafka.compressions === undefined && Object.keys(COMPRESSION_TYPE).includes(compression) ? ` (${compression} needs a client that writes it: rdkafkaClient() from @vigil/sdk/rdkafka)` : '';
    throw new ValidationError('invalid emitter options', [`compression: must be one of ${writable.join(', ')}, got ${JSON.stringify(compression)}${others}`], 'options_invalid');
  }
  optionProblems(options);
  const lingerMs = options.lingerMs ?? 50;
  const maxBatch = options.maxBatch ?? 10_000;
  const maxBatchBytes = options.maxBatchBytes ?? 900_000;
  /** The most bytes one sendBatch carries: one request's worth, unless the client cuts batches itself. */
  const sendBytes = Math.max(maxBatchBytes, options.kafka.maxSendBytes ?? 0);
  const maxBuffer = options.maxBuffer ?? 100_000;
  const maxBufferBytes = options.maxBufferBytes ?? 32 * 1024 * 1024;
  const overflow = options.overflow ?? 'drop-newest';
  const clock = options.clock;
  const newId = options.newId ?? randomId;
  const logger = options.logger?.child({ component: 'emitter' });
  const closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
  const counters = { accepted: 0, delivered: 0, dropped: 0, sendFailures: 0 };

  // The waiting events, oldest first, from index `head` of four arrays: each event's key, message
  // JSON, family and size (its bytes as a Kafka message), with no object per event while it waits
  // (each one the garbage collector moved with the event cost more than a tenth of emit(),
  // measured). The request in flight holds its own, made when the batch leaves. Taking from the
  // head moves an index instead of shifting the arrays, which are compacted now and then.
  let keys: string[] = [];
  let values: string[] = [];
  let families: Family[] = [];
  let sizes: number[] = [];
  let seqs: number[] = [];
  let head = 0;
  let inFlight: Buffered[] = [];
  let bufferedBytes = 0;
  let queuedBytes = 0;
  let producer: EmitterProducer | undefined;
  let connecting: Promise<EmitterProducer> | undefined;
  let sending: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let closed = false;
  /** The place in the accepted order the next event gets ({@link Buffered.seq}). */
  let nextSeq = 0;
  /**
   * Flushes waiting: each for every event accepted before it was called to be acknowledged (or
   * evicted by drop-oldest), not for an empty buffer, which a service that never stops emitting
   * kept from ever coming.
   */
  const flushes: { target: number; resolve: () => void; reject: (error: unknown) => void }[] = [];
  /** The place of the oldest event still buffered (in flight, then waiting), or the next one's. */
  const oldestBuffered = (): number => inFlight[0]?.seq ?? (waiting() > 0 ? (seqs[head] ?? nextSeq) : nextSeq);
  const settleFlushes = (): void => {
    const oldest = oldestBuffered();
    for (let index = flushes.length - 1; index >= 0; index--) {
      const waiter = flushes[index];
      if (waiter !== undefined && oldest >= waiter.target) {
        flushes.splice(index, 1);
        waiter.resolve();
      }
    }
  };
  /** close() has disconnected (or given up): a connection made after this is closed at once. */
  let disconnected = false;

  const waiting = (): number => values.length - head;
  const buffered = (): number => waiting() + inFlight.length;
  const eventOf = (value: string): VigilEvent => JSON.parse(value) as VigilEvent;

  /** Takes the oldest waiting event off the queue (there is one): its message JSON. */
  const shift = (): string => {
    const value = values[head] ?? '';
    // Let key and JSON be collected before compaction.
    keys[head] = '';
    values[head] = '';
    queuedBytes -= sizes[head] ?? 0;
    head++;
    if (head === values.length) {
      keys = [];
      values = [];
      families = [];
      sizes = [];
      seqs = [];
      head = 0;
    } else if (head >= 4096 && head * 2 >= values.length) {
      keys = keys.slice(head);
      values = values.slice(head);
      families = families.slice(head);
      sizes = sizes.slice(head);
      seqs = seqs.slice(head);
      head = 0;
    }
    return value;
  };

  const drop = (event: VigilEvent, reason: 'buffer_full' | 'closed'): void => {
    counters.dropped++;
    if (counters.dropped === 1 || counters.dropped % 1000 === 0) {
      logger?.warn({ dropped: counters.dropped, reason }, 'events dropped by the emitter');
    }
    try {
      options.onDrop?.(event, reason);
    } catch (error) {
      // The service's callback: its failure must not reach emit()'s caller or stop close().
      logger?.warn({ err: error, eventId: event.id, reason }, 'the onDrop callback threw');
    }
  };

  const connect = (): Promise<EmitterProducer> => {
    if (producer) return Promise.resolve(producer);
    connecting ??= (async () => {
      let created: EmitterProducer;
      try {
        // kafkajs is loaded here, not at import: the service hands us its own client, so only
        // the partitioner is ours to name, and importing the SDK stays cheap (bench/sdk.bench.ts).
        const { Partitioners } = await import('kafkajs');
        created = options.kafka.producer({
          allowAutoTopicCreation: false,
          // Event ids make duplicates harmless downstream (they are document ids), so the
          // producer need not be idempotent; one request in flight keeps each key's order.
          maxInFlightRequests: 1,
          createPartitioner: Partitioners.DefaultPartitioner,
          // One attempt per send: the emitter retries itself, with its backoff, a warning and a
          // sendFailures count each time. kafkajs's own 5 retries of a request that timed out
          // (30 s each) hid an unanswering broker for about 3 minutes, and kept retrying, and
          // reconnecting, after close() had given up and disconnected.
          retry: { retries: 0 },
        });
        await created.connect();
      } catch (error) {
        connecting = undefined;
        throw error;
      }
      // Connected after close() gave up and disconnected: it found no producer to disconnect, and
      // this one would send what close() reported dropped, and hold the process open.
      if (disconnected) {
        connecting = undefined;
        await created.disconnect().catch(() => undefined);
        throw new Error('the emitter was closed while connecting to Kafka');
      }
      producer = created;
      return created;
    })();
    return connecting;
  };

  const schedule = (delayMs: number): void => {
    if (timer !== undefined || closed) return;
    if (options.closeAtExit !== false) guardExit(closeAtExit);
    reportAtExit(lostAtExit);
    timer = setTimeout(() => {
      timer = undefined;
      // A failed drain has already logged and rescheduled itself; the service must never see it.
      drain().catch(() => undefined);
    }, delayMs);
    timer.unref?.();
  };

  /** Sends batches until the buffer is empty or a send fails. One drain at a time keeps order. */
  const drain = (): Promise<void> => {
    if (sending) return sending;
    const run = (async () => {
      while (waiting() > 0) {
        // The batch leaves the queue for the request: evictions (drop-oldest) never reach it.
        let bytes = 0;
        const byTopic = new Map<string, Message[]>();
        while (waiting() > 0 && inFlight.length < maxBatch) {
          const size = sizes[head] ?? 0;
          if (inFlight.length > 0 && bytes + size > sendBytes) break;
          const family = families[head] ?? 'policy';
          const key = keys[head] ?? '';
          const seq = seqs[head] ?? 0;
          const next: Buffered = { key, value: shift(), headers: HEADERS[family], family, bytes: size, seq };
          bytes += size;
          inFlight.push(next);
          const topic = topics[family];
          const messages = byTopic.get(topic);
          if (messages) messages.push(next);
          else byTopic.set(topic, [next]);
        }
        try {
          const connected = await connect();
          await connected.sendBatch({
            acks: -1,
            compression: COMPRESSION_TYPE[compression],
            topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
          });
        } catch (error) {
          // The batch goes back to the head of the queue, in order, for the retry.
          keys = inFlight.map((item) => item.key).concat(keys.slice(head));
          values = inFlight.map((item) => item.value).concat(values.slice(head));
          families = inFlight.map((item) => item.family).concat(families.slice(head));
          sizes = inFlight.map((item) => item.bytes).concat(sizes.slice(head));
          seqs = inFlight.map((item) => item.seq).concat(seqs.slice(head));
          head = 0;
          queuedBytes += bytes;
          inFlight = [];
          counters.sendFailures++;
          failures++;
          const delayMs = backoffDelay(failures, { initialDelayMs: 200, maxDelayMs: 10_000 });
          if (missingTopic(error)) {
            // The first run's usual stop (the broker does not create topics for the emitter): say so.
            logger?.warn({ err: error, buffered: buffered(), delayMs, topics: [...byTopic.keys()] }, 'event delivery failed: a topic does not exist, and Kafka does not create topics for the emitter: ask the operators of your Vigil to create them (they run `vigil topics ensure`, or start `vigil run` once), or check the topics option; will retry');
          } else if (refusedForGood(error)) {
            // A refused login, a missing library: the same send fails until someone acts.
            logger?.warn({ err: error, buffered: buffered(), delayMs }, `event delivery failed, and retrying alone will not fix it (${errorMessage(error)}): fix the Kafka configuration; the events wait in the buffer meanwhile`);
          } else {
            logger?.warn({ err: error, buffered: buffered(), delayMs }, 'event delivery failed; will retry');
          }
          // The backoff replaces a linger an emit set while this send was out: without it, a
          // service emitting all the time would retry at every linger, never backing off.
          if (timer !== undefined) {
            clearTimeout(timer);
            timer = undefined;
          }
          schedule(delayMs);
          // A flush fails with the send, as it did when it waited for the drain itself.
          for (const waiter of flushes.splice(0)) waiter.reject(error);
          throw error;
        }
        failures = 0;
        counters.delivered += inFlight.length;
        // (A close that gave up on this request has counted it already: nothing left to take off.)
        bufferedBytes = Math.max(0, bufferedBytes - bytes);
        inFlight = [];
        settleFlushes();
      }
      holding.delete(closeAtExit);
      exiting.delete(lostAtExit);
    })();
    // Cleared when this run settles, never by the run itself: a run that finds the buffer empty
    // settles at once, and clearing inside it would leave a settled promise in place for good.
    sending = run;
    const clear = (): void => {
      if (sending === run) sending = undefined;
    };
    run.then(clear, clear);
    return run;
  };

  /** The time of an event that gives none: the clock's, else now, its text made once per millisecond. */
  let lastMs = Number.NaN;
  let lastTime = '';
  const now = (): string => {
    // An invalid Date is refused by the check below, naming `time`, rather than thrown as a RangeError.
    if (clock) return dateText(clock());
    const ms = Date.now();
    if (ms !== lastMs) {
      lastTime = new Date(ms).toISOString();
      lastMs = ms;
    }
    return lastTime;
  };

  const enqueue = <F extends Family>(family: F, input: EmitInput<F>): EmitResult => {
    // A JavaScript caller can pass anything: what is not an object is refused as any invalid event is.
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      const received = input === null ? 'null' : Array.isArray(input) ? 'an array' : typeof input;
      throw new ValidationError(`invalid ${family} event`, [`(event): expected an object, received ${received}`], 'event_invalid');
    }
    // The method names the family and the SDK its version: a JavaScript caller's own, when it
    // differs, is a mistake to name, not a value to replace without a word.
    const { family: named, schemaVersion } = input as { family?: unknown; schemaVersion?: unknown };
    if ((named !== undefined && named !== family) || (schemaVersion !== undefined && schemaVersion !== CURRENT_SCHEMA_VERSION)) {
      const issues: string[] = [];
      if (named !== undefined && named !== family) {
        issues.push(`family: ${JSON.stringify(named)} given to the ${family} method; leave family out (the method sets it)${typeof named === 'string' && (FAMILIES as readonly string[]).includes(named) ? `, or emit with ${named}()` : ''}`);
      }
      if (schemaVersion !== undefined && schemaVersion !== CURRENT_SCHEMA_VERSION) {
        issues.push(`schemaVersion: ${JSON.stringify(schemaVersion)} given; this SDK writes version ${CURRENT_SCHEMA_VERSION}; leave schemaVersion out`);
      }
      throw new ValidationError(`invalid ${family} event`, issues, 'event_invalid');
    }
    const ownId = input.id === undefined;
    const id = input.id ?? newId();
    const time = input.time instanceof Date ? dateText(input.time) : (input.time ?? now());
    // A Date's own text is ISO 8601 as the contract writes it only for the years 0000–9999 (24
    // characters): `new Date(1.7e15)`, microseconds taken for milliseconds, is year 55840, which
    // the pipeline refuses. Any other text is checked.
    const timeIsIso = (input.time === undefined || input.time instanceof Date) && typeof time === 'string' && time.length === 24;
    const source = input.source ?? options.source;
    // The common event is proven valid by a hand-written check that writes its message as it
    // goes, at a fraction of zod's cost; what it is not sure of (an error included) goes through
    // the schema, the contract, which names every field at fault (ingest/sdk/fast-check.ts).
    // Either way the event is serialised now, once: the buffer holds the bytes that will be sent
    // and nothing the caller can change afterwards.
    let message = fastMessage(family, input, id, time, source, timeIsIso, ownId && newId === randomId);
    let event: VigilEvent | undefined;
    if (message === undefined) {
      const parsed = familySchemas[family].safeParse({ ...input, family, id, schemaVersion: CURRENT_SCHEMA_VERSION, time, source });
      if (!parsed.success) {
        throw new ValidationError(`invalid ${family} event`, describeIssues(parsed.error), 'event_invalid');
      }
      event = parsed.data;
      const key = partitionKeyOf(event);
      const value = JSON.stringify(event);
      message = { key, value, bytes: Buffer.byteLength(key) + Buffer.byteLength(value) };
    }
    const { key, value } = message;
    const bytes = message.bytes + RECORD_OVERHEAD_BYTES;
    // An event too big to send is invalid whenever it comes, after close() too.
    if (bytes > maxBatchBytes) {
      throw new ValidationError(
        `invalid ${family} event`,
        [`(event): ${bytes} bytes as a Kafka message, more than maxBatchBytes (${maxBatchBytes}); fewer or shorter labels or scopes will fit`],
        'event_invalid',
      );
    }
    if (closed) {
      drop(event ?? eventOf(value), 'closed');
      return { id: event?.id ?? id, accepted: false };
    }
    // Only waiting events are evicted (the batch in flight is no longer in the queue), and only
    // when evicting them can make room: else each would be dropped for nothing, and the new one too.
    const evictable = overflow === 'drop-oldest' && inFlight.length < maxBuffer && bufferedBytes - queuedBytes + bytes <= maxBufferBytes;
    while (buffered() >= maxBuffer || bufferedBytes + bytes > maxBufferBytes) {
      if (!evictable || waiting() === 0) {
        drop(event ?? eventOf(value), 'buffer_full');
        return { id: event?.id ?? id, accepted: false };
      }
      bufferedBytes -= sizes[head] ?? 0;
      drop(eventOf(shift()), 'buffer_full');
      settleFlushes();
    }
    keys.push(key);
    values.push(value);
    families.push(family);
    sizes.push(bytes);
    seqs.push(nextSeq++);
    bufferedBytes += bytes;
    queuedBytes += bytes;
    counters.accepted++;
    // Each time an event is buffered, not only when a timer is set: a drain under way (or a full
    // batch sent at once) could otherwise leave it buffered with no reporter registered.
    if (options.closeAtExit !== false) guardExit(closeAtExit);
    reportAtExit(lostAtExit);
    // After a failed send the backoff's timer sends next: a full batch must not retry at once.
    if (failures === 0 && (waiting() >= maxBatch || queuedBytes >= sendBytes)) drain().catch(() => undefined);
    else schedule(lingerMs);
    return { id: event?.id ?? id, accepted: true };
  };

  /** The process is exiting (process.exit) with events buffered: nothing can be sent now; report each as dropped. */
  function lostAtExit(): void {
    exiting.delete(lostAtExit);
    // Also while a close() not waited for still flushes: the process ends before it can.
    if (buffered() === 0) return;
    closed = true;
    logger?.warn({ buffered: buffered() }, 'the process is exiting with events buffered (the emitter not closed, or its close() not awaited): they are lost (await close() before process.exit())');
    for (const item of inFlight.splice(0)) drop(eventOf(item.value), 'closed');
    while (waiting() > 0) drop(eventOf(shift()), 'closed');
    bufferedBytes = 0;
  }

  /** The process is ending on its own with events buffered: deliver them first (see `holding`). */
  function closeAtExit(): void {
    holding.delete(closeAtExit);
    if (closed || buffered() === 0) return;
    logger?.warn({ buffered: buffered() }, 'the process is exiting with events buffered and the emitter not closed: closing it to send them (call close() before the end)');
    emitter.close().catch((error: unknown) => logger?.warn({ err: error }, 'closing the emitter at exit failed; its undelivered events were reported to onDrop'));
  }

  const emitter: Emitter = {
    policy: (input) => enqueue('policy', input),
    invocation: (input) => enqueue('invocation', input),
    device: (input) => enqueue('device', input),
    async flush() {
      if (timer !== undefined) {
        clearTimeout(timer);
        timer = undefined;
      }
      // What was accepted before now: not a wait for the send in progress to end, which under
      // steady emitting it never does (it sends what comes meanwhile too).
      const target = nextSeq;
      if (oldestBuffered() >= target) return;
      const flushed = new Promise<void>((resolve, reject) => flushes.push({ target, resolve, reject }));
      // The send in progress, or one started now; a failure reaches the flush through the waiter.
      drain().catch(() => undefined);
      await flushed;
    },
    async close(closing = {}) {
      // Checked before anything changes: NaN, a negative value or one past 2^31 - 1 ms made the
      // deadline fire at once, and everything buffered was dropped unsent.
      const timeoutIssue = closing.timeoutMs === undefined ? undefined : timeoutProblem('timeoutMs', closing.timeoutMs);
      if (timeoutIssue !== undefined) throw new ValidationError('invalid close options', [timeoutIssue], 'options_invalid');
      // Closed first: what is emitted from now on is refused, so the flush has an end even while
      // the service keeps emitting.
      closed = true;
      holding.delete(closeAtExit);
      const timeoutMs = closing.timeoutMs ?? closeTimeoutMs;
      const deadline = Date.now() + timeoutMs;
      let expiry: NodeJS.Timeout | undefined;
      const expired = new Promise<'expired'>((resolve) => {
        expiry = setTimeout(() => resolve('expired'), timeoutMs);
      });
      let unacknowledged = 0;
      try {
        const flushing = emitter.flush().then(() => 'flushed' as const);
        // Past the deadline the flush ends rejected (below), with no one waiting for it.
        flushing.catch(() => undefined);
        if ((await Promise.race([flushing, expired])) === 'expired') {
          // The request in flight may yet land, but nothing will retry it: reported with the rest.
          const late = inFlight.splice(0);
          unacknowledged = late.length + waiting();
          for (const item of late) drop(eventOf(item.value), 'closed');
        }
      } finally {
        clearTimeout(expiry);
        if (timer !== undefined) clearTimeout(timer);
        try {
          while (waiting() > 0) drop(eventOf(shift()), 'closed');
          bufferedBytes = 0;
        } finally {
          // A broker that takes connections and never answers must not hold the stop either: the
          // disconnect gets what is left of timeoutMs, and at least 1 s (timeoutMs if shorter),
          // so close() ends within timeoutMs plus that second. (It waited a whole timeoutMs more.)
          disconnected = true;
          let disconnectExpiry: NodeJS.Timeout | undefined;
          const disconnectMs = Math.max(deadline - Date.now(), Math.min(1000, timeoutMs));
          await Promise.race([producer?.disconnect(), new Promise<void>((resolve) => (disconnectExpiry = setTimeout(resolve, disconnectMs)))]);
          clearTimeout(disconnectExpiry);
          // Everything is delivered or reported by now: nothing is left for an exit to report.
          exiting.delete(lostAtExit);
          // Flushes still waiting end with the close: what they waited for was dropped as closed.
          for (const waiter of flushes.splice(0)) waiter.reject(new Error('the emitter was closed before Kafka acknowledged every event this flush waited for; they were dropped (onDrop, reason "closed")'));
          // A request still out when close() gave up may yet reconnect to finish: disconnect again
          // once it settles, so the client leaves nothing open that keeps the process up.
          const left = sending;
          if (left !== undefined) void left.catch(() => undefined).then(() => producer?.disconnect()).catch(() => undefined);
        }
      }
      if (unacknowledged > 0) {
        throw new Error(`close: ${unacknowledged} events were not acknowledged by Kafka within ${timeoutMs} ms; they were dropped (onDrop, reason "closed")`);
      }
    },
    stats: () => ({ ...counters, buffered: buffered(), bufferedBytes }),
  };
  return emitter;
}
