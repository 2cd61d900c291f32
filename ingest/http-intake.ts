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
import type { Socket } from 'node:net';
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
  /**
   * How long {@link HttpIntake.stop} waits for connections still uploading or idle before it
   * closes them; a request whose records are being produced keeps its connection until answered.
   * @defaultValue 5000
   */
  stopGraceMs?: number;
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
/** How long an idle keep-alive connection is kept: past Kong's http-log default of 60 s. */
const INTAKE_KEEP_ALIVE_MS = 65_000;

/** How long stop() leaves connections before closing those not producing records (see stopGraceMs). */
const INTAKE_STOP_GRACE_MS = 5_000;

/**
 * After a refusal sent before its body was read, how long the rest of the body is read and dropped,
 * and how much of it (times VIGIL_INTAKE_MAX_BODY_BYTES): closed with unread bytes, the socket sent
 * a reset, and a caller still writing (Kong) saw EPIPE instead of the answer.
 */
const REFUSED_BODY_DRAIN_MS = 5_000;
const REFUSED_BODY_DRAIN_TIMES_LIMIT = 2;

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

/** The first buffer of a body that declares no length (a chunked one): it doubles as it fills. */
const INITIAL_BODY_CAPACITY = 16 * 1024;

/**
 * A body as it is read, in one buffer (exported for its tests). A body of a declared length within
 * the limit is given that length at once; any other grows by doubling, never past the limit. Each
 * `data` event kept as its own Buffer cost far more than its bytes: four 1 MiB bodies sent in
 * 1-byte chunks held about 500 MB of heap while only 4 MiB were counted. Now a body holds at most
 * about twice its bytes.
 */
export class BodyAccumulator {
  private buffer: Buffer;
  private size = 0;
  private growths = 0;

  constructor(
    private readonly limit: number,
    declared?: number,
  ) {
    const initial = declared !== undefined && Number.isSafeInteger(declared) && declared >= 0 && declared <= limit ? declared : Math.min(limit, INITIAL_BODY_CAPACITY);
    this.buffer = Buffer.allocUnsafe(initial);
  }

  /** Appends `chunk`, growing the buffer (to twice its size, or what the chunk needs) when it is full. */
  append(chunk: Buffer): void {
    const needed = this.size + chunk.length;
    if (needed > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, Math.min(this.limit, this.buffer.length * 2)));
      this.buffer.copy(grown, 0, 0, this.size);
      this.buffer = grown;
      this.growths += 1;
    }
    chunk.copy(this.buffer, this.size);
    this.size = needed;
  }

  /** The bytes appended so far (a view: no copy). */
  bytes(): Buffer {
    return this.buffer.subarray(0, this.size);
  }

  /** What the body holds: its bytes, the one buffer's capacity, and how many times it grew. */
  held(): { bytes: number; capacity: number; buffers: number; growths: number } {
    return { bytes: this.size, capacity: this.buffer.length, buffers: 1, growths: this.growths };
  }
}

/**
 * Reads the body, refusing with 413 as soon as it passes the limit. The stream is paused, not
 * destroyed, so the 413 still reaches the caller (the rest of the body is then read and dropped,
 * see keepReadingAfterRefusal). `ready` runs once the body is about to be read: where a caller
 * that sent `Expect: 100-continue` is told to send it.
 */
function readBody(request: IncomingMessage, limit: number, held: BodyBudget, ready: () => void = () => undefined): Promise<Buffer> {
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
  ready();
  return new Promise((resolve, reject) => {
    const body = new BodyAccumulator(limit, reserved ? declared : undefined);
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
      body.append(chunk);
    };
    request.on('data', onData);
    request.once('end', () => {
      if (!settled) resolve(body.bytes());
    });
    request.once('error', (error) => {
      if (settled) return;
      settled = true;
      reject(error);
    });
  });
}

/**
 * Once a refusal is answered (with `connection: close`) before its body was read whole, reads and
 * drops the rest of the body, up to `maxBytes` or {@link REFUSED_BODY_DRAIN_MS}, before closing the
 * socket. Node closed it as soon as the answer was written: with the body's bytes unread, the
 * kernel sent a reset, and a caller still writing its body (Kong) got EPIPE, never the status.
 */
function keepReadingAfterRefusal(request: IncomingMessage, maxBytes: number): void {
  if (request.complete) return;
  const socket = request.socket;
  const closeWhenWritten = socket.destroySoon.bind(socket);
  // Node's server calls destroySoon once an answer with `connection: close` is written.
  socket.destroySoon = () => {
    socket.end();
    // Received whole meanwhile: nothing is left unread.
    if (request.complete) {
      closeWhenWritten();
      return;
    }
    let drained = 0;
    const timer = setTimeout(() => socket.destroy(), REFUSED_BODY_DRAIN_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    request.on('data', (chunk: Buffer) => {
      drained += chunk.length;
      if (drained > maxBytes) socket.destroy();
    });
    request.once('end', () => {
      clearTimeout(timer);
      closeWhenWritten();
    });
    request.resume();
  };
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
export function recordsOfBody(given: Buffer, limits: { maxRecordBytes: number; maxJsonDepth: number }): IntakeRecord[] {
  // A leading byte order mark is dropped, as the pipeline's classify does: JSON.parse refused it
  // ("Unexpected token"), and the count below would not have seen the array behind it.
  const body = given[0] === 0xef && given[1] === 0xbb && given[2] === 0xbf ? given.subarray(3) : given;
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

/**
 * The path of a request target, origin-form (`/kong/http-log?x`) or absolute-form
 * (`http://host:9465/kong/http-log`, which a client sends through a proxy); undefined when it is no URL.
 */
export function intakePathOf(target: string | undefined): string | undefined {
  try {
    return new URL(target ?? '/', 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

/**
 * Why a request's `Content-Type` and `Content-Encoding` can't be taken, or undefined when they can
 * (exported for its tests). The type must be `application/json`, with parameters such as `charset`
 * or none, or be absent; a `\b` after `json` took `application/json-seq` and `application/jsonl`.
 * The body must not be encoded (`identity` or no header): a gzip body was refused as "not JSON".
 */
export function unsupportedMediaOf(headers: { 'content-type'?: string; 'content-encoding'?: string }): string | undefined {
  const type = headers['content-type'];
  if (type !== undefined && !/^[ \t]*application\/json[ \t]*(?:;.*)?$/is.test(type)) return `content-type ${type} is not JSON: send application/json`;
  const encoding = headers['content-encoding'];
  if (encoding !== undefined) {
    const codings = encoding.split(',').map((coding) => coding.trim().toLowerCase()).filter((coding) => coding !== '' && coding !== 'identity');
    if (codings.length > 0) return `content-encoding ${codings.join(', ')} is not supported: send the body uncompressed (identity)`;
  }
  return undefined;
}

/** Builds the intake; nothing connects or listens until {@link HttpIntake.start}. */
export function createHttpIntake(options: HttpIntakeOptions): HttpIntake {
  const log = options.logger.child({ component: 'intake' });
  const bucket = tokenBucket(options.requestsPerSecond, options.burst, options.now ?? (() => performance.now()));
  const stats: IntakeStats = { accepted: 0, records: 0, unauthorized: 0, tooLarge: 0, rateLimited: 0, invalid: 0, busy: 0, unavailable: 0, refused: 0 };
  let producer: Producer | undefined;
  let server: Server | undefined;
  let lastUnauthorizedWarning = Number.NEGATIVE_INFINITY;
  // Once stop() begins, every answer closes its connection: a gateway posting on a keep-alive
  // connection kept server.close() waiting for as long as it went on posting.
  let stopping = false;
  const stopGraceMs = options.stopGraceMs ?? INTAKE_STOP_GRACE_MS;
  // The open connections, and those whose request's records are being produced (spared at the end
  // of the stop's grace: their answer says whether the records are on Kafka).
  const sockets = new Set<Socket>();
  const producing = new Set<Socket>();
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

  /**
   * Sends an answer; while stopping, with `connection: close`. `refused`: an answer given before
   * the body was read whole (a refusal, or a caller still waiting for `100 Continue`, which never
   * gets it). Its connection is closed, once the rest of the body is read and dropped (up to twice
   * the limit, for 5 s), so the caller reads the answer rather than a reset.
   */
  function answer(response: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}, refused = false): void {
    if (refused) keepReadingAfterRefusal(response.req, REFUSED_BODY_DRAIN_TIMES_LIMIT * options.maxBodyBytes);
    send(response, status, body, stopping || refused ? { ...headers, connection: 'close' } : headers);
  }

  /**
   * Handles a request; `expectsContinue` when its caller sent `Expect: 100-continue` and waits to
   * be told to send the body, which it is only once every check before the body has passed.
   */
  async function handle(request: IncomingMessage, response: ServerResponse, expectsContinue: boolean): Promise<void> {
    const path = intakePathOf(request.url);
    if (path === undefined) throw new IntakeRefusal(400, `request target ${request.url ?? ''} is not a URL path`, 'invalid');
    if (path !== KONG_INTAKE_PATH) {
      answer(response, 404, { error: `not found: the intake serves POST ${KONG_INTAKE_PATH}` }, {}, expectsContinue);
      return;
    }
    if (request.method !== 'POST') {
      answer(response, 405, { error: 'method not allowed: use POST' }, { allow: 'POST' }, expectsContinue);
      return;
    }
    // Checked before the body is read: a caller without the token costs a header's worth.
    const token = bearerOf(request);
    if (token === undefined || !sameSecret(token, options.token)) {
      throw new IntakeRefusal(401, token === undefined ? 'missing "Authorization: Bearer <token>"' : 'wrong token', 'unauthorized', { 'www-authenticate': 'Bearer realm="vigil-intake"' });
    }
    const allowed = bucket.take();
    if (!allowed.ok) throw new IntakeRefusal(429, 'over the intake rate (VIGIL_INTAKE_REQUESTS_PER_SECOND, VIGIL_INTAKE_BURST)', 'rateLimited', { 'retry-after': String(allowed.retryAfterSeconds) });
    const unsupported = unsupportedMediaOf(request.headers);
    if (unsupported !== undefined) throw new IntakeRefusal(415, unsupported, 'invalid');
    const budget = bodyBudget();
    try {
      await parseAndProduce(request, response, budget, expectsContinue);
    } finally {
      budget.release();
      producing.delete(request.socket);
    }
  }

  /** Reads, checks and produces an accepted request's body, then answers 200. */
  async function parseAndProduce(request: IncomingMessage, response: ServerResponse, budget: BodyBudget, expectsContinue: boolean): Promise<void> {
    const records = recordsOfBody(await readBody(request, options.maxBodyBytes, budget, () => expectsContinue && response.writeContinue()), options);
    producing.add(request.socket);
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
    answer(response, 200, { accepted: records.length });
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
        const serve = (request: IncomingMessage, response: ServerResponse, expectsContinue: boolean): void => {
          // While stopping, a connection is closed as soon as it is idle, whatever it was answered.
          response.once('finish', () => {
            if (stopping) listening.closeIdleConnections();
          });
          handle(request, response, expectsContinue).catch((error: unknown) => {
            if (error instanceof IntakeRefusal) {
              stats[error.stat] += 1;
              // A wrong token is worth a warning, but a flood of them must not flood the log too.
              const warn = error.status === 401 && Date.now() - lastUnauthorizedWarning >= UNAUTHORIZED_WARNING_EVERY_MS;
              if (warn) lastUnauthorizedWarning = Date.now();
              log[warn ? 'warn' : 'debug']({ status: error.status, remote: request.socket.remoteAddress, reason: error.message, unauthorizedSoFar: stats.unauthorized }, 'intake request refused');
              // A refused connection is closed: the rest of the body is read and dropped first (up
              // to twice the limit, for 5 s), so the caller reads the answer rather than a reset.
              answer(response, error.status, { error: error.message }, error.headers, true);
              return;
            }
            // A caller that went away mid-upload is its own loss, not the intake's failure.
            const aborted = request.destroyed || (error as { code?: string }).code === 'ECONNRESET' || (error as { code?: string }).code === 'ECONNABORTED';
            log[aborted ? 'debug' : 'error']({ err: error }, aborted ? 'intake request aborted by the caller' : 'intake request failed');
            if (!response.headersSent) send(response, 500, { error: 'internal error' }, { connection: 'close' });
            else response.end();
          });
        };
        const listening = createServer({ connectionsCheckingInterval: 1000 }, (request, response) => serve(request, response, false));
        // A caller sending `Expect: 100-continue` is refused before it sends its body, and told to
        // send it only once the checks before the body pass (Node would answer 100 at once).
        listening.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => serve(request, response, true));
        listening.on('connection', (socket: Socket) => {
          sockets.add(socket);
          socket.once('close', () => sockets.delete(socket));
        });
        // Bounds on a slow caller (Node's own: a minute for headers, five for a request).
        listening.headersTimeout = INTAKE_HEADERS_TIMEOUT_MS;
        listening.requestTimeout = INTAKE_REQUEST_TIMEOUT_MS;
        // An idle keep-alive connection outlives the caller's own idle timeout (Kong's http-log
        // keeps one 60 s by default): closed first here, at Node's 5 s, Kong's next post went out
        // on a connection the intake had closed, failed, and waited for its queue's retry.
        listening.keepAliveTimeout = INTAKE_KEEP_ALIVE_MS;
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
      if (closing) {
        // Idle keep-alive connections go now, and each busy one once answered (with `connection:
        // close`). After the grace, what is left goes too (a slow upload, a caller that sent half
        // its headers), except requests whose records are being produced: they are answered.
        stopping = true;
        const grace = setTimeout(() => {
          const left = [...sockets].filter((socket) => !producing.has(socket));
          if (left.length > 0) log.info({ connections: left.length, graceMs: stopGraceMs }, 'intake stopping: closing the connections left after the grace');
          for (const socket of left) socket.destroy();
        }, stopGraceMs);
        try {
          await closeServer(closing, 'idle');
        } finally {
          clearTimeout(grace);
        }
      }
      producer = undefined;
      await sending?.disconnect();
    },
    stats: () => ({ ...stats }),
  };
}
