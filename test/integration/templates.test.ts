import { randomBytes } from 'node:crypto';
import { enrich, openGeoipLite, toEventDocument, type GeoLookup } from '../../ingest';
import { installTemplates } from '../../platform';
import { eventIndexName, eventSchema, indexNames } from '../../schemas';
import { isolatedConfig, openStack, type Stack } from '../support/harness';

describe('event index templates on the real Elasticsearch', () => {
  let stack: Stack;
  let geo: GeoLookup;

  beforeAll(async () => {
    stack = openStack(isolatedConfig());
    geo = await openGeoipLite();
    await installTemplates(stack.elasticsearch, stack.config);
  });

  afterAll(async () => {
    await stack.cleanup();
  });

  const event = eventSchema.parse({
    id: `evt-template-${randomBytes(4).toString('hex')}`,
    schemaVersion: 1,
    family: 'device',
    time: '2026-11-27T10:00:00+01:00',
    source: { service: 'mobile-bff', kind: 'service' },
    actor: { userId: 'u-1042' },
    client: { ip: '81.2.69.142', userAgent: 'okhttp/4.12.0' },
    correlation: { sessionId: 's-1' },
    labels: { region: 'eu' },
    device: { deviceId: 'dev-1', type: 'mobile', action: 'login', geo: { lat: 51.5, lon: -0.12, accuracyKm: 0.05, country: 'GB' } },
  });

  it('maps a document to the declared core types, in the daily index of its event time', async () => {
    const document = toEventDocument(event, enrich(event, geo), { topic: 't', partition: 0, offset: '1' }, new Date());
    const index = eventIndexName(stack.config.indices.prefix, 'device', event.time);
    expect(index).toBe(`${stack.config.indices.prefix}-events-device-2026.11.27`);
    await stack.elasticsearch.create({ index, id: event.id, document, refresh: true });

    const mapping = await stack.elasticsearch.indices.getFieldMapping({
      index,
      fields: ['@timestamp', 'source.ip', 'source.geo.location', 'labels.region', 'vigil.geo.accuracy_km', 'vigil.geo.database', 'vigil.geo.database_build', 'user.id'],
    });
    const fields = mapping[index]?.mappings ?? {};
    const typeOf = (field: string): unknown => {
      const leaf = field.split('.').pop() ?? field;
      return (fields[field]?.mapping as Record<string, { type?: string }> | undefined)?.[leaf]?.type;
    };
    expect(typeOf('@timestamp')).toBe('date');
    expect(typeOf('source.ip')).toBe('ip');
    expect(typeOf('source.geo.location')).toBe('geo_point');
    expect(typeOf('labels.region')).toBe('keyword');
    expect(typeOf('vigil.geo.accuracy_km')).toBe('float');
    expect(typeOf('vigil.geo.database')).toBe('keyword');
    expect(typeOf('vigil.geo.database_build')).toBe('date');
    expect(typeOf('user.id')).toBe('keyword');

    const near = await stack.elasticsearch.count({
      index: indexNames(stack.config.indices.prefix).eventPattern,
      query: { geo_distance: { distance: '10km', 'source.geo.location': { lat: 51.5, lon: -0.1 } } },
    });
    expect(near.count).toBe(1);
  });

  it('refuses a document with a field the contract does not declare', async () => {
    const document = { ...toEventDocument(event, enrich(event, geo), { topic: 't', partition: 0, offset: '2' }, new Date()), surprise: 1 };
    const index = eventIndexName(stack.config.indices.prefix, 'device', event.time);
    await expect(stack.elasticsearch.create({ index, id: `${event.id}-strict`, document })).rejects.toThrow(/strict_dynamic_mapping_exception|dynamic/);
  });

  it('treats a second create of the same id as a conflict, which the pipeline counts as done', async () => {
    const document = toEventDocument(event, enrich(event, geo), { topic: 't', partition: 0, offset: '3' }, new Date());
    const index = eventIndexName(stack.config.indices.prefix, 'device', event.time);
    await expect(stack.elasticsearch.create({ index, id: event.id, document })).rejects.toMatchObject({ statusCode: 409 });
  });
});
