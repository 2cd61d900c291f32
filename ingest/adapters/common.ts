import { createHash } from 'node:crypto';
import type { GroupKeys, GroupMap } from './types';
import { exceedsDepth } from '../classify';
import { hasControl } from './fields';
import { UNMATCHED_ROUTE } from '../sdk';

/** The HTTP methods the contract takes; any other is skipped as `method_unsupported`. */
const CONTRACT_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
export type ContractMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

export function contractMethod(method: unknown): ContractMethod | undefined {
  if (typeof method !== 'string') return undefined;
  const upper = method.toUpperCase();
  return CONTRACT_METHODS.has(upper) ? (upper as ContractMethod) : undefined;
}

/** Which event of a record an id names: one invocation, and at most one policy event per kind. */
export type EventSuffix = 'inv' | 'authn' | 'authz' | 'rate_limit' | 'json_threat' | 'xml_threat' | 'custom';

const READABLE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

/**
 * A deterministic event id, so a redelivered or replayed record is the same document:
 * `<format>:<request>:<digest>:<suffix>` when the record has a request id, else
 * `<format>:<record>:<suffix>`.
 *
 * `<request>` is the gateway's request id when it is short and plain (kept readable, for an
 * analyst pivoting from the gateway's own log), else its SHA-256. A request id alone does not
 * name one record: a client can choose it (APISIX keeps a client's `X-Request-Id`; Envoy and
 * OTLP read `x-request-id`), and several hops of one request log the same one (Istio's gateway and
 * its sidecar). So `<digest>`, the first 12 hex digits of the SHA-256 of `record`, tells such
 * records apart; before, the second was dead-lettered as an id conflict and reached no rule.
 * With no request id, `<record>` is the first 40 hex digits of that SHA-256.
 *
 * `record` is what the adapter reads out of the record to identify it (time, client, method, URI,
 * status, instance), never anything Vigil adds.
 */
export function eventId(format: string, requestId: string | undefined, record: string, suffix: EventSuffix): string {
  const digest = sha256(`record:${record}`);
  if (requestId === undefined || requestId === '' || requestId === '-') return `${format}:${digest.slice(0, 40)}:${suffix}`;
  const request = READABLE_ID.test(requestId) ? requestId : sha256(`request:${requestId}`).slice(0, 40);
  return `${format}:${request}:${digest.slice(0, RECORD_DIGEST_DIGITS)}:${suffix}`;
}

/** Hex digits of the record's digest beside a request id: 48 bits, for records sharing one request id. */
export const RECORD_DIGEST_DIGITS = 12;

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * A secret a gateway logs (Tyk's `api_key`, a bearer token) turned into something that still
 * groups the same caller but can't be used: `sha256:` and the first 16 hex digits of its hash.
 */
export function secretFingerprint(secret: string): string {
  return `sha256:${sha256(`secret:${secret}`).slice(0, 16)}`;
}

/** The contract's longest path. */
const MAX_PATH = 2048;

/**
 * A path the contract takes, from what a client asked for: control characters percent-encoded
 * (`%00`, `%C2%85`), and the whole cut to at most 2048 characters, between characters (never
 * inside an escape it wrote, nor between the halves of a surrogate pair). A gateway refuses a bad
 * credential whatever the path, so a request the contract would refuse for its path must still
 * give its events: dead-lettering them let a brute-forcer pad the path past every rule.
 */
export function contractPath(path: string): string {
  if (path.length <= MAX_PATH && !hasControl(path)) return path;
  let fitted = '';
  // By code point: a pair of surrogates is one character.
  for (const character of path) {
    const piece = hasControl(character) ? encodeURIComponent(character) : character;
    if (fitted.length + piece.length > MAX_PATH) break;
    fitted += piece;
  }
  return fitted;
}

/** A URI split into the path the contract takes (starts with `/`, no query; see {@link contractPath}) and its query. */
export function splitUri(uri: string): { path: string; query?: string } | undefined {
  if (uri === '' || uri === '-') return undefined;
  let rest = uri;
  // An absolute URL (Kong's request.url, OTel's url.full): keep the path onward.
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(rest);
  if (scheme) rest = rest.slice(scheme[0].length) || '/';
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const mark = rest.indexOf('?');
  const asked = mark >= 0 ? rest.slice(0, mark) : rest;
  if (!asked.startsWith('/')) return undefined;
  const path = contractPath(asked);
  return mark >= 0 ? { path, query: rest.slice(mark + 1) } : { path };
}

/**
 * The group map from configuration: exact route, then service, then API, then the first tag
 * with an entry, then the default; `undefined` when none applies and there is no default.
 */
export function groupMap(entries: {
  routes?: Record<string, string>;
  services?: Record<string, string>;
  apis?: Record<string, string>;
  tags?: Record<string, string>;
  default?: string;
}): GroupMap {
  const lookup = (table: Record<string, string> | undefined, key: string | undefined): string | undefined =>
    table !== undefined && key !== undefined && Object.hasOwn(table, key) ? table[key] : undefined;
  return {
    resolve(keys: GroupKeys): string | undefined {
      return (
        lookup(entries.routes, keys.route) ??
        lookup(entries.services, keys.service) ??
        lookup(entries.apis, keys.api) ??
        (keys.tags ?? []).map((tag) => lookup(entries.tags, tag)).find((group) => group !== undefined) ??
        entries.default
      );
    },
  };
}

/** The JSON root of a message: one record (an object) or a batch (an array of them). */
export type JsonBatch = { ok: true; records: unknown[] } | { ok: false; message: string };

// Gateways nest a record a few levels deep (Kong's route and service objects); a message nested
// far deeper is hostile, and JSON.parse's recursion must not meet it.
const MAX_RECORD_DEPTH = 64;
// Lenient: a byte that is not UTF-8 (a client's Latin-1 header, which lua-cjson writes as it is)
// reads as U+FFFD. Refusing the message would lose every record of the batch with it, letting one
// request hide the others.
const utf8 = new TextDecoder('utf-8');

/**
 * Parses a message holding one JSON object or a JSON array of them (Kong's http-log with
 * `max_batch_size` > 1, APISIX's batch processor). Never throws: what is not JSON or nested past
 * 64 levels is a result naming the fault; bytes that are not UTF-8 read as U+FFFD.
 */
export function parseJsonBatch(value: Uint8Array): JsonBatch {
  if (value.length === 0) return { ok: false, message: 'the message is empty' };
  if (exceedsDepth(value, MAX_RECORD_DEPTH)) return { ok: false, message: `the JSON nests deeper than ${MAX_RECORD_DEPTH} levels` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(value));
  } catch (error) {
    return { ok: false, message: `not valid JSON: ${(error as Error).message}` };
  }
  // An empty batch is refused, not taken as nothing: it was committed with no event, no dead
  // letter and no count but `messages`, so a writer's bug went unseen.
  if (Array.isArray(parsed)) return parsed.length === 0 ? { ok: false, message: 'an empty JSON array: expected a JSON object or an array of them' } : { ok: true, records: parsed };
  if (typeof parsed === 'object' && parsed !== null) return { ok: true, records: [parsed] };
  return { ok: false, message: `expected a JSON object or an array of them, got ${parsed === null ? 'null' : typeof parsed}` };
}

/**
 * The route of a request no gateway route matched: a 404 is recorded as `/{unmatched}`, as the
 * SDK's middleware records it, so a scanner's paths don't make one route value (and one
 * per-endpoint baseline) each; any other status keeps the path (a gateway's own answer on a real
 * endpoint, such as a 401 before routing, belongs to it).
 */
export function routeWithoutMatch(status: number, path: string): string {
  return status === 404 ? UNMATCHED_ROUTE : path;
}
