import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Client } from '@elastic/elasticsearch';
import type { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import { createObservability } from '../../app/observability';
import {
  GeoDatabaseError,
  enrich,
  geoipLiteInfo,
  mapCityRecord,
  openGeoDatabase,
  openMaxMind,
  readMaxMindDatabase,
  toEventDocument,
  type GeoDatabase,
} from '../../ingest';
import { ConfigError, Instrumentation, createLogger, loadConfig } from '../../platform';
import { familySchemas } from '../../schemas';
import { buildMmdb, cityRecord, type MmdbNetwork } from '../support/mmdb';
import { kafkaPosition, policyEvent, withField } from './fixtures';

const NEWARK = cityRecord({
  country: 'US',
  city: 'Newark',
  subdivision: 'DE',
  latitude: 39.6837,
  longitude: -75.7497,
  accuracyRadius: 20,
  timeZone: 'America/New_York',
});
/** What a current database says of the University of Delaware's network, and the old one of it. */
const CURRENT: MmdbNetwork[] = [
  { network: '128.175.0.0/16', record: NEWARK },
  { network: '8.8.8.0/24', record: cityRecord({ country: 'US', latitude: 37.751, longitude: -97.822, accuracyRadius: 1000, timeZone: 'America/Chicago' }) },
  { network: '2a02:c7f::/32', record: cityRecord({ country: 'GB', city: 'London', subdivision: 'ENG', latitude: 51.5085, longitude: -0.1257, accuracyRadius: 50, timeZone: 'Europe/London' }) },
];
const BUILT = new Date('2026-06-02T14:07:11Z');
const REBUILT = new Date('2026-06-09T14:07:11Z');

describe('mapCityRecord', () => {
  it('maps a city record to country, region, city, location, accuracy and time zone', () => {
    expect(mapCityRecord(NEWARK)).toStrictEqual({
      geo: {
        country_iso_code: 'US',
        region_iso_code: 'US-DE',
        city_name: 'Newark',
        timezone: 'America/New_York',
        location: { lat: 39.6837, lon: -75.7497 },
      },
      accuracyKm: 20,
    });
  });

  it('treats a record with no city as country-only: the country default point only with its radius, no region', () => {
    const countryOnly = cityRecord({ country: 'US', subdivision: 'TX', latitude: 37.751, longitude: -97.822, accuracyRadius: 1000 });
    expect(mapCityRecord(countryOnly)).toStrictEqual({ geo: { country_iso_code: 'US', location: { lat: 37.751, lon: -97.822 } }, accuracyKm: 1000 });
    // A centre without a radius would pass for a precise place.
    expect(mapCityRecord(cityRecord({ country: 'US', latitude: 37.751, longitude: -97.822 }))).toStrictEqual({ geo: { country_iso_code: 'US' } });
  });

  it('keeps a city without a radius, with no accuracy claimed', () => {
    expect(mapCityRecord(cityRecord({ country: 'FR', city: 'Paris', latitude: 48.85, longitude: 2.35 }))).toStrictEqual({
      geo: { country_iso_code: 'FR', city_name: 'Paris', location: { lat: 48.85, lon: 2.35 } },
    });
  });

  it('leaves out coordinates out of range, and answers nothing for an empty record', () => {
    expect(mapCityRecord(cityRecord({ country: 'US', city: 'Nowhere', latitude: 91, longitude: 0, accuracyRadius: 5 }))).toStrictEqual({
      geo: { country_iso_code: 'US', city_name: 'Nowhere' },
    });
    expect(mapCityRecord({})).toBeUndefined();
  });

  it('names the city in English, or in another language when English is missing', () => {
    const record = { country: { geoname_id: 1, iso_code: 'DE', names: { en: 'Germany' } }, city: { geoname_id: 2, names: { de: 'München' } } };
    expect(mapCityRecord(record as unknown as Parameters<typeof mapCityRecord>[0])?.geo.city_name).toBe('München');
  });
});

describe('a MaxMind database file', () => {
  let folder: string;
  let file: string;
  const opened: GeoDatabase[] = [];
  const logged: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => logged.push(JSON.parse(line) as Record<string, unknown>) } });

  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), 'vigil-geo-'));
    file = join(folder, 'GeoLite2-City.mmdb');
    writeFileSync(file, buildMmdb(CURRENT, { buildEpoch: BUILT }));
    logged.length = 0;
  });

  afterEach(() => {
    for (const database of opened.splice(0)) database.close();
    rmSync(folder, { recursive: true, force: true });
  });

  async function open(): Promise<GeoDatabase> {
    const database = await openMaxMind(file, { logger, debounceMs: 20 });
    opened.push(database);
    return database;
  }

  /** Waits until the database has read the file again `count` times in all, loaded or refused. */
  async function readsOf(database: GeoDatabase, count: number): Promise<void> {
    for (let waited = 0; waited < 10_000; waited += 20) {
      const { reloaded, refused } = database.stats();
      if (reloaded + refused >= count) return;
      await new Promise((done) => setTimeout(done, 20));
    }
    throw new Error(`no reload after 10 s: ${JSON.stringify(database.stats())}`);
  }

  it('places the address the old snapshot had as "US, no city" in Newark, Delaware, naming the database and its build', async () => {
    const database = await open();
    expect(database.lookup('128.175.13.92')).toStrictEqual({ ...mapCityRecord(NEWARK), database: { name: 'GeoLite2-City', build: BUILT } });
    expect(database.lookup('::ffff:128.175.13.92')?.geo.city_name).toBe('Newark');
    expect(database.lookup('2a02:c7f:8c4e::1')?.geo).toMatchObject({ country_iso_code: 'GB', city_name: 'London', region_iso_code: 'GB-ENG' });
    expect(database.lookup('9.9.9.9')).toBeUndefined();
    expect(database.info()).toStrictEqual({ name: 'GeoLite2-City', build: BUILT, origin: file });
  });

  it('puts the database name and build date in the event document', async () => {
    const database = await open();
    const event = familySchemas.policy.parse(withField(policyEvent(), 'client.ip', '128.175.13.92'));
    const document = toEventDocument(event, enrich(event, database.lookup), kafkaPosition(), new Date());
    expect(document.vigil.geo).toStrictEqual({
      source: 'geoip',
      ip_scope: 'public',
      accuracy_km: 20,
      database: 'GeoLite2-City',
      database_build: '2026-06-02T14:07:11.000Z',
    });
    expect(document.source?.geo).toMatchObject({ city_name: 'Newark', region_iso_code: 'US-DE' });
  });

  it('reads the file again when a new one is renamed over it, and answers from the new one', async () => {
    const database = await open();
    const moved = cityRecord({ country: 'US', city: 'Wilmington', subdivision: 'DE', latitude: 39.74, longitude: -75.54, accuracyRadius: 10 });
    const next = join(folder, 'GeoLite2-City.mmdb.new');
    writeFileSync(next, buildMmdb([{ network: '128.175.0.0/16', record: moved }], { buildEpoch: REBUILT }));
    renameSync(next, file);
    await readsOf(database, 1);
    expect(database.stats()).toStrictEqual({ reloaded: 1, refused: 0 });
    expect(database.lookup('128.175.13.92')?.geo.city_name).toBe('Wilmington');
    expect(database.lookup('128.175.13.92')?.database).toStrictEqual({ name: 'GeoLite2-City', build: REBUILT });
    expect(database.info().build).toStrictEqual(REBUILT);
    expect(logged.some((line) => line.msg === 'geo database reloaded')).toBe(true);
  });

  it('reads the file again when it is rewritten in place', async () => {
    const database = await open();
    writeFileSync(file, buildMmdb([{ network: '128.175.0.0/16', record: cityRecord({ country: 'CA', city: 'Toronto' }) }], { buildEpoch: REBUILT }));
    await readsOf(database, 1);
    expect(database.lookup('128.175.13.92')?.geo).toStrictEqual({ country_iso_code: 'CA', city_name: 'Toronto' });
  });

  it('keeps the database in force when the new file is bad, and says why', async () => {
    const database = await open();
    writeFileSync(file, buildMmdb(CURRENT, { buildEpoch: REBUILT }).subarray(0, 200));
    await readsOf(database, 1);
    expect(database.stats()).toStrictEqual({ reloaded: 0, refused: 1 });
    expect(database.lookup('128.175.13.92')?.geo.city_name).toBe('Newark');
    expect(database.info().build).toStrictEqual(BUILT);
    const refusal = logged.find((line) => line.msg === 'geo database file refused; the database in force stays');
    expect(refusal?.level).toBe(50);
    expect(JSON.stringify(refusal?.err)).toContain(`VIGIL_GEOIP_DATABASE=${file}`);

    rmSync(file);
    await readsOf(database, 2);
    expect(database.stats()).toStrictEqual({ reloaded: 0, refused: 2 });
    expect(database.lookup('128.175.13.92')?.geo.city_name).toBe('Newark');

    // A readable MaxMind file of the wrong kind: the reader would open it, and locate nothing.
    writeFileSync(file, buildMmdb(CURRENT, { buildEpoch: REBUILT, databaseType: 'GeoLite2-ASN' }));
    await readsOf(database, 3);
    expect(database.stats()).toStrictEqual({ reloaded: 0, refused: 3 });
    expect(database.lookup('128.175.13.92')?.database).toStrictEqual({ name: 'GeoLite2-City', build: BUILT });
  });

  it('ignores other files in its folder', async () => {
    const database = await open();
    writeFileSync(join(folder, 'GeoLite2-ASN.mmdb'), 'not this one');
    writeFileSync(file, buildMmdb(CURRENT, { buildEpoch: REBUILT }));
    await readsOf(database, 1);
    expect(database.stats()).toStrictEqual({ reloaded: 1, refused: 0 });
  });

  it.each([
    ['a missing file', (path: string) => rmSync(path), /cannot read the file \(.*ENOENT/],
    ['a text file', (path: string) => writeFileSync(path, 'GeoLite2-City, honestly\n'), /is not a MaxMind DB file/],
    ['a gzip-compressed database', (path: string) => writeFileSync(path, gzipSync(buildMmdb(CURRENT, { buildEpoch: BUILT }))), /is gzip-compressed.*unpack it/],
    ['a truncated database', (path: string) => writeFileSync(path, buildMmdb(CURRENT, { buildEpoch: BUILT }).subarray(0, 100)), /not a MaxMind DB file|truncated or corrupt/],
    ['an ASN database', (path: string) => writeFileSync(path, buildMmdb(CURRENT, { buildEpoch: BUILT, databaseType: 'GeoLite2-ASN' })), /is a GeoLite2-ASN database, which locates nothing/],
  ])('refuses %s at start, naming the variable and the file', async (_name, spoil, problem) => {
    spoil(file);
    const opening = readMaxMindDatabase(file);
    await expect(opening).rejects.toBeInstanceOf(GeoDatabaseError);
    await expect(opening).rejects.toMatchObject({ retriable: false, file, message: expect.stringContaining(`VIGIL_GEOIP_DATABASE=${file}: `) as unknown });
    await expect(opening).rejects.toThrow(problem);
  });
});

describe('VIGIL_GEOIP_DATABASE', () => {
  it('is unset by default: geoip-lite, naming its version and the date of its data', async () => {
    expect(loadConfig({}).geo.database).toBeUndefined();
    const database = await openGeoDatabase(undefined);
    const info = geoipLiteInfo();
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.build?.getTime()).toBeGreaterThan(Date.parse('2015-01-01'));
    expect(database.info()).toStrictEqual({ ...info, origin: `geoip-lite@${info.version}` });
    expect(database.lookup('8.8.8.8')?.database).toStrictEqual({ name: 'geoip-lite', build: info.build });
  });

  it('is refused at config load when the file cannot be read', () => {
    expect(() => loadConfig({ VIGIL_GEOIP_DATABASE: '/nonexistent/GeoLite2-City.mmdb' })).toThrow(ConfigError);
    expect(() => loadConfig({ VIGIL_GEOIP_DATABASE: '/nonexistent/GeoLite2-City.mmdb' })).toThrow('VIGIL_GEOIP_DATABASE: cannot read /nonexistent/GeoLite2-City.mmdb');
  });
});

describe('the geo database on /metrics', () => {
  it('gives its build date as a gauge labelled with the database and its file, and counts reloads', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'vigil-geo-'));
    const file = join(folder, 'GeoLite2-City.mmdb');
    writeFileSync(file, buildMmdb(CURRENT, { buildEpoch: BUILT }));
    const database = await openMaxMind(file, { debounceMs: 20 });
    const observability = createObservability({
      instrumentation: new Instrumentation(),
      kafka: {} as Kafka,
      elasticsearch: {} as Client,
      redis: {} as Redis,
      logger: createLogger({ level: 'silent' }),
      consumers: () => [],
      geo: () => database,
    });
    try {
      const before = await observability.registry.metrics();
      expect(before).toContain(`vigil_geo_database_build_timestamp_seconds{database="GeoLite2-City",origin="${file}"} ${BUILT.getTime() / 1000}`);
      expect(before).toContain('vigil_geo_database_reloads_total{outcome="loaded"} 0');

      writeFileSync(file, buildMmdb(CURRENT, { buildEpoch: REBUILT }));
      for (let waited = 0; database.stats().reloaded === 0 && waited < 10_000; waited += 20) await new Promise((done) => setTimeout(done, 20));
      const after = await observability.registry.metrics();
      expect(after).toContain(`vigil_geo_database_build_timestamp_seconds{database="GeoLite2-City",origin="${file}"} ${REBUILT.getTime() / 1000}`);
      expect(after).toContain('vigil_geo_database_reloads_total{outcome="loaded"} 1');
      expect(after).toContain('vigil_geo_database_reloads_total{outcome="refused"} 0');
    } finally {
      database.close();
      await observability.close();
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
