import { createHash } from 'node:crypto';
import type { Correlated } from '../../detectors';
import { ipScope, type Enrichment, type GeoLookup } from '../../ingest';
import type { EventDocument, GeoDocument, VigilEvent } from '../../schemas';

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
