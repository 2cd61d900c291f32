import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toPipelineMetricDocument, type PipelineCounter } from '../../app';
import { DEFAULT_RULES_PATH, loadRuleSet, toAlertDocument, toDetectionDocument } from '../../detectors';
import { enrich, toEventDocument, type GeoLookup } from '../../ingest';
import {
  ECS_VERSION,
  POLICY_KINDS,
  alertMappings,
  alertSchema,
  detectionMappings,
  detectionSchema,
  eventMappings,
  familySchemas,
  pipelineMappings,
  type Detection,
} from '../../schemas';
import { ECS, ECS_PACKAGE_VERSION, documentPaths, ecsCategorizationProblems, ecsMappingProblems, mappedFields, NOT_ECS, renderEcsFieldTable, replaceEcsFieldTable } from '../support/ecs';
import { isRecord } from '../support/mapping';
import { deviceEvent, invocationEvent, kafkaPosition, policyEvent, withField } from './fixtures';

const TEMPLATES = { events: eventMappings, detections: detectionMappings, alerts: alertMappings, pipeline: pipelineMappings } as const;

const lookup: GeoLookup = () => ({
  geo: { country_iso_code: 'GB', city_name: 'London', region_iso_code: 'GB-ENG', location: { lat: 51.5, lon: -0.12 } },
  accuracyKm: 50,
  database: { name: 'GeoLite2-City', build: new Date('2026-06-02T14:07:11Z') },
});
const position = kafkaPosition();
const ingestedAt = new Date('2024-05-01T10:31:02.500Z');

/** Every event document the builder can categorize differently: all policy kinds × outcomes, every status class, every device action. */
function eventDocuments(): [string, Record<string, unknown>][] {
  const documents: [string, Record<string, unknown>][] = [];
  const add = (name: string, input: unknown, family: keyof typeof familySchemas): void => {
    const event = familySchemas[family].parse(input);
    documents.push([name, toEventDocument(event, enrich(event, lookup), position, ingestedAt) as unknown as Record<string, unknown>]);
  };
  for (const kind of POLICY_KINDS) {
    for (const outcome of ['pass', 'fail']) add(`policy ${kind} ${outcome}`, withField(withField(policyEvent(), 'policy.kind', kind), 'policy.outcome', outcome), 'policy');
  }
  for (const status of [200, 302, 404, 503]) add(`invocation ${status}`, withField(invocationEvent(), 'invocation.status', status), 'invocation');
  for (const action of ['login', 'logout', 'session', 'transaction', 'registration', 'password_change', 'other']) {
    add(`device ${action}`, withField(deviceEvent(), 'device.action', action), 'device');
  }
  return documents;
}

/** A detection of every rule of the default pack, keyed as the rule groups. */
function detectionDocuments(): [string, Record<string, unknown>][] {
  const keyValue: Record<string, string> = { 'client.ip': '81.2.69.142', 'actor.userId': 'u-17', 'invocation.resource.path': '/v1/login' };
  return loadRuleSet([DEFAULT_RULES_PATH]).rules.map(({ rule, groupBy }) => {
    const detection: Detection = detectionSchema.parse({
      id: `det-${rule.id}-0000000000`,
      ruleId: rule.id,
      ruleVersion: rule.version,
      ruleName: rule.name,
      ruleType: rule.type,
      severity: rule.severity,
      tags: rule.tags,
      reasonCode: 'threshold_reached',
      reason: `${rule.name}.`,
      key: Object.fromEntries(groupBy.map((field) => [field, keyValue[field] ?? 'value'])),
      observedValue: 10,
      window: { start: '2024-05-01T10:25:00.000Z', end: '2024-05-01T10:30:00.000Z', durationMs: 300_000 },
      eventIds: ['evt-0001-aaaa'],
      time: '2024-05-01T10:30:00.000Z',
      detectedAt: '2024-05-01T10:30:01.000Z',
    });
    return [`detection ${rule.id}`, toDetectionDocument(detection, ingestedAt)];
  });
}

function alertDocuments(): [string, Record<string, unknown>][] {
  const alert = alertSchema.parse({
    id: 'alert-0123456789abcdef01234567',
    status: 'open',
    severity: 'high',
    groupKey: 'actor.userId=u-17',
    key: { 'actor.userId': 'u-17' },
    title: 'Repeated authentication failures for one user: actor.userId u-17',
    reason: '10 failed logins for user u-17.',
    rules: ['authn-failures-per-user', 'credential-stuffing'],
    ruleNames: ['Repeated authentication failures for one user', 'Credential stuffing from one IP'],
    tags: ['T1110'],
    count: 2,
    suppressed: 1,
    firstSeen: '2024-05-01T10:30:00.000Z',
    lastSeen: '2024-05-01T10:31:00.000Z',
    detections: ['det-1', 'det-2'],
    revision: 2,
  });
  return [
    ['alert open', toAlertDocument(alert)],
    ['alert resolved', toAlertDocument({ ...alert, status: 'resolved', resolvedAt: '2024-05-01T10:40:00.000Z', reason: 'Quiet for 300s: resolved.' })],
  ];
}

/** A pipeline metric document of every metric, with the labels each has. */
function pipelineDocuments(): [string, Record<string, unknown>][] {
  const counters: PipelineCounter[] = [
    { metric: 'events_in', labels: { family: 'policy' }, total: 12 },
    { metric: 'events_indexed', labels: { family: 'policy' }, total: 10 },
    { metric: 'dead_letters', labels: { reason: 'not_json' }, total: 2 },
    { metric: 'alerts', labels: { change: 'opened' }, total: 1 },
    { metric: 'notifications', labels: { destination: 'on-call', outcome: 'sent' }, total: 1 },
  ];
  const interval = { start: new Date('2024-05-01T10:30:00.000Z'), end: new Date('2024-05-01T10:30:30.000Z') };
  const identity = { instance: 'vigil-0', host: 'node-1', roles: ['ingest', 'alerting'], runId: 'run-1' };
  return counters.map((counter) => [`pipeline ${counter.metric}`, toPipelineMetricDocument(counter, counter.total, interval, identity) as unknown as Record<string, unknown>]);
}

const documents = [...eventDocuments(), ...detectionDocuments(), ...alertDocuments(), ...pipelineDocuments()];

describe('ECS conformance: the oracle is ECS itself (@elastic/ecs EcsFlat)', () => {
  it('writes the ECS version of the package the checks use', () => {
    expect(ECS_VERSION).toBe(ECS_PACKAGE_VERSION);
  });

  it.each(Object.keys(TEMPLATES))('maps every %s field outside vigil.*, labels.*, kibana.* as ECS defines it', (name) => {
    const mappings = TEMPLATES[name as keyof typeof TEMPLATES];
    const walked = mappedFields(mappings.properties).filter((field) => !NOT_ECS.test(field.path));
    expect(walked.length).toBeGreaterThan(name === 'alerts' || name === 'pipeline' ? 5 : 15);
    expect(ecsMappingProblems(mappings.properties)).toStrictEqual([]);
  });

  it('fails a field given a type ECS does not have for it, a field ECS lacks, and a multi-field it does not define', () => {
    const broken = {
      user_agent: { properties: { original: { type: 'text', fields: { keyword: { type: 'keyword' } } } } },
      event: { properties: { reason: { type: 'text' }, severity: { type: 'keyword' } } },
      http: { properties: { request: { properties: { body_bytes: { type: 'long' } } } } },
      vigil: { properties: { anything: { type: 'text' } } },
    };
    expect(ecsMappingProblems(broken)).toStrictEqual([
      'user_agent.original: text, ECS says keyword',
      'user_agent.original.keyword: ECS defines no such multi-field',
      'event.reason: text, ECS says keyword',
      'event.severity: keyword, ECS says long',
      'http.request.body_bytes: not an ECS field',
    ]);
  });

  it('accepts the core types that stand in for the ECS types the core server lacks', () => {
    expect(ecsMappingProblems({ message: { type: 'text' }, url: { properties: { path: { type: 'keyword' } } } })).toStrictEqual([]);
  });

  it.each(documents)('writes only ECS fields outside vigil.*, labels.*, kibana.*, and ecs.version, in the %s document', (_name, document) => {
    const paths = documentPaths(document).filter((path) => !NOT_ECS.test(path));
    expect(paths.filter((path) => ECS[path] === undefined)).toStrictEqual([]);
    expect(document.ecs).toStrictEqual({ version: ECS_VERSION });
  });

  it.each(documents)('categorizes the %s document with values and category-type pairs ECS allows', (_name, document) => {
    expect(ecsCategorizationProblems(document)).toStrictEqual([]);
  });

  it('walks every categorization the builders produce (the check is not vacuous)', () => {
    const pairs = new Set<string>();
    for (const [, document] of documents) {
      const event = isRecord(document.event) ? document.event : {};
      const categories = Array.isArray(event.category) ? event.category : [];
      const types = Array.isArray(event.type) ? event.type : [];
      pairs.add(`${String(event.kind)}:${categories.join('+')}:${types.join('+')}:${String(event.outcome)}`);
    }
    expect([...pairs].sort()).toStrictEqual([
      'alert:::undefined',
      'event:api:allowed:success',
      'event:api:denied:failure',
      'event:authentication:start:failure',
      'event:authentication:start:success',
      'event:intrusion_detection:allowed:success',
      'event:intrusion_detection:denied:failure',
      'event:session:info:unknown',
      'event:web:access:failure',
      'event:web:access:success',
      'metric:::undefined',
    ]);
  });

  it('fails a category with a type ECS does not pair with it, a value ECS lacks, and the reserved kind signal', () => {
    expect(ecsCategorizationProblems({ event: { kind: 'event', category: ['authentication'], type: ['denied'], outcome: 'failure' } })).toStrictEqual([
      'event.category authentication with event.type denied: ECS expects start/end/info',
    ]);
    expect(ecsCategorizationProblems({ event: { kind: 'signal', category: ['gateway'], type: ['access'], outcome: 'denied' } })).toStrictEqual([
      'event.category: gateway is not an ECS value',
      'event.outcome: denied is not an ECS value',
      "event.kind: signal is reserved for alerts of Kibana's alerting framework",
      'event.category gateway with event.type access: ECS expects ',
    ]);
  });
});

/**
 * Kibana's alert field map, as transcribed (names, types, array flags) in the fixture with its
 * source: elastic/kibana main (9.x) at 027ff216065546db312b553bd5287a4012b22f12,
 * kbn-alerts-as-data-utils/src/field_maps/alert_field_map.ts.
 */
const kibana = JSON.parse(readFileSync(join(__dirname, '..', 'support', 'kibana-alert-fields.json'), 'utf8')) as {
  required: string[];
  fields: Record<string, { type: string; array: boolean; multi_fields?: Record<string, string> }>;
};

describe("Kibana's alert fields, as Kibana's alert field map defines them", () => {
  const alertFields = new Map(mappedFields(alertMappings.properties).map((field) => [field.path, field]));

  it.each(alertDocuments())('the %s document has every field Kibana requires', (_name, document) => {
    const paths = new Set(documentPaths(document));
    expect(kibana.required.filter((name) => !paths.has(name))).toStrictEqual([]);
  });

  it.each(alertDocuments())('the %s document holds one value in every field Kibana marks single-valued', (_name, document) => {
    const valueAt = (path: string): unknown => path.split('.').reduce<unknown>((node, part) => (isRecord(node) ? node[part] : undefined), document);
    const single = Object.entries(kibana.fields).filter(([, field]) => !field.array);
    expect(single.filter(([name]) => Array.isArray(valueAt(name))).map(([name]) => name)).toStrictEqual([]);
    expect(single.map(([name]) => name)).toEqual(expect.arrayContaining(['kibana.alert.rule.uuid', 'kibana.alert.rule.name', 'kibana.alert.reason', 'kibana.alert.risk_score']));
  });

  it('maps every kibana.* field Vigil writes with the type Kibana gives it, and no kibana.* field Kibana does not define', () => {
    const ours = [...alertFields.values()].filter((field) => field.path.startsWith('kibana.'));
    expect(ours.length).toBeGreaterThan(15);
    const problems = ours.flatMap((field) => {
      const theirs = kibana.fields[field.path];
      if (!theirs) return [`${field.path}: not in the fixture of Kibana's field map`];
      const multi = Object.entries(field.multiFields).filter(([name, type]) => {
        const expected = theirs.multi_fields?.[name];
        return expected === undefined || !(expected === type || (expected === 'match_only_text' && type === 'text'));
      });
      return [...(theirs.type === field.type ? [] : [`${field.path}: ${field.type}, Kibana says ${theirs.type}`]), ...multi.map(([name]) => `${field.path}.${name}: not Kibana's`)];
    });
    expect(problems).toStrictEqual([]);
  });
});

describe('docs/events.md lists every ECS field Vigil writes with its ECS definition', () => {
  it('has the table generated from ECS and the templates (run npm run ecs:docs)', () => {
    const page = readFileSync(join(__dirname, '..', '..', 'docs', 'events.md'), 'utf8');
    const table = renderEcsFieldTable(TEMPLATES);
    expect(replaceEcsFieldTable(page, table)).toBe(page);
    expect(table).toContain('| `user_agent.original` | extended, keyword | keyword, `.text` text | events |');
  });
});
