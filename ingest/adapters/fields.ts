import { isIP } from 'node:net';
/**
 * The one set of guards every adapter reads a gateway's fields through. They keep a value inside
 * the contract's limits so one odd field loses that field, not the record: the contract refuses
 * control characters and over-long identifiers, and an adapter would rather leave `actor.userId`
 * out than dead-letter an otherwise good request. Where two guards differ only in what they do
 * with an over-long value (cut it or drop it), both are kept, named by that behaviour, because
 * each adapter's events depend on the one it uses.
 */

// Written with escapes in a string, as schemas/envelope.ts does: the same ranges the contract refuses.
const CONTROL = new RegExp(String.raw`[\u0000-\u001F\u007F-\u009F]`);
// RFC 9110 lets a header hold a tab but never another control character; the contract says the same.
const CONTROL_BUT_TAB = new RegExp(String.raw`[\u0000-\u0008\u000A-\u001F\u007F-\u009F]`);

/** Whether a text holds a character the contract refuses in identifiers, paths and reasons. */
export function hasControl(text: string): boolean {
  return CONTROL.test(text);
}

/** A gateway's "no value" placeholders (`-` in Envoy, empty strings) read as absent. */
export function present(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' || trimmed === '-' ? undefined : trimmed;
}

/** A number from a number or a numeric string (Envoy's `json_format` renders every value as text). */
export function numeric(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  const text = present(value);
  if (text === undefined || !/^-?\d+(\.\d+)?$/.test(text)) return undefined;
  return Number(text);
}

/** A whole number in range from a number or numeric text, else `undefined`. */
export function integerIn(value: unknown, min: number, max: number): number | undefined {
  const text = present(value);
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  const number = Number(text);
  return number >= min && number <= max ? number : undefined;
}

/** A latency the contract takes: a finite number of milliseconds from 0 to an hour (0 when unknown). */
export function latencyOf(value: number | undefined): number {
  if (value === undefined || !Number.isFinite(value) || value < 0) return 0;
  return Math.min(value, 3_600_000);
}

/** A byte count the contract takes: a whole number ≥ 0, or absent. */
export function byteCount(value: number | undefined): number | undefined {
  return value !== undefined && value >= 0 ? Math.floor(value) : undefined;
}

/** A plain object (not an array, not null), or `undefined`. */
export function objectOf(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** `JSON.parse` that answers `undefined` instead of throwing. */
export function parseJson(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

/** Strings of an array (a route's or service's tags); anything else is ignored. */
export function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string' && item !== '') : [];
}

/** A value fit for an identifier field (1–256 characters, no control character), else `undefined`: an unfit one is dropped. */
export function identifierText(value: unknown): string | undefined {
  const text = present(value);
  return text !== undefined && text.length <= 256 && !CONTROL.test(text) ? text : undefined;
}

/**
 * An identifier cut to the contract's 256 characters, from a number or text; placeholders read as
 * absent, and one holding a control character (a header the client chose, say) is dropped: the
 * contract refuses it, and the record's events must not go with it.
 */
export function identifierCut(value: unknown): string | undefined {
  const text = present(value)?.slice(0, 256);
  return text !== undefined && !CONTROL.test(text) ? text : undefined;
}

/** Labels with the absent and unfit values left out; keys are the adapter's own, already in the contract's shape. */
export function labels(entries: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(entries)) {
    const text = identifierText(value);
    if (text !== undefined) out[key] = text;
  }
  return out;
}

/** A User-Agent cut to the contract's 1024 characters; one holding a control character is dropped. */
export function userAgentCut(value: string | undefined): string | undefined {
  if (value === undefined || value === '' || CONTROL_BUT_TAB.test(value)) return undefined;
  return value.length > 1024 ? value.slice(0, 1024) : value;
}

/** A User-Agent as the contract takes it (at most 1024 characters, a tab allowed), else `undefined`: an over-long one is dropped. */
export function userAgentText(value: unknown): string | undefined {
  const text = present(value);
  return text !== undefined && text.length <= 1024 && !CONTROL_BUT_TAB.test(text) ? text : undefined;
}

/** A path or route the contract takes (starts with `/`, at most 2048 characters, no control character). */
export function pathText(value: string | undefined): string | undefined {
  return value !== undefined && value.startsWith('/') && value.length <= 2048 && !CONTROL.test(value) ? value : undefined;
}

/**
 * An IP from `ip`, `ip:port`, `[v6]:port` or the first entry of an X-Forwarded-For list, if it is
 * an address at all (a gateway may copy a client's header into its log unchecked: a bad one is
 * dropped, and the record's events kept). An IPv4-mapped IPv6 address (`::ffff:203.0.113.7`, what
 * a dual-stack socket reports for an IPv4 client) is given as the IPv4 address, so per-IP rules
 * and the geo lookup see one client as one address.
 */
export function clientIp(value: unknown): string | undefined {
  const text = present(value);
  if (text === undefined) return undefined;
  const first = (text.split(',')[0] ?? '').trim();
  const bracketed = /^\[([0-9a-fA-F:.]+)\](?::\d+)?$/.exec(first);
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?$/.exec(first);
  const candidate = bracketed?.[1] ?? v4WithPort?.[1] ?? (/^[0-9a-fA-F:.]+$/.test(first) && first.includes(':') ? first : undefined);
  if (candidate === undefined) return undefined;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(candidate);
  const address = mapped?.[1] ?? candidate;
  return isIP(address) === 0 ? undefined : address;
}

/** A record's field as fallback-key text: a string or number as it is, anything else as JSON (never a call into the record's own `toString`). */
export function keyPart(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(typeof value);
  } catch {
    return typeof value;
  }
}

/**
 * An epoch number's unit, told by its size: below 10^11 seconds (10^11 ms is March 1973, 10^11 s
 * the year 5138), below 10^14 milliseconds, below 10^17 microseconds, else nanoseconds. A
 * template that logs seconds (NGINX's `$msec`) must not land in January 1970.
 */
function epochMillis(epoch: number): number {
  const size = Math.abs(epoch);
  if (size < 1e11) return Math.round(epoch * 1000);
  if (size < 1e14) return Math.floor(epoch);
  if (size < 1e17) return Math.floor(epoch / 1000);
  return Math.floor(epoch / 1e6);
}

/** Seconds, milliseconds, microseconds or nanoseconds since the epoch (told apart by size), or an ISO text, as the RFC 3339 text the contract takes. */
export function isoTime(value: unknown): string | undefined {
  let epoch: number | undefined;
  if (typeof value === 'number') epoch = value;
  else {
    const text = present(value);
    if (text === undefined) return undefined;
    if (/^\d+(\.\d+)?$/.test(text)) epoch = Number(text);
    else {
      // A date-time without a zone is read as UTC, not in this host's zone: the same record must
      // not land hours apart on two hosts (Date.parse reads it as local time).
      const zoned = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text) ? `${text.replace(' ', 'T')}Z` : text;
      const millis = Date.parse(zoned);
      return Number.isFinite(millis) ? new Date(millis).toISOString() : undefined;
    }
  }
  if (!Number.isFinite(epoch)) return undefined;
  const date = new Date(epochMillis(epoch));
  return Number.isFinite(date.getTime()) ? date.toISOString() : undefined;
}

/**
 * A header from a gateway's header table, whatever case the gateway wrote its name in; a
 * repeated header (an array, as nginx gives it) reads as its first value.
 */
export function headerValue(headers: unknown, name: string): string | undefined {
  const table = objectOf(headers);
  if (table === undefined) return undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(table)) {
    if (key.toLowerCase() !== wanted) continue;
    return present(Array.isArray(value) ? value[0] : value);
  }
  return undefined;
}

/** The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`). */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  const match = traceparent === undefined ? null : /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent.trim());
  return match?.[1] !== undefined && !/^0+$/.test(match[1]) ? match[1] : undefined;
}

/** The scheme of a `WWW-Authenticate` challenge, lower-cased (`key`, `basic`, `bearer`), and its `error` parameter. */
export function challengeOf(header: string | undefined): { scheme: string; error?: string } | undefined {
  const scheme = header === undefined ? null : /^\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)/.exec(header);
  if (scheme?.[1] === undefined || header === undefined) return undefined;
  const error = /\berror\s*=\s*"?([A-Za-z0-9_.-]{1,64})"?/.exec(header)?.[1];
  return { scheme: scheme[1].toLowerCase(), ...(error !== undefined ? { error } : {}) };
}
