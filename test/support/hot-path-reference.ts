import { createHash } from 'node:crypto';

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
