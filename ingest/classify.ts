import { isUtf8 } from 'node:buffer';
import {
  FAMILIES,
  SUPPORTED_SCHEMA_VERSIONS,
  checkEvent,
  type Family,
  type VigilEvent,
} from '../schemas';
import { AFTER_ID, fastMessage } from './sdk';

/** Why a message was dead-lettered. Stable codes: dashboards and alerts key on them. */
export const DEAD_LETTER_REASONS = [
  'empty',
  'too_large',
  'not_json',
  'too_deep',
  'unknown_schema_version',
  'schema_invalid',
  'wrong_topic',
  'time_out_of_range',
  'index_rejected',
  'id_conflict',
  // Written by `vigil adapt` (ingest/adapt.consumer.ts), which reads a gateway's raw topic.
  'adapter_unparseable',
  'adapter_unmapped',
] as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

/** Limits applied before a message is parsed. */
export interface MessageLimits {
  maxMessageBytes: number;
  maxJsonDepth: number;
}

/** How far ahead of the pipeline's clock an event time may be (clock skew between hosts). */
export const MAX_FUTURE_MS = 24 * 3600 * 1000;
/** Event times before this are refused: each day is an index, and no API event is that old. */
export const EARLIEST_EVENT_TIME = Date.parse('2000-01-01T00:00:00Z');

/** A message that passed, or why it can never pass. */
export type Classification =
  | { ok: true; event: VigilEvent }
  | { ok: false; reasonCode: DeadLetterReason; message: string };

// A lenient decode would turn bad bytes into U+FFFD, and the indexed event would then differ
// from what the producer sent without anyone being told: the bytes are checked first. Buffer's
// native check and decode are several times faster than a fatal TextDecoder, whose cost grew with
// every byte of a hostile message's long strings (docs/hostile-input.md).
const BYTE_ORDER_MARK = [0xef, 0xbb, 0xbf] as const;

/** The text of UTF-8 bytes (a leading byte order mark dropped, as a decoder does), or undefined when they are not UTF-8. */
function utf8Text(bytes: Buffer): string | undefined {
  if (!isUtf8(bytes)) return undefined;
  const bom = bytes[0] === BYTE_ORDER_MARK[0] && bytes[1] === BYTE_ORDER_MARK[1] && bytes[2] === BYTE_ORDER_MARK[2];
  return bytes.toString('utf8', bom ? BYTE_ORDER_MARK.length : 0);
}

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether JSON text nests deeper than `limit`, by a scan of the bytes before any parse: a
 * deeply nested message must be refused before JSON.parse, whose recursion it could overflow.
 */
export function exceedsDepth(bytes: Uint8Array, limit: number): boolean {
  return jsonBeyond(bytes, { depth: limit }) === 'depth';
}

/**
 * Which bound JSON text passes first, by a scan of its bytes before any parse (brackets inside
 * strings don't count): nesting deeper than `depth`, or holding more than `containers` objects and
 * arrays at any depth (a parse of many tiny ones costs about fifty times their bytes); undefined
 * within both. A string is crossed with a native search for its closing quote, not byte by byte:
 * hostile messages are mostly long strings, and a scan ran over each of their bytes. Text that is
 * not JSON (an unterminated string) is left to the parse to report.
 */
export function jsonBeyond(bytes: Uint8Array, bounds: { depth: number; containers?: number }): 'depth' | 'containers' | undefined {
  const maxContainers = bounds.containers ?? Number.POSITIVE_INFINITY;
  let depth = 0;
  let containers = 0;
  for (let index = 0; index < bytes.length; index++) {
    const byte = bytes[index];
    if (byte === QUOTE) {
      index = closingQuote(bytes, index + 1);
      if (index < 0) return undefined;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > bounds.depth) return 'depth';
      if (++containers > maxContainers) return 'containers';
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    }
  }
  return undefined;
}

/** The position of the quote that closes a string starting at `from` (after its opening quote), or -1. */
function closingQuote(bytes: Uint8Array, from: number): number {
  let at = bytes.indexOf(QUOTE, from);
  while (at >= 0) {
    // Escaped if an odd number of backslashes precede it.
    let backslashes = 0;
    while (at - backslashes - 1 >= from && bytes[at - backslashes - 1] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
    at = bytes.indexOf(QUOTE, at + 1);
  }
  return -1;
}

/**
 * JSON.parse of the text, or the error it threw (a parsed value is never an Error). Only the
 * error's message is reported, so it is built without a stack trace: capturing one (ten frames of
 * the consumer's call stack) was more than a third of refusing a message that is not JSON
 * (bench/classify.bench.ts), and under hostile traffic many are not. The limit is put back before
 * anything else runs: the parse is synchronous and calls no code of ours.
 */
function parseJson(text: string): unknown {
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/**
 * The path of the first object that holds a `__proto__` key of its own, if any. JSON.parse makes
 * such a key an ordinary property, and zod's records skip it without a word (so a label named
 * `__proto__` would vanish from an event that still passed). It is refused instead, wherever it
 * is. Recursion is bounded: the depth limit was checked before the parse.
 */
export function findPrototypeKey(value: unknown, path: readonly (string | number)[] = []): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const found = findPrototypeKey(value[index], [...path, index]);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (Object.hasOwn(value, '__proto__')) return [...path, '__proto__'].join('.');
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'object' || item === null) continue;
    const found = findPrototypeKey(item, [...path, key]);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Decides whether a raw Kafka message is a valid Vigil event. Never throws: everything that
 * can go wrong with the bytes is a result with a reason code and a message naming the fault.
 * @param expectedFamily the family of the topic it came from; another family is `wrong_topic`.
 * @param now the pipeline's clock; when given, an event time more than a day ahead of it (or
 *   before 2000) is `time_out_of_range`, since every event day becomes an index.
 */
export function classifyMessage(
  value: Buffer | null,
  limits: MessageLimits,
  expectedFamily?: Family,
  now?: Date,
): Classification {
  if (value === null || value.length === 0) return { ok: false, reasonCode: 'empty', message: 'the message has no value' };
  if (value.length > limits.maxMessageBytes) {
    return {
      ok: false,
      reasonCode: 'too_large',
      message: `the message is ${value.length} bytes; the limit is ${limits.maxMessageBytes}`,
    };
  }
  if (exceedsDepth(value, limits.maxJsonDepth)) {
    return { ok: false, reasonCode: 'too_deep', message: `the JSON nests deeper than ${limits.maxJsonDepth} levels` };
  }
  const text = utf8Text(value);
  if (text === undefined) {
    return { ok: false, reasonCode: 'not_json', message: 'not valid JSON: the bytes are not valid UTF-8 (JSON text must be UTF-8, RFC 8259)' };
  }
  const parsed = parseJson(text);
  if (parsed instanceof Error) return { ok: false, reasonCode: 'not_json', message: `not valid JSON: ${parsed.message}` };
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, reasonCode: 'schema_invalid', message: '(root): expected a JSON object' };
  }
  // A key can only be `__proto__` if the text spells it, or hides it behind a \u escape: most
  // messages do neither, and two scans of the text cost less than a walk of the parsed tree.
  const prototypeKey = text.includes('__proto__') || text.includes('\\u') ? findPrototypeKey(parsed) : undefined;
  if (prototypeKey !== undefined) {
    return { ok: false, reasonCode: 'schema_invalid', message: `${prototypeKey}: a key named "__proto__" is not allowed` };
  }
  const record = parsed as Record<string, unknown>;
  const version = record.schemaVersion;
  if (version !== undefined && !(SUPPORTED_SCHEMA_VERSIONS as readonly unknown[]).includes(version)) {
    return {
      ok: false,
      reasonCode: 'unknown_schema_version',
      message: `schemaVersion ${JSON.stringify(version)} is not one this pipeline reads (${SUPPORTED_SCHEMA_VERSIONS.join(', ')})`,
    };
  }
  if (expectedFamily !== undefined && typeof record.family === 'string' && record.family !== expectedFamily) {
    return {
      ok: false,
      reasonCode: 'wrong_topic',
      // A family that is none of the three is the producer's text: quoted (escaped), and cut.
      message: (FAMILIES as readonly string[]).includes(record.family)
        ? `a ${record.family} event on the ${expectedFamily} topic`
        : `an event of family ${JSON.stringify(record.family.slice(0, 64))} on the ${expectedFamily} topic`,
    };
  }
  let event = canonicalEvent(record, text);
  if (event === undefined) {
    const result = checkEvent(parsed);
    if (!result.success) {
      return { ok: false, reasonCode: 'schema_invalid', message: result.problems.join('; ') };
    }
    event = result.data;
  }
  if (now !== undefined) {
    const time = Date.parse(event.time);
    if (time > now.getTime() + MAX_FUTURE_MS || time < EARLIEST_EVENT_TIME) {
      return {
        ok: false,
        reasonCode: 'time_out_of_range',
        message: `time: ${event.time} is more than a day ahead of ${now.toISOString()} or before 2000`,
      };
    }
  }
  return { ok: true, event };
}

/** How the SDK's text opens: the id, then the schema version and the time (ingest/sdk/fast-check.ts). */
const SDK_OPENING = '{"id":"';

/**
 * The parsed event itself when its text is, byte for byte, the JSON the SDK writes for it: the
 * SDK's fast check (ingest/sdk/fast-check.ts) proves an event valid and writes exactly
 * `JSON.stringify` of the schema's output for it, so text equal to what it writes parses to what
 * zod would return, and zod's parse (most of decode's cost for a good event) can be skipped.
 * Anything else (another producer's key order or spacing, a field the fast check leaves to zod,
 * an invalid event) is `undefined`, and the schema decides, naming every field at fault.
 */
function canonicalEvent(record: Record<string, unknown>, text: string): VigilEvent | undefined {
  // The SDK's text opens with the id, the schema version and the time, in that order: another
  // producer's order fails here, for nothing, rather than after the fast check has written the
  // whole text (a few microseconds for each message of a hostile flood). A valid id holds no
  // character JSON escapes, so the version follows it at the id's length.
  const id = record.id;
  if (typeof id !== 'string' || !text.startsWith(SDK_OPENING) || !text.startsWith(AFTER_ID, SDK_OPENING.length + id.length)) return undefined;
  const family = record.family;
  if (family !== 'policy' && family !== 'invocation' && family !== 'device') return undefined;
  let written: string | undefined;
  try {
    written = fastMessage(family, record, record.id, record.time, record.source)?.value;
  } catch {
    // The check is an optimisation: whatever it trips on, the schema still decides.
    return undefined;
  }
  return written === text ? (record as unknown as VigilEvent) : undefined;
}
