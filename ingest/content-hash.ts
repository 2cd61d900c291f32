import { createHash } from 'node:crypto';
import type { VigilEvent } from '../schemas';

/** JSON with object keys sorted at every level: one text for one content, whatever the key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The SHA-256 (hex) of an event's content: the validated event (defaults filled in) as canonical
 * JSON. It hashes the event, not the Kafka bytes, so the same event sent again with its keys in
 * another order, its whitespace changed or a default spelled out has the same hash; and nothing
 * the pipeline adds (ingest time, Kafka position, enrichment, correlation) takes part, so a chunk
 * redone after a crash computes the hash it stored the first time.
 */
export function contentHash(event: VigilEvent | Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(event)).digest('hex');
}
