/**
 * `@vigil/sdk/rdkafka`: the emitter's producer on librdkafka (node-rdkafka) instead of kafkajs.
 *
 * kafkajs encodes every record in JavaScript on the service's own thread: 24–58 µs of CPU per
 * event, which caps one process at about 27,000 events/s. librdkafka batches, compresses,
 * checksums and sends on threads of its own, so the service's thread only hands each message
 * over (docs/sdk.md has the measurement). It is a separate entry point, loaded only by a service
 * that asks for it, and node-rdkafka is an optional peer dependency: it compiles librdkafka from
 * its package's sources at install (a C toolchain, about two minutes), which a service that is
 * content with kafkajs never pays.
 *
 *     const emitter = createEmitter({ kafka: rdkafkaClient({ brokers: ['kafka:9092'] }) });
 *
 * with `createEmitter` from the package and `rdkafkaClient` from its `rdkafka` entry point.
 *
 * What the emitter relies on holds here as with kafkajs: a key goes to the partition kafkajs's
 * default partitioner (and Java's) picks, murmur2 (Vigil's correlation reads a user's events from
 * the same partition number of each topic); each key's order is kept across retries (idempotent
 * producer); `sendBatch` resolves only once every message is acknowledged by all in-sync
 * replicas, and rejects, naming Kafka, once any is refused or not acknowledged in time.
 */
import type * as Rdkafka from 'node-rdkafka';
import type { IHeaders, Message } from 'kafkajs';
import { performance } from 'node:perf_hooks';
import { VigilError } from '../../platform/errors';
import { sleep } from '../../platform/retry';
import type { EmitterBatch, EmitterKafka, EmitterProducer } from './emitter';
import type { SdkLogger } from './logger';

/** How to reach and log in to Kafka: the same fields as kafkajs's client configuration. */
export interface RdkafkaClientOptions {
  /** Bootstrap brokers, `host:port`. */
  brokers: readonly string[];
  clientId?: string;
  /** TLS: `true` for the system's trusted CAs, or the PEM text of a CA, a client certificate and its key. */
  ssl?: boolean | { ca?: string | Buffer | (string | Buffer)[]; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean };
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  /**
   * How long a batch may go unacknowledged (librdkafka's `message.timeout.ms`), retries
   * included, before `sendBatch` rejects and the emitter sends it again. A whole number from 1 to
   * 2147483647. @defaultValue 30000
   */
  deliveryTimeoutMs?: number;
  /** How long connecting may take before it fails; a whole number from 1 to 2147483647. @defaultValue 10000 */
  connectTimeoutMs?: number;
  /**
   * librdkafka properties set last, over what the options above set (e.g. `linger.ms`); topic-level
   * ones (`partitioner`, `acks`, `message.timeout.ms`, ...) go where librdkafka reads them.
   */
  librdkafka?: Record<string, string | number | boolean>;
  /** Where librdkafka's errors are logged. @defaultValue none */
  logger?: SdkLogger;
}

/** kafkajs's `CompressionTypes` values, by librdkafka's names (this build has no ZSTD). */
const CODECS: Record<number, string> = { 0: 'none', 1: 'gzip', 2: 'snappy', 3: 'lz4' };

/** librdkafka's error codes the adapter acts on (node-rdkafka's `CODES.ERRORS`). */
const QUEUE_FULL = -184;
const AUTHENTICATION = -169;
/**
 * A flush that returned with messages still in flight (not a failure of theirs): librdkafka's
 * ERR__TIMED_OUT, which node-rdkafka's flush hands back with code -1, as "timed out".
 */
const stillInFlight = (error: { message: string }): boolean => /timed out/i.test(error.message);

/**
 * The most bytes the emitter hands over per `sendBatch`: librdkafka cuts them into requests of
 * its own `batch.size` (1 MB), so the emitter need not wait for an acknowledgement every 900 kB.
 * 16 MiB holds the emitter's default 10,000 events per batch.
 */
const MAX_SEND_BYTES = 16 * 1024 * 1024;

/** The longest one flush may wait on libuv's pool before it is asked again, in milliseconds. */
const FLUSH_SLICE_MS = 200;

/** How often delivery reports are collected from librdkafka's queue, in milliseconds. */
const POLL_INTERVAL_MS = 5;

/**
 * librdkafka's topic-level properties (the producer's): node-rdkafka ignores them in the global
 * configuration, so they go in the topic configuration, whoever sets them.
 */
const TOPIC_PROPERTIES = new Set([
  'acks',
  'request.required.acks',
  'request.timeout.ms',
  'message.timeout.ms',
  'delivery.timeout.ms',
  'partitioner',
  'compression.type',
  'compression.level',
]);

type Properties = Record<string, string | number | boolean>;

/** The longest time librdkafka (and setTimeout) takes, in milliseconds. */
const MAX_TIMEOUT_MS = 2_147_483_647;

/** The message of what node-rdkafka threw: its native errors are Errors of the realm that loaded it, not always this one's. */
const messageOf = (error: unknown): string => {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(error);
};

/**
 * librdkafka's refusal of its configuration (a misspelt property, a value out of its range), as
 * the SDK's configuration error: not retriable, since no retry makes it usable. Thrown as it was,
 * it read as a send failure, and the emitter retried it for ever ("will retry").
 */
function configurationError(error: unknown): VigilError {
  return new VigilError(`kafka (rdkafka): librdkafka refused the configuration: ${messageOf(error)}`, { code: 'config_invalid', retriable: false, cause: error });
}

/**
 * librdkafka's configuration for these options, one producer per compression and acks: its
 * global and its topic-level properties. Exported for its test; the password is in it, so it is
 * never logged.
 */
export function librdkafkaConfig(options: RdkafkaClientOptions, compression: number, acks: number): { global: Properties; topic: Properties } {
  if (options.brokers.length === 0) throw new VigilError('kafka (rdkafka): no brokers given', { code: 'config_invalid', retriable: false });
  // `Number(process.env.UNSET)` is NaN, which librdkafka refuses only when a producer is made.
  for (const name of ['deliveryTimeoutMs', 'connectTimeoutMs'] as const) {
    const value: unknown = options[name];
    if (value !== undefined && !(typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_TIMEOUT_MS)) {
      throw new VigilError(`kafka (rdkafka): ${name} must be a whole number from 1 to ${MAX_TIMEOUT_MS}, got ${typeof value === 'number' ? String(value) : JSON.stringify(value)}`, {
        code: 'config_invalid',
        retriable: false,
      });
    }
  }
  const codec = CODECS[compression];
  if (codec === undefined) {
    throw new VigilError(`kafka (rdkafka): compression ${compression} is not one librdkafka writes here (none, gzip, snappy, lz4)`, {
      code: 'config_invalid',
      retriable: false,
    });
  }
  const config: Properties = {
    'metadata.broker.list': options.brokers.join(','),
    'client.id': options.clientId ?? 'vigil-sdk',
    // Delivery reports for failed messages only: a batch is known delivered when librdkafka's
    // queue is flushed, and a report per message cost ~2.5 µs of the service's thread each
    // (node-rdkafka calls into JavaScript for every one; measured, docs/sdk.md).
    dr_cb: true,
    'delivery.report.only.error': true,
    // Log and error events (a refused login names itself in a log line, not in the connect callback).
    event_cb: true,
    // kafkajs's DefaultPartitioner and Java's: murmur2 of the key (random without one).
    partitioner: 'murmur2_random',
    // Retries neither reorder a key's events nor write them twice, with up to 5 requests in flight.
    'enable.idempotence': true,
    'request.required.acks': acks,
    'compression.codec': codec,
    'message.timeout.ms': options.deliveryTimeoutMs ?? 30_000,
    // The emitter bounds what it buffers (events and bytes); librdkafka's own queue only holds
    // the batches it hands over, far under these.
    'queue.buffering.max.messages': 1_000_000,
    'linger.ms': 5,
  };
  const ssl = options.ssl;
  const sasl = options.sasl;
  const tls = ssl !== undefined && ssl !== false;
  if (tls || sasl) config['security.protocol'] = `${sasl ? 'sasl_' : ''}${tls ? 'ssl' : 'plaintext'}`;
  if (typeof ssl === 'object') {
    const pem = (value: string | Buffer): string => (typeof value === 'string' ? value : value.toString('utf8'));
    if (ssl.ca !== undefined) config['ssl.ca.pem'] = (Array.isArray(ssl.ca) ? ssl.ca : [ssl.ca]).map(pem).join('\n');
    if (ssl.cert !== undefined) config['ssl.certificate.pem'] = pem(ssl.cert);
    if (ssl.key !== undefined) config['ssl.key.pem'] = pem(ssl.key);
    if (ssl.rejectUnauthorized === false) {
      config['enable.ssl.certificate.verification'] = false;
      config['ssl.endpoint.identification.algorithm'] = 'none';
    }
  }
  if (sasl) {
    config['sasl.mechanisms'] = sasl.mechanism.toUpperCase();
    config['sasl.username'] = sasl.username;
    config['sasl.password'] = sasl.password;
  }
  const global: Properties = {};
  const topic: Properties = {};
  for (const [name, value] of Object.entries({ ...config, ...options.librdkafka })) (TOPIC_PROPERTIES.has(name) ? topic : global)[name] = value;
  return { global, topic };
}

/** One header as node-rdkafka takes it (its `MessageHeader`, spelled out so these types need no node-rdkafka). */
export type LibrdkafkaHeader = Record<string, string | Buffer>;

/** kafkajs's headers as librdkafka takes them: one `{ key: value }` per header, in order. */
export function librdkafkaHeaders(headers: IHeaders | undefined): LibrdkafkaHeader[] | undefined {
  if (headers === undefined) return undefined;
  const out: LibrdkafkaHeader[] = [];
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) out.push({ [key]: one });
  }
  return out;
}

/**
 * An error of librdkafka's, as the SDK's errors: named for Kafka, with librdkafka's own account
 * of the failure (`why`) when it gave one, retriable unless it is a refused login.
 */
function kafkaError(error: Rdkafka.LibrdKafkaError | Error, doing: string, why?: string): VigilError {
  const code = 'code' in error && typeof error.code === 'number' ? error.code : undefined;
  const message = why === undefined ? error.message : `${error.message}: ${why}`;
  const login = code === AUTHENTICATION || /SASL|authenticat/i.test(message);
  return new VigilError(`kafka (rdkafka): ${doing}: ${message}`, {
    code: login ? 'kafka_authentication' : 'kafka_unavailable',
    retriable: !login,
    cause: error,
  });
}

/**
 * One librdkafka producer and the batch it is delivering. Batches take turns, and a batch is done
 * when librdkafka's queue is flushed: every message of it acknowledged, or reported failed (only
 * failures have delivery reports, and each belongs to the batch under way). No message carries
 * an opaque of its own (a persistent handle per message in node-rdkafka).
 */
interface Channel {
  native: Rdkafka.Producer;
  /** librdkafka's `message.timeout.ms` for this producer: how long a message may be in flight. */
  messageTimeoutMs: number;
  /** The first failure reported for the batch under way, if any. */
  failure: VigilError | undefined;
  /** Failure reports received so far: they reach JavaScript at most 100 per turn of the event loop. */
  reports: number;
  /** Settles when the batch under way (and every one before it) is done. */
  turn: Promise<void>;
}

/** What `rdkafkaClient()` says when node-rdkafka can't be found. */
const NOT_INSTALLED = 'kafka (rdkafka): node-rdkafka is not installed; `npm install node-rdkafka` (it compiles librdkafka: a C toolchain, g++ and make)';

/**
 * Throws, naming the fix, unless node-rdkafka can be found from here. At creation, not at the
 * first send: a client created without it used to accept every event (`accepted: true`), then
 * retry the sends for ever with a warning each (none without a logger), delivering nothing.
 */
export function assertRdkafkaInstalled(resolve: (id: string) => string = require.resolve): void {
  try {
    resolve('node-rdkafka');
  } catch (error) {
    throw new VigilError(NOT_INSTALLED, { code: 'config_invalid', retriable: false, cause: error });
  }
}

/**
 * A Kafka client whose `producer()` is librdkafka's, for {@link createEmitter}. node-rdkafka is
 * found and loaded now (a clear error if it is not installed), and its configuration checked.
 * @throws VigilError (`config_invalid`, not retriable) without node-rdkafka, or for options
 * librdkafka refuses (a misspelt property in `librdkafka`, a `deliveryTimeoutMs` that is NaN)
 */
export function rdkafkaClient(options: RdkafkaClientOptions): EmitterKafka {
  assertRdkafkaInstalled();
  // Its options are checked now, as the library's presence is: at the first send, a bad one
  // (no brokers, a misspelt librdkafka property) was a send failure, retried for ever while
  // every event was accepted. librdkafka reads its properties when a producer object is made,
  // before it connects or starts a thread: one is made and dropped.
  const { global, topic } = librdkafkaConfig(options, 0, -1);
  let rdkafka: typeof Rdkafka;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the optional peer, loaded only by this entry point
    rdkafka = require('node-rdkafka') as typeof Rdkafka;
  } catch (error) {
    // Installed, but its native part does not load (built for another Node, say).
    throw new VigilError(`kafka (rdkafka): node-rdkafka could not be loaded: ${messageOf(error)}`, { code: 'config_invalid', retriable: false, cause: error });
  }
  try {
    void new rdkafka.Producer(global, topic);
  } catch (error) {
    throw configurationError(error);
  }
  // kafkajs's producer settings the emitter passes (its partitioner, retries) have their
  // librdkafka equivalents in librdkafkaConfig.
  return {
    producer: () => rdkafkaProducer(options),
    maxSendBytes: MAX_SEND_BYTES,
    compressions: ['none', 'gzip', 'snappy', 'lz4'],
    // Measured (bench:sdk, docs/sdk.md): 2.5–3.5 µs less CPU per event than gzip, a batch about
    // 0.19 of its size against gzip's 0.11.
    defaultCompression: 'lz4',
  };
}

function rdkafkaProducer(options: RdkafkaClientOptions): EmitterProducer {
  const logger = options.logger?.child({ component: 'rdkafka' });
  let library: typeof Rdkafka | undefined;
  // librdkafka sets compression and acks per producer: one per pair the batches ask for (the
  // emitter asks for one).
  const producers = new Map<string, Promise<Channel>>();
  const headerCache = new WeakMap<IHeaders, LibrdkafkaHeader[]>();
  let closing: Promise<void> | undefined;

  const load = async (): Promise<typeof Rdkafka> => {
    if (library) return library;
    try {
      const loaded = (await import('node-rdkafka')) as typeof Rdkafka & { default?: typeof Rdkafka };
      library = loaded.default ?? loaded;
    } catch (error) {
      throw new VigilError(NOT_INSTALLED, {
        code: 'config_invalid',
        retriable: false,
        cause: error,
      });
    }
    return library;
  };

  const open = (rdkafka: typeof Rdkafka, compression: number, acks: number): Promise<Channel> =>
    new Promise((resolve, reject) => {
      const { global, topic } = librdkafkaConfig(options, compression, acks);
      let native: Rdkafka.Producer;
      try {
        native = new rdkafka.Producer(global, topic);
      } catch (error) {
        // A property librdkafka refuses (checked at creation too, for compression none): the
        // emitter reports it as a configuration to fix, not a failure that retrying will end.
        reject(configurationError(error));
        return;
      }
      const channel: Channel = { native, messageTimeoutMs: Number(topic['message.timeout.ms']), failure: undefined, reports: 0, turn: Promise.resolve() };
      native.on('delivery-report', (error, report) => {
        channel.reports++;
        if (error) channel.failure ??= kafkaError(error, `delivery to ${report.topic}`);
      });
      native.on('event.error', (error) => logger?.warn({ err: { message: error.message, code: error.code } }, 'kafka (rdkafka) error'));
      // What went wrong while connecting (a refused login, a certificate) comes as a log line of
      // librdkafka's at error severity; the connect callback only says "broker transport failure".
      let why: string | undefined;
      native.on('event.log', (log: { severity: number; message: string }) => {
        if (log.severity <= 3) why = log.message.replace(/^\[thrd:[^\]]*\]: /, '');
      });
      native.connect({ timeout: options.connectTimeoutMs ?? 10_000, allTopics: false }, (error) => {
        if (error) {
          // node-rdkafka's disconnect flushes first, which throws on a client never connected.
          if (native.isConnected()) native.disconnect(() => undefined);
          reject(kafkaError(error, `connecting to ${options.brokers.join(',')}`, why));
          return;
        }
        native.setPollInterval(POLL_INTERVAL_MS);
        resolve(channel);
      });
    });

  const channelFor = async (compression: number, acks: number): Promise<Channel> => {
    const rdkafka = await load();
    const key = `${compression}/${acks}`;
    let opening = producers.get(key);
    if (!opening) {
      opening = open(rdkafka, compression, acks);
      producers.set(key, opening);
      // A failed connection is not kept: the emitter's retry opens a new one.
      opening.catch(() => producers.delete(key));
    }
    return opening;
  };

  const headersOf = (headers: IHeaders | undefined): LibrdkafkaHeader[] | undefined => {
    if (headers === undefined) return undefined;
    let converted = headerCache.get(headers);
    if (converted === undefined) headerCache.set(headers, (converted = librdkafkaHeaders(headers) ?? []));
    return converted;
  };

  /** Hands one message to librdkafka: false if its queue is full (nothing was handed over). */
  const produce = (native: Rdkafka.Producer, topic: string, message: Message): boolean => {
    const value = message.value === null ? null : Buffer.isBuffer(message.value) ? message.value : Buffer.from(message.value);
    const timestamp = message.timestamp === undefined ? null : Number(message.timestamp);
    try {
      native.produce(topic, message.partition ?? null, value, message.key ?? null, timestamp, undefined, headersOf(message.headers));
      return true;
    } catch (error) {
      if ((error as { code?: number }).code === QUEUE_FULL) return false;
      throw kafkaError(error as Error, `producing to ${topic}`);
    }
  };

  /**
   * Resolves once every message handed to librdkafka is acknowledged or reported failed, and every
   * failure's report has reached JavaScript. node-rdkafka flushes on a thread of libuv's pool (the
   * service's own: file system, DNS, zlib), so each wait is short and repeated rather than one that
   * could hold a thread for the whole delivery timeout while Kafka is away. librdkafka's flush
   * returns only once every report was handed to node-rdkafka, whose wake-up brings them to
   * JavaScript at most 100 per turn of the event loop: the wait ends at the first turn that brings
   * none, so no report of this batch is left to count against the next.
   */
  const flushed = async (channel: Channel, timeoutMs: number): Promise<void> => {
    const { native } = channel;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const waitMs = Math.max(1, Math.min(FLUSH_SLICE_MS, Math.ceil(deadline - performance.now())));
      const error = await new Promise<Rdkafka.LibrdKafkaError | Error | undefined>((resolve) => {
        try {
          native.flush(waitMs, (failure) => resolve(failure ?? undefined));
        } catch (thrown) {
          // Disconnected meanwhile: node-rdkafka throws rather than calling back.
          resolve(thrown instanceof Error ? thrown : new Error(String(thrown)));
        }
      });
      if (error === undefined) break;
      if (!stillInFlight(error) || performance.now() >= deadline) throw kafkaError(error, 'flushing');
    }
    let seen: number;
    do {
      seen = channel.reports;
      await new Promise<void>((resolve) => setImmediate(resolve));
    } while (channel.reports !== seen);
  };

  return {
    async connect() {
      // Loading is the part that can fail for good; the connection opens with the first batch,
      // which knows its compression and acks, and a failure there is the emitter's to retry.
      await load();
    },
    async sendBatch(batch: EmitterBatch) {
      const channel = await channelFor(batch.compression, batch.acks);
      const total = batch.topicMessages.reduce((sum, { messages }) => sum + messages.length, 0);
      if (total === 0) return;
      // Wait for the batch under way (the emitter sends one at a time; anyone else queues here).
      const before = channel.turn;
      let release = (): void => undefined;
      channel.turn = new Promise((resolve) => (release = resolve));
      await before;
      channel.failure = undefined;
      try {
        try {
          for (const { topic, messages } of batch.topicMessages) {
            for (const message of messages) {
              // A full queue empties as librdkafka sends; wait for room rather than fail.
              while (!produce(channel.native, topic, message)) await sleep(POLL_INTERVAL_MS);
            }
          }
        } catch (error) {
          // What was handed over is still delivered (or reported failed); the emitter sends the
          // whole batch again, and event ids make the copies harmless.
          channel.failure ??= error instanceof VigilError ? error : kafkaError(error as Error, 'producing');
        }
        // Messages time out after message.timeout.ms and are reported failed; the margin is for the report.
        await flushed(channel, channel.messageTimeoutMs + 5_000);
      } finally {
        release();
      }
      if (channel.failure) throw channel.failure;
    },
    disconnect() {
      // One close at a time: node-rdkafka never calls back a second disconnect of a producer.
      closing ??= (async () => {
        const opened = await Promise.allSettled([...producers.values()]);
        producers.clear();
        await Promise.all(
          opened.map(async (result) => {
            if (result.status !== 'fulfilled') return;
            const channel = result.value;
            if (!channel.native.isConnected()) return;
            // What was handed over goes out first (sendBatch has waited for it anyway), in slices
            // as sendBatch waits; then node-rdkafka's own flush before disconnecting finds nothing.
            await flushed(channel, channel.messageTimeoutMs + 5_000).catch((error: unknown) => logger?.warn({ err: error }, 'kafka (rdkafka): closing with messages undelivered'));
            // node-rdkafka's poll timer runs until its 'disconnected' event, and its native poll
            // takes no lock: one landing while the disconnect (on libuv's pool) destroys the
            // client touches freed memory and crashes the process (SIGSEGV, or "pure virtual
            // method called"). Stopped first; flushing polls by itself, and delivery reports come
            // through librdkafka's own wake-up.
            channel.native.setPollInterval(0);
            await new Promise<void>((resolve) => channel.native.disconnect(0, () => resolve()));
          }),
        );
      })().finally(() => {
        closing = undefined;
      });
      return closing;
    },
  };
}
