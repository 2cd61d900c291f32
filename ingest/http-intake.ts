/**
 * The HTTP intake: where an open-source Kong's `http-log` plugin posts its log objects (one, or
 * an array when it batches), so Kong feeds Vigil by configuration alone. It authenticates the
 * shared token, bounds the body and the request rate, checks the shape, and produces each
 * record to the raw topic; it answers 200 only once Kafka has acknowledged every record, so a
 * refused or failed post is retried by Kong's queue and an accepted one is never lost. Turning
 * the records into contract events is the `kong` adapter's job (`vigil adapt --format kong`).
 * See docs/gateways/kong-http-log.md.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Kafka, Producer } from 'kafkajs';
import { closeServer, createProducer, errorMessage, isRetriable, listenOn, sendBatches, unwrapKafkaRetries, untilReady, type Logger, type TopicPlan } from '../platform';
import { jsonBeyond } from './classify';

/** Where the intake listens: `port: 0` asks the system for a free port (tests). */
export interface IntakeListen {
  host: string;
  port: number;
}

export interface HttpIntakeOptions {
  kafka: Kafka;
  /** The raw topic, e.g. `vigil.raw.kong`; created at start when missing. */
  topic: string;
  /**
   * How the raw topic is created when missing: the partitions, replicas and retention
   * configuration gives every topic Vigil creates (`topicPlans(config, [topic])`).
   */
  topicSettings: Pick<TopicPlan, 'numPartitions' | 'replicationFactor' | 'configEntries'>;
  /** The shared token the gateway sends as `Authorization: Bearer <token>`. */
  token: string;
  maxBodyBytes: number;
  /**
   * The bytes of all bodies being read or produced at once; a request whose body would pass it is
   * answered 503 with `Retry-After` (the gateway retries). At least `maxBodyBytes` is allowed.
   */
  maxBodiesBytes: number;
  /** Each record, as produced, must fit in this (the pipeline's `VIGIL_MAX_MESSAGE_BYTES`). */
  maxRecordBytes: number;
  /** Records nesting deeper are refused (the pipeline's `VIGIL_MAX_JSON_DEPTH`). */
  maxJsonDepth: number;
  requestsPerSecond: number;
  burst: number;
  logger: Logger;
  /** The token bucket's clock, in milliseconds. @defaultValue performance.now (monotonic) */
  now?: () => number;
}

/** Counts since start, by answer. */
export interface IntakeStats {
  accepted: number;
  records: number;
  unauthorized: number;
  tooLarge: number;
  rateLimited: number;
  invalid: number;
  /** Refused with 503 because the bodies in hand would pass VIGIL_INTAKE_MAX_BODIES_BYTES. */
  busy: number;
  /** Refused with 503 because Kafka did not acknowledge, or the intake was stopping. */
  unavailable: number;
  /** Refused with 500 because Kafka refused the records for good (not authorized, say): retrying sends them again for nothing. */
  refused: number;
}

export interface HttpIntake {
  /** Connects the producer, creates the raw topic if missing, and listens; resolves with the real address. */
  start(at: IntakeListen): Promise<IntakeListen>;
  /** Stops taking requests, lets those in hand finish, and disconnects the producer. Idempotent. */
  stop(): Promise<void>;
  stats(): IntakeStats;
}

/** At most one warning per minute for wrong tokens; the rest are counted and logged at debug. */
const UNAUTHORIZED_WARNING_EVERY_MS = 60_000;

/** How long a caller may take to send its headers, and its whole request. */
const INTAKE_HEADERS_TIMEOUT_MS = 10_000;
const INTAKE_REQUEST_TIMEOUT_MS = 60_000;

/** The one path the intake serves; anything else is 404. */
export const KONG_INTAKE_PATH = '/kong/http-log';

/** A refusal: status, the one-line reason sent back, and the stat it counts in. */
export class IntakeRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly stat: keyof IntakeStats,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * A token bucket: `burst` requests at once, refilled at `perSecond` (exported for its tests). One bucket for the one
 * shared token, so it bounds the whole intake; unauthenticated requests never draw from it, so
 * a flood of wrong tokens can't starve the gateway that has the right one.
 */
export function tokenBucket(perSecond: number, burst: number, now: () => number): { take(): { ok: true } | { ok: false; retryAfterSeconds: number } } {
  let tokens = burst;
  let last = now();
  return {
    take() {
      const at = now();
      // A clock stepped back refills nothing, rather than draining the bucket for as long.
      tokens = Math.min(burst, tokens + (Math.max(0, at - last) / 1000) * perSecond);
      last = at;
      if (tokens >= 1) {
        tokens -= 1;
        return { ok: true };
      }
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / perSecond)) };
    },
  };
}

/** Compares in constant time: both sides are hashed first, so even their lengths don't leak. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function bearerOf(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  const match = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1];
}

/**
 * Reads the body, refusing with 413 as soon as it passes the limit. The stream is paused, not
 * destroyed, so the 413 still reaches the caller before the connection closes.
 */
function readBody(request: IncomingMessage, limit: number, held: BodyBudget): Promise<Buffer> {
  const declared = Number(request.headers['content-length'] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new IntakeRefusal(413, `body of ${declared} bytes is over the limit of ${limit} (VIGIL_INTAKE_MAX_BODY_BYTES)`, 'tooLarge'));
  }
  const busy = (): IntakeRefusal =>
    new IntakeRefusal(503, `the intake holds ${held.limit} bytes of bodies at once (VIGIL_INTAKE_MAX_BODIES_BYTES); retry later`, 'busy', { 'retry-after': '1' });
  // A declared length (Kong sends one) is taken whole before any byte is read: a body that won't
  // fit is refused at once, not after part of it was read. Only a chunked body is counted as it comes.
  const reserved = Number.isFinite(declared);
  if (reserved && !held.take(declared)) return Promise.reject(busy());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const refuse = (refusal: IntakeRefusal): void => {
      settled = true;
      request.off('data', onData);
      request.pause();
      reject(refusal);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        refuse(new IntakeRefusal(413, `body is over the limit of ${limit} bytes (VIGIL_INTAKE_MAX_BODY_BYTES)`, 'tooLarge'));
        return;
      }
      if (!reserved && !held.take(chunk.length)) {
        refuse(busy());
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.once('end', () => {
      if (!settled) resolve(Buffer.concat(chunks, size));
    });
    request.once('error', (error) => {
      if (settled) return;
      settled = true;
      reject(error);
    });
  });
}

/** The bytes of the bodies one request holds, counted against the intake's whole budget. */
interface BodyBudget {
  readonly limit: number;
  /** Counts `bytes` as held, unless that passes the limit (then nothing is counted). */
  take(bytes: number): boolean;
}

/** How deeply a parsed JSON value nests objects and arrays (a flat object is 1). */
function depthOf(value: unknown): number {
  let deepest = 0;
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  for (let item = stack.pop(); item; item = stack.pop()) {
    if (typeof item.value !== 'object' || item.value === null) continue;
    const depth = item.depth + 1;
    deepest = Math.max(deepest, depth);
    for (const child of Object.values(item.value)) stack.push({ value: child, depth });
  }
  return deepest;
}

function kindOf(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** A record as it will be produced: its text, and its key (the client IP Kong logged). */
export interface IntakeRecord {
  value: string;
  key: string | null;
}

/**
 * Records one body may hold. A Kong log record is a kilobyte or more, so a full 8 MiB body holds a
 * few thousand; the limit refuses bodies of tiny records (`[{},{},…]`), which would expand about
 * fifty times in memory while parsed and produced, and fill the raw topic with records the adapter
 * only dead-letters.
 */
export const MAX_RECORDS_PER_BODY = 10_000;

/**
 * Objects and arrays one body may hold, at any depth: 64 per record on average, far above a Kong
 * log record's few dozen. Counting only the top level let `[{"a":[{},{},…]}]` (one record) through
 * to JSON.parse: an 8 MiB body of empty objects took about 150 MB of heap, and eight at once fit the
 * in-flight budget.
 */
export const MAX_CONTAINERS_PER_BODY = 64 * MAX_RECORDS_PER_BODY;

/**
 * How many items a body's top-level JSON array holds, counted on the bytes (strings skipped), up
 * to `stopAt + 1`: before JSON.parse builds them all. 1 for anything that is not an array.
 */
export function topLevelItems(body: Buffer, stopAt: number): number {
  let start = 0;
  while (start < body.length && (body[start] === 0x20 || body[start] === 0x0a || body[start] === 0x0d || body[start] === 0x09)) start++;
  if (body[start] !== 0x5b) return 1;
  let depth = 0;
  let inString = false;
  let items = 0;
  let empty = true;
  for (let index = start; index < body.length; index++) {
    const byte = body[index];
    if (inString) {
      if (byte === 0x5c) index++;
      else if (byte === 0x22) inString = false;
      continue;
    }
    if (byte === 0x22) inString = true;
    else if (byte === 0x5b || byte === 0x7b) depth++;
    else if (byte === 0x5d || byte === 0x7d) depth--;
    else if (byte === 0x2c && depth === 1) {
      items++;
      if (items > stopAt) return items;
    }
    if (depth === 1 && byte !== 0x5b && byte !== 0x2c && byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) empty = false;
    if (depth > 1) empty = false;
    if (depth === 0) break;
  }
  return empty ? 0 : items + 1;
}

/**
 * The records of a body, each serialized as it will be produced, or a refusal naming the first
 * problem: what the http-log plugin sends is one log object, or an array of them when batching.
 */
export function recordsOfBody(body: Buffer, limits: { maxRecordBytes: number; maxJsonDepth: number }): IntakeRecord[] {
  // Decoded leniently: a byte that is not UTF-8 (a client's Latin-1 header, which Kong's
  // lua-cjson writes as it is) is produced as U+FFFD. Refusing the body instead lost every record
  // of the batch (Kong drops it after its retries), so one request could hide up to a thousand.
  const count = topLevelItems(body, MAX_RECORDS_PER_BODY);
  if (count > MAX_RECORDS_PER_BODY) {
    throw new IntakeRefusal(413, `body holds more than ${MAX_RECORDS_PER_BODY} records, over the limit per request: lower the plugin's queue.max_batch_size`, 'tooLarge');
  }
  if (jsonBeyond(body, { depth: Number.POSITIVE_INFINITY, containers: MAX_CONTAINERS_PER_BODY }) === 'containers') {
    throw new IntakeRefusal(413, `body holds more than ${MAX_CONTAINERS_PER_BODY} JSON objects and arrays, far more than Kong log records have: refused before parsing`, 'tooLarge');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new IntakeRefusal(400, `body is not JSON: ${errorMessage(error)}`, 'invalid');
  }
  const items = Array.isArray(parsed) ? (parsed as unknown[]) : [parsed];
  if (items.length === 0) throw new IntakeRefusal(400, 'body is an empty array: expected a Kong log object or an array of them', 'invalid');
  return items.map((item, index) => {
    const where = Array.isArray(parsed) ? `record ${index}` : 'body';
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new IntakeRefusal(400, `${where} is ${kindOf(item)}: expected a Kong log object`, 'invalid');
    // The record, wrapped in the array, nests one deeper than it will on the raw topic.
    const depth = depthOf(item);
    if (depth > limits.maxJsonDepth) throw new IntakeRefusal(400, `${where} nests ${depth} deep, over the limit of ${limits.maxJsonDepth} (VIGIL_MAX_JSON_DEPTH)`, 'invalid');
    const text = JSON.stringify(item);
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > limits.maxRecordBytes) throw new IntakeRefusal(413, `${where} is ${bytes} bytes, over the limit of ${limits.maxRecordBytes} per record (VIGIL_MAX_MESSAGE_BYTES)`, 'tooLarge');
    return { value: text, key: keyOf(item as Record<string, unknown>) };
  });
}

/**
 * The record's own client IP (its top-level `client_ip`), as the message key: one client's records
 * stay in order on one partition. Never a `client_ip` found deeper (a query string, a header the
 * client chose).
 */
function keyOf(record: Record<string, unknown>): string | null {
  const ip = record.client_ip;
  return typeof ip === 'string' && /^[0-9a-fA-F.:]{2,45}$/.test(ip) ? ip : null;
}

function send(response: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers }).end(`${JSON.stringify(body)}\n`);
}

/** Builds the intake; nothing connects or listens until {@link HttpIntake.start}. */
export function createHttpIntake(options: HttpIntakeOptions): HttpIntake {
  const log = options.logger.child({ component: 'intake' });
  const bucket = tokenBucket(options.requestsPerSecond, options.burst, options.now ?? (() => performance.now()));
  const stats: IntakeStats = { accepted: 0, records: 0, unauthorized: 0, tooLarge: 0, rateLimited: 0, invalid: 0, busy: 0, unavailable: 0, refused: 0 };
  let producer: Producer | undefined;
  let server: Server | undefined;
  let lastUnauthorizedWarning = Number.NEGATIVE_INFINITY;
  // Bytes of the bodies being read, parsed or produced now. The token bucket bounds requests,
  // not bytes: its burst of bodies of up to VIGIL_INTAKE_MAX_BODY_BYTES each could hold gigabytes.
  const bodiesLimit = Math.max(options.maxBodiesBytes, options.maxBodyBytes);
  let bodiesHeld = 0;

  /** A request's share of the bodies' budget: what it takes is given back by `release`. */
  function bodyBudget(): BodyBudget & { release(): void } {
    let taken = 0;
    return {
      limit: bodiesLimit,
      take(bytes) {
        if (bodiesHeld + bytes > bodiesLimit) return false;
        bodiesHeld += bytes;
        taken += bytes;
        return true;
      },
      release() {
        bodiesHeld -= taken;
        taken = 0;
      },
    };
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== KONG_INTAKE_PATH) {
      send(response, 404, { error: `not found: the intake serves POST ${KONG_INTAKE_PATH}` });
      return;
    }
    if (request.method !== 'POST') {
      send(response, 405, { error: 'method not allowed: use POST' }, { allow: 'POST' });
      return;
    }
    // Checked before the body is read: a caller without the token costs a header's worth.
    const token = bearerOf(request);
    if (token === undefined || !sameSecret(token, options.token)) {
      throw new IntakeRefusal(401, token === undefined ? 'missing "Authorization: Bearer <token>"' : 'wrong token', 'unauthorized', { 'www-authenticate': 'Bearer realm="vigil-intake"' });
    }
    const allowed = bucket.take();
    if (!allowed.ok) throw new IntakeRefusal(429, 'over the intake rate (VIGIL_INTAKE_REQUESTS_PER_SECOND, VIGIL_INTAKE_BURST)', 'rateLimited', { 'retry-after': String(allowed.retryAfterSeconds) });
    const type = request.headers['content-type'];
    if (type !== undefined && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) throw new IntakeRefusal(415, `content-type ${type} is not JSON`, 'invalid');
    const budget = bodyBudget();
    try {
      await parseAndProduce(request, response, budget);
    } finally {
      budget.release();
    }
  }

  /** Reads, checks and produces an accepted request's body, then answers 200. */
  async function parseAndProduce(request: IncomingMessage, response: ServerResponse, budget: BodyBudget): Promise<void> {
    const records = recordsOfBody(await readBody(request, options.maxBodyBytes, budget), options);
    const sending = producer;
    if (!sending) throw new IntakeRefusal(503, 'the intake is stopping', 'unavailable', { 'retry-after': '5' });
    try {
      // In sends of at most 512 KiB: a body may hold 8 MiB, and one partition's records go to the
      // broker as one batch, refused for good over its limit (1 MiB by default). A failure part way
      // is answered 503 and the whole body retried: copies on the raw topic, which the adapter's
      // event ids (derived from each record) make harmless.
      const messages = records.map(({ key, value }) => ({ key, value, headers: { 'vigil-intake': 'kong-http-log' } }));
      for (const batch of sendBatches(messages)) {
        // Every in-sync replica: a 200 must mean the records survive a broker's loss.
        await sending.send({ topic: options.topic, acks: -1, messages: batch });
      }
    } catch (error) {
      // The broker's own words (its addresses among them) stay in the log, not in the answer. A
      // refusal for good is not answered 503: the gateway retried it until it dropped the batch,
      // counted as an outage.
      // Only the broker's own refusals (a protocol error type) are for good: kafkajs's lock and
      // request timeouts are non-retriable to kafkajs, but a slow broker's, so they stay 503.
      const type = (unwrapKafkaRetries(error) as { type?: unknown } | undefined)?.type;
      if (!isRetriable(error) && typeof type === 'string') {
        if (type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE') {
          log.warn({ err: error, records: records.length }, 'Kafka refused an intake record as larger than it takes: set VIGIL_MAX_MESSAGE_BYTES to at most the broker\'s message.max.bytes (the topic\'s max.message.bytes)');
          throw new IntakeRefusal(413, 'a record is larger than the raw topic takes (VIGIL_MAX_MESSAGE_BYTES is above the broker\'s limit)', 'tooLarge');
        }
        log.error({ err: error, records: records.length }, 'Kafka refused an intake batch for good (not a transient failure): the gateway is answered 500');
        throw new IntakeRefusal(500, 'Kafka refused the records; see the intake\'s log', 'refused');
      }
      log.warn({ err: error, records: records.length }, 'Kafka did not acknowledge an intake batch; the gateway will retry it');
      throw new IntakeRefusal(503, 'Kafka did not acknowledge the records; retry later', 'unavailable', { 'retry-after': '5' });
    }
    stats.accepted += 1;
    stats.records += records.length;
    send(response, 200, { accepted: records.length });
  }

  return {
    async start(at) {
      const starting = createProducer(options.kafka);
      await starting.connect();
      try {
        const admin = options.kafka.admin();
        await admin.connect();
        try {
          if (!(await admin.listTopics()).includes(options.topic)) {
            // Not kafkajs's `waitForLeaders`: a partition with a leader may not take writes yet, and a
            // batch written then could land twice (see untilReady).
            const { numPartitions, replicationFactor, configEntries } = options.topicSettings;
            await admin.createTopics({ waitForLeaders: false, topics: [{ topic: options.topic, numPartitions, replicationFactor, configEntries: [...configEntries] }] });
            await untilReady(admin, [{ topic: options.topic, numPartitions }]);
          }
        } finally {
          await admin.disconnect();
        }
        // Node checks the two timeouts below every 30 s by default: a stalled upload then held its
        // budget for up to 90 s rather than 60.
        const listening = createServer({ connectionsCheckingInterval: 1000 }, (request, response) => {
          handle(request, response).catch((error: unknown) => {
            if (error instanceof IntakeRefusal) {
              stats[error.stat] += 1;
              // A wrong token is worth a warning, but a flood of them must not flood the log too.
              const warn = error.status === 401 && Date.now() - lastUnauthorizedWarning >= UNAUTHORIZED_WARNING_EVERY_MS;
              if (warn) lastUnauthorizedWarning = Date.now();
              log[warn ? 'warn' : 'debug']({ status: error.status, remote: request.socket.remoteAddress, reason: error.message, unauthorizedSoFar: stats.unauthorized }, 'intake request refused');
              // A refused body is not read further: the connection is closed rather than drained
              // (kept open, Node would read and discard whatever the caller goes on sending).
              send(response, error.status, { error: error.message }, { ...error.headers, connection: 'close' });
              return;
            }
            // A caller that went away mid-upload is its own loss, not the intake's failure.
            const aborted = request.destroyed || (error as { code?: string }).code === 'ECONNRESET' || (error as { code?: string }).code === 'ECONNABORTED';
            log[aborted ? 'debug' : 'error']({ err: error }, aborted ? 'intake request aborted by the caller' : 'intake request failed');
            if (!response.headersSent) send(response, 500, { error: 'internal error' });
            else response.end();
          });
        });
        // Bounds on a slow caller (Node's own: a minute for headers, five for a request).
        listening.headersTimeout = INTAKE_HEADERS_TIMEOUT_MS;
        listening.requestTimeout = INTAKE_REQUEST_TIMEOUT_MS;
        const { port } = await listenOn(listening, at, { host: 'VIGIL_INTAKE_HOST', port: 'VIGIL_INTAKE_PORT' });
        server = listening;
        producer = starting;
        log.info({ host: at.host, port, path: KONG_INTAKE_PATH, topic: options.topic }, 'intake listening for Kong http-log batches');
        return { host: at.host, port };
      } catch (error) {
        await starting.disconnect().catch(() => undefined);
        throw error;
      }
    },
    async stop() {
      const closing = server;
      const sending = producer;
      server = undefined;
      // Requests in hand finish (their sends are awaited); idle keep-alive sockets go now.
      if (closing) await closeServer(closing, 'idle');
      producer = undefined;
      await sending?.disconnect();
    },
    stats: () => ({ ...stats }),
  };
}
