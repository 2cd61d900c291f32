import * as crypto from 'node:crypto';
import type { VigilEvent } from '../schemas';

/**
 * JSON with object keys sorted at every level: one text for one content, whatever the key order.
 * Stored documents carry this text's hash (`vigil.content_hash`) and id-conflict detection
 * compares against them, so the text must never change: test/unit/content-hash.test.ts pins it
 * byte for byte to the first implementation (test/support/hot-path-reference.ts). This one builds
 * a single string instead of an entries array, a filtered copy, a sorted copy and a joined copy
 * per object, and quotes each key name once: the same bytes for about half the CPU
 * (bench/ingest-transform.bench.ts prints the ratio).
 * Edge cases kept as they were: an `undefined` member is left out, an `undefined` (or function)
 * array item is written as nothing, and objects are read by their own enumerable keys (a `toJSON`
 * is not called).
 */
function canonicalJson(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  if (Array.isArray(value)) {
    let text = '[';
    for (let index = 0; index < value.length; index++) {
      if (index > 0) text += ',';
      const item = canonicalJson(value[index]);
      if (item !== undefined) text += item;
    }
    return `${text}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = sortedKeys(record);
  let text = '{';
  for (const key of keys) {
    const item = record[key];
    if (item === undefined) continue;
    if (text.length > 1) text += ',';
    text += quotedKey(key) + (typeof item === 'string' ? JSON.stringify(item) : String(canonicalJson(item)));
  }
  return `${text}}`;
}

/** Objects with more keys than this are sorted by `Array.prototype.sort`; smaller ones by insertion. */
const INSERTION_SORT_MAX = 24;

/**
 * An object's own enumerable keys in UTF-16 code unit order, as the default sort and the first
 * implementation's `<` put them. Most of an event's objects have a few to a dozen keys, which an
 * insertion sort on the fresh `Object.keys` array puts in order in place: `Array.prototype.sort`
 * allocated a work array per call, a fifth of every byte `vigil run` allocated (a sampling heap
 * profile; docs/performance.md). Keys are unique, so the two orders are the same.
 */
function sortedKeys(record: Record<string, unknown>): string[] {
  const keys = Object.keys(record);
  if (keys.length > INSERTION_SORT_MAX) return keys.sort();
  for (let index = 1; index < keys.length; index++) {
    const key = keys[index] as string;
    let at = index - 1;
    while (at >= 0 && (keys[at] as string) > key) {
      keys[at + 1] = keys[at] as string;
      at--;
    }
    keys[at + 1] = key;
  }
  return keys;
}

/** How many quoted keys {@link quotedKey} keeps: the contract's names and common labels. */
const QUOTED_KEYS_KEPT = 1_000;
const quotedKeys = new Map<string, string>();

/** `"key":`, quoted once per key name rather than once per member (a label's key is kept too, up to a bound). */
function quotedKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = `${JSON.stringify(key)}:`;
    if (quotedKeys.size < QUOTED_KEYS_KEPT) quotedKeys.set(key, quoted);
  }
  return quoted;
}

// One call instead of an object per hash; `crypto.hash` came with Node 20.12 (engines says >=20).
const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text).digest('hex');

/**
 * The SHA-256 (hex) of an event's content: the validated event (defaults filled in) as canonical
 * JSON. It hashes the event, not the Kafka bytes, so the same event sent again with its keys in
 * another order, its whitespace changed or a default spelled out has the same hash; and nothing
 * the pipeline adds (ingest time, Kafka position, enrichment, correlation) takes part, so a chunk
 * redone after a crash computes the hash it stored the first time.
 */
export function contentHash(event: VigilEvent | Record<string, unknown>): string {
  return sha256Hex(String(canonicalJson(event)));
}
