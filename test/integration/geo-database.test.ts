import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Vigil } from '../../app';
import { GeoDatabaseError } from '../../ingest';
import { indexNames, type EventDocument } from '../../schemas';
import { buildMmdb, cityRecord } from '../support/mmdb';
import { isolatedConfig, openStack, vigilOn, waitFor, type Stack } from '../support/harness';
import { testProducer } from '../support/produce';

const BUILT = new Date('2026-06-02T14:07:11Z');
const REBUILT = new Date('2026-06-09T14:07:11Z');
const ADDRESS = '128.175.13.92';

function databaseWith(city: string, latitude: number, longitude: number, buildEpoch: Date): Buffer {
  const record = cityRecord({ country: 'US', city, subdivision: 'DE', latitude, longitude, accuracyRadius: 20, timeZone: 'America/New_York' });
  return buildMmdb([{ network: '128.175.0.0/16', record }], { buildEpoch });
}

describe('VIGIL_GEOIP_DATABASE through createVigil', () => {
  let folder: string;
  let file: string;
  let stack: Stack;
  let vigil: Vigil | undefined;

  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'vigil-geo-it-'));
    file = join(folder, 'GeoLite2-City.mmdb');
    writeFileSync(file, databaseWith('Newark', 39.6837, -75.7497, BUILT));
    stack = openStack(isolatedConfig({ VIGIL_GEOIP_DATABASE: file, VIGIL_DETECTION: 'off' }));
  });

  afterAll(async () => {
    await vigil?.stop();
    await stack.cleanup();
    rmSync(folder, { recursive: true, force: true });
  });

  async function produce(id: string): Promise<void> {
    const producer = testProducer(stack.kafka);
    await producer.connect();
    const event = {
      id,
      schemaVersion: 1,
      family: 'policy',
      time: new Date().toISOString(),
      source: { service: 'geo-gateway', kind: 'gateway' },
      actor: { userId: 'u-geo' },
      client: { ip: ADDRESS },
      policy: { kind: 'authn', name: 'basic-auth', outcome: 'pass', group: 'geo', resource: { api: 'geo-v1', method: 'POST', path: '/v1/login' } },
    };
    await producer.send({ topic: stack.config.topics.policy, messages: [{ key: id, value: JSON.stringify(event) }], acks: -1 });
    await producer.disconnect();
  }

  async function documentOf(id: string): Promise<EventDocument> {
    let found: EventDocument | undefined;
    await waitFor(`event ${id} indexed`, async () => {
      const result = await stack.elasticsearch.search<EventDocument>({ index: indexNames(stack.config.indices.prefix).eventPattern, query: { term: { 'event.id': id } } });
      found = result.hits.hits[0]?._source;
      return found !== undefined;
    });
    if (!found) throw new Error(`event ${id} not indexed`);
    return found;
  }

  it('locates events with the operator’s database, names it in each document, and answers from a new file once it lands', async () => {
    vigil = vigilOn(stack, { http: { host: '127.0.0.1', port: 0 } });
    await vigil.start();
    const address = vigil.httpAddress();
    const metrics = async (): Promise<string> => (await fetch(`http://${address?.host}:${address?.port}/metrics`)).text();
    expect(await metrics()).toContain(`vigil_geo_database_build_timestamp_seconds{database="GeoLite2-City",origin="${file}"} ${BUILT.getTime() / 1000}`);

    const first = `evt-geo-${randomBytes(4).toString('hex')}`;
    await produce(first);
    const before = await documentOf(first);
    expect(before.source).toStrictEqual({
      ip: ADDRESS,
      geo: { country_iso_code: 'US', timezone: 'America/New_York', city_name: 'Newark', region_iso_code: 'US-DE', location: { lat: 39.6837, lon: -75.7497 } },
    });
    expect(before.vigil.geo).toStrictEqual({ source: 'geoip', ip_scope: 'public', accuracy_km: 20, database: 'GeoLite2-City', database_build: BUILT.toISOString() });

    // geoipupdate's way: write the new file beside the old one, then rename it over.
    writeFileSync(`${file}.tmp`, databaseWith('Wilmington', 39.7447, -75.5484, REBUILT));
    renameSync(`${file}.tmp`, file);
    await waitFor('the new database on /metrics', async () => (await metrics()).includes(`origin="${file}"} ${REBUILT.getTime() / 1000}`));
    expect(await metrics()).toContain('vigil_geo_database_reloads_total{outcome="loaded"} 1');

    const second = `evt-geo-${randomBytes(4).toString('hex')}`;
    await produce(second);
    const after = await documentOf(second);
    expect(after.source?.geo?.city_name).toBe('Wilmington');
    expect(after.vigil.geo.database_build).toBe(REBUILT.toISOString());

    // The fields are mapped as a keyword and a date: an analyst can ask which events an old database located.
    const located = await stack.elasticsearch.count({
      index: indexNames(stack.config.indices.prefix).eventPattern,
      query: { bool: { filter: [{ term: { 'vigil.geo.database': 'GeoLite2-City' } }, { range: { 'vigil.geo.database_build': { lt: '2026-06-05' } } }] } },
    });
    expect(located.count).toBe(1);
  });

  it('refuses to start on a file that is no MaxMind database, naming the variable and the file', async () => {
    const bad = join(folder, 'not-a-database.mmdb');
    writeFileSync(bad, 'GeoLite2-City, honestly\n');
    const refused = vigilOn(stack, {}, { ...stack.config, geo: { database: bad } });
    const starting = refused.start();
    await expect(starting).rejects.toBeInstanceOf(GeoDatabaseError);
    await expect(starting).rejects.toThrow(`VIGIL_GEOIP_DATABASE=${bad}: is not a MaxMind DB file`);
  });
});
