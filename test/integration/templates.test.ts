import { randomBytes } from 'node:crypto';
import { enrich, openGeoipLite, toEventDocument, type GeoLookup } from '../../ingest';
import { installTemplates } from '../../platform';
import { TEMPLATE_VERSION, eventIndexName, eventMappings, eventSchema, eventTemplates, indexNames } from '../../schemas';
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

  it('indexes an event whose labels pass the index\'s field limit: the keys past it are kept in _source only', async () => {
    const many = eventSchema.parse({ ...event, id: `${event.id}-labels`, labels: Object.fromEntries(Array.from({ length: 1_100 }, (_, n) => [`k${n}`, `v${n}`])) });
    const document = toEventDocument(many, enrich(many, geo), { topic: 't', partition: 0, offset: '3' }, new Date());
    const index = eventIndexName(stack.config.indices.prefix, 'device', many.time);
    await stack.elasticsearch.create({ index, id: many.id, document, refresh: true });
    const found = await stack.elasticsearch.search<{ labels?: Record<string, string> }>({ index, query: { ids: { values: [many.id] } }, _source: ['labels.k1099'] });
    const hit = found.hits.hits[0];
    expect(hit?._source?.labels?.k1099).toBe('v1099');
    expect((hit?._ignored ?? []).length).toBeGreaterThan(0);
    // A later event of the day with a key never mapped is still indexed, and its first keys searchable.
    const later = eventSchema.parse({ ...event, id: `${event.id}-later`, labels: { region: 'eu', brand_new: 'x' } });
    await stack.elasticsearch.create({ index, id: later.id, document: toEventDocument(later, enrich(later, geo), { topic: 't', partition: 0, offset: '4' }, new Date()), refresh: true });
    expect((await stack.elasticsearch.count({ index, query: { term: { 'labels.region': 'eu' } } })).count).toBeGreaterThanOrEqual(2);
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

describe('upgrading to template version 2 over indices made by version 1', () => {
  let stack: Stack;
  let geo: GeoLookup;

  beforeAll(async () => {
    stack = openStack(isolatedConfig());
    geo = await openGeoipLite();
  });

  afterAll(async () => {
    await stack.cleanup();
  });

  it('adds the new fields to an existing index, keeps its retyped fields, and the index takes version 2 documents', async () => {
    // Version 1's mappings of the two retyped fields, on an index that exists before the upgrade.
    const old = structuredClone(eventMappings) as unknown as { properties: Record<string, { properties: Record<string, unknown> }> };
    const legacyText = { type: 'text', fields: { keyword: { type: 'keyword', ignore_above: 1024 } } };
    if (!old.properties.event || !old.properties.user_agent) throw new Error('eventMappings lost event or user_agent');
    old.properties.event.properties.reason = legacyText;
    old.properties.user_agent.properties.original = legacyText;
    delete old.properties.ecs;
    delete old.properties.related;
    const index = eventIndexName(stack.config.indices.prefix, 'policy', '2026-11-26T10:00:00Z');
    await stack.elasticsearch.indices.create({ index, mappings: old as never });

    await installTemplates(stack.elasticsearch, stack.config);

    const event = eventSchema.parse({
      id: `evt-upgrade-${randomBytes(4).toString('hex')}`,
      schemaVersion: 1,
      family: 'policy',
      time: '2026-11-26T10:00:00Z',
      source: { service: 'edge-gateway-eu', kind: 'gateway' },
      actor: { userId: 'u-1042' },
      client: { ip: '81.2.69.142', userAgent: 'okhttp/4.12.0' },
      policy: { kind: 'authn', name: 'verify-password', outcome: 'fail', reason: 'invalid_credentials', group: 'accounts', resource: { api: 'accounts-v1', method: 'POST', path: '/v1/login' } },
    });
    const document = toEventDocument(event, enrich(event, geo), { topic: 't', partition: 0, offset: '1' }, new Date());
    await stack.elasticsearch.create({ index, id: event.id, document, refresh: true });

    const mapping = await stack.elasticsearch.indices.getFieldMapping({ index, fields: ['ecs.version', 'related.user', 'event.reason', 'user_agent.original'] });
    const typeOf = (field: string): unknown => {
      const leaf = field.split('.').pop() ?? field;
      return (mapping[index]?.mappings[field]?.mapping as Record<string, { type?: string }> | undefined)?.[leaf]?.type;
    };
    expect(['ecs.version', 'related.user', 'event.reason', 'user_agent.original'].map(typeOf)).toStrictEqual(['keyword', 'keyword', 'text', 'text']);
    const found = await stack.elasticsearch.count({ index, query: { term: { 'related.user': 'u-1042' } } });
    expect(found.count).toBe(1);

    // A new daily index is made by the version 2 template.
    const fresh = eventIndexName(stack.config.indices.prefix, 'policy', event.time.replace('26T', '27T'));
    await stack.elasticsearch.create({ index: fresh, id: event.id, document, refresh: true });
    const freshMapping = await stack.elasticsearch.indices.getMapping({ index: fresh });
    expect(freshMapping[fresh]?.mappings._meta).toStrictEqual({ template_version: TEMPLATE_VERSION, ecs_version: '9.4.0' });
    const reason = (freshMapping[fresh]?.mappings.properties?.event as { properties: Record<string, { type: string }> }).properties.reason;
    expect(reason?.type).toBe('keyword');
  });
});

describe('upgrading to template version 3 over indices made by version 2', () => {
  let stack: Stack;
  let geo: GeoLookup;

  beforeAll(async () => {
    stack = openStack(isolatedConfig());
    geo = await openGeoipLite();
  });

  afterAll(async () => {
    await stack.cleanup();
  });

  it('adds the replay fields to an existing index, keeps its content hash indexed, and new daily indices stop indexing it', async () => {
    // Version 2's mappings: the content hash an indexed keyword, none of the replay fields.
    const old = structuredClone(eventMappings) as unknown as { properties: { vigil: { properties: Record<string, unknown> & { device: { properties: Record<string, unknown> } } } } };
    old.properties.vigil.properties.content_hash = { type: 'keyword', ignore_above: 1024 };
    delete old.properties.vigil.properties.time;
    for (const field of ['client', 'ip', 'user_agent', 'id']) delete old.properties.vigil.properties.device.properties[field];
    const index = eventIndexName(stack.config.indices.prefix, 'device', '2026-11-26T10:00:00Z');
    await stack.elasticsearch.indices.create({ index, mappings: old as never });

    await installTemplates(stack.elasticsearch, stack.config);

    // A version 3 document with every replay field: an offset time, client and device giving the IP.
    const event = eventSchema.parse({
      id: `evt-upgrade-${randomBytes(4).toString('hex')}`,
      schemaVersion: 1,
      family: 'device',
      time: '2026-11-26T11:00:00+01:00',
      source: { service: 'mobile-bff', kind: 'service' },
      actor: { userId: 'u-1042' },
      client: { ip: '81.2.69.142', userAgent: 'okhttp/4.12.0' },
      device: { deviceId: 'dev-1', type: 'mobile', action: 'login', ip: '81.2.69.142' },
    });
    const document = toEventDocument(event, enrich(event, geo), { topic: 't', partition: 0, offset: '1' }, new Date());
    expect(document.vigil).toMatchObject({ time: event.time, device: { client: ['ip', 'user_agent'], ip: '81.2.69.142' } });
    await stack.elasticsearch.create({ index, id: event.id, document, refresh: true });
    const hashOf = async (target: string): Promise<Record<string, unknown> | undefined> => {
      const mapping = await stack.elasticsearch.indices.getFieldMapping({ index: target, fields: ['vigil.content_hash', 'vigil.time'] });
      return (mapping[target]?.mappings['vigil.content_hash']?.mapping as Record<string, Record<string, unknown>> | undefined)?.content_hash;
    };
    expect(await hashOf(index)).toStrictEqual({ type: 'keyword', ignore_above: 1024 });
    const existing = await stack.elasticsearch.indices.getFieldMapping({ index, fields: ['vigil.time', 'vigil.device.client'] });
    expect(Object.keys(existing[index]?.mappings ?? {}).sort()).toStrictEqual(['vigil.device.client', 'vigil.time']);

    const fresh = eventIndexName(stack.config.indices.prefix, 'device', '2026-11-27T10:00:00Z');
    await stack.elasticsearch.create({ index: fresh, id: event.id, document, refresh: true });
    expect(await hashOf(fresh)).toStrictEqual({ type: 'keyword', index: false, doc_values: false });
    // Read back by id, as the id-conflict check reads it, from either index.
    const read = await stack.elasticsearch.mget<{ vigil: { content_hash: string } }>({ docs: [{ _index: index, _id: event.id }, { _index: fresh, _id: event.id }], _source_includes: ['vigil.content_hash'] });
    expect(read.docs.map((doc) => ('_source' in doc ? doc._source?.vigil.content_hash : undefined))).toStrictEqual([document.vigil.content_hash, document.vigil.content_hash]);
  });

  it('leaves a later build\'s templates in place (a rolling upgrade), and puts its own over an older one', async () => {
    const { indexTemplate } = indexNames(stack.config.indices.prefix);
    const read = async (): Promise<{ version?: number; marker?: unknown }> => {
      const found = await stack.elasticsearch.indices.getIndexTemplate({ name: indexTemplate });
      const template = found.index_templates[0]?.index_template;
      return { ...(template?.version !== undefined ? { version: template.version } : {}), marker: template?._meta?.marker };
    };
    const { body } = eventTemplates(stack.config.indices.prefix, stack.config.indices).indexTemplate;
    await stack.elasticsearch.indices.putIndexTemplate({ name: indexTemplate, ...body, version: TEMPLATE_VERSION + 1, _meta: { managed_by: 'vigil', marker: 'later build' } });
    expect(await installTemplates(stack.elasticsearch, stack.config)).toEqual({ newer: [{ name: indexTemplate, version: TEMPLATE_VERSION + 1 }] });
    expect(await read()).toEqual({ version: TEMPLATE_VERSION + 1, marker: 'later build' });
    // An older one is replaced, as every start does.
    await stack.elasticsearch.indices.putIndexTemplate({ name: indexTemplate, ...body, version: TEMPLATE_VERSION - 1, _meta: { managed_by: 'vigil', marker: 'earlier build' } });
    expect(await installTemplates(stack.elasticsearch, stack.config)).toEqual({});
    expect(await read()).toEqual({ version: TEMPLATE_VERSION });
  });
});
