// The OpenTelemetry project's generated protobuf.js code for the OTLP messages. The package's
// public exports offer only encoders of SDK records and decoders of export responses; the request
// decoders live in its generated module, reachable because the package declares no `exports` map.
// That module is not public API, so package.json pins the exact version (0.208.0, the newest one
// still on protobuf.js and Node 20: later versions replace it with a hand-written encoder).
import { createRequire } from 'node:module';

/** An attribute value, normalised from OTLP's AnyValue in either encoding. */
export type OtlpValue = string | number | boolean | OtlpValue[] | { [key: string]: OtlpValue } | undefined;

/** One log record or span with its resource, as the adapter reads it. */
export interface OtlpItem {
  signal: 'log' | 'span';
  resource: ReadonlyMap<string, OtlpValue>;
  attributes: ReadonlyMap<string, OtlpValue>;
  /** Nanoseconds since the epoch, as decimal text (int64 exceeds a double's precision). */
  time?: string;
  end?: string;
  traceId?: string;
  spanId?: string;
  /** SpanKind number (2 = SERVER); undefined for logs. */
  kind?: number;
  body?: OtlpValue;
}

interface Decoder {
  decode(bytes: Uint8Array): unknown;
}
interface GeneratedRoot {
  opentelemetry: {
    proto: {
      collector: {
        logs: { v1: { ExportLogsServiceRequest: Decoder } };
        trace: { v1: { ExportTraceServiceRequest: Decoder } };
      };
    };
  };
}
/**
 * The generated protobuf root (protobufjs, every OTLP message) is loaded at the first decode, not
 * at import: `vigil run` imports the adapters through the composition root but never decodes OTLP,
 * and loading it cost about a tenth of a second of every start-up (docs/performance.md).
 */
let collector: GeneratedRoot['opentelemetry']['proto']['collector'] | undefined;
function requests(): GeneratedRoot['opentelemetry']['proto']['collector'] {
  collector ??= (createRequire(__filename)('@opentelemetry/otlp-transformer/build/src/generated/root') as GeneratedRoot).opentelemetry.proto.collector;
  return collector;
}

/** The payload encodings of the Collector's kafka exporter this adapter reads. */
export type OtlpEncoding = 'otlp_json' | 'otlp_proto';

/**
 * `otlp_json` starts with `{` (after any whitespace); a protobuf request starts with field 1,
 * length-delimited (0x0A), and `{` (0x7B) would be field 15 as a group, which neither request
 * has. So the first byte tells the encodings apart without a setting.
 */
export function detectEncoding(bytes: Uint8Array): OtlpEncoding {
  for (const byte of bytes) {
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
    return byte === 0x7b ? 'otlp_json' : 'otlp_proto';
  }
  return 'otlp_proto';
}

type Loose = Record<string, unknown>;
const isObject = (value: unknown): value is Loose => typeof value === 'object' && value !== null;
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** int64 as text: a JSON string, a JSON number, or protobuf.js's Long (whose toString is decimal). */
function int64(value: unknown): string | undefined {
  if (typeof value === 'string') return /^-?\d+$/.test(value) ? value : undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? String(Math.trunc(value)) : undefined;
  if (isObject(value) && typeof value.low === 'number' && typeof value.high === 'number') {
    // Long's halves are 32-bit words; unsigned=false for int64, true for fixed64 timestamps.
    const low = BigInt(value.low >>> 0);
    const high = BigInt(value.unsigned === true ? value.high >>> 0 : value.high);
    return ((high << 32n) + low).toString();
  }
  return undefined;
}

/** A trace or span id: hex in OTLP/JSON, bytes in protobuf; all zeros means none. */
function hexId(value: unknown): string | undefined {
  let hex: string | undefined;
  if (typeof value === 'string') hex = value.toLowerCase();
  else if (value instanceof Uint8Array) hex = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
  return hex !== undefined && /^[0-9a-f]+$/.test(hex) && /[1-9a-f]/.test(hex) ? hex : undefined;
}

/**
 * How deep an attribute's or body's arrays and maps are read; deeper parts are left out. The
 * value is the service's own (often built from what its client sent): one nested thousands deep
 * overflowed the stack, and the whole export request, every record of it, was dead-lettered.
 * The depth the Kong and APISIX batches are held to.
 */
export const MAX_VALUE_DEPTH = 64;

export function anyValue(value: unknown, depth = 0): OtlpValue {
  if (!isObject(value) || depth > MAX_VALUE_DEPTH) return undefined;
  if (typeof value.stringValue === 'string') return value.stringValue;
  if (typeof value.boolValue === 'boolean') return value.boolValue;
  if (value.intValue !== null && value.intValue !== undefined) {
    const text = int64(value.intValue);
    return text === undefined ? undefined : Number(text);
  }
  if (typeof value.doubleValue === 'number') return value.doubleValue;
  if (isObject(value.arrayValue)) return list(value.arrayValue.values).map((item) => anyValue(item, depth + 1));
  if (isObject(value.kvlistValue)) return Object.fromEntries(attributes(value.kvlistValue.values, depth + 1));
  return undefined;
}

function attributes(values: unknown, depth = 0): Map<string, OtlpValue> {
  const map = new Map<string, OtlpValue>();
  for (const entry of list(values)) {
    if (isObject(entry) && typeof entry.key === 'string') map.set(entry.key, anyValue(entry.value, depth));
  }
  return map;
}

/** Flattens an export request (either signal, either encoding's object form) into items. */
function items(request: Loose, signal: 'log' | 'span'): OtlpItem[] {
  const found: OtlpItem[] = [];
  const resources = signal === 'log' ? request.resourceLogs : request.resourceSpans;
  for (const resourceEntry of list(resources)) {
    if (!isObject(resourceEntry)) continue;
    const resource = attributes(isObject(resourceEntry.resource) ? resourceEntry.resource.attributes : undefined);
    const scopes = signal === 'log' ? resourceEntry.scopeLogs : resourceEntry.scopeSpans;
    for (const scope of list(scopes)) {
      if (!isObject(scope)) continue;
      for (const record of list(signal === 'log' ? scope.logRecords : scope.spans)) {
        if (!isObject(record)) continue;
        if (signal === 'log') {
          const time = int64(record.timeUnixNano);
          found.push({
            signal,
            resource,
            attributes: attributes(record.attributes),
            time: time !== undefined && time !== '0' ? time : int64(record.observedTimeUnixNano),
            traceId: hexId(record.traceId),
            spanId: hexId(record.spanId),
            body: anyValue(record.body),
          });
        } else {
          found.push({
            signal,
            resource,
            attributes: attributes(record.attributes),
            time: int64(record.startTimeUnixNano),
            end: int64(record.endTimeUnixNano),
            traceId: hexId(record.traceId),
            spanId: hexId(record.spanId),
            kind: spanKind(record.kind),
          });
        }
      }
    }
  }
  return found;
}

const SPAN_KINDS = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];
function spanKind(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    const index = SPAN_KINDS.indexOf(value);
    return index >= 0 ? index : undefined;
  }
  return undefined;
}

/** Which signal a message carries: `auto` reads it from the message, the others insist. */
export type OtlpSignal = 'auto' | 'logs' | 'spans';

/** Thrown for a message that is not an OTLP export request; the adapter turns it into one reject. */
export class OtlpDecodeError extends Error {}

/**
 * Decodes one Kafka message written by the Collector's kafka exporter into its records. JSON
 * names its signal (`resourceLogs` or `resourceSpans`). Protobuf does not: both requests are
 * field 1, length-delimited, all the way down to the record. With `auto`, the bytes are tried as
 * a trace request first and kept only if every span has the 16-byte trace id and 8-byte span id
 * the specification requires (a log request read as spans fails that or the decode itself),
 * else read as logs. A topic per signal, as the exporter writes by default, can say which.
 */
export function decodeOtlp(bytes: Uint8Array, signal: OtlpSignal = 'auto'): { encoding: OtlpEncoding; items: OtlpItem[] } {
  const encoding = detectEncoding(bytes);
  if (encoding === 'otlp_json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    } catch (error) {
      throw new OtlpDecodeError(`not JSON: ${(error as Error).message}`);
    }
    if (!isObject(parsed)) throw new OtlpDecodeError('not a JSON object');
    const hasLogs = Array.isArray(parsed.resourceLogs);
    const hasSpans = Array.isArray(parsed.resourceSpans);
    if (signal !== 'spans' && hasLogs) return { encoding, items: items(parsed, 'log') };
    if (signal !== 'logs' && hasSpans) return { encoding, items: items(parsed, 'span') };
    const expected = signal === 'spans' ? '"resourceSpans"' : signal === 'logs' ? '"resourceLogs"' : '"resourceLogs" or "resourceSpans"';
    throw new OtlpDecodeError(`an OTLP/JSON request has ${expected}; this object has no such array`);
  }
  if (signal !== 'logs') {
    const spans = tryDecode(requests().trace.v1.ExportTraceServiceRequest, bytes);
    if (spans !== undefined) {
      const found = items(spans, 'span');
      if (signal === 'spans' || (found.length > 0 && found.every(plausibleSpan))) return { encoding, items: found };
    }
    if (signal === 'spans') throw new OtlpDecodeError('not an OTLP protobuf ExportTraceServiceRequest');
  }
  const logs = tryDecode(requests().logs.v1.ExportLogsServiceRequest, bytes);
  if (logs === undefined) {
    if (nestsTooDeep(requests().logs.v1.ExportLogsServiceRequest, bytes)) {
      throw new OtlpDecodeError('a value in it nests too deep to decode (a body or attribute of arrays or maps within one another, thousands of levels): the whole request is refused, its other records with it');
    }
    throw new OtlpDecodeError(`not an OTLP protobuf ${signal === 'logs' ? 'ExportLogsServiceRequest' : 'ExportLogsServiceRequest or ExportTraceServiceRequest'}`);
  }
  return { encoding, items: items(logs, 'log') };
}

/** Whether decoding fails by nesting: the decoder's own depth limit, or the stack it recurses on. */
function nestsTooDeep(type: Decoder, bytes: Uint8Array): boolean {
  try {
    type.decode(bytes);
    return false;
  } catch (error) {
    // A truncated message is a RangeError too ("index out of range"): only the stack's own overflow counts.
    return error instanceof Error && (error.message.includes('Maximum call stack size exceeded') || error.message.includes('nesting depth'));
  }
}

function plausibleSpan(item: OtlpItem): boolean {
  return item.traceId?.length === 32 && item.spanId?.length === 16 && item.time !== undefined;
}

function tryDecode(type: Decoder, bytes: Uint8Array): Loose | undefined {
  try {
    const decoded = type.decode(bytes);
    return isObject(decoded) ? decoded : undefined;
  } catch {
    return undefined;
  }
}
