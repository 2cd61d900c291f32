import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { Correlated } from '../../detectors';
import {
  EARLIEST_EVENT_TIME,
  MAX_FUTURE_MS,
  exceedsDepth,
  findPrototypeKey,
  ipScope,
  type Classification,
  type Enrichment,
  type GeoLookup,
  type MessageLimits,
} from '../../ingest';
import { fastMessage } from '../../ingest/sdk';
import { RecentIds } from '../../ingest/recent-ids';
import {
  SUPPORTED_SCHEMA_VERSIONS,
  describeIssues,
  eventSchema,
  type EventDocument,
  type Family,
  type GeoDocument,
  type VigilEvent,
} from '../../schemas';

/**
 * The hot-path functions as they were before issue 12's CPU work, kept verbatim as the reference
 * their replacements must agree with: test/unit/content-hash.test.ts pins byte equality over
 * generated events, and bench/ingest-transform.bench.ts times old and new side by side.
 */

/** JSON with object keys sorted at every level (ingest/content-hash.ts before issue 12). */
export function referenceCanonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(referenceCanonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${referenceCanonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The content hash before issue 12: SHA-256 (hex) of {@link referenceCanonicalJson}. */
export function referenceContentHash(event: unknown): string {
  return createHash('sha256').update(referenceCanonicalJson(event)).digest('hex');
}

/** ingest/classify.ts's `findPrototypeKey` before issue 12 (a path array per nested object). */
export function referenceFindPrototypeKey(value: unknown, path: readonly (string | number)[] = []): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const found = referenceFindPrototypeKey(value[index], [...path, index]);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (Object.hasOwn(value, '__proto__')) return [...path, '__proto__'].join('.');
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'object' || item === null) continue;
    const found = referenceFindPrototypeKey(item, [...path, key]);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** ingest/enrich.ts's `enrich` before the second round of issue 12 (conditional spreads). */
export function referenceEnrich(event: VigilEvent, lookup: GeoLookup): Enrichment {
  const ip = event.client.ip ?? (event.family === 'device' ? event.device.ip : undefined);
  const scope = ip === undefined ? undefined : ipScope(ip);
  const base = { ...(ip === undefined ? {} : { ip }), ...(scope === undefined ? {} : { ipScope: scope }) };
  if (event.family === 'device' && event.device.geo !== undefined) {
    const given = event.device.geo;
    const geo: GeoDocument = { location: { lat: given.lat, lon: given.lon } };
    if (given.country) geo.country_iso_code = given.country;
    if (given.city !== undefined) geo.city_name = given.city;
    return { ...base, geo, geoSource: 'producer', ...(given.accuracyKm === undefined ? {} : { accuracyKm: given.accuracyKm }) };
  }
  if (ip === undefined || scope !== 'public') return { ...base, geoSource: 'none' };
  const found = lookup(ip);
  if (found === undefined) return { ...base, geoSource: 'none' };
  return {
    ...base,
    geo: found.geo,
    geoSource: 'geoip',
    ...(found.accuracyKm === undefined ? {} : { accuracyKm: found.accuracyKm }),
    ...(found.database === undefined ? {} : { geoDatabase: found.database }),
  };
}

/** ingest/correlation.ts's `correlationDocument` before the second round of issue 12. */
export function referenceCorrelationDocument(correlated: Correlated | undefined): EventDocument['vigil']['correlation'] {
  if (correlated === undefined) return undefined;
  return {
    ...(correlated.request ? { policies: correlated.request.policies, failed_policies: correlated.request.failedPolicies } : {}),
    ...(correlated.device
      ? {
          ...(correlated.device.deviceId ? { device_id: correlated.device.deviceId } : {}),
          ...(correlated.device.deviceAgeMs === undefined ? {} : { device_age_ms: correlated.device.deviceAgeMs }),
          ...(correlated.device.country ? { country: correlated.device.country } : {}),
          known_devices: correlated.device.knownDevices,
          from_session: correlated.device.fromSession,
        }
      : {}),
  };
}

/** schemas/elasticsearch.ts's `eventIndexName` before the second round of issue 12. */
export function referenceEventIndexName(prefix: string, family: string, time: string): string {
  const day = new Date(time).toISOString().slice(0, 10).replaceAll('-', '.');
  return `${prefix}-events-${family}-${day}`;
}

const BYTE_ORDER_MARK = [0xef, 0xbb, 0xbf] as const;

/** ingest/classify.ts's UTF-8 decode (unchanged by issue 10's classify work). */
function referenceUtf8Text(bytes: Buffer): string | undefined {
  if (!isUtf8(bytes)) return undefined;
  const bom = bytes[0] === BYTE_ORDER_MARK[0] && bytes[1] === BYTE_ORDER_MARK[1] && bytes[2] === BYTE_ORDER_MARK[2];
  return bytes.toString('utf8', bom ? BYTE_ORDER_MARK.length : 0);
}

/**
 * ingest/classify.ts's `classifyMessage` before the classify work of issue 10 (zod decides every
 * message the SDK did not write, its error built as a ZodError), kept as the oracle the new one
 * must agree with (test/unit/classify-equivalence.test.ts) and the baseline bench/classify.bench.ts
 * times it against. `sdkFastPath: false` leaves even the SDK's own text to zod: the zod-only path.
 * @param expectedFamily the family of the topic it came from; another family is `wrong_topic`.
 * @param now the pipeline's clock; when given, an event time more than a day ahead of it (or
 *   before 2000) is `time_out_of_range`, since every event day becomes an index.
 */
export function referenceClassifyMessage(
  value: Buffer | null,
  limits: MessageLimits,
  expectedFamily?: Family,
  now?: Date,
  options: { sdkFastPath?: boolean } = {},
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
  const text = referenceUtf8Text(value);
  if (text === undefined) {
    return { ok: false, reasonCode: 'not_json', message: 'not valid JSON: the bytes are not valid UTF-8 (JSON text must be UTF-8, RFC 8259)' };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { ok: false, reasonCode: 'not_json', message: `not valid JSON: ${(error as Error).message}` };
  }
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
      // The wording of 5 December 2026 (an unknown family quoted): the reference keeps the messages as the pipeline words them.
      message: ['policy', 'invocation', 'device'].includes(record.family)
        ? `a ${record.family} event on the ${expectedFamily} topic`
        : `an event of family ${JSON.stringify(record.family.slice(0, 64))} on the ${expectedFamily} topic`,
    };
  }
  let event = options.sdkFastPath === false ? undefined : referenceCanonicalEvent(record, text);
  if (event === undefined) {
    const result = eventSchema.safeParse(parsed);
    if (!result.success) {
      return { ok: false, reasonCode: 'schema_invalid', message: describeIssues(result.error).join('; ') };
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

/**
 * The parsed event itself when its text is, byte for byte, the JSON the SDK writes for it: the
 * SDK's fast check (ingest/sdk/fast-check.ts) proves an event valid and writes exactly
 * `JSON.stringify` of the schema's output for it, so text equal to what it writes parses to what
 * zod would return, and zod's parse (most of decode's cost for a good event) can be skipped.
 * Anything else (another producer's key order or spacing, a field the fast check leaves to zod,
 * an invalid event) is `undefined`, and the schema decides, naming every field at fault.
 */
function referenceCanonicalEvent(record: Record<string, unknown>, text: string): VigilEvent | undefined {
  // The SDK's text opens with the id: another producer's order fails here, for nothing.
  if (!text.startsWith('{"id":"')) return undefined;
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

/**
 * ingest/recent-ids.ts's `RecentIds` as it was before its eviction kept one iterator (issue 12):
 * each eviction took the oldest entry from a fresh `entries()` iterator, which steps over every
 * slot deleted since the map was last rebuilt. Same answers, held to by
 * test/unit/recent-ids.test.ts; bench/ingest-transform.bench.ts times the two side by side.
 */
export class ReferenceRecentIds extends RecentIds {
  protected override oldest(): [string, string] | undefined {
    const first = this.entries.entries().next();
    return first.done === true ? undefined : first.value;
  }
}
