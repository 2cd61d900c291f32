import {
  DEFAULT_INHIBITION,
  SEVERITY_RANK,
  alertFromFields,
  campaignGroupOf,
  endpointGroupOf,
  evidenceOf,
  fromAlertDocument,
  groupKeyOf,
  inhibitionIndex,
  isPaged,
  namedGroupsOf,
  eventTimeOf,
  orderTimeOf,
  parseInhibition,
  severityOfRank,
  toAlertDocument,
} from '../../detectors';
import { ConfigError } from '../../platform';
import { SEVERITIES, SEVERITY_SCORE, alertMappings, alertSchema, type Alert } from '../../schemas';
import { isRecord, mappingChecker } from '../support/mapping';


const FIRST = Date.parse('2024-05-01T10:30:00.250Z');
const LAST = FIRST + 4 * 60_000;
const RESOLVED = LAST + 5 * 60_000;

const endpoint = { 'invocation.resource.api': 'accounts-v1', 'invocation.route': '/v1/login' };
const endpointGroup = 'invocation.resource.api=accounts-v1,invocation.route=/v1/login';

/** JSON as Redis's Lua cjson writes it: like JSON.stringify, but with "/" escaped as "\/". */
const cjsonEncode = (value: unknown): string => JSON.stringify(value).replace(/\//g, '\\/');

/** An alert hash as HGETALL returns it from the Lua scripts: `cjson.encode` of a flat field/value array. */
function hgetall(fields: readonly (readonly [string, string])[]): string {
  return cjsonEncode(fields.flatMap(([name, value]) => [name, value]));
}

/**
 * The alert of endpointGroup after alertFold-11 opened it with one rule's detection and folded in
 * 11 more of two rules, escalating it to high at the 10th. Lists the scripts re-encode are
 * cjson's; `key` is the ARGV JSON, kept as it came.
 */
function escalatedFields(changes: Record<string, string> = {}): (readonly [string, string])[] {
  const fields: [string, string][] = [
    ['id', 'alert-0123456789abcdef01234567'],
    ['status', 'open'],
    ['rank', '2'],
    ['base', '1'],
    ['count', '12'],
    ['suppressed', '10'],
    ['first', String(FIRST)],
    ['last', String(LAST)],
    ['revision', '12'],
    ['title', 'Latency surge on an endpoint: invocation.resource.api accounts-v1 and route /v1/login'],
    ['key', JSON.stringify(endpoint)],
    ['group', endpointGroup],
    ['rules', cjsonEncode(['latency-surge-per-endpoint', 'error-surge-per-endpoint'])],
    ['names', cjsonEncode(['Latency surge on an endpoint', 'Server error surge on an endpoint (5xx/total)'])],
    ['tags', cjsonEncode(['T1499', 'availability'])],
    ['detections', cjsonEncode(['det-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'det-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'])],
  ];
  return fields.map(([name, value]) => [name, changes[name] ?? value] as const);
}

const REASON = 'invocation.resource.api accounts-v1 and route /v1/login: 2435 p95 invocation.latencyMs in the current 1m, 46.1× the baseline of 53; fires at 4×.';

/** A valid alert (through the schema, so nothing invalid slips in). */
function alert(changes: Partial<Alert> = {}): Alert {
  return alertSchema.parse({
    id: 'alert-0123456789abcdef01234567',
    status: 'open',
    severity: 'high',
    groupKey: endpointGroup,
    key: endpoint,
    title: 'Request flood on an endpoint from few sources: invocation.resource.api accounts-v1 and route /v1/login',
    reason: REASON,
    rules: ['request-flood-per-endpoint', 'latency-surge-per-endpoint'],
    ruleNames: ['Request flood on an endpoint from few sources', 'Latency surge on an endpoint'],
    tags: ['T1498', 'T1499.002', 'dos'],
    count: 12,
    suppressed: 10,
    firstSeen: new Date(FIRST).toISOString(),
    lastSeen: new Date(LAST).toISOString(),
    detections: ['det-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'det-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'],
    revision: 12,
    ...changes,
  });
}

describe('groupKeyOf', () => {
  it('is the key fields sorted by name, so the order of groupBy does not split a group', () => {
    const reversed = { 'invocation.route': '/v1/login', 'invocation.resource.api': 'accounts-v1' };
    expect(groupKeyOf({ key: reversed, ruleId: 'request-flood-per-endpoint', id: 'det-1' })).toBe(endpointGroup);
    expect(groupKeyOf({ key: endpoint, ruleId: 'request-flood-per-endpoint', id: 'det-1' })).toBe(endpointGroup);
    expect(groupKeyOf({ key: { 'client.ip': '81.2.69.142', 'actor.userId': 'u-17' }, ruleId: 'r', id: 'd' })).toBe('actor.userId=u-17,client.ip=81.2.69.142');
  });

  it('groups detections of different rules on the same key together, and different keys apart', () => {
    const flood = groupKeyOf({ key: endpoint, ruleId: 'request-flood-per-endpoint', id: 'det-1' });
    const errors = groupKeyOf({ key: { ...endpoint }, ruleId: 'error-surge-per-endpoint', id: 'det-2' });
    const otherRoute = groupKeyOf({ key: { ...endpoint, 'invocation.route': '/v1/logout' }, ruleId: 'request-flood-per-endpoint', id: 'det-1' });
    expect(errors).toBe(flood);
    expect(otherRoute).not.toBe(flood);
  });

  it('groups a detection without a key by its rule and its own id (never with another keyless one)', () => {
    expect(groupKeyOf({ key: {}, ruleId: 'json-threat-violation', id: 'det-0123' })).toBe('rule=json-threat-violation,detection=det-0123');
    const first = groupKeyOf({ key: {}, ruleId: 'json-threat-violation', id: 'det-0001' });
    const second = groupKeyOf({ key: {}, ruleId: 'json-threat-violation', id: 'det-0002' });
    const otherRule = groupKeyOf({ key: {}, ruleId: 'xml-threat-violation', id: 'det-0001' });
    expect(new Set([first, second, otherRule]).size).toBe(3);
  });
});

describe('the grouping policy', () => {
  it('ranks severities in the order of SEVERITIES, as the Lua scripts count them', () => {
    expect(SEVERITY_RANK).toStrictEqual({ low: 0, medium: 1, high: 2, critical: 3 });
    expect(SEVERITIES.map((severity) => severityOfRank(SEVERITY_RANK[severity]))).toStrictEqual([...SEVERITIES]);
    expect([-1, 4, Number.NaN].map(severityOfRank)).toStrictEqual(['low', 'critical', 'low']);
  });

  it('folds a rule that explains others at the start of its window, every other detection at its event time', () => {
    const detection = { time: '2024-05-01T10:00:40.000Z', detectedAt: '2024-05-01T10:00:41.000Z', window: { start: '2024-05-01T10:00:00.000Z', end: '2024-05-01T10:01:00.000Z', durationMs: 60_000 } };
    expect(orderTimeOf(detection, true)).toBe(Date.parse('2024-05-01T10:00:00.000Z'));
    expect(orderTimeOf(detection, false)).toBe(Date.parse('2024-05-01T10:00:40.000Z'));
  });

  it('folds a detection decided after its time (a surge judged once its bucket closed) when it was decided, explaining or not', () => {
    const judged = { time: '2024-05-01T10:00:59.000Z', judgedAt: '2024-05-01T10:06:00.000Z', detectedAt: '2024-05-01T10:06:00.100Z', window: { start: '2024-05-01T10:00:00.000Z', end: '2024-05-01T10:00:59.000Z', durationMs: 59_000 } };
    expect(orderTimeOf(judged, true)).toBe(Date.parse('2024-05-01T10:06:00.000Z'));
    expect(orderTimeOf(judged, false)).toBe(Date.parse('2024-05-01T10:06:00.000Z'));
  });

  it("takes a detection's time at most a minute after it was made: a producer's clock a day ahead can't move the alerter's", () => {
    const window = { start: '2024-05-01T10:00:00.000Z', end: '2024-05-01T10:01:00.000Z', durationMs: 60_000 };
    const detectedAt = '2024-05-01T10:00:00.000Z';
    // A clock a little ahead: taken as it is.
    expect(eventTimeOf({ time: '2024-05-01T10:00:30.000Z', detectedAt })).toBe(Date.parse('2024-05-01T10:00:30.000Z'));
    expect(orderTimeOf({ time: '2024-05-01T10:00:59.000Z', detectedAt, window }, false)).toBe(Date.parse('2024-05-01T10:00:59.000Z'));
    // A day ahead: a minute after it was made, as its fold time; a judged one likewise.
    expect(eventTimeOf({ time: '2024-05-02T10:00:00.000Z', detectedAt })).toBe(Date.parse('2024-05-01T10:01:00.000Z'));
    expect(orderTimeOf({ time: '2024-05-02T10:00:00.000Z', detectedAt, window }, false)).toBe(Date.parse('2024-05-01T10:01:00.000Z'));
    expect(orderTimeOf({ time: '2024-05-02T10:00:00.000Z', judgedAt: '2024-05-02T10:05:00.000Z', detectedAt, window }, true)).toBe(Date.parse('2024-05-01T10:01:00.000Z'));
  });

  it('pages a change only while its incident ended within the paging age, in event time', () => {
    const now = Date.parse('2024-05-01T12:00:00.000Z');
    expect(isPaged({ lastSeen: '2024-05-01T11:00:00.000Z' }, now, 3_600_000)).toBe(true);
    expect(isPaged({ lastSeen: '2024-05-01T10:59:59.999Z' }, now, 3_600_000)).toBe(false);
    // A resolved incident ended at its resolve (last + quiet).
    expect(isPaged({ lastSeen: '2024-05-01T10:50:00.000Z', resolvedAt: '2024-05-01T11:05:00.000Z' }, now, 3_600_000)).toBe(true);
  });

  it('reads the inhibition setting: default, off, or rules, and names what is wrong', () => {
    expect(parseInhibition('default')).toBe(DEFAULT_INHIBITION);
    expect(parseInhibition(' off ')).toEqual([]);
    expect(parseInhibition('[{"sources":["flood"],"targets":["stuffing","failures"]}]')).toEqual([{ sources: ['flood'], targets: ['stuffing', 'failures'] }]);
    expect(() => parseInhibition('{nope')).toThrow(/VIGIL_ALERT_INHIBITION: .*not JSON/);
    // A configuration error like the others: `vigil run` exits with 2 (1 asks a supervisor to restart it).
    expect(() => parseInhibition('xyz')).toThrow(ConfigError);
    expect(() => parseInhibition('[{"sources":[],"targets":["a"]}]')).toThrow(/VIGIL_ALERT_INHIBITION: 0\.sources: /);
    expect(() => parseInhibition('[{"sources":["a"],"targets":["a"]}]')).toThrow(/can't explain itself \(a\)/);
    const lookup = inhibitionIndex(DEFAULT_INHIBITION);
    expect(lookup('request-flood-per-endpoint')).toEqual({ explains: true, explainedBy: [] });
    // Not the latency surge: a client raises latency cheaply, and it would hide a stuffing on the endpoint.
    expect(lookup('credential-stuffing').explainedBy).toEqual(['distributed-flood-per-endpoint', 'error-surge-per-endpoint', 'request-flood-per-endpoint']);
    expect(lookup('impossible-travel')).toEqual({ explains: false, explainedBy: [] });
  });

  it('finds the endpoint group of a scope as the endpoint rules key it, and a campaign group per rule', () => {
    expect(endpointGroupOf({ api: 'accounts-v1', route: '/v1/login' })).toBe('invocation.resource.api=accounts-v1,invocation.route=/v1/login');
    expect(endpointGroupOf(undefined)).toBeUndefined();
    expect(campaignGroupOf('credential-stuffing')).toBe('campaign:rule=credential-stuffing');
  });

  it('sums up evidence: totals, per rule and per entity kind, the top entities, and a sentence', () => {
    const flat = ['total', '812', 'r:credential-stuffing', '800', 'r:authn-failures-per-user', '12', 'd:det-1', '1'];
    for (let n = 0; n < 800; n++) flat.push(`e:client.ip=10.0.${Math.floor(n / 256)}.${n % 256}`, n === 7 ? '3' : '1');
    for (let n = 0; n < 12; n++) flat.push(`e:actor.userId=u-${n}`, '1');
    const evidence = evidenceOf(flat, false);
    expect(evidence).toMatchObject({
      total: 812,
      entities: 812,
      rules: [
        { rule: 'credential-stuffing', count: 800 },
        { rule: 'authn-failures-per-user', count: 12 },
      ],
      summary: 'Absorbed 812 detections (credential-stuffing 800, authn-failures-per-user 12) from 800 IPs, 12 users.',
    });
    expect(evidence?.top).toHaveLength(10);
    expect(evidence?.top[0]).toEqual({ entity: 'client.ip=10.0.0.7', count: 3 });
    expect(evidenceOf(['total', '0'], false)).toBeUndefined();
    expect(evidenceOf(['total', '1', 'r:x', '1', 'e:client.ip=1.2.3.4', '1'], true)?.summary).toBe('Folded 1 detection (x 1) from 1 IP.');
    // Past the entities an evidence hash lists, their detections are counted together (`e+`); `n` counts those listed.
    const bounded = evidenceOf(['total', '9', 'r:x', '9', 'n', '2', 'e:client.ip=1.2.3.4', '3', 'e:client.ip=1.2.3.5', '1', 'e+', '5', 'd:a', '1'], true);
    expect(bounded).toMatchObject({ total: 9, entities: 2, summary: 'Folded 9 detections (x 9) from 2 IPs, and 5 more from keys past the first 2 listed.' });
  });
});

describe('namedGroupsOf (incident linking)', () => {
  it('gives the group keys of the entities a detection names besides its own, sorted, without its own', () => {
    const takeover = { key: { 'client.ip': '203.0.113.9' }, ruleId: 'account-takeover-sequence', id: 'det-1' };
    expect(namedGroupsOf({ ...takeover, entities: { 'actor.userId': 'u-17' } })).toStrictEqual(['actor.userId=u-17']);
    expect(namedGroupsOf({ ...takeover, entities: { 'client.ip': '203.0.113.9', 'actor.userId': 'u-17' } })).toStrictEqual(['actor.userId=u-17']);
    expect(namedGroupsOf(takeover)).toStrictEqual([]);
  });
});

describe('alertFromFields', () => {
  it('reads the flat HGETALL array of an escalated alert, whatever the escaping of "/"', () => {
    const json = hgetall(escalatedFields());
    // Escaped once in the hash fields, and once more in the lists cjson encoded inside the script.
    expect(json).toContain('route \\/v1\\/login');
    expect(json).toContain('(5xx\\\\\\/total)');
    const parsed = alertFromFields(json, REASON);
    expect(parsed).toStrictEqual({
      id: 'alert-0123456789abcdef01234567',
      status: 'open',
      severity: 'high',
      groupKey: endpointGroup,
      key: endpoint,
      title: 'Latency surge on an endpoint: invocation.resource.api accounts-v1 and route /v1/login',
      reason: REASON,
      rules: ['latency-surge-per-endpoint', 'error-surge-per-endpoint'],
      ruleNames: ['Latency surge on an endpoint', 'Server error surge on an endpoint (5xx/total)'],
      tags: ['T1499', 'availability'],
      count: 12,
      suppressed: 10,
      firstSeen: '2024-05-01T10:30:00.250Z',
      lastSeen: '2024-05-01T10:34:00.250Z',
      detections: ['det-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'det-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'],
      revision: 12,
    });
    expect(alertSchema.parse(parsed)).toStrictEqual(parsed);
  });

  it('reads the field order Redis happens to return, not a fixed one', () => {
    const shuffled = [...escalatedFields()].reverse();
    expect(alertFromFields(hgetall(shuffled), REASON)).toStrictEqual(alertFromFields(hgetall(escalatedFields()), REASON));
  });

  it('reads tags that cjson re-encoded from an empty table as an object, {}, as no tags', () => {
    // alertFold decodes "[]" into an empty Lua table, and cjson encodes an empty table as {}.
    const parsed = alertFromFields(hgetall(escalatedFields({ tags: '{}' })), REASON);
    expect(parsed.tags).toStrictEqual([]);
    expect(alertSchema.safeParse(parsed).success).toBe(true);
  });

  it('reads an empty key ({}) as an empty key, and a key that is not an object as none', () => {
    expect(alertFromFields(hgetall(escalatedFields({ key: '{}' })), REASON).key).toStrictEqual({});
    expect(alertFromFields(hgetall(escalatedFields({ key: '["a"]' })), REASON).key).toStrictEqual({});
    expect(alertFromFields(hgetall(escalatedFields({ key: 'not json' })), REASON).key).toStrictEqual({});
  });

  it('maps the rank to the severity, capped at critical', () => {
    const severityOf = (rank: string): string => alertFromFields(hgetall(escalatedFields({ rank })), REASON).severity;
    expect(['0', '1', '2', '3', '4'].map(severityOf)).toStrictEqual(['low', 'medium', 'high', 'critical', 'critical']);
  });

  it('lists the entities of an incident that linked others into it, and none for one about its own key only', () => {
    const linked = alertFromFields(hgetall([...escalatedFields(), ['entities', '["actor.userId=u-17","client.ip=203.0.113.7"]']]), REASON);
    expect(linked.entities).toStrictEqual(['actor.userId=u-17', 'client.ip=203.0.113.7']);
    expect(alertSchema.parse(linked)).toStrictEqual(linked);
    expect(alertFromFields(hgetall([...escalatedFields(), ['entities', JSON.stringify([endpointGroup])]]), REASON)).not.toHaveProperty('entities');
    expect(alertFromFields(hgetall(escalatedFields()), REASON)).not.toHaveProperty('entities');
  });

  it('reads a resolved alert with its resolution time, and an open one without', () => {
    const resolved = alertFromFields(hgetall([...escalatedFields({ status: 'resolved', revision: '13' }), ['resolved', String(RESOLVED)]]), 'Quiet for 300s: resolved.');
    expect(resolved).toMatchObject({ status: 'resolved', resolvedAt: '2024-05-01T10:39:00.250Z', revision: 13, reason: 'Quiet for 300s: resolved.' });
    expect(alertSchema.parse(resolved)).toStrictEqual(resolved);
    expect(alertFromFields(hgetall(escalatedFields()), REASON)).not.toHaveProperty('resolvedAt');
  });
});

describe('toAlertDocument: Kibana alert fields', () => {
  it('writes an open alert as active, with its duration so far in microseconds and no end', () => {
    expect(toAlertDocument(alert())).toStrictEqual({
      '@timestamp': '2024-05-01T10:34:00.250Z',
      ecs: { version: '9.4.0' },
      message: REASON,
      // ECS: an alert raised outside the Elastic Stack; `signal` is Kibana's own.
      event: { kind: 'alert', module: 'vigil', dataset: 'vigil.alert', severity: SEVERITY_SCORE.high, risk_score: SEVERITY_SCORE.high },
      tags: ['T1498', 'T1499.002', 'dos'],
      kibana: {
        space_ids: ['default'],
        alert: {
          uuid: 'alert-0123456789abcdef01234567',
          status: 'active',
          workflow_status: 'open',
          severity: 'high',
          risk_score: SEVERITY_SCORE.high,
          reason: REASON,
          start: '2024-05-01T10:30:00.250Z',
          last_detected: '2024-05-01T10:34:00.250Z',
          duration: { us: 240_000_000 },
          // Single-valued, as Kibana's field map says: the rule that opened the alert.
          rule: {
            uuid: 'request-flood-per-endpoint',
            name: 'Request flood on an endpoint from few sources',
            category: 'Vigil detection',
            consumer: 'vigil',
            producer: 'vigil',
            revision: 0,
            rule_type_id: 'vigil.detection',
          },
          instance: { id: endpointGroup },
        },
      },
      vigil: {
        alert: {
          title: 'Request flood on an endpoint from few sources: invocation.resource.api accounts-v1 and route /v1/login',
          group_key: endpointGroup,
          key: endpoint,
          count: 12,
          suppressed: 10,
          detections: ['det-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'det-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'],
          revision: 12,
          rules: ['request-flood-per-endpoint', 'latency-surge-per-endpoint'],
          rule_names: ['Request flood on an endpoint from few sources', 'Latency surge on an endpoint'],
        },
      },
    });
  });

  it('writes a resolved alert as recovered, ending and measured at its resolution', () => {
    const document = toAlertDocument(alert({ status: 'resolved', resolvedAt: new Date(RESOLVED).toISOString(), revision: 13, reason: 'Quiet for 300s: resolved.' }));
    expect(document.message).toBe('Quiet for 300s: resolved.');
    expect(document.kibana).toStrictEqual({
      space_ids: ['default'],
      alert: expect.objectContaining({
        // Kibana's reason is why the alert was active, not the resolve line: the title says it.
        reason: 'Request flood on an endpoint from few sources: invocation.resource.api accounts-v1 and route /v1/login',
        status: 'recovered',
        start: '2024-05-01T10:30:00.250Z',
        end: '2024-05-01T10:39:00.250Z',
        last_detected: '2024-05-01T10:34:00.250Z',
        duration: { us: 540_000_000 },
      }) as unknown,
    });
    expect(document['@timestamp']).toBe('2024-05-01T10:34:00.250Z');
    expect(document.vigil).toMatchObject({ alert: { revision: 13 } });
  });

  it('never writes a negative duration (first and last times come from different alerter clocks)', () => {
    const document = toAlertDocument(alert({ firstSeen: new Date(LAST + 1).toISOString() }));
    expect(document.kibana).toMatchObject({ alert: { duration: { us: 0 } } });
  });

  it('scores the severity on the ECS 0-100 scale', () => {
    const scoreOf = (severity: Alert['severity']): unknown => {
      const event = toAlertDocument(alert({ severity })).event;
      return isRecord(event) ? event.severity : undefined;
    };
    expect((['low', 'medium', 'high', 'critical'] as const).map(scoreOf)).toStrictEqual([21, 47, 73, 99]);
  });

  it('is the document of the alert the Lua scripts return, unchanged by a JSON round trip', () => {
    const parsed = alertFromFields(hgetall(escalatedFields({ tags: '{}' })), REASON);
    const document = toAlertDocument(parsed);
    expect(JSON.parse(JSON.stringify(document))).toStrictEqual(document);
    expect(document.kibana).toMatchObject({ alert: { uuid: parsed.id, instance: { id: endpointGroup }, rule: { uuid: parsed.rules[0], name: parsed.ruleNames[0] } } });
    expect(document.vigil).toMatchObject({ alert: { rules: parsed.rules, rule_names: parsed.ruleNames } });
    expect(document.tags).toStrictEqual([]);
  });
});

describe('toAlertDocument: every field is in alertMappings', () => {
  const checker = mappingChecker(alertMappings);

  /** One alert of each shape the alerter writes. */
  const examples: Record<string, Alert> = {
    open: alert(),
    resolved: alert({ status: 'resolved', resolvedAt: new Date(RESOLVED).toISOString(), severity: 'critical', revision: 13 }),
    keyless: alert({ key: {}, groupKey: 'rule=json-threat-violation,detection=det-0123', tags: [], rules: ['json-threat-violation'], ruleNames: ['JSON threat'] }),
    fromRedis: alertFromFields(hgetall(escalatedFields({ tags: '{}' })), REASON),
    resolvedFromRedis: alertFromFields(hgetall([...escalatedFields({ status: 'resolved' }), ['resolved', String(RESOLVED)]]), 'Quiet for 300s: resolved.'),
    // A flood that absorbed per-IP detections, and a campaign of the storm guard (evidence from Redis).
    absorbing: alertFromFields(hgetall(escalatedFields()), REASON, ['total', '3', 'r:credential-stuffing', '3', 'e:client.ip=203.0.113.7', '2', 'e:client.ip=203.0.113.8', '1']),
    campaign: alertFromFields(hgetall([...escalatedFields(), ['campaign', '1']]), REASON, ['total', '2', 'r:credential-stuffing', '2', 'e:client.ip=203.0.113.9', '2']),
    // An incident that linked a takeover's IP to its victim.
    linked: alertFromFields(hgetall([...escalatedFields(), ['entities', '["actor.userId=u-17","client.ip=203.0.113.7"]']]), REASON),
    // A flood that absorbed detections, resolved since: its message is the resolve line and the evidence sentence.
    absorbingResolved: alertFromFields(hgetall([...escalatedFields({ status: 'resolved' }), ['resolved', String(RESOLVED)]]), 'Quiet for 300s: resolved.', ['total', '3', 'r:credential-stuffing', '3', 'e:client.ip=203.0.113.7', '3']),
    // An alert two silences held back (alertSilence-2 recorded them on its hash).
    silenced: alertFromFields(hgetall([...escalatedFields({ status: 'resolved' }), ['resolved', String(RESOLVED)], ['silenced', '["5d0c7c4e-0000-4000-8000-000000000001","5d0c7c4e-0000-4000-8000-000000000002"]']]), 'Quiet for 300s: resolved.'),
  };

  it.each(Object.keys(examples))('reads the %s alert back from its document, field for field (fromAlertDocument)', (name) => {
    const example = examples[name];
    if (example === undefined) throw new Error(name);
    expect(fromAlertDocument(JSON.parse(JSON.stringify(toAlertDocument(example))))).toStrictEqual({ alert: example });
  });

  it('names what is wrong with a document that is not an alert, and takes it for none', () => {
    const document = toAlertDocument(alert()) as { vigil: { alert: Record<string, unknown> } };
    delete document.vigil.alert.revision;
    expect(fromAlertDocument(document)).toStrictEqual({ problem: 'not an alert document: vigil.alert.revision: Invalid input: expected number, received undefined' });
    expect(fromAlertDocument('text')).toStrictEqual({ problem: 'not an alert document: (top): Invalid input: expected object, received string' });
  });

  it.each(Object.keys(examples))('maps every field of the %s alert, with a value of its type', (name) => {
    const example = examples[name];
    if (example === undefined) throw new Error(name);
    expect(checker.problems(toAlertDocument(example))).toStrictEqual([]);
  });

  it('covers every mapped field with the examples (the walk is not vacuous, and no mapping is dead)', () => {
    const seen = new Set<string>();
    for (const example of Object.values(examples)) checker.problems(toAlertDocument(example), seen);
    const declared = checker.leaves();
    expect(declared.length).toBeGreaterThan(20);
    expect(declared.filter((path) => !seen.has(path))).toStrictEqual([]);
    expect([...seen]).toEqual(
      expect.arrayContaining(['kibana.alert.end', 'kibana.alert.duration.us', 'kibana.alert.rule.uuid', 'vigil.alert.key.invocation.resource.api', 'vigil.alert.key.invocation.route']),
    );
  });

  // A search on a user or an address across events, detections and alerts found no alert.
  it('relates the users and addresses of its key and of the entities it linked (ECS related.*), and none of an endpoint incident', () => {
    const linked = examples.linked ?? alert();
    expect(toAlertDocument(linked).related).toStrictEqual({ ip: ['203.0.113.7'], user: ['u-17'] });
    const perIp = alert({ key: { 'client.ip': '2001:db8::7' }, groupKey: 'client.ip=2001:db8::7', entities: ['actor.userId=u-9', 'client.ip=not-an-address', 'device.ip=198.51.100.4'] });
    expect(toAlertDocument(perIp).related).toStrictEqual({ ip: ['2001:db8::7', '198.51.100.4'], user: ['u-9'] });
    expect(toAlertDocument(alert())).not.toHaveProperty('related');
  });

  it('finds a field that is not mapped, and a value of the wrong type (the walk can fail)', () => {
    const document = toAlertDocument(alert());
    const kibana = document.kibana as { alert: Record<string, unknown> };
    const wrong = { ...document, extra: 1, kibana: { alert: { ...kibana.alert, duration: { us: 1.5 }, start: 'yesterday', flapping: false } } };
    expect(checker.problems(wrong)).toStrictEqual([
      'kibana.alert.start: "yesterday" does not fit a date',
      'kibana.alert.duration.us: 1.5 does not fit a long',
      'kibana.alert.flapping: not in the mapping',
      'extra: not in the mapping',
    ]);
    expect(checker.problems({ vigil: { alert: { key: { 'actor.userId': 17 } } } })).toStrictEqual([
      'vigil.alert.key.actor.userId: only text is expected under a dynamic object',
    ]);
  });

  it('would catch a key template that also captures the objects of dotted key fields', () => {
    const loose = checker.templates.map(({ matchMappingType: _matchMappingType, ...template }) => template);
    expect(checker.problems(toAlertDocument(alert()), new Set(), loose)).toStrictEqual([
      'vigil.alert.key.invocation: an object, mapped as keyword by key_as_keywords',
      'vigil.alert.key.invocation.resource: an object, mapped as keyword by key_as_keywords',
      'vigil.alert.key.invocation: an object, mapped as keyword by key_as_keywords',
    ]);
  });

  it('is what the mapping says of unknown fields: strict at the root, dynamic only under the key', () => {
    expect(alertMappings.dynamic).toBe('strict');
    expect(alertMappings.properties.vigil.properties.alert.properties.key).toStrictEqual({ type: 'object', dynamic: true });
  });
});
