import { cappedEvidence, toDetectionDocument } from '../../detectors';
import { SEVERITY_SCORE, detectionMappings, detectionSchema, type Detection } from '../../schemas';
import { isRecord, mappingChecker } from '../support/mapping';


const location = (side: 'from' | 'to'): NonNullable<Detection['geo']>['from'] =>
  side === 'from'
    ? { lat: 51.5074, lon: -0.1278, accuracyKm: 20, country: 'GB', city: 'London', ip: '81.2.69.142', time: '2024-05-01T09:30:00.250Z', eventId: 'evt-london-01' }
    : { lat: -33.8688, lon: 151.2093, accuracyKm: 50, country: 'AU', city: 'Sydney', ip: '2001:db8::7', time: '2024-05-01T10:30:00.250Z', eventId: 'evt-sydney-01' };

/** A valid detection (through the schema, so defaults apply and nothing invalid slips in). */
function detection(changes: Record<string, unknown> = {}): Detection {
  return detectionSchema.parse({
    id: 'det-0123456789abcdef0123456789abcdef',
    ruleId: 'authn-failures-per-user',
    ruleVersion: 3,
    ruleName: 'Repeated authentication failures for one user',
    ruleType: 'threshold',
    severity: 'medium',
    tags: ['T1110', 'T1110.001', 'authentication'],
    reasonCode: 'threshold_reached',
    reason: '10 failed logins for user u-17 from 2 IPs in 4m32s; threshold 10 in 5m.',
    key: { 'actor.userId': 'u-17' },
    observedValue: 10,
    threshold: 10,
    window: { start: '2024-05-01T10:25:28.250Z', end: '2024-05-01T10:30:00.250Z', durationMs: 272_000 },
    distinct: { field: 'client.ip', values: ['81.2.69.142', '2001:db8::7'] },
    eventIds: ['evt-0001-aaaa', 'evt-0002-aaaa'],
    time: '2024-05-01T10:30:00.250Z',
    detectedAt: '2024-05-01T10:30:01.000Z',
    ...changes,
  });
}

/** One detection of each shape the engine produces. */
const examples: Record<string, Detection> = {
  threshold: detection(),
  cardinality: detection({
    ruleId: 'credential-stuffing',
    ruleType: 'cardinality',
    severity: 'high',
    tags: ['T1110.004'],
    reasonCode: 'cardinality_reached',
    key: { 'client.ip': '2001:db8::1' },
    distinct: { field: 'actor.userId', values: ['u-1', 'u-2'] },
  }),
  geo: detection({
    ruleId: 'impossible-travel',
    ruleType: 'geo_velocity',
    severity: 'high',
    tags: ['T1078', 'location'],
    reasonCode: 'impossible_travel',
    threshold: 900,
    distinct: undefined,
    observedValue: 16994,
    geo: { from: location('from'), to: location('to'), distanceKm: 16993.9, speedKmh: 16994 },
  }),
  sequence: detection({
    ruleId: 'account-takeover-sequence',
    ruleType: 'sequence',
    key: { 'client.ip': '81.2.69.142', 'actor.userId': 'u-17' },
    threshold: undefined,
    distinct: undefined,
    degraded: true,
  }),
  endpoint: detection({
    ruleId: 'enumeration-per-consumer',
    ruleType: 'threshold',
    tags: ['T1087'],
    key: { 'actor.consumerId': 'app-1', 'invocation.resource.path': '/v1/accounts/42' },
    distinct: undefined,
    scope: { api: 'accounts-v1', route: '/v1/accounts/:id' },
  }),
  surge: detection({
    ruleId: 'error-surge-per-endpoint',
    ruleType: 'surge',
    tags: ['dos'],
    reasonCode: 'surge_ratio',
    key: { 'invocation.resource.api': 'shop-v1', 'invocation.route': '/v1/checkout' },
    distinct: undefined,
    window: { start: '2024-05-01T10:25:00.000Z', end: '2024-05-01T10:25:59.250Z', durationMs: 59_250 },
    time: '2024-05-01T10:25:59.250Z',
    // Judged once the bucket was complete: its end plus the allowed lateness.
    judgedAt: '2024-05-01T10:31:00.000Z',
    scope: { api: 'shop-v1', route: '/v1/checkout' },
  }),
  match: detection({
    ruleId: 'json-threat-violation',
    ruleType: 'match',
    severity: 'critical',
    tags: ['threat-protection'],
    key: {},
    threshold: undefined,
    distinct: undefined,
  }),
};

describe('toDetectionDocument: ECS fields', () => {
  it('is an alert with the rule, the time and the sentence', () => {
    const document = toDetectionDocument(examples.threshold ?? detection());
    expect(document).toMatchObject({
      '@timestamp': '2024-05-01T10:30:00.250Z',
      message: '10 failed logins for user u-17 from 2 IPs in 4m32s; threshold 10 in 5m.',
      event: {
        id: 'det-0123456789abcdef0123456789abcdef',
        kind: 'alert',
        module: 'vigil',
        dataset: 'vigil.detection',
        severity: SEVERITY_SCORE.medium,
        risk_score: SEVERITY_SCORE.medium,
        reason: 'threshold_reached',
        created: '2024-05-01T10:30:01.000Z',
        ingested: '2024-05-01T10:30:01.000Z',
      },
      ecs: { version: '9.4.0' },
      rule: { id: 'authn-failures-per-user', name: 'Repeated authentication failures for one user', version: '3', category: 'threshold' },
      tags: ['T1110', 'T1110.001', 'authentication'],
    });
  });

  it('is ingested when the caller says it is indexed', () => {
    const event = toDetectionDocument(detection(), new Date('2024-05-01T10:30:02.500Z')).event;
    expect(isRecord(event) ? event.ingested : undefined).toBe('2024-05-01T10:30:02.500Z');
  });

  it('copies the entities of the key to ECS source.ip, user.id and url.path', () => {
    const sequence = toDetectionDocument(examples.sequence ?? detection());
    expect(sequence.source).toStrictEqual({ ip: '81.2.69.142' });
    expect(sequence.user).toStrictEqual({ id: 'u-17' });
    expect(sequence).not.toHaveProperty('url');
    const endpoint = toDetectionDocument(examples.endpoint ?? detection());
    expect(endpoint.url).toStrictEqual({ path: '/v1/accounts/42' });
    expect(endpoint).not.toHaveProperty('source');
    expect(endpoint).not.toHaveProperty('user');
    expect(toDetectionDocument(detection({ key: { 'client.ip': 'not-an-ip' } }))).not.toHaveProperty('source');
  });

  // The takeover is keyed on its victim: without the sign-in's address an analyst searching the
  // attacker's IP (related.ip, source.ip) did not find it.
  it("gives a sequence or match keyed on a user the address of its final event, the one the chunk saw last", () => {
    const takeover = detection({ ruleId: 'account-takeover-sequence', ruleType: 'sequence', key: { 'actor.userId': 'u-17' }, distinct: undefined, eventIds: ['evt-fail-1', 'evt-success'] });
    const addresses = new Map([['evt-fail-1', '198.51.100.9'], ['evt-success', '203.0.113.7']]);
    const document = toDetectionDocument(takeover, undefined, { clientIpOf: (id) => addresses.get(id) });
    expect(document.source).toStrictEqual({ ip: '203.0.113.7' });
    expect(document.related).toStrictEqual({ ip: ['203.0.113.7'], user: ['u-17'] });
    expect(document.user).toStrictEqual({ id: 'u-17' });
    // Not without the events, not for a threshold (its last event is one of many), not when the
    // key names an IP already, nor when the last event is not one the caller knows.
    expect(toDetectionDocument(takeover)).not.toHaveProperty('source');
    expect(toDetectionDocument({ ...takeover, ruleType: 'threshold' }, undefined, { clientIpOf: (id) => addresses.get(id) })).not.toHaveProperty('source');
    expect(toDetectionDocument({ ...takeover, key: { 'actor.userId': 'u-17', 'client.ip': '81.2.69.142' } }, undefined, { clientIpOf: (id) => addresses.get(id) }).source).toStrictEqual({ ip: '81.2.69.142' });
    expect(toDetectionDocument({ ...takeover, eventIds: ['evt-success', 'evt-later'] }, undefined, { clientIpOf: (id) => addresses.get(id) })).not.toHaveProperty('source');
  });

  it('names the user an IP-keyed detection proves as its user.id, and the consumer of its key as vigil.consumer_id', () => {
    const cracked = detection({ ruleId: 'credential-stuffing-then-success', ruleType: 'sequence', key: { 'client.ip': '203.0.113.7' }, distinct: undefined, entities: { 'actor.userId': 'u-cracked' } });
    const document = toDetectionDocument(cracked);
    expect(document.user).toStrictEqual({ id: 'u-cracked' });
    expect(document.source).toStrictEqual({ ip: '203.0.113.7' });
    expect((toDetectionDocument(examples.endpoint ?? detection()).vigil as Record<string, unknown>).consumer_id).toBe('app-1');
    expect(toDetectionDocument(examples.threshold ?? detection()).vigil).not.toHaveProperty('consumer_id');
  });

  it('names the endpoint as events do (vigil.api, vigil.route): from its scope, else from an endpoint key', () => {
    const vigilOf = (document: Record<string, unknown>): Record<string, unknown> => document.vigil as Record<string, unknown>;
    expect(vigilOf(toDetectionDocument(examples.surge ?? detection()))).toMatchObject({ api: 'shop-v1', route: '/v1/checkout' });
    expect(vigilOf(toDetectionDocument(examples.endpoint ?? detection()))).toMatchObject({ api: 'accounts-v1', route: '/v1/accounts/:id' });
    const keyed = toDetectionDocument(detection({ scope: undefined, key: { 'invocation.resource.api': 'pay-v2', 'invocation.route': '/v2/pay' } }));
    expect(vigilOf(keyed)).toMatchObject({ api: 'pay-v2', route: '/v2/pay' });
    const user = vigilOf(toDetectionDocument(examples.sequence ?? detection()));
    expect(user).not.toHaveProperty('api');
    expect(user).not.toHaveProperty('route');
  });

  it('writes the rule version as text (rule.version is a keyword in ECS)', () => {
    const rule = toDetectionDocument(detection({ ruleVersion: 12 })).rule;
    expect(isRecord(rule) ? rule.version : undefined).toBe('12');
  });

  it('scores the severity on the ECS 0-100 scale', () => {
    const severityOf = (severity: string): unknown => {
      const event = toDetectionDocument(detection({ severity })).event;
      return isRecord(event) ? event.severity : undefined;
    };
    expect(['low', 'medium', 'high', 'critical'].map(severityOf)).toStrictEqual([21, 47, 73, 99]);
  });

  it('files MITRE technique ids (T1234) under threat.technique, sub-techniques (T1234.567) under their technique', () => {
    const tags = ['T1110', 'T1110.001', 'authentication', 't1110', 'T111', 'T1110.1', 'T1110.0001', 'XT1110', 'T1110 ', 'TA0006'];
    expect(toDetectionDocument(detection({ tags })).threat).toStrictEqual({
      framework: 'MITRE ATT&CK',
      technique: [
        {
          id: 'T1110',
          name: 'Brute Force',
          reference: 'https://attack.mitre.org/techniques/T1110/',
          subtechnique: [{ id: 'T1110.001', name: 'Password Guessing', reference: 'https://attack.mitre.org/techniques/T1110/001/' }],
        },
      ],
    });
    // A sub-technique alone still names its technique; an id without a known name has none.
    expect(toDetectionDocument(detection({ tags: ['T9999.001', 'T1110.004'] })).threat).toStrictEqual({
      framework: 'MITRE ATT&CK',
      technique: [
        { id: 'T9999', reference: 'https://attack.mitre.org/techniques/T9999/', subtechnique: [{ id: 'T9999.001', reference: 'https://attack.mitre.org/techniques/T9999/001/' }] },
        {
          id: 'T1110',
          name: 'Brute Force',
          reference: 'https://attack.mitre.org/techniques/T1110/',
          subtechnique: [{ id: 'T1110.004', name: 'Credential Stuffing', reference: 'https://attack.mitre.org/techniques/T1110/004/' }],
        },
      ],
    });
    expect(toDetectionDocument(detection({ tags: ['threat-protection'] }))).not.toHaveProperty('threat');
    // Every tag stays in tags.
    expect(toDetectionDocument(detection({ tags })).tags).toStrictEqual(tags);
  });

  it('relates the IPs and users of the key, the distinct values and both locations, once each', () => {
    expect(toDetectionDocument(examples.threshold ?? detection()).related).toStrictEqual({ ip: ['81.2.69.142', '2001:db8::7'], user: ['u-17'] });
    expect(toDetectionDocument(examples.cardinality ?? detection()).related).toStrictEqual({ ip: ['2001:db8::1'], user: ['u-1', 'u-2'] });
    expect(toDetectionDocument(examples.geo ?? detection()).related).toStrictEqual({ ip: ['81.2.69.142', '2001:db8::7'], user: ['u-17'] });
    const overlapping = detection({ key: { 'client.ip': '81.2.69.142' }, distinct: { field: 'client.ip', values: ['81.2.69.142', '81.2.69.143'] } });
    expect(toDetectionDocument(overlapping).related).toStrictEqual({ ip: ['81.2.69.142', '81.2.69.143'] });
  });

  it('has no related block when it knows no IP and no user', () => {
    expect(toDetectionDocument(examples.match ?? detection())).not.toHaveProperty('related');
    const consumerOnly = detection({ key: { 'actor.consumerId': 'app-1' }, distinct: { field: 'invocation.resource.path', values: ['/a', '/b'] } });
    expect(toDetectionDocument(consumerOnly)).not.toHaveProperty('related');
  });

  it('keeps the evidence under vigil.detection', () => {
    expect(toDetectionDocument(examples.sequence ?? detection()).vigil).toStrictEqual({
      detection: {
        severity: 'medium',
        key: { 'client.ip': '81.2.69.142', 'actor.userId': 'u-17' },
        key_text: 'client.ip=81.2.69.142,actor.userId=u-17',
        observed_value: 10,
        window: { start: '2024-05-01T10:25:28.250Z', end: '2024-05-01T10:30:00.250Z', duration_ms: 272_000 },
        event_ids: ['evt-0001-aaaa', 'evt-0002-aaaa'],
        degraded: true,
      },
    });
    expect(toDetectionDocument(examples.threshold ?? detection()).vigil).toMatchObject({
      detection: { threshold: 10, distinct_field: 'client.ip', distinct_values: ['81.2.69.142', '2001:db8::7'], degraded: false },
    });
  });

  it('keeps when a surge judged on close was decided, and leaves it out for a detection decided on arrival', () => {
    expect(toDetectionDocument(examples.surge ?? detection()).vigil).toMatchObject({ detection: { judged_at: '2024-05-01T10:31:00.000Z' } });
    expect((toDetectionDocument(examples.threshold ?? detection()).vigil as { detection: object }).detection).not.toHaveProperty('judged_at');
  });

  it('writes both locations in ECS-style snake_case, with a geo_point', () => {
    const vigil = toDetectionDocument(examples.geo ?? detection()).vigil;
    expect(vigil).toMatchObject({
      detection: {
        geo: {
          from: {
            location: { lat: 51.5074, lon: -0.1278 },
            accuracy_km: 20,
            country_iso_code: 'GB',
            city_name: 'London',
            ip: '81.2.69.142',
            time: '2024-05-01T09:30:00.250Z',
            event_id: 'evt-london-01',
          },
          to: { location: { lat: -33.8688, lon: 151.2093 }, ip: '2001:db8::7', event_id: 'evt-sydney-01' },
          distance_km: 16993.9,
          speed_kmh: 16994,
        },
      },
    });
    const bare = detection({ geo: { from: { lat: 1, lon: 2, time: '2024-05-01T09:30:00.250Z', eventId: 'evt-a-000001' }, to: location('to'), distanceKm: 1, speedKmh: 1 } });
    const from: unknown = (toDetectionDocument(bare).vigil as { detection: { geo: { from: unknown } } }).detection.geo.from;
    expect(from).toStrictEqual({ location: { lat: 1, lon: 2 }, time: '2024-05-01T09:30:00.250Z', event_id: 'evt-a-000001' });
  });
});

describe('toDetectionDocument: every field is in detectionMappings', () => {
  const checker = mappingChecker(detectionMappings);

  it.each(Object.keys(examples))('maps every field of a %s detection, with a value of its type', (name) => {
    const example = examples[name];
    if (example === undefined) throw new Error(name);
    expect(checker.problems(toDetectionDocument(example))).toStrictEqual([]);
  });

  it('covers every mapped field with the examples (the walk is not vacuous, and no mapping is dead)', () => {
    const seen = new Set<string>();
    for (const example of Object.values(examples)) checker.problems(toDetectionDocument(example), seen);
    const declared = checker.leaves();
    expect(declared.length).toBeGreaterThan(30);
    expect(declared.filter((path) => !seen.has(path))).toStrictEqual([]);
    expect([...seen]).toEqual(
      expect.arrayContaining(['vigil.detection.key.actor.userId', 'vigil.detection.key.client.ip', 'threat.technique.id', 'threat.technique.subtechnique.name', 'related.ip', 'url.path']),
    );
  });

  it('finds a field that is not mapped, and a value of the wrong type (the walk can fail)', () => {
    const document = { ...toDetectionDocument(examples.threshold ?? detection()), extra: 1, event: { kind: 'alert', severity: 'high' } };
    expect(checker.problems(document)).toStrictEqual(['event.severity: "high" does not fit a long', 'extra: not in the mapping']);
    expect(checker.problems({ related: { ip: ['not-an-ip'] } })).toStrictEqual(['related.ip: "not-an-ip" does not fit a ip']);
  });

  it('would catch a key template that also captures the objects of dotted key fields', () => {
    const loose = checker.templates.map(({ matchMappingType: _matchMappingType, ...template }) => template);
    expect(checker.problems(toDetectionDocument(examples.threshold ?? detection()), new Set(), loose)).toStrictEqual([
      'vigil.detection.key.actor: an object, mapped as keyword by key_as_keywords',
    ]);
  });

  it('is what the mapping says of unknown fields: strict at the root, dynamic only under the key', () => {
    expect(detectionMappings.dynamic).toBe('strict');
    expect(detectionMappings.properties.vigil.properties.detection.properties.key).toStrictEqual({ type: 'object', dynamic: true });
  });
});

describe('cappedEvidence', () => {
  // A chain longer than the cap lost its completing event: the takeover's document then named the
  // 50th failure's address as the sign-in's.
  it('keeps the first ids and the last (the completing event) past the cap, and everything under it', () => {
    const ids = Array.from({ length: 61 }, (_, index) => `evt-${index}`);
    const capped = cappedEvidence(ids, 50);
    expect(capped).toHaveLength(50);
    expect(capped.slice(0, 49)).toStrictEqual(ids.slice(0, 49));
    expect(capped[49]).toBe('evt-60');
    expect(cappedEvidence(ids.slice(0, 6), 50)).toStrictEqual(ids.slice(0, 6));
    expect(cappedEvidence(ids, 1)).toStrictEqual(['evt-0']);
  });
});
