// A hand-written check of the fields a typical event carries, run before zod on the caller's
// thread. zod's parse was most of emit()'s cost (bench/sdk.bench.ts): this check proves the common
// event valid in a fraction of that time and builds the event as the schema would output it.
// It only ever says "valid, here is the event" or "not sure": anything it does not check
// (labels, scopes, geo, an IPv6 address, a time string in a form other than toISOString's, an
// unknown key, any value out of bounds) makes it give up, and the emitter then runs the family's
// zod schema, which stays the contract and names every field at fault. So it must never accept
// what the schema refuses; test/unit/emitter-fast-check.test.ts holds it to that over thousands
// of mutated events, and to the very output the schema gives.
import { CURRENT_SCHEMA_VERSION, type Family } from '../../schemas/envelope';
import type { VigilEvent } from '../../schemas/event';

// The contract's control-character classes (schemas/envelope.ts), looked for rather than matched
// whole. Built from text, as the contract's are, so the file holds no control character.
const CONTROL = new RegExp(String.raw`[\u0000-\u001F\u007F-\u009F]`);
const CONTROL_BUT_TAB = new RegExp(String.raw`[\u0000-\u0008\u000A-\u001F\u007F-\u009F]`);
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

/** Copies the optional fields of `from` that are set, each checked by `check`, into `to`. */
function optional(to: Fields, from: Fields, key: string, check: (value: unknown) => unknown): void {
  const value = from[key];
  if (value !== undefined) to[key] = check(value);
}

const identifier = (value: unknown): string => text(value, 256, 1);
const plain256 = (value: unknown): string => text(value, 256);
const path = (value: unknown): string => {
  const checked = text(value, 2048);
  if (!checked.startsWith('/')) throw NOT_SURE;
  return checked;
};

function timeText(value: unknown): string {
  // toISOString's form (the emitter's own clock, a Date), checked by a round trip through Date,
  // which refuses a 30 February; any other form of RFC 3339 is zod's to judge.
  if (typeof value !== 'string' || !ISO_UTC_MILLISECONDS.test(value)) throw NOT_SURE;
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime()) || parsed.toISOString() !== value) throw NOT_SURE;
  return value;
}

function envelopeObject(value: unknown, allowed: ReadonlySet<string>, check: (object: Fields, out: Fields) => void): Fields {
  const out: Fields = {};
  if (value === undefined) return out;
  check(fields(value, allowed), out);
  return out;
}

function resource(value: unknown): Fields {
  const from = fields(value, RESOURCE);
  return { api: identifier(from.api), method: oneOf(from.method, METHODS), path: path(from.path) };
}

function policy(value: unknown): Fields {
  const from = fields(value, POLICY);
  const out: Fields = { kind: oneOf(from.kind, POLICY_KINDS), name: text(from.name, 256, 1), outcome: oneOf(from.outcome, OUTCOMES) };
  optional(out, from, 'reason', (reason) => text(reason, 1024));
  optional(out, from, 'authContext', (context) => oneOf(context, AUTH_CONTEXTS));
  out.group = text(from.group, 256, 1);
  out.resource = resource(from.resource);
  return out;
}

function invocation(value: unknown): Fields {
  const from = fields(value, INVOCATION);
  const latencyMs = from.latencyMs;
  if (typeof latencyMs !== 'number' || !(latencyMs >= 0 && latencyMs <= 3_600_000)) throw NOT_SURE;
  const out: Fields = { resource: resource(from.resource), route: path(from.route), status: integer(from.status, 100, 599), latencyMs };
  optional(out, from, 'bytesIn', (bytes) => integer(bytes, 0, Number.MAX_SAFE_INTEGER));
  optional(out, from, 'bytesOut', (bytes) => integer(bytes, 0, Number.MAX_SAFE_INTEGER));
  optional(out, from, 'upstreamService', identifier);
  optional(out, from, 'group', identifier);
  return out;
}

function device(value: unknown): Fields {
  const from = fields(value, DEVICE);
  const out: Fields = {};
  optional(out, from, 'deviceId', identifier);
  optional(out, from, 'fingerprint', (fingerprint) => text(fingerprint, 512, 1));
  if (out.deviceId === undefined && out.fingerprint === undefined) throw NOT_SURE;
  out.type = oneOf(from.type, DEVICE_TYPES);
  optional(out, from, 'os', plain256);
  optional(out, from, 'userAgent', userAgent);
  optional(out, from, 'ip', ip);
  out.action = oneOf(from.action, DEVICE_ACTIONS);
  return out;
}

const FAMILY_CHECKS: Record<Family, (value: unknown) => Fields> = { policy, invocation, device };

/**
 * The event the family's schema would output for this input, when the fast check can prove it
 * valid; `undefined` when it can't (invalid, or a field it leaves to zod). `id`, `time` and
 * `source` are the ones the emitter settled on (the caller's, else its defaults); `timeIsIso`
 * says `time` is the emitter's own `toISOString()` of a valid Date.
 */
export function fastEvent(family: Family, input: object, id: unknown, time: unknown, source: unknown, timeIsIso = false): VigilEvent | undefined {
  try {
    for (const key in input) if (key !== family && !TOP.has(key)) throw NOT_SURE;
    const top = input as Fields;
    if (typeof id !== 'string' || !ID.test(id)) throw NOT_SURE;
    const from = fields(source, SOURCE);
    const sourceOut: Fields = { service: identifier(from.service), kind: oneOf(from.kind, SOURCE_KINDS) };
    optional(sourceOut, from, 'instance', identifier);
    optional(sourceOut, from, 'environment', identifier);
    const event: Fields = {
      id,
      schemaVersion: CURRENT_SCHEMA_VERSION,
      // The emitter's own toISOString() of a valid Date needs no second look (profiled: the
      // round trip through Date was a tenth of emit()).
      time: timeIsIso && typeof time === 'string' ? time : timeText(time),
      source: sourceOut,
      correlation: envelopeObject(top.correlation, CORRELATION, (object, out) => {
        optional(out, object, 'requestId', identifier);
        optional(out, object, 'traceId', identifier);
        optional(out, object, 'sessionId', identifier);
      }),
      actor: envelopeObject(top.actor, ACTOR, (object, out) => {
        optional(out, object, 'userId', identifier);
        optional(out, object, 'consumerId', identifier);
        optional(out, object, 'tenantId', identifier);
      }),
      client: envelopeObject(top.client, CLIENT, (object, out) => {
        optional(out, object, 'ip', ip);
        optional(out, object, 'userAgent', userAgent);
        optional(out, object, 'deviceId', identifier);
      }),
      family,
    };
    event[family] = FAMILY_CHECKS[family](top[family]);
    return event as VigilEvent;
  } catch (error) {
    if (error === NOT_SURE) return undefined;
    throw error;
  }
}
