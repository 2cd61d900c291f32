/**
 * A seeded generator of hostile Kafka traffic for the fuzz test and the hostile-input bench:
 * good events mixed with mutated and random messages (truncated JSON, huge strings, deep
 * nesting, wrong types, invalid UTF-8, prototype-pollution keys, control characters in every
 * field, oversized keys and headers, id collisions and redeliveries). The same seed gives the
 * same messages, so a failure can be replayed.
 */
import { seededRandom } from '../../scripts/simulated-traffic';
import type { DeadLetterReason } from '../../ingest';
import { FAMILIES, type Family } from '../../schemas';

/** One message to produce, and what the pipeline must make of it. */
export interface FuzzMessage {
  /** Position in the run; also in the Kafka key, so a dead letter leads back to it. */
  seq: number;
  family: Family;
  key: Buffer;
  value: Buffer | null;
  headers?: Record<string, Buffer>;
  /** The mutation applied, or `good`, `redelivery` (a good event sent twice, same content). */
  kind: string;
  /** Indexed (good), a harmless duplicate (redelivery), or dead-lettered with one of `reasons`. */
  expect: { outcome: 'indexed'; id: string } | { outcome: 'duplicate'; id: string } | { outcome: 'dead-lettered'; reasons: readonly DeadLetterReason[] };
}

/** Options of {@link fuzzTraffic}. */
export interface FuzzOptions {
  seed: number;
  count: number;
  /** Share of good events. @defaultValue 0.2 */
  goodShare?: number;
  /** Event ids start with this, so runs on one index never collide. */
  idPrefix: string;
  /** `VIGIL_MAX_MESSAGE_BYTES` of the pipeline under test. */
  maxMessageBytes: number;
  /** `VIGIL_MAX_JSON_DEPTH` of the pipeline under test. */
  maxJsonDepth: number;
  /** Event times are around this. @defaultValue now */
  now?: Date;
  /**
   * `random`: each event at a random time within the hour before `now`, in no order (what a
   * partition sees from many unsynchronised producers; event-time alignment cuts it small).
   * `ordered`: times rise with the position over that hour, within a second of jitter, as a live
   * feed's do. The other draws are the same either way. @defaultValue random
   */
  times?: 'random' | 'ordered';
}

const ANY: readonly DeadLetterReason[] = ['empty', 'too_large', 'not_json', 'too_deep', 'unknown_schema_version', 'schema_invalid', 'wrong_topic', 'time_out_of_range'];
const CONTROLS = ['\u0000', '\u0001', '\u0007', '\b', '\n', '\r', '\u000b', '\u001b', '\u001f', '\u007f', '\u0085', '\u009b'];
const PRINTABLE = ['a', 'Z', '9', '-', '_', '.', ' ', '/', 'é', '東', '✓', '😀', '"', '\\', '{', '}'];
const POLLUTION_KEYS = ['__proto__', 'constructor', 'prototype', '__defineGetter__', 'toString', 'hasOwnProperty'];

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** The path of every string leaf of a JSON value. */
function stringPaths(value: Json, path: string[] = []): string[][] {
  if (typeof value === 'string') return [path];
  if (Array.isArray(value)) return value.flatMap((item, position) => stringPaths(item, [...path, String(position)]));
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([key, item]) => stringPaths(item, [...path, key]));
  return [];
}

/** The path of every leaf and object of a JSON value, but the root. */
function allPaths(value: Json, path: string[] = []): string[][] {
  if (value === null || typeof value !== 'object') return path.length > 0 ? [path] : [];
  const children = Array.isArray(value) ? value.map((item, position) => [String(position), item] as const) : Object.entries(value);
  return [...(path.length > 0 ? [path] : []), ...children.flatMap(([key, item]) => allPaths(item, [...path, key]))];
}

function setAt(root: Json, path: readonly string[], replacement: Json): void {
  let target = root as Record<string, Json>;
  for (const key of path.slice(0, -1)) target = target[key] as Record<string, Json>;
  const last = path[path.length - 1];
  if (last !== undefined) target[last] = replacement;
}

function getAt(root: Json, path: readonly string[]): Json {
  let target: Json = root;
  for (const key of path) target = (target as Record<string, Json>)[key] ?? null;
  return target;
}

/**
 * `count` messages, a `goodShare` of them valid events with unique ids, the rest hostile.
 * Each message says what the pipeline must do with it.
 */
export function fuzzTraffic(options: FuzzOptions): FuzzMessage[] {
  const random = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const int = (low: number, high: number): number => low + Math.floor(random() * (high - low + 1));
  const text = (length: number): string => Array.from({ length }, () => pick(PRINTABLE)).join('').replaceAll('\\', '').replaceAll('"', '');
  const now = (options.now ?? new Date()).getTime();
  const goodShare = options.goodShare ?? 0.2;
  const messages: FuzzMessage[] = [];
  const goods: { id: string; family: Family; key: Buffer; value: Buffer; event: Json }[] = [];

  function goodEvent(id: string, family: Family, seq: number): Json {
    // One draw either way, so the rest of the traffic is the same in both orders.
    const offset = int(0, 3_600_000);
    const time = new Date(options.times === 'ordered' ? now - 3_600_000 + Math.floor((seq / options.count) * 3_600_000) - (offset % 1000) : now - offset).toISOString();
    const envelope: { [key: string]: Json } = {
      id,
      schemaVersion: 1,
      family,
      time,
      source: { service: `svc-${text(int(1, 12))}`, kind: pick(['gateway', 'service']), instance: `pod-${int(1, 99)}` },
      actor: { userId: `u-${int(1, 5000)}`, consumerId: `app-${int(1, 50)}` },
      client: { ip: `${int(1, 223)}.${int(0, 255)}.${int(0, 255)}.${int(1, 254)}`, userAgent: `Fuzz/${int(1, 9)}.0${random() < 0.1 ? '\t' : ' '}(${text(int(0, 40))})` },
      correlation: { requestId: `req-${int(1, 1e9)}` },
      labels: { run: 'fuzz', lane: text(int(0, 20)) },
    };
    const resource = { api: `api-${int(1, 20)}`, method: pick(['GET', 'POST', 'PUT', 'DELETE']), path: `/${text(int(0, 60))}` };
    if (family === 'policy') {
      envelope.policy = { kind: pick(['authn', 'authz', 'rate_limit', 'json_threat', 'custom']), name: `p-${text(int(1, 30))}`, outcome: pick(['pass', 'fail']), reason: text(int(0, 80)), group: 'g', resource };
    } else if (family === 'invocation') {
      envelope.invocation = { resource, route: `/${text(int(0, 30))}`, status: int(100, 599), latencyMs: Math.round(random() * 5000 * 100) / 100, bytesIn: int(0, 1e6), bytesOut: int(0, 1e6) };
    } else {
      envelope.device = { deviceId: `dev-${int(1, 1e6)}`, type: pick(['mobile', 'desktop', 'tablet']), action: pick(['login', 'logout', 'session']), os: text(int(0, 20)), geo: { lat: random() * 180 - 90, lon: random() * 360 - 180, city: text(int(0, 20)) } };
    }
    return envelope;
  }

  const encode = (value: Json): Buffer => Buffer.from(JSON.stringify(value), 'utf8');
  const dead = (reasons: readonly DeadLetterReason[]): FuzzMessage['expect'] => ({ outcome: 'dead-lettered', reasons });

  for (let seq = 0; seq < options.count; seq++) {
    const family = pick(FAMILIES);
    let key = Buffer.from(`fuzz-${seq}`);
    let headers: Record<string, Buffer> | undefined;
    // Oversized keys and headers ride on good and bad messages alike: the pipeline ignores
    // headers and copies the key into a dead letter, which must still fit the broker's limit.
    if (random() < 0.01) key = Buffer.concat([key, Buffer.from(`|${'k'.repeat(int(1_000, 16_000))}`)]);
    if (random() < 0.01) headers = Object.fromEntries(Array.from({ length: int(1, 40) }, (_, n) => [`h-${n}-${'x'.repeat(int(0, 200))}`, Buffer.alloc(int(0, 2_000), 0xff)]));
    const push = (kind: string, value: Buffer | null, expect: FuzzMessage['expect'], onFamily: Family = family, onKey: Buffer = key): void => {
      messages.push({ seq, family: onFamily, key: onKey, value, kind, expect, ...(headers ? { headers } : {}) });
    };

    if (random() < goodShare || goods.length === 0) {
      const id = `${options.idPrefix}-${seq}`;
      const event = goodEvent(id, family, seq);
      const value = encode(event);
      goods.push({ id, family, key, value, event });
      push('good', value, { outcome: 'indexed', id });
      continue;
    }
    const base = goodEvent(`${options.idPrefix}-bad-${seq}`, family, seq);
    const mutation = int(0, 17);
    switch (mutation) {
      case 0: {
        const bytes = encode(base);
        push('truncated', bytes.subarray(0, int(1, bytes.length - 1)), dead(['not_json', 'empty']));
        break;
      }
      case 1:
        // Rarer than the others: each is a few hundred kilobytes to produce and dead-letter.
        if (random() < 0.1) {
          // A burst on one partition: their dead letters, a chunk's worth, weigh more than the
          // broker takes in one batch (1 MB by default).
          for (let burst = random() < 0.3 ? 8 : 1; burst > 0; burst--) {
            const huge = structuredClone(base);
            setAt(huge, pick(stringPaths(huge)), 'H'.repeat(int(options.maxMessageBytes, options.maxMessageBytes + 100_000)));
            push('huge-string', encode(huge), dead(['too_large']));
          }
        } else {
          setAt(base, pick(stringPaths(base).filter((path) => path[0] !== 'labels')), 'H'.repeat(int(3_000, 20_000)));
          push('long-string', encode(base), dead(['schema_invalid', 'wrong_topic']));
        }
        break;
      case 2:
        setAt(base, pick(stringPaths(base).filter((path) => path[0] !== 'labels')), 'h'.repeat(int(4_000, 20_000)));
        push('long-string', encode(base), dead(['schema_invalid', 'wrong_topic']));
        break;
      case 3: {
        // Written as text: tens of thousands of levels, deeper than JSON.stringify can go.
        const opens: string[] = [];
        const deepest = random() < 0.03;
        for (let depth = int(options.maxJsonDepth, deepest ? 100_000 : 2_000); depth > 0; depth--) opens.push(deepest || random() < 0.5 ? '[' : '{"n":');
        const closes = opens.map((open) => (open === '[' ? ']' : '}')).reverse();
        const field = pick(['labels', 'extra', 'policy', 'client']);
        setAt(base, [field], 'DEEP');
        push('deep', Buffer.from(JSON.stringify(base).replace('"DEEP"', `${opens.join('')}"bottom"${closes.join('')}`)), dead(['too_deep']));
        break;
      }
      case 4: {
        // A value of another JSON type than the contract's: no field takes two types.
        const path = pick(allPaths(base));
        const typeOf = (value: Json): string => (Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value);
        const current = typeOf(getAt(base, path));
        setAt(base, path, pick<Json>([42, -1.5e308, true, null, [], ['a'], { a: 1 }, '2'].filter((value) => typeOf(value) !== current)));
        push(`wrong-type:${path.join('.')}`, encode(base), dead(['schema_invalid', 'unknown_schema_version']));
        break;
      }
      case 5: {
        const [before, after] = JSON.stringify(base).split('"run":"');
        const invalid = pick([[0x80], [0xc3], [0xe2, 0x82], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xff]]);
        push('invalid-utf8', Buffer.concat([Buffer.from(`${before ?? ''}"run":"`), Buffer.from(invalid), Buffer.from(after ?? '')]), dead(['not_json']));
        break;
      }
      case 6: {
        const pollution = pick(POLLUTION_KEYS);
        const where = pick(allPaths(base).filter((path) => typeof getAt(base, path) === 'object' && !Array.isArray(getAt(base, path))));
        const text = JSON.stringify(base);
        // Written as text: an object literal would set the prototype, not a key.
        const payload = `"${pollution}":{"polluted":true,"prototype":{"polluted":true}},`;
        const value = where === undefined || random() < 0.5 ? `{${payload}${text.slice(1)}` : text.replace(`"${where[where.length - 1] ?? ''}":{`, `"${where[where.length - 1] ?? ''}":{${payload}`);
        push(`pollution:${pollution}`, Buffer.from(value), dead(['schema_invalid']));
        break;
      }
      case 7: {
        const path = pick(stringPaths(base));
        const current = getAt(base, path) as string;
        const at = int(0, current.length);
        setAt(base, path, `${current.slice(0, at)}${pick(CONTROLS)}${current.slice(at)}`);
        push(`control:${path.join('.')}`, encode(base), dead(path[0] === 'family' ? ['wrong_topic'] : ['schema_invalid']));
        break;
      }
      case 8:
        push('random-bytes', Buffer.from(Array.from({ length: int(1, 2_000) }, () => int(0, 255))), dead(ANY));
        break;
      case 9:
        push('not-an-object', Buffer.from(pick(['[]', '"x"', '42', 'null', 'true', '[{"id":1}]'])), dead(['schema_invalid']));
        break;
      case 10:
        push('empty', pick([null, Buffer.alloc(0)]), dead(['empty']));
        break;
      case 11:
        setAt(base, ['schemaVersion'], pick<Json>([0, 2, 99, '1', -1]));
        push('schema-version', encode(base), dead(['unknown_schema_version']));
        break;
      case 12:
        push('wrong-topic', encode(base), dead(['wrong_topic']), pick(FAMILIES.filter((other) => other !== family)));
        break;
      case 13:
        setAt(base, ['time'], pick(['1999-12-31T23:59:59Z', '2199-01-01T00:00:00Z', new Date(now + 3 * 86_400_000).toISOString()]));
        push('time-range', encode(base), dead(['time_out_of_range']));
        break;
      case 14: {
        // A second producer chose an id already used: other content, same id.
        const twin = pick(goods);
        const other = structuredClone(twin.event) as { [key: string]: Json };
        other.labels = { run: 'fuzz', lane: `collision-${seq}` };
        push('id-conflict', encode(other), dead(['id_conflict']), twin.family, twin.key);
        break;
      }
      case 15: {
        // A true redelivery: the same event again, other bytes (indented): a harmless duplicate.
        const twin = pick(goods);
        push('redelivery', Buffer.from(JSON.stringify(twin.event, null, 1)), { outcome: 'duplicate', id: twin.id }, twin.family, twin.key);
        break;
      }
      case 16: {
        const object = base as { [key: string]: Json };
        object[`k${'y'.repeat(int(100, 20_000))}`] = 1;
        push('oversized-field-name', encode(object), dead(['schema_invalid']));
        break;
      }
      default: {
        // One structural character of the JSON (a brace, quote, colon or comma) becomes another
        // byte: never a valid event, whichever it hits.
        const bytes = Buffer.from(encode(base));
        const structural: number[] = [];
        let inString = false;
        for (let index = 0; index < bytes.length; index++) {
          const byte = bytes[index];
          if (inString && byte === 0x5c) index++;
          else if (byte === 0x22) {
            inString = !inString;
            structural.push(index);
          } else if (!inString && (byte === 0x7b || byte === 0x7d || byte === 0x3a || byte === 0x2c)) structural.push(index);
        }
        bytes[pick(structural)] = pick([0x3d, 0x27, 0x3b, 0x78, 0x00, 0xff, 0x20]);
        push('structure-flip', bytes, dead(ANY));
      }
    }
  }
  return messages;
}

/** The demo's seeded source (mulberry32), so fuzz runs reproduce from their seed. */
export { seededRandom };
