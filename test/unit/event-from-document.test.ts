import { contentHash, enrich, eventOfDocument, fromEventDocument, toEventDocument, type GeoLookup } from '../../ingest';
import { seededRandom } from '../../scripts/simulated-traffic';
import { AUTH_CONTEXTS, FAMILIES, POLICY_KINDS, eventSchema, type VigilEvent } from '../../schemas';
import { fuzzTraffic } from '../support/fuzz';
import { mixedHour } from '../support/mixed-hour';
import { deviceEvent, invocationEvent, kafkaPosition, minimalEvents, policyEvent } from './fixtures';

/** A lookup that places every public address, so documents carry geoip fields as in production. */
const lookup: GeoLookup = () => ({
  geo: { country_iso_code: 'GB', city_name: 'London', region_iso_code: 'GB-ENG', timezone: 'Europe/London', location: { lat: 51.5, lon: -0.12 } },
  accuracyKm: 50,
  database: { name: 'GeoLite2-City', build: new Date('2026-06-02T14:07:11Z') },
});

/** The document as Elasticsearch hands its `_source` back: JSON, with the original or without. */
function stored(event: VigilEvent, original = false): unknown {
  return JSON.parse(JSON.stringify(toEventDocument(event, enrich(event, lookup), kafkaPosition(), new Date('2026-06-03T10:00:00Z'), { original })));
}

const DEVICE_TYPES = ['mobile', 'desktop', 'tablet', 'server', 'iot', 'unknown'] as const;
const DEVICE_ACTIONS = ['login', 'logout', 'session', 'transaction', 'registration', 'password_change', 'other'] as const;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const IPS = ['81.2.69.142', '10.1.2.3', '203.0.113.9', '2001:4860:4860::8888', '::ffff:81.2.69.142', 'fd00::1'];
const TIMES = ['2026-06-01T10:00:00.250Z', '2026-06-01T12:00:00.250+02:00', '2026-06-01T10:00:00Z', '2026-06-01T10:00:00.123456Z', '2026-06-01T04:30:00.5-05:30'];

/**
 * Random valid events of every family, kind, outcome and shape: each optional field absent,
 * present, or (where the contract allows it) an empty string; on device events, each of IP,
 * user agent and device id given in client, in device, in both the same, or in both different.
 */
function randomEvents(seed: number, count: number): VigilEvent[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const maybe = <T>(value: () => T): T | undefined => (random() < 0.5 ? value() : undefined);
  const text = (): string => pick(['', 'a', 'invalid_credentials', 'é 東 ✓ 😀 "quoted" \\', 'x'.repeat(256)]);
  const name = (prefix: string): string => `${prefix}-${Math.floor(random() * 1000)}`;
  const events: VigilEvent[] = [];
  for (let n = 0; n < count; n++) {
    const family = FAMILIES[n % FAMILIES.length] ?? 'policy';
    const raw: Record<string, unknown> = {
      id: `evt-prop-${seed}-${n}`,
      schemaVersion: 1,
      family,
      time: pick(TIMES),
      source: { service: name('svc'), kind: pick(['gateway', 'service']), instance: maybe(() => name('pod')), environment: maybe(() => 'production') },
      correlation: { requestId: maybe(() => name('req')), traceId: maybe(() => name('trace')), sessionId: maybe(() => name('sess')) },
      actor: { userId: maybe(() => name('u')), consumerId: maybe(() => name('app')), tenantId: maybe(() => name('tenant')) },
      client: {},
      labels: maybe(() => (random() < 0.2 ? {} : { region: 'eu_west', empty: '', run: name('run') })),
    };
    const resource = { api: name('api'), method: pick(METHODS), path: pick(['/', '/v1/login', '/a%00b', `/${'p'.repeat(500)}`]) };
    const client: Record<string, unknown> = {};
    if (family === 'device') {
      const device: Record<string, unknown> = { type: pick(DEVICE_TYPES), action: pick(DEVICE_ACTIONS), os: maybe(text), fingerprint: maybe(() => name('fp')) };
      const pairs = [
        ['ip', 'ip', () => pick(IPS)],
        ['userAgent', 'userAgent', () => pick(['', 'okhttp/4.12', 'Mozilla/5.0\t(X11)'])],
        ['deviceId', 'deviceId', () => name('dev')],
      ] as const;
      for (const [clientKey, deviceKey, value] of pairs) {
        const where = pick(['none', 'client', 'device', 'both-same', 'both-different']);
        const first = value();
        if (where === 'client' || where.startsWith('both')) client[clientKey] = first;
        if (where === 'device' || where === 'both-same') device[deviceKey] = first;
        if (where === 'both-different') device[deviceKey] = clientKey === 'ip' ? (first === '10.1.2.3' ? '10.9.9.9' : '10.1.2.3') : `${first}-other`;
      }
      if (device.deviceId === undefined && device.fingerprint === undefined) device.fingerprint = name('fp');
      if (random() < 0.5) device.geo = { lat: random() * 180 - 90, lon: random() * 360 - 180, accuracyKm: maybe(() => random() * 100), country: maybe(() => 'FR'), city: maybe(text) };
      raw.device = device;
    } else {
      if (random() < 0.7) client.ip = pick(IPS);
      if (random() < 0.7) client.userAgent = pick(['', 'curl/8.5.0']);
      if (random() < 0.3) client.deviceId = name('dev');
      if (family === 'policy') {
        raw.policy = {
          kind: pick(POLICY_KINDS),
          name: name('policy'),
          outcome: pick(['pass', 'fail']),
          reason: maybe(text),
          authContext: maybe(() => pick(AUTH_CONTEXTS)),
          scopes: maybe(() => (random() < 0.3 ? [] : ['payments:write', name('scope')])),
          group: name('group'),
          resource,
        };
      } else {
        raw.invocation = {
          resource,
          route: pick(['/', '/v1/accounts/:id']),
          status: 100 + Math.floor(random() * 500),
          latencyMs: pick([0, 12.5, random() * 5000, 3_600_000]),
          bytesIn: maybe(() => Math.floor(random() * 1e6)),
          bytesOut: maybe(() => pick([0, Math.floor(random() * 1e9)])),
          upstreamService: maybe(() => name('upstream')),
          group: maybe(() => name('group')),
        };
      }
    }
    raw.client = client;
    // Undefined members out: the contract's objects are strict about keys, not about undefined.
    events.push(eventSchema.parse(JSON.parse(JSON.stringify(raw))));
  }
  return events;
}

const fixtures: Array<[string, VigilEvent[]]> = [
  ['the unit fixtures', [policyEvent(), invocationEvent(), deviceEvent(), ...Object.values(minimalEvents())].map((event) => eventSchema.parse(event))],
  ['an hour of mixed traffic', mixedHour(Date.parse('2026-06-01T10:00:00Z'))],
  [
    'the fuzz generator’s valid events',
    fuzzTraffic({ seed: 7, count: 300, goodShare: 1, idPrefix: 'evt-roundtrip', maxMessageBytes: 256 * 1024, maxJsonDepth: 16, now: new Date('2026-06-01T10:00:00Z') })
      .filter((message) => message.expect.outcome === 'indexed' && message.value !== null)
      .map((message) => eventSchema.parse(JSON.parse(message.value?.toString() ?? 'null'))),
  ],
  ['random events of every family, kind and shape', randomEvents(12, 1500)],
];

describe('fromEventDocument: the inverse of toEventDocument', () => {
  it.each(fixtures)('rebuilds every event of %s exactly from its document without event.original', (_name, events) => {
    expect(events.length).toBeGreaterThan(5);
    const wrong: string[] = [];
    for (const event of events) {
      const document = stored(event) as { event: Record<string, unknown> };
      expect(document.event).not.toHaveProperty('original');
      const rebuilt = eventOfDocument(document);
      if (!rebuilt.ok) {
        wrong.push(`${event.id}: ${rebuilt.reason}`);
        continue;
      }
      if (!sameContent(rebuilt.event, event) || rebuilt.from !== 'rebuilt' || rebuilt.hashMatches !== true) {
        wrong.push(`${event.id}: ${JSON.stringify(event)} came back as ${JSON.stringify(rebuilt.event)}`);
      }
    }
    expect(wrong.slice(0, 5)).toStrictEqual([]);
  });

  it('covers every family, policy kind and outcome, and every way a device event gives its IP', () => {
    const events = fixtures.flatMap(([, list]) => list);
    const seen = new Set(events.map((event) => (event.family === 'policy' ? `policy/${event.policy.kind}/${event.policy.outcome}` : event.family)));
    expect([...seen].sort()).toStrictEqual([...FAMILIES.filter((family) => family !== 'policy'), ...POLICY_KINDS.flatMap((kind) => [`policy/${kind}/fail`, `policy/${kind}/pass`])].sort());
    const ipShapes = new Set(events.flatMap((event) => (event.family === 'device' ? [`${event.client.ip === undefined ? '-' : 'c'}${event.device.ip === undefined ? '-' : event.device.ip === event.client.ip ? '=' : 'd'}`] : [])));
    expect([...ipShapes].sort()).toStrictEqual(['--', '-d', 'c-', 'c=', 'cd']);
  });

  it('reads event.original when the document has it (VIGIL_EVENT_ORIGINAL=on, or indexed before)', () => {
    const event = eventSchema.parse(deviceEvent());
    const document = stored(event, true) as { event: { original?: string } };
    expect(JSON.parse(document.event.original ?? 'null')).toStrictEqual(event);
    expect(eventOfDocument(document)).toStrictEqual({ ok: true, event, from: 'original', hashMatches: true });
  });

  it('rebuilds a document indexed before template version 3 (vigil.policy.reason, no vigil.time) from its original', () => {
    const event = eventSchema.parse({ ...policyEvent(), time: '2026-06-01T12:00:00+02:00' });
    const document = stored(event, true) as { vigil: Record<string, unknown> & { policy: Record<string, unknown> }; event: Record<string, unknown> };
    delete document.vigil.time;
    document.vigil.policy.reason = document.event.reason;
    expect(eventOfDocument(document)).toMatchObject({ ok: true, event, from: 'original' });
  });

  it('says what is wrong with a document that holds no valid event, and tells a rebuilt event that lost something by its hash', () => {
    const event = eventSchema.parse(policyEvent());
    const document = stored(event) as { vigil: { policy: Record<string, unknown>; session_id?: string } };
    const broken = structuredClone(document);
    delete broken.vigil.policy.kind;
    expect(eventOfDocument(broken)).toMatchObject({ ok: false, reason: expect.stringContaining('policy.kind') as unknown });
    expect(eventOfDocument({ event: { original: '{not json' } })).toMatchObject({ ok: false, reason: expect.stringContaining('not JSON') as unknown });
    expect(eventOfDocument(null)).toStrictEqual({ ok: false, reason: 'no document source' });
    const lost = structuredClone(document);
    delete lost.vigil.session_id;
    expect(eventOfDocument(lost)).toMatchObject({ ok: true, from: 'rebuilt', hashMatches: false });
  });

  it('fromEventDocument leaves out what the document does not have (no undefined members)', () => {
    const event = eventSchema.parse(minimalEvents().device);
    const rebuilt = fromEventDocument(stored(event) as never);
    expect(JSON.parse(JSON.stringify(rebuilt))).toStrictEqual(rebuilt);
    expect(contentHash(rebuilt)).toBe(contentHash(event));
  });
});

/** Deep equality as the content hash sees it, and as Jest's toStrictEqual would: same keys, same values. */
function sameContent(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, item]) => [key, sortKeys(item)]));
  }
  return value;
}
