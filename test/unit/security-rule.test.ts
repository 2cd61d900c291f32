import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toDetectionDocument } from '../../detectors';
import { SEVERITY_SCORE, detectionIndexNames, detectionMappings, detectionSchema } from '../../schemas';
import { mappedFields } from '../support/ecs';
import { isRecord } from '../support/mapping';

/**
 * The External Alerts rule copy shipped for Kibana's Security app (an ndjson rule export, the
 * format Security > Rules > Import takes), checked offline against the detections template
 * and the documents Vigil writes: every field it reads is mapped with the type it expects,
 * and its query selects a detection.
 */
const FILE = join(__dirname, '..', '..', 'dashboards', 'security', 'vigil-external-alerts-rule.ndjson');
const lines = readFileSync(FILE, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
const rule = lines[0] ?? {};
const mapped = new Map(mappedFields(detectionMappings.properties).map((field) => [field.path, field.type]));

const detection = detectionSchema.parse({
  id: 'det-0123456789abcdef0123456789abcdef',
  ruleId: 'authn-failures-per-user',
  ruleVersion: 1,
  ruleName: 'Repeated authentication failures for one user',
  ruleType: 'threshold',
  severity: 'high',
  tags: ['T1110'],
  reasonCode: 'threshold_reached',
  reason: '10 failed logins for user u-17 from 1 IP in 45s; threshold 10 in 5m.',
  key: { 'actor.userId': 'u-17' },
  observedValue: 10,
  window: { start: '2024-05-01T10:25:00.000Z', end: '2024-05-01T10:30:00.000Z', durationMs: 300_000 },
  eventIds: ['evt-0001-aaaa'],
  time: '2024-05-01T10:30:00.000Z',
  detectedAt: '2024-05-01T10:30:01.000Z',
});
const document = toDetectionDocument(detection, new Date('2024-05-01T10:30:02.000Z'));
const valueAt = (path: string): unknown => path.split('.').reduce<unknown>((node, part) => (isRecord(node) ? node[part] : undefined), document);

/** The `field:value` terms of a KQL query made only of them joined by `and`. */
function terms(query: string): [string, string][] {
  return query.split(/\s+and\s+/).map((term) => {
    const match = /^([\w.@]+):([\w.-]+)$/.exec(term.trim());
    if (!match?.[1] || !match[2]) throw new Error(`not a field:value term: ${term}`);
    return [match[1], match[2]];
  });
}

describe('the External Alerts rule copy for the Security app (dashboards/security)', () => {
  it('is a Kibana rule export: one query rule, then the export summary', () => {
    expect(lines).toHaveLength(2);
    expect(rule).toMatchObject({ type: 'query', language: 'kuery', rule_id: 'vigil-external-alerts', enabled: false });
    expect(lines[1]).toMatchObject({ exported_count: 1, exported_rules_count: 1, missing_rules_count: 0 });
  });

  it("reads Vigil's detections indices and nothing else", () => {
    expect(rule.index).toStrictEqual([detectionIndexNames('vigil').pattern]);
  });

  it('queries only mapped keyword fields, and its query selects a detection document', () => {
    const query = terms(String(rule.query));
    expect(query.length).toBeGreaterThan(0);
    for (const [field, value] of query) {
      expect([field, mapped.get(field)]).toStrictEqual([field, 'keyword']);
      expect([field, valueAt(field)]).toStrictEqual([field, value]);
    }
  });

  it('takes its name, time, risk score and severity from fields the detections carry, with their types', () => {
    expect([rule.rule_name_override, mapped.get(String(rule.rule_name_override))]).toStrictEqual(['message', 'text']);
    expect([rule.timestamp_override, mapped.get(String(rule.timestamp_override))]).toStrictEqual(['event.ingested', 'date']);
    expect(valueAt('event.ingested')).toBe('2024-05-01T10:30:02.000Z');
    const risk = rule.risk_score_mapping as { field: string }[];
    expect(risk.map((entry) => [entry.field, mapped.get(entry.field)])).toStrictEqual([['event.risk_score', 'float']]);
    expect(valueAt('event.risk_score')).toBe(SEVERITY_SCORE.high);
    const severities = rule.severity_mapping as { field: string; severity: string; value: string }[];
    expect(severities.map((entry) => [entry.field, entry.severity, Number(entry.value)])).toStrictEqual(
      Object.entries(SEVERITY_SCORE).map(([severity, score]) => ['event.severity', severity, score]),
    );
    expect(mapped.get('event.severity')).toBe('long');
  });

  it('lists as required the fields it reads, with the types the template maps', () => {
    const required = rule.required_fields as { name: string; type: string }[];
    expect(required.filter((field) => mapped.get(field.name) !== field.type)).toStrictEqual([]);
    expect(required.map((field) => field.name)).toEqual(expect.arrayContaining(['event.kind', 'event.ingested', 'event.risk_score', 'event.severity', 'message']));
  });
});
