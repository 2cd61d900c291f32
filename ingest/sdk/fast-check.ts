// A hand-written check of the fields a typical event carries, run before zod on the caller's
// thread, that writes the event's Kafka message (its JSON and its key) as it checks. zod's parse
// was most of emit()'s cost (bench/sdk.bench.ts), and after it building the output objects and
// JSON.stringify of them (and the garbage both left): this check proves the common event valid
// and writes, field by field in the schema's order, the very JSON that JSON.stringify of the
// schema's output gives, with no event object in between.
// It only ever says "valid, here is the message" or "not sure": anything it does not check
// (labels, scopes, geo, an IPv6 address, a time string in a form other than toISOString's, an
// unknown key, any value out of bounds) makes it give up, and the emitter then runs the family's
// zod schema, which stays the contract and names every field at fault. So it must never accept
// what the schema refuses; test/unit/emitter-fast-check.test.ts holds it to that over thousands
// of mutated events, and to the very bytes JSON.stringify of the schema's output gives.
import { CURRENT_SCHEMA_VERSION, type Family } from '../../schemas/envelope';

// The contract's control-character classes (schemas/envelope.ts), looked for rather than matched
// whole. Built from text, as the contract's are, so the file holds no control character.
const CONTROL = new RegExp(String.raw`[\u0000-\u001F\u007F-\u009F]`);
const CONTROL_BUT_TAB = new RegExp(String.raw`[\u0000-\u0008\u000A-\u001F\u007F-\u009F]`);
// A character JSON.stringify writes escaped: a quote, a backslash, a control character, a
// surrogate (a lone one is escaped). Text without any is written between quotes as it is.
const ESCAPED = new RegExp(String.raw`["\\\u0000-\u001F\uD800-\uDFFF]`);
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$/;
// zod's own IPv4 pattern (four decimal octets, no leading zeros).
const IPV4 = /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])$/;
const ISO_UTC_MILLISECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

type Fields = Record<string, unknown>;

/** What the caller may put at the top of an emit input, besides the family's own object. */
const TOP = new Set(['id', 'time', 'source', 'correlation', 'actor', 'client', 'family', 'schemaVersion']);
const SOURCE = new Set(['service', 'kind', 'instance', 'environment']);
const CORRELATION = new Set(['requestId', 'traceId', 'sessionId']);
const ACTOR = new Set(['userId', 'consumerId', 'tenantId']);
const CLIENT = new Set(['ip', 'userAgent', 'deviceId']);
const RESOURCE = new Set(['api', 'method', 'path']);
const POLICY = new Set(['kind', 'name', 'outcome', 'reason', 'authContext', 'group', 'resource']);
const INVOCATION = new Set(['resource', 'route', 'status', 'latencyMs', 'bytesIn', 'bytesOut', 'upstreamService', 'group']);
const DEVICE = new Set(['deviceId', 'fingerprint', 'type', 'os', 'userAgent', 'ip', 'action']);

const SOURCE_KINDS = new Set(['gateway', 'service']);
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const POLICY_KINDS = new Set(['authn', 'authz', 'rate_limit', 'json_threat', 'xml_threat', 'custom']);
const OUTCOMES = new Set(['pass', 'fail']);
const AUTH_CONTEXTS = new Set(['none', 'basic', 'api_key', 'oauth2', 'jwt', 'mtls', '2fa']);
const DEVICE_TYPES = new Set(['mobile', 'desktop', 'tablet', 'server', 'iot', 'unknown']);
const DEVICE_ACTIONS = new Set(['login', 'logout', 'session', 'transaction', 'registration', 'password_change', 'other']);

/**
 * Thrown inside the check to give up, and caught at its top: one instance made at load, so
 * giving up costs no stack trace.
 */
class NotSure extends Error {}
const NOT_SURE = new NotSure('not sure: left to the schema');

/**
 * The message's JSON as it is written. One per call (never shared: a getter on the input could
 * emit again from inside a check), so the helpers below need no closure.
 */
class JsonText {
  text = '';
  /** The next member of the object being written follows another one. */
  private follows = false;

  /** `"name":` with the comma before it if needed. */
  key(name: string): void {
    this.text += this.follows ? `,"${name}":` : `"${name}":`;
    this.follows = true;
  }

  /** Opens the object `name` (or the top one, without a name). */
  open(name?: string): void {
    if (name !== undefined) this.key(name);
    this.text += '{';
    this.follows = false;
  }

  close(): void {
    this.text += '}';
    this.follows = true;
  }

  string(name: string, value: string): void {
    this.key(name);
    if (ESCAPED.test(value)) {
      this.text += JSON.stringify(value);
    } else {
      this.text += `"${value}"`;
    }
  }

  /** A finite number: JSON.stringify writes it as String() does (-0 as 0). */
  number(name: string, value: number): void {
    this.key(name);
    this.text += String(value);
  }
}

/** A plain object holding no key outside `allowed`. */
function fields(value: unknown, allowed: ReadonlySet<string>): Fields {
  if (typeof value !== 'object' || value === null) throw NOT_SURE;
  // A plain object from any realm (structuredClone's, a vm's): its prototype, if any, is the
  // root of its chain. Arrays, Dates and class instances sit deeper and are zod's to judge.
  const prototype = Object.getPrototypeOf(value) as object | null;
  if (prototype !== null && Object.getPrototypeOf(prototype) !== null) throw NOT_SURE;
  for (const key in value) if (!allowed.has(key)) throw NOT_SURE;
  return value as Fields;
}

/** `plainText(max)`, with `min` for the identifiers. */
function text(value: unknown, max: number, min = 0): string {
  if (typeof value !== 'string' || value.length > max || value.length < min || CONTROL.test(value)) throw NOT_SURE;
  return value;
}

const identifier = (value: unknown): string => text(value, 256, 1);

function userAgent(value: unknown): string {
  if (typeof value !== 'string' || value.length > 1024 || CONTROL_BUT_TAB.test(value)) throw NOT_SURE;
  return value;
}

function ip(value: unknown): string {
  if (typeof value !== 'string' || !IPV4.test(value)) throw NOT_SURE;
  return value;
}

function oneOf(value: unknown, allowed: ReadonlySet<string>): string {
  if (typeof value !== 'string' || !allowed.has(value)) throw NOT_SURE;
  return value;
}

function integer(value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) throw NOT_SURE;
  return value;
}

function path(value: unknown): string {
  const checked = text(value, 2048);
  if (!checked.startsWith('/')) throw NOT_SURE;
  return checked;
}

function timeText(value: unknown): string {
  // toISOString's form (the emitter's own clock, a Date), checked by a round trip through Date,
  // which refuses a 30 February; any other form of RFC 3339 is zod's to judge.
  if (typeof value !== 'string' || !ISO_UTC_MILLISECONDS.test(value)) throw NOT_SURE;
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime()) || parsed.toISOString() !== value) throw NOT_SURE;
  return value;
}

// Each optional field is read once, checked, and written if set; written out rather than through
// a helper taking a check function, which cost a closure per field per call (profiled).

function resource(json: JsonText, value: unknown): void {
  const from = fields(value, RESOURCE);
  json.open('resource');
  json.string('api', identifier(from.api));
  json.string('method', oneOf(from.method, METHODS));
  json.string('path', path(from.path));
  json.close();
}

function policy(json: JsonText, value: unknown): void {
  const from = fields(value, POLICY);
  json.string('kind', oneOf(from.kind, POLICY_KINDS));
  json.string('name', text(from.name, 256, 1));
  json.string('outcome', oneOf(from.outcome, OUTCOMES));
  if (from.reason !== undefined) json.string('reason', text(from.reason, 1024));
  if (from.authContext !== undefined) json.string('authContext', oneOf(from.authContext, AUTH_CONTEXTS));
  json.string('group', text(from.group, 256, 1));
  resource(json, from.resource);
}

function invocation(json: JsonText, value: unknown): void {
  const from = fields(value, INVOCATION);
  resource(json, from.resource);
  json.string('route', path(from.route));
  json.number('status', integer(from.status, 100, 599));
  const latencyMs = from.latencyMs;
  if (typeof latencyMs !== 'number' || !(latencyMs >= 0 && latencyMs <= 3_600_000)) throw NOT_SURE;
  json.number('latencyMs', latencyMs);
  if (from.bytesIn !== undefined) json.number('bytesIn', integer(from.bytesIn, 0, Number.MAX_SAFE_INTEGER));
  if (from.bytesOut !== undefined) json.number('bytesOut', integer(from.bytesOut, 0, Number.MAX_SAFE_INTEGER));
  if (from.upstreamService !== undefined) json.string('upstreamService', identifier(from.upstreamService));
  if (from.group !== undefined) json.string('group', identifier(from.group));
}

function device(json: JsonText, value: unknown): void {
  const from = fields(value, DEVICE);
  const { deviceId, fingerprint } = from;
  if (deviceId === undefined && fingerprint === undefined) throw NOT_SURE;
  if (deviceId !== undefined) json.string('deviceId', identifier(deviceId));
  if (fingerprint !== undefined) json.string('fingerprint', text(fingerprint, 512, 1));
  json.string('type', oneOf(from.type, DEVICE_TYPES));
  if (from.os !== undefined) json.string('os', text(from.os, 256));
  if (from.userAgent !== undefined) json.string('userAgent', userAgent(from.userAgent));
  if (from.ip !== undefined) json.string('ip', ip(from.ip));
  json.string('action', oneOf(from.action, DEVICE_ACTIONS));
}

const FAMILY_WRITERS: Record<Family, (json: JsonText, value: unknown) => void> = { policy, invocation, device };

/** An event as its Kafka message: what the emitter buffers and sends. */
export interface FastMessage {
  /** The partition key (`partitionKeyOf` of the event). */
  key: string;
  /** The event as JSON, byte for byte JSON.stringify of the schema's output. */
  value: string;
  /** The UTF-8 size of key and value together. */
  bytes: number;
}

/**
 * The Kafka message of the event the family's schema would output for this input, when the fast
 * check can prove it valid; `undefined` when it can't (invalid, or a field it leaves to zod).
 * `id`, `time` and `source` are the ones the emitter settled on (the caller's, else its
 * defaults); `timeIsIso` says `time` is the emitter's own `toISOString()` of a valid Date.
 */
export function fastMessage(family: Family, input: object, id: unknown, time: unknown, source: unknown, timeIsIso = false): FastMessage | undefined {
  try {
    for (const key in input) if (key !== family && !TOP.has(key)) throw NOT_SURE;
    const top = input as Fields;
    if (typeof id !== 'string' || !ID.test(id)) throw NOT_SURE;
    const json = new JsonText();
    json.open();
    json.string('id', id);
    json.number('schemaVersion', CURRENT_SCHEMA_VERSION);
    // The emitter's own toISOString() of a valid Date needs no second look (profiled: the
    // round trip through Date was a tenth of emit()).
    json.string('time', timeIsIso && typeof time === 'string' ? time : timeText(time));

    const from = fields(source, SOURCE);
    json.open('source');
    json.string('service', identifier(from.service));
    json.string('kind', oneOf(from.kind, SOURCE_KINDS));
    if (from.instance !== undefined) json.string('instance', identifier(from.instance));
    if (from.environment !== undefined) json.string('environment', identifier(from.environment));
    json.close();

    json.open('correlation');
    if (top.correlation !== undefined) {
      const correlation = fields(top.correlation, CORRELATION);
      if (correlation.requestId !== undefined) json.string('requestId', identifier(correlation.requestId));
      if (correlation.traceId !== undefined) json.string('traceId', identifier(correlation.traceId));
      if (correlation.sessionId !== undefined) json.string('sessionId', identifier(correlation.sessionId));
    }
    json.close();

    // The partition key, as partitionKeyOf reads it: the user, else the API consumer, else the
    // client's IP, else the id.
    let key: string | undefined;
    json.open('actor');
    if (top.actor !== undefined) {
      const actor = fields(top.actor, ACTOR);
      const { userId, consumerId } = actor;
      if (userId !== undefined) {
        key = identifier(userId);
        json.string('userId', key);
      }
      if (consumerId !== undefined) {
        const checked = identifier(consumerId);
        json.string('consumerId', checked);
        key ??= checked;
      }
      if (actor.tenantId !== undefined) json.string('tenantId', identifier(actor.tenantId));
    }
    json.close();

    json.open('client');
    if (top.client !== undefined) {
      const client = fields(top.client, CLIENT);
      if (client.ip !== undefined) {
        const checked = ip(client.ip);
        json.string('ip', checked);
        key ??= checked;
      }
      if (client.userAgent !== undefined) json.string('userAgent', userAgent(client.userAgent));
      if (client.deviceId !== undefined) json.string('deviceId', identifier(client.deviceId));
    }
    json.close();

    json.string('family', family);
    json.open(family);
    FAMILY_WRITERS[family](json, top[family]);
    json.close();
    json.close();
    key ??= id;
    const value = json.text;
    // Buffer.byteLength also flattens the text, written as a rope of some sixty pieces, into one
    // string: left a rope while buffered, its pieces cost the garbage collector more than the
    // whole check (profiled: 60 % of emit()).
    return { key, value, bytes: Buffer.byteLength(key) + Buffer.byteLength(value) };
  } catch (error) {
    if (error === NOT_SURE) return undefined;
    throw error;
  }
}
