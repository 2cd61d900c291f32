import { enrich, toEventDocument, type Enrichment, type GeoLookup } from '../../ingest';
import { eventMappings, eventSchema, familySchemas, type EventDocument, type VigilEvent } from '../../schemas';
import { absentValuePaths, deviceEvent, invocationEvent, kafkaPosition, minimalEvents, policyEvent, withField } from './fixtures';

const ingestedAt = new Date('2024-05-01T10:31:02.500Z');

/** A fixed lookup, so these tests do not depend on the database's data. */
const lookup: GeoLookup = () => ({
  geo: { country_iso_code: 'GB', city_name: 'London', region_iso_code: 'GB-ENG', location: { lat: 51.5, lon: -0.12 } },
  accuracyKm: 50,
  database: { name: 'GeoLite2-City', build: new Date('2026-06-02T14:07:11Z') },
});

function documentOf(event: VigilEvent, enrichment: Enrichment = enrich(event, lookup)): EventDocument {
  return toEventDocument(event, enrichment, kafkaPosition(), ingestedAt);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The dotted path of every leaf value of a document (array elements share their array's path). */
function leafPaths(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((item) => leafPaths(item, path));
  if (isRecord(value) && !(path.endsWith('location') && 'lat' in value)) {
    return Object.entries(value).flatMap(([key, child]) => leafPaths(child, path ? `${path}.${key}` : key));
  }
  return [path];
}

/** The mapping of a dotted path in `eventMappings`, or undefined when it is not mapped. */
function mappingOf(path: string): Record<string, unknown> | undefined {
  if (path.startsWith('labels.')) return { type: 'keyword' }; // the labels_as_keywords dynamic template
  let node: unknown = eventMappings;
  for (const key of path.split('.')) {
    if (!isRecord(node) || !isRecord(node.properties)) return undefined;
    node = node.properties[key];
  }
  return isRecord(node) ? node : undefined;
}

const allEvents: Array<[string, () => VigilEvent]> = [
  ['policy', () => familySchemas.policy.parse(policyEvent())],
  ['invocation', () => familySchemas.invocation.parse(invocationEvent())],
  ['device', () => familySchemas.device.parse(deviceEvent())],
  ['minimal policy', () => eventSchema.parse(minimalEvents().policy)],
  ['minimal invocation', () => eventSchema.parse(minimalEvents().invocation)],
  ['minimal device', () => eventSchema.parse(minimalEvents().device)],
];

describe('toEventDocument', () => {
  describe('every family', () => {
    it.each(allEvents)('%s: has no null or undefined field, and survives a JSON round trip unchanged', (_name, make) => {
      const document = documentOf(make());
      expect(absentValuePaths(document)).toStrictEqual([]);
      expect(JSON.parse(JSON.stringify(document))).toStrictEqual(document);
    });

    it.each(allEvents)('%s: has only fields the index mapping knows (dynamic: strict would refuse others)', (_name, make) => {
      const unmapped = leafPaths(documentOf(make())).filter((path) => mappingOf(path)?.type === undefined);
      expect(unmapped).toStrictEqual([]);
    });

    it.each(allEvents)('%s: carries the common ECS and vigil fields', (_name, make) => {
      const event = make();
      const document = documentOf(event);
      expect(document['@timestamp']).toBe('2024-05-01T10:30:00.250Z');
      expect(document.event).toMatchObject({
        id: event.id,
        kind: 'event',
        module: 'vigil',
        dataset: `vigil.${event.family}`,
        ingested: '2024-05-01T10:31:02.500Z',
      });
      expect(document.event.action).not.toBe('');
      expect(document.event.category.length).toBeGreaterThan(0);
      expect(document.event.type.length).toBeGreaterThan(0);
      expect(document.service).toStrictEqual({ name: 'edge-gateway-eu', type: 'gateway' });
      expect(document.vigil.schema_version).toBe(1);
      expect(document.vigil.family).toBe(event.family);
      expect(document.vigil.kafka).toStrictEqual({ topic: 'vigil.events.policy', partition: 2, offset: '1234567890123' });
    });
  });

  it('normalises @timestamp to UTC ISO 8601 with milliseconds', () => {
    const cases: Array<[string, string]> = [
      ['2024-05-01T12:30:00+02:00', '2024-05-01T10:30:00.000Z'],
      ['2024-12-31T23:30:00-05:30', '2025-01-01T05:00:00.000Z'],
      ['2024-05-01T10:30:00.123456Z', '2024-05-01T10:30:00.123Z'],
      ['2024-05-01T10:30:00Z', '2024-05-01T10:30:00.000Z'],
    ];
    for (const [time, expected] of cases) {
      const document = documentOf(familySchemas.policy.parse({ ...policyEvent(), time }));
      expect(document['@timestamp']).toBe(expected);
    }
  });

  it('names the service node and environment when the source does', () => {
    const event = familySchemas.policy.parse({
      ...policyEvent(),
      source: { service: 'payments', kind: 'service', instance: 'payments-7f9c', environment: 'prod' },
    });
    expect(documentOf(event).service).toStrictEqual({
      name: 'payments',
      type: 'service',
      node: { name: 'payments-7f9c' },
      environment: 'prod',
    });
  });

  describe('event.original and the event time', () => {
    it('leaves event.original out unless asked (VIGIL_EVENT_ORIGINAL=on), and then holds the validated event', () => {
      const event = familySchemas.policy.parse(policyEvent());
      expect(documentOf(event).event).not.toHaveProperty('original');
      const kept = toEventDocument(event, enrich(event, lookup), kafkaPosition(), ingestedAt, { original: true });
      expect(JSON.parse(kept.event.original ?? 'null')).toStrictEqual(event);
    });

    it('keeps the producer’s time text in vigil.time only when @timestamp does not say it', () => {
      const offset = documentOf(familySchemas.policy.parse(policyEvent()));
      expect(offset['@timestamp']).toBe('2024-05-01T10:30:00.250Z');
      expect(offset.vigil.time).toBe('2024-05-01T12:30:00.250+02:00');
      const utc = documentOf(familySchemas.policy.parse({ ...policyEvent(), time: '2024-05-01T10:30:00.250Z' }));
      expect(utc.vigil).not.toHaveProperty('time');
      const micros = documentOf(familySchemas.policy.parse({ ...policyEvent(), time: '2024-05-01T10:30:00.250123Z' }));
      expect(micros.vigil.time).toBe('2024-05-01T10:30:00.250123Z');
    });
  });

  describe('policy events', () => {
    const event = (): VigilEvent => familySchemas.policy.parse(policyEvent());

    it('maps a failed authn policy to ECS and vigil.policy', () => {
      const document = documentOf(event());
      expect(document.event).toMatchObject({
        category: ['authentication'],
        type: ['start'],
        action: 'policy-authn',
        outcome: 'failure',
        reason: 'invalid_credentials',
      });
      expect(document.event.duration).toBeUndefined();
      expect(document.url).toStrictEqual({ path: '/payments/123' });
      expect(document.http).toStrictEqual({ request: { method: 'POST', id: 'req-1' } });
      // The login name given to an authn policy is the user's name too (Kibana's Authentications view groups by it).
      expect(document.user).toStrictEqual({ id: 'user-1', name: 'user-1' });
      expect(document.related).toStrictEqual({ ip: ['81.2.69.142'], user: ['user-1'] });
      expect(document.ecs).toStrictEqual({ version: '9.4.0' });
      expect(document.observer).toStrictEqual({ name: 'edge-gateway-eu', type: 'gateway' });
      expect(document.organization).toStrictEqual({ id: 'tenant-1' });
      expect(document.trace).toStrictEqual({ id: 'trace-1' });
      expect(document.device).toStrictEqual({ id: 'device-1' });
      expect(document.user_agent).toStrictEqual({ original: 'curl/8.5.0' });
      expect(document.labels).toStrictEqual({ region: 'eu_west' });
      expect(document.source).toStrictEqual({
        ip: '81.2.69.142',
        geo: { country_iso_code: 'GB', city_name: 'London', region_iso_code: 'GB-ENG', location: { lat: 51.5, lon: -0.12 } },
      });
      expect(document.vigil).toMatchObject({
        consumer_id: 'app-1',
        session_id: 'sess-1',
        api: 'payments-v2',
        group: 'payments',
        geo: { source: 'geoip', ip_scope: 'public', accuracy_km: 50, database: 'GeoLite2-City', database_build: '2026-06-02T14:07:11.000Z' },
        policy: {
          kind: 'authn',
          name: 'verify-api-key',
          outcome: 'fail',
          auth_context: 'api_key',
          scopes: ['payments:write'],
        },
      });
      // The reason is event.reason alone; the same text under vigil.policy was dropped.
      expect(document.vigil.policy).not.toHaveProperty('reason');
    });

    it('maps a passed authn policy to success/start: the verdict is the outcome', () => {
      const document = documentOf(familySchemas.policy.parse(withField(policyEvent(), 'policy.outcome', 'pass')));
      expect(document.event.outcome).toBe('success');
      expect(document.event.type).toStrictEqual(['start']);
    });

    it.each([
      ['authn', 'pass', ['authentication'], ['start'], 'policy-authn'],
      ['authn', 'fail', ['authentication'], ['start'], 'policy-authn'],
      ['authz', 'pass', ['api'], ['allowed'], 'policy-authz'],
      ['authz', 'fail', ['api'], ['denied'], 'policy-authz'],
      ['rate_limit', 'fail', ['api'], ['denied'], 'policy-rate-limit'],
      ['json_threat', 'fail', ['intrusion_detection'], ['denied'], 'policy-json-threat'],
      ['xml_threat', 'pass', ['intrusion_detection'], ['allowed'], 'policy-xml-threat'],
      ['custom', 'fail', ['api'], ['denied'], 'policy-custom'],
    ])('maps the %s kind with outcome %s to category %p, type %p and action %s', (kind, outcome, category, type, action) => {
      const document = documentOf(familySchemas.policy.parse(withField(withField(policyEvent(), 'policy.kind', kind), 'policy.outcome', outcome)));
      expect(document.event.category).toStrictEqual(category);
      expect(document.event.type).toStrictEqual(type);
      expect(document.event.action).toBe(action);
    });

    it('gives user.name only to authn policies, whose user is the login name given', () => {
      const document = documentOf(familySchemas.policy.parse(withField(policyEvent(), 'policy.kind', 'authz')));
      expect(document.user).toStrictEqual({ id: 'user-1' });
    });

    it('describes only a gateway as the observer', () => {
      const document = documentOf(familySchemas.policy.parse({ ...policyEvent(), source: { service: 'payments', kind: 'service' } }));
      expect(document).not.toHaveProperty('observer');
    });

    it('copies the scopes, so the document does not share the event array', () => {
      const source = event();
      const document = documentOf(source);
      if (source.family !== 'policy') throw new Error('expected a policy event');
      expect(document.vigil.policy?.scopes).toStrictEqual(source.policy.scopes);
      expect(document.vigil.policy?.scopes).not.toBe(source.policy.scopes);
    });

    it('leaves out what a minimal policy event lacks', () => {
      const document = documentOf(eventSchema.parse(minimalEvents().policy));
      expect(document).not.toHaveProperty('user');
      expect(document).not.toHaveProperty('source');
      expect(document).not.toHaveProperty('related');
      expect(document).not.toHaveProperty('labels');
      expect(document.event).not.toHaveProperty('reason');
      expect(document.http).toStrictEqual({ request: { method: 'GET' } });
      expect(document.vigil.policy).toStrictEqual({ kind: 'rate_limit', name: 'spike-arrest', outcome: 'pass' });
      expect(document.vigil.geo).toStrictEqual({ source: 'none' });
    });
  });

  describe('invocation events', () => {
    it('maps status, latency (ECS duration in nanoseconds), bytes and route', () => {
      const document = documentOf(familySchemas.invocation.parse(invocationEvent()));
      expect(document.event).toMatchObject({
        category: ['web'],
        type: ['access'],
        action: 'api-invocation',
        outcome: 'failure',
        duration: 12_500_000,
      });
      // Body sizes go to ECS http.*.body.bytes (http.*.bytes would be body plus headers).
      expect(document.http).toStrictEqual({
        request: { method: 'GET', id: 'req-2', body: { bytes: 0 } },
        response: { status_code: 404, body: { bytes: 321 } },
      });
      expect(document.url).toStrictEqual({ path: '/accounts/42' });
      expect(document.vigil).toMatchObject({
        consumer_id: 'app-2',
        api: 'accounts-v1',
        route: '/accounts/:id',
        latency_ms: 12.5,
        group: 'accounts',
        upstream_service: 'accounts-service',
        geo: { source: 'none', ip_scope: 'private' },
      });
      expect(document.source).toStrictEqual({ ip: '10.1.2.3' });
      expect(document).not.toHaveProperty('user');
    });

    it('leaves body sizes out when the producer does not know them', () => {
      const event = invocationEvent();
      const known: Record<string, unknown> = { ...event.invocation };
      delete known.bytesIn;
      delete known.bytesOut;
      const document = documentOf(familySchemas.invocation.parse({ ...event, invocation: known }));
      expect(document.http).toStrictEqual({ request: { method: 'GET', id: 'req-2' }, response: { status_code: 404 } });
    });

    it.each([
      [200, 'success'],
      [302, 'success'],
      [399, 'success'],
      [400, 'failure'],
      [503, 'failure'],
    ])('maps status %i to outcome %s', (status, outcome) => {
      const document = documentOf(familySchemas.invocation.parse(withField(invocationEvent(), 'invocation.status', status)));
      expect(document.event.outcome).toBe(outcome);
      expect(document.http?.response?.status_code).toBe(status);
    });

    it('rounds the duration to a whole number of nanoseconds (a long)', () => {
      const document = documentOf(familySchemas.invocation.parse(withField(invocationEvent(), 'invocation.latencyMs', 12.3456789)));
      expect(document.event.duration).toBe(12_345_679);
      expect(Number.isInteger(document.event.duration)).toBe(true);
    });
  });

  describe('device events', () => {
    it('maps the device, its producer location and the session', () => {
      const event = familySchemas.device.parse(deviceEvent());
      const document = documentOf(event, enrich(event, lookup));
      expect(document.event).toMatchObject({ category: ['session'], type: ['info'], action: 'device-password-change', outcome: 'unknown' });
      expect(document.source).toStrictEqual({
        ip: '8.8.8.8',
        geo: { location: { lat: 48.8566, lon: 2.3522 }, country_iso_code: 'FR', city_name: 'Paris' },
      });
      expect(document.source?.geo?.location).toStrictEqual({ lat: 48.8566, lon: 2.3522 });
      expect(document.user).toStrictEqual({ id: 'user-3' });
      expect(document.device).toStrictEqual({ id: 'phone-3' });
      expect(document.user_agent).toStrictEqual({ original: 'VigilApp/1.0 (Android)' });
      expect(document.http).toStrictEqual({ request: { id: 'req-3' } });
      expect(document).not.toHaveProperty('url');
      expect(document.vigil).toMatchObject({
        session_id: 'sess-3',
        device: { type: 'mobile', action: 'password_change', os: 'Android 14', fingerprint: 'fp-3' },
        geo: { source: 'producer', ip_scope: 'public', accuracy_km: 0.5 },
      });
    });

    it('keeps a location without an IP in source.geo', () => {
      const event = familySchemas.device.parse(withField(deviceEvent(), 'device.ip', undefined));
      const document = documentOf(event);
      expect(document.source).toStrictEqual({
        geo: { location: { lat: 48.8566, lon: 2.3522 }, country_iso_code: 'FR', city_name: 'Paris' },
      });
      expect(document.vigil.geo).toStrictEqual({ source: 'producer', accuracy_km: 0.5 });
    });

    it('prefers the client fields to the device fields for user agent and device id, and keeps the device’s own', () => {
      const event = familySchemas.device.parse({ ...deviceEvent(), client: { userAgent: 'Mozilla/5.0', deviceId: 'client-device' } });
      const document = documentOf(event);
      expect(document.user_agent).toStrictEqual({ original: 'Mozilla/5.0' });
      expect(document.device).toStrictEqual({ id: 'client-device' });
      expect(document.vigil.device).toMatchObject({ client: ['user_agent', 'id'], user_agent: 'VigilApp/1.0 (Android)', id: 'phone-3' });
      expect(document.vigil.device).not.toHaveProperty('ip');
    });

    it('says nothing more when only the device gave them, and which came from client when only client did', () => {
      expect(documentOf(familySchemas.device.parse(deviceEvent())).vigil.device).toStrictEqual({ type: 'mobile', action: 'password_change', os: 'Android 14', fingerprint: 'fp-3' });
      const fromClient = documentOf(familySchemas.device.parse({ ...withField(deviceEvent(), 'device.ip', undefined), client: { ip: '8.8.4.4' } }));
      expect(fromClient.source?.ip).toBe('8.8.4.4');
      expect(fromClient.vigil.device).toMatchObject({ client: ['ip'] });
      expect(fromClient.vigil.device).not.toHaveProperty('ip');
    });

    it('keeps an empty OS, user agent and city: absent and empty are different events', () => {
      const event = familySchemas.device.parse({ ...withField(withField(deviceEvent(), 'device.os', ''), 'device.geo.city', ''), client: { userAgent: '' } });
      const document = documentOf(event);
      expect(document.vigil.device?.os).toBe('');
      expect(document.user_agent).toStrictEqual({ original: '' });
      expect(document.source?.geo?.city_name).toBe('');
    });

    it('leaves out http and device id for a minimal device event', () => {
      const document = documentOf(eventSchema.parse(minimalEvents().device));
      expect(document).not.toHaveProperty('http');
      expect(document).not.toHaveProperty('device');
      expect(document.vigil.device).toStrictEqual({ type: 'unknown', action: 'other', fingerprint: 'fp-min' });
    });
  });
});
