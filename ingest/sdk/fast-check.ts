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
// Either: what text must not hold (a control character; a tab only in a user agent) or what
// JSON escapes. Text without any of it is valid as far as characters go and written as it is.
const SPECIAL = new RegExp(String.raw`["\\\u0000-\u001F\u007F-\u009F\uD800-\uDFFF]`);
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

// The message is written as a string with the member names and punctuation in literals, merged
// where the order is fixed, so each event takes about thirty appends rather than sixty, and no
// member name is built at run time: with the single test per text below, emit() went from
// 7.2–8.1 µs to 4.5–4.6 µs of CPU (docs/sdk.md, Performance). Each rope piece also costs its
// flattening (Buffer.byteLength, at the end). Checked text comes back from its check as what goes between the quotes: itself, or when it
// holds something JSON writes escaped, JSON.stringify's escape of it.

/** What goes between the quotes for `value`, already checked not to hold a control character. */
function escaped(value: string): string {
  return ESCAPED.test(value) ? JSON.stringify(value).slice(1, -1) : value;
}

/**
 * `plainText(max)` (with `min` for the identifiers), as it goes between the quotes. One test for
 * what the text must not hold and what JSON escapes; only text with either looks again.
 */
function text(value: unknown, max: number, min = 0): string {
  if (typeof value !== 'string' || value.length > max || value.length < min) throw NOT_SURE;
  if (!SPECIAL.test(value)) return value;
  if (CONTROL.test(value)) throw NOT_SURE;
  return escaped(value);
}

const identifier = (value: unknown): string => text(value, 256, 1);

/** The last user agent proven valid (a service sees few, and they are the longest text checked), and its text. */
let lastUserAgent = '';
let lastUserAgentText = '';

function userAgent(value: unknown): string {
  if (value === lastUserAgent) return lastUserAgentText;
  if (typeof value !== 'string' || value.length > 1024) throw NOT_SURE;
  let written = value;
  if (SPECIAL.test(value)) {
    if (CONTROL_BUT_TAB.test(value)) throw NOT_SURE;
    written = escaped(value);
  }
  lastUserAgent = value;
  lastUserAgentText = written;
  return written;
}

/** An IPv4 address: nothing in it is escaped. */
function ip(value: unknown): string {
  if (typeof value !== 'string' || !IPV4.test(value)) throw NOT_SURE;
  return value;
}

/** One of the contract's words: nothing in them is escaped. */
function oneOf(value: unknown, allowed: ReadonlySet<string>): string {
  if (typeof value !== 'string' || !allowed.has(value)) throw NOT_SURE;
  return value;
}

function integer(value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) throw NOT_SURE;
  return value;
}

function path(value: unknown): string {
  if (typeof value !== 'string' || value.charCodeAt(0) !== 0x2f) throw NOT_SURE;
  return text(value, 2048);
}

function timeText(value: unknown): string {
  // toISOString's form (the emitter's own clock, a Date), checked by a round trip through Date,
  // which refuses a 30 February; any other form of RFC 3339 is zod's to judge. Nothing in it is
  // escaped.
  if (typeof value !== 'string' || !ISO_UTC_MILLISECONDS.test(value)) throw NOT_SURE;
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime()) || parsed.toISOString() !== value) throw NOT_SURE;
  return value;
}

// The source is the emitter's own for most events, so its text is kept: the last source proven
// valid, by the values of its fields (strings, so equal values write equal text).
let lastService: unknown;
let lastKind: unknown;
let lastInstance: unknown;
let lastEnvironment: unknown;
let lastSourceText = '';

/** `"source":{...}` for a source object. */
function sourceText(value: unknown): string {
  const from = fields(value, SOURCE);
  const { service, kind, instance, environment } = from;
  if (lastSourceText !== '' && service === lastService && kind === lastKind && instance === lastInstance && environment === lastEnvironment) return lastSourceText;
  let written = `"source":{"service":"${identifier(service)}","kind":"${oneOf(kind, SOURCE_KINDS)}"`;
  if (instance !== undefined) written += `,"instance":"${identifier(instance)}"`;
  if (environment !== undefined) written += `,"environment":"${identifier(environment)}"`;
  written += '}';
  lastService = service;
  lastKind = kind;
  lastInstance = instance;
  lastEnvironment = environment;
  lastSourceText = written;
  return written;
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

// Each optional field is read once, checked, and written if set; written out rather than through
// a helper taking a check function, which cost a closure per field per call (profiled). Each
// family's writer returns its object's members, from the first one's name to the last value.

function resource(value: unknown): string {
  const from = fields(value, RESOURCE);
  return `"resource":{"api":"${identifier(from.api)}","method":"${oneOf(from.method, METHODS)}","path":"${path(from.path)}"}`;
}

function policy(value: unknown): string {
  const from = fields(value, POLICY);
  let written = `"kind":"${oneOf(from.kind, POLICY_KINDS)}","name":"${text(from.name, 256, 1)}","outcome":"${oneOf(from.outcome, OUTCOMES)}"`;
  if (from.reason !== undefined) written += `,"reason":"${text(from.reason, 1024)}"`;
  if (from.authContext !== undefined) written += `,"authContext":"${oneOf(from.authContext, AUTH_CONTEXTS)}"`;
  return `${written},"group":"${text(from.group, 256, 1)}",${resource(from.resource)}`;
}

function invocation(value: unknown): string {
  const from = fields(value, INVOCATION);
  const head = resource(from.resource);
  const route = path(from.route);
  const status = integer(from.status, 100, 599);
  const latencyMs = from.latencyMs;
  if (typeof latencyMs !== 'number' || !(latencyMs >= 0 && latencyMs <= 3_600_000)) throw NOT_SURE;
  // A finite number: JSON.stringify writes it as a template does (-0 as 0).
  let written = `${head},"route":"${route}","status":${status},"latencyMs":${latencyMs}`;
  if (from.bytesIn !== undefined) written += `,"bytesIn":${integer(from.bytesIn, 0, Number.MAX_SAFE_INTEGER)}`;
  if (from.bytesOut !== undefined) written += `,"bytesOut":${integer(from.bytesOut, 0, Number.MAX_SAFE_INTEGER)}`;
  if (from.upstreamService !== undefined) written += `,"upstreamService":"${identifier(from.upstreamService)}"`;
  if (from.group !== undefined) written += `,"group":"${identifier(from.group)}"`;
  return written;
}

function device(value: unknown): string {
  const from = fields(value, DEVICE);
  const { deviceId, fingerprint } = from;
  let written: string;
  if (deviceId !== undefined) {
    written = `"deviceId":"${identifier(deviceId)}"`;
    if (fingerprint !== undefined) written += `,"fingerprint":"${text(fingerprint, 512, 1)}"`;
  } else if (fingerprint !== undefined) {
    written = `"fingerprint":"${text(fingerprint, 512, 1)}"`;
  } else {
    throw NOT_SURE;
  }
  written += `,"type":"${oneOf(from.type, DEVICE_TYPES)}"`;
  if (from.os !== undefined) written += `,"os":"${text(from.os, 256)}"`;
  if (from.userAgent !== undefined) written += `,"userAgent":"${userAgent(from.userAgent)}"`;
  if (from.ip !== undefined) written += `,"ip":"${ip(from.ip)}"`;
  return `${written},"action":"${oneOf(from.action, DEVICE_ACTIONS)}"`;
}

const FAMILY_WRITERS: Record<Family, (value: unknown) => string> = { policy, invocation, device };
/** What follows the family's name, up to its object's first member. */
const FAMILY_OPENERS: Record<Family, string> = { policy: '"policy","policy":{', invocation: '"invocation","invocation":{', device: '"device","device":{' };
/** What follows the id in the SDK's text: the schema version, then the time (classify recognises the SDK's text by it). */
export const AFTER_ID = `","schemaVersion":${JSON.stringify(CURRENT_SCHEMA_VERSION)},"time":"`;

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
 * defaults); `timeIsIso` says `time` is the emitter's own `toISOString()` of a valid Date, and
 * `idIsUuid` that `id` is the emitter's own random UUID (both fit the schema as they are).
 */
export function fastMessage(
  family: Family,
  input: object,
  id: unknown,
  time: unknown,
  source: unknown,
  timeIsIso = false,
  idIsUuid = false,
): FastMessage | undefined {
  try {
    for (const key in input) if (key !== family && !TOP.has(key)) throw NOT_SURE;
    const top = input as Fields;
    // An id that passes ID holds nothing JSON escapes.
    if (typeof id !== 'string' || !(idIsUuid || ID.test(id))) throw NOT_SURE;
    // The emitter's own toISOString() of a valid Date needs no second look (profiled: the
    // round trip through Date was a tenth of emit()).
    const checkedTime = timeIsIso && typeof time === 'string' ? time : timeText(time);
    let json = `{"id":"${id}${AFTER_ID}${checkedTime}",${sourceText(source)},"correlation":{`;

    if (top.correlation !== undefined) {
      const correlation = fields(top.correlation, CORRELATION);
      const { requestId, traceId, sessionId } = correlation;
      let members = '';
      if (requestId !== undefined) members = `"requestId":"${identifier(requestId)}"`;
      if (traceId !== undefined) members += `${members === '' ? '' : ','}"traceId":"${identifier(traceId)}"`;
      if (sessionId !== undefined) members += `${members === '' ? '' : ','}"sessionId":"${identifier(sessionId)}"`;
      json += members;
    }
    json += '},"actor":{';

    // The partition key, as partitionKeyOf reads it: the user, else the API consumer, else the
    // client's IP, else the id. The key is the value itself, not its JSON.
    let key: string | undefined;
    if (top.actor !== undefined) {
      const actor = fields(top.actor, ACTOR);
      const { userId, consumerId, tenantId } = actor;
      let members = '';
      if (userId !== undefined) {
        members = `"userId":"${identifier(userId)}"`;
        key = userId as string;
      }
      if (consumerId !== undefined) {
        members += `${members === '' ? '' : ','}"consumerId":"${identifier(consumerId)}"`;
        key ??= consumerId as string;
      }
      if (tenantId !== undefined) members += `${members === '' ? '' : ','}"tenantId":"${identifier(tenantId)}"`;
      json += members;
    }
    json += '},"client":{';

    if (top.client !== undefined) {
      const client = fields(top.client, CLIENT);
      const { ip: address, userAgent: agent, deviceId } = client;
      let members = '';
      if (address !== undefined) {
        members = `"ip":"${ip(address)}"`;
        key ??= address as string;
      }
      if (agent !== undefined) members += `${members === '' ? '' : ','}"userAgent":"${userAgent(agent)}"`;
      if (deviceId !== undefined) members += `${members === '' ? '' : ','}"deviceId":"${identifier(deviceId)}"`;
      json += members;
    }
    json += `},"family":${FAMILY_OPENERS[family]}${FAMILY_WRITERS[family](top[family])}}}`;
    key ??= id;
    // Buffer.byteLength also flattens the text, written as a rope of some thirty pieces, into one
    // string: left a rope while buffered, its pieces cost the garbage collector more than the
    // whole check (profiled: 60 % of emit()).
    return { key, value: json, bytes: Buffer.byteLength(key) + Buffer.byteLength(json) };
  } catch (error) {
    if (error === NOT_SURE) return undefined;
    throw error;
  }
}
