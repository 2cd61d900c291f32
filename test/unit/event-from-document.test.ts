import { contentHash, enrich, eventOfDocument, fromEventDocument, toEventDocument, type GeoLookup } from '../../ingest';
import { FAMILIES, POLICY_KINDS, eventSchema, type VigilEvent } from '../../schemas';
import { fuzzTraffic } from '../support/fuzz';
import { randomEvents } from '../support/random-events';
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
