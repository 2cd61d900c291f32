import {
  ALERT_RETYPED_FIELDS,
  EVENT_RETYPED_FIELDS,
  FAMILIES,
  TEMPLATE_VERSION,
  canonicalIp,
  unmappedIpv4,
  alertMappings,
  alertTemplate,
  describeIssues,
  detectionTemplate,
  mappingsForExistingIndices,
  eventIndexName,
  eventMappings,
  eventSchema,
  eventTemplates,
  exportJsonSchemas,
  familySchemas,
  indexNames,
  type Family,
} from '../../schemas';
import { deviceEvent, invocationEvent, minimalEvents, policyEvent, withField } from './fixtures';

/** The issues of a value the schema must refuse, as `describeIssues` words them. */
function issuesOf(value: unknown): string[] {
  const result = eventSchema.safeParse(value);
  if (result.success) throw new Error(`expected ${JSON.stringify(value)} to be refused`);
  return describeIssues(result.error);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const validExamples: Record<Family, () => object> = {
  policy: policyEvent,
  invocation: invocationEvent,
  device: deviceEvent,
};

describe('eventSchema and familySchemas', () => {
  it.each(FAMILIES)('accepts a complete %s event through both the union and its family schema', (family) => {
    const example = validExamples[family]();
    const viaUnion = eventSchema.safeParse(example);
    const viaFamily = familySchemas[family].safeParse(example);
    expect(viaUnion.success).toBe(true);
    expect(viaFamily.success).toBe(true);
    expect(viaUnion.data?.family).toBe(family);
    expect(viaUnion.data).toStrictEqual(viaFamily.data);
  });

  it.each(FAMILIES)('accepts a minimal %s event and fills the defaults', (family) => {
    const parsed = eventSchema.parse(minimalEvents()[family]);
    expect(parsed.correlation).toStrictEqual({});
    expect(parsed.actor).toStrictEqual({});
    expect(parsed.client).toStrictEqual({});
    if (parsed.family === 'invocation') {
      // Unknown body sizes stay absent: 0 would claim an empty body.
      expect(parsed.invocation).not.toHaveProperty('bytesIn');
      expect(parsed.invocation).not.toHaveProperty('bytesOut');
    }
  });

  it('refuses an event of one family through the schema of another', () => {
    expect(familySchemas.invocation.safeParse(policyEvent()).success).toBe(false);
    expect(familySchemas.device.safeParse(invocationEvent()).success).toBe(false);
    expect(familySchemas.policy.safeParse(deviceEvent()).success).toBe(false);
  });

  it('names an unknown family at the discriminator', () => {
    const issues = issuesOf({ ...policyEvent(), family: 'billing' });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^family: /);
  });

  describe('envelope fields (shared by every family)', () => {
    it.each([
      ['id', 'short', /^id: expected 8-128 characters/],
      ['id', '-starts-with-dash', /^id: /],
      ['schemaVersion', 2, /^schemaVersion: /],
      ['time', '2024-05-01 12:30:00', /^time: /],
      ['time', '2024-05-01T12:30:00', /^time: /], // no zone offset
      ['time', '2023-02-29T00:00:00Z', /^time: /], // not a day
      ['source.kind', 'proxy', /^source\.kind: /],
      ['source.service', '', /^source\.service: /],
      ['client.ip', '999.1.1.1', /^client\.ip: Invalid IP address$/],
      ['client.ip', 'localhost', /^client\.ip: Invalid IP address$/],
      ['client.userAgent', 'x'.repeat(1025), /^client\.userAgent: /],
      ['actor.userId', '', /^actor\.userId: /],
      ['correlation.sessionId', 's'.repeat(257), /^correlation\.sessionId: /],
      ['labels', { Region: 'eu' }, /^labels\.Region: /],
      ['labels', { region: 7 }, /^labels\.region: /],
    ])('refuses a bad %s (case %#), naming the field', (path, value, expected) => {
      for (const make of Object.values(validExamples)) {
        const issues = issuesOf(withField(make(), path, value));
        expect(issues.some((issue) => expected.test(issue))).toBe(true);
      }
    });

    it.each(['id', 'schemaVersion', 'time', 'source', 'source.service', 'source.kind'])('requires %s', (path) => {
      for (const make of Object.values(validExamples)) {
        const issues = issuesOf(withField(make(), path, undefined));
        expect(issues.some((issue) => issue.startsWith(`${path}: `))).toBe(true);
      }
    });

    it('accepts IPv6 client addresses', () => {
      for (const ip of ['::1', '2001:4860:4860::8888', '::ffff:10.1.2.3']) {
        expect(eventSchema.safeParse(withField(policyEvent(), 'client.ip', ip)).success).toBe(true);
      }
    });
  });

  describe('policy events', () => {
    it.each([
      ['policy.kind', 'firewall'],
      ['policy.outcome', 'maybe'],
      ['policy.name', ''],
      ['policy.authContext', 'password'],
      ['policy.scopes', ['']],
      ['policy.group', undefined],
      ['policy.resource', undefined],
      ['policy.resource.method', 'TRACE'],
      ['policy.resource.path', 'payments/123'],
      ['policy.reason', 'r'.repeat(1025)],
    ])('refuses a bad %s (case %#), naming the field', (path, value) => {
      const issues = issuesOf(withField(policyEvent(), path, value));
      // An array element's issue names its index: `policy.scopes.0: ...`.
      expect(issues.some((issue) => issue.startsWith(`${path}: `) || issue.startsWith(`${path}.`))).toBe(true);
    });

    it('words an enum problem with its options', () => {
      expect(issuesOf(withField(policyEvent(), 'policy.outcome', 'maybe'))).toStrictEqual([
        'policy.outcome: Invalid option: expected one of "pass"|"fail"',
      ]);
    });

    it('refuses more than 64 scopes', () => {
      const scopes = Array.from({ length: 65 }, (_, index) => `scope:${index}`);
      expect(issuesOf(withField(policyEvent(), 'policy.scopes', scopes))).toStrictEqual([
        expect.stringMatching(/^policy\.scopes: /),
      ]);
    });
  });

  describe('invocation events', () => {
    it.each([
      ['invocation.status', 99],
      ['invocation.status', 600],
      ['invocation.status', 200.5],
      ['invocation.latencyMs', -1],
      ['invocation.latencyMs', 3_600_001],
      ['invocation.bytesIn', -1],
      ['invocation.bytesOut', 1.5],
      ['invocation.route', 'accounts/:id'],
      ['invocation.route', undefined],
      ['invocation.upstreamService', ''],
      ['invocation.resource.api', ''],
    ])('refuses a bad %s (case %#), naming the field', (path, value) => {
      const issues = issuesOf(withField(invocationEvent(), path, value));
      expect(issues.some((issue) => issue.startsWith(`${path}: `))).toBe(true);
    });

    it('reports every problem, not just the first', () => {
      const event = withField(withField(invocationEvent(), 'invocation.status', 700), 'invocation.latencyMs', -1);
      expect(issuesOf(event)).toStrictEqual([
        expect.stringMatching(/^invocation\.status: /),
        expect.stringMatching(/^invocation\.latencyMs: /),
      ]);
    });
  });

  describe('device events', () => {
    it.each([
      ['device.type', 'watch'],
      ['device.action', 'hack'],
      ['device.ip', '10.0.0.256'],
      ['device.geo.lat', 90.5],
      ['device.geo.lon', -181],
      ['device.geo.accuracyKm', -1],
      ['device.geo.country', 'fr'],
      ['device.geo.country', 'FRA'],
      ['device.geo.lat', undefined],
    ])('refuses a bad %s (case %#), naming the field', (path, value) => {
      const issues = issuesOf(withField(deviceEvent(), path, value));
      expect(issues.some((issue) => issue.startsWith(`${path}: `))).toBe(true);
    });

    it('requires a deviceId or a fingerprint, and accepts either alone', () => {
      const neither = withField(withField(deviceEvent(), 'device.deviceId', undefined), 'device.fingerprint', undefined);
      expect(issuesOf(neither)).toStrictEqual(['device.deviceId: either deviceId or fingerprint is required']);
      expect(eventSchema.safeParse(withField(deviceEvent(), 'device.deviceId', undefined)).success).toBe(true);
      expect(eventSchema.safeParse(withField(deviceEvent(), 'device.fingerprint', undefined)).success).toBe(true);
    });
  });

  describe('strict objects', () => {
    it.each([
      ['(root)', policyEvent, ''],
      ['source', policyEvent, 'source'],
      ['correlation', policyEvent, 'correlation'],
      ['actor', policyEvent, 'actor'],
      ['client', policyEvent, 'client'],
      ['policy', policyEvent, 'policy'],
      ['policy.resource', policyEvent, 'policy.resource'],
      ['invocation', invocationEvent, 'invocation'],
      ['invocation.resource', invocationEvent, 'invocation.resource'],
      ['device', deviceEvent, 'device'],
      ['device.geo', deviceEvent, 'device.geo'],
    ] as const)('refuses an unknown field in %s', (label, make, path) => {
      const event: Record<string, unknown> = path === '' ? { ...make(), surprise: 1 } : withField(make(), `${path}.surprise`, 1);
      expect(issuesOf(event)).toStrictEqual([`${label}: Unrecognized key: "surprise"`]);
    });
  });

  describe('describeIssues', () => {
    it('says (root) for a problem with the whole value', () => {
      const result = eventSchema.safeParse('not an object');
      expect(result.success).toBe(false);
      if (result.success) return;
      expect(describeIssues(result.error)).toStrictEqual([expect.stringMatching(/^\(root\): /)]);
    });
  });
});

describe('exportJsonSchemas', () => {
  const schemas = exportJsonSchemas();

  it('renders one schema per family and one for any event, each with its $id and title', () => {
    expect(Object.keys(schemas).sort()).toStrictEqual(['device', 'event', 'invocation', 'policy']);
    for (const [name, schema] of Object.entries(schemas)) {
      expect(schema.$id).toBe(`https://vigil.dev/schemas/v1/${name}.schema.json`);
      expect(schema.title).toBe(name);
      expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    }
  });

  it.each(FAMILIES)('marks the required fields of %s (defaults are optional for producers)', (family) => {
    const schema = schemas[family];
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    const required = schema.required;
    expect(Array.isArray(required)).toBe(true);
    expect(required).toEqual(expect.arrayContaining(['id', 'schemaVersion', 'time', 'source', 'family', family]));
    expect(required).not.toContain('correlation');
    expect(required).not.toContain('actor');
    expect(required).not.toContain('client');
    expect(required).not.toContain('labels');
  });

  it('marks the required fields of a nested family object', () => {
    const properties = schemas.invocation.properties;
    if (!isRecord(properties)) throw new Error('expected properties');
    const invocation = properties.invocation;
    if (!isRecord(invocation)) throw new Error('expected an invocation property');
    expect(invocation.required).toStrictEqual(['resource', 'route', 'status', 'latencyMs']);
    expect(invocation.additionalProperties).toBe(false);
  });

  it('describes any event as one of the three families', () => {
    const variants = schemas.event.oneOf ?? schemas.event.anyOf;
    expect(Array.isArray(variants)).toBe(true);
    if (!Array.isArray(variants)) return;
    const families = variants.map((variant: unknown) => {
      if (!isRecord(variant) || !isRecord(variant.properties)) return undefined;
      const family = variant.properties.family;
      return isRecord(family) ? family.const : undefined;
    });
    expect(families).toStrictEqual(['policy', 'invocation', 'device']);
  });

  it('is plain JSON (survives a JSON round trip unchanged)', () => {
    expect(JSON.parse(JSON.stringify(schemas))).toStrictEqual(schemas);
  });
});

describe('eventIndexName', () => {
  it('names the daily index by the UTC day of the event time', () => {
    expect(eventIndexName('vigil', 'policy', '2024-05-01T12:30:00Z')).toBe('vigil-events-policy-2024.05.01');
    // 23:30 at UTC-5 is already the next day in UTC.
    expect(eventIndexName('vigil', 'invocation', '2024-03-10T23:30:00-05:00')).toBe('vigil-events-invocation-2024.03.11');
    // 00:30 at UTC+2 is still the previous day in UTC, across a year boundary.
    expect(eventIndexName('t1', 'device', '2025-01-01T00:30:00+02:00')).toBe('t1-events-device-2024.12.31');
  });

  it('falls under the index template pattern of its prefix', () => {
    const names = indexNames('vigil');
    const pattern = new RegExp(`^${names.eventPattern.replaceAll('.', '\\.').replace('*', '.*')}$`);
    for (const family of FAMILIES) {
      const name = eventIndexName('vigil', family, '2024-05-01T00:00:00Z');
      expect(name).toMatch(pattern);
      expect(name.startsWith(names.eventsOf(family).slice(0, -1))).toBe(true);
    }
  });
});

describe('eventMappings', () => {
  const CORE_TYPES = new Set(['keyword', 'text', 'date', 'ip', 'geo_point', 'long', 'float', 'boolean', 'object']);

  /** Every field mapping in a mapping tree, with its path: properties, multi-fields and dynamic templates. */
  function fieldMappings(node: unknown, path: string): Array<{ path: string; mapping: Record<string, unknown> }> {
    if (!isRecord(node)) throw new Error(`${path}: expected an object`);
    const found: Array<{ path: string; mapping: Record<string, unknown> }> = [];
    if (isRecord(node.properties)) {
      for (const [name, child] of Object.entries(node.properties)) {
        const childPath = path ? `${path}.${name}` : name;
        if (!isRecord(child)) throw new Error(`${childPath}: expected an object`);
        found.push({ path: childPath, mapping: child }, ...fieldMappings(child, childPath));
      }
    }
    if (isRecord(node.fields)) {
      for (const [name, child] of Object.entries(node.fields)) {
        if (!isRecord(child)) throw new Error(`${path}.${name}: expected an object`);
        found.push({ path: `${path}.${name}`, mapping: child });
      }
    }
    if (Array.isArray(node.dynamic_templates)) {
      for (const template of node.dynamic_templates as unknown[]) {
        if (!isRecord(template)) throw new Error('expected a dynamic template object');
        for (const [name, body] of Object.entries(template)) {
          if (!isRecord(body) || !isRecord(body.mapping)) throw new Error(`dynamic template ${name}: no mapping`);
          found.push({ path: `(dynamic template ${name})`, mapping: body.mapping });
        }
      }
    }
    return found;
  }

  const all = fieldMappings(eventMappings, '');

  it('finds the fields it walks (the walk itself is not vacuous)', () => {
    const paths = all.map((entry) => entry.path);
    expect(paths).toEqual(
      expect.arrayContaining(['source.geo.location', 'user_agent.original.text', 'vigil.kafka.offset', '(dynamic template labels_as_keywords)']),
    );
    expect(all.length).toBeGreaterThan(60);
  });

  it('uses only core field types, at every depth', () => {
    const outside = all.filter(({ mapping }) => mapping.type !== undefined && !(typeof mapping.type === 'string' && CORE_TYPES.has(mapping.type)));
    expect(outside).toStrictEqual([]);
  });

  it('gives every field either a type or sub-properties', () => {
    const untyped = all.filter(({ mapping }) => mapping.type === undefined && !isRecord(mapping.properties));
    expect(untyped).toStrictEqual([]);
  });

  it('maps the fields an analyst queries by their proper types', () => {
    const typeOf = (path: string): unknown => all.find((entry) => entry.path === path)?.mapping.type;
    expect(typeOf('@timestamp')).toBe('date');
    expect(typeOf('source.ip')).toBe('ip');
    expect(typeOf('source.geo.location')).toBe('geo_point');
    expect(typeOf('event.duration')).toBe('long');
    expect(typeOf('http.response.status_code')).toBe('long');
    expect(typeOf('vigil.latency_ms')).toBe('float');
  });

  it('refuses unknown fields (dynamic: strict) and is what the component template installs', () => {
    expect(eventMappings.dynamic).toBe('strict');
    const templates = eventTemplates('vigil', { shards: 1, replicas: 0 });
    expect(templates.componentTemplate.body).toMatchObject({ template: { mappings: eventMappings } });
    expect(templates.indexTemplate.body).toMatchObject({
      index_patterns: ['vigil-events-*'],
      composed_of: [templates.componentTemplate.name],
      template: { settings: { number_of_shards: 1, number_of_replicas: 0 } },
    });
  });

  it('versions every template, and records the version in the mappings an index is created with', () => {
    const events = eventTemplates('vigil', { shards: 1, replicas: 0 });
    const detections = detectionTemplate('vigil', { shards: 1, replicas: 0 });
    const alerts = alertTemplate('vigil', { shards: 1, replicas: 0 });
    expect([events.componentTemplate.body.version, events.indexTemplate.body.version, detections.body.version, alerts.body.version]).toStrictEqual([7, 7, 7, 7]);
    expect(TEMPLATE_VERSION).toBe(7);
    expect(events.componentTemplate.body).toMatchObject({ template: { mappings: { _meta: { template_version: 7, ecs_version: '9.4.0' } } } });
    expect(detections.body).toMatchObject({ template: { mappings: { _meta: { template_version: 7 } } } });
    expect(alerts.body).toMatchObject({ template: { mappings: { _meta: { template_version: 7 } } } });
  });

  it('leaves the retyped fields and _meta out of what it adds to existing indices, and changes nothing else', () => {
    const before = JSON.stringify(eventMappings);
    const existing = mappingsForExistingIndices(eventMappings, EVENT_RETYPED_FIELDS);
    expect(JSON.stringify(eventMappings)).toBe(before);
    const event = existing.properties.event as { properties: Record<string, unknown> };
    expect(event.properties).not.toHaveProperty('reason');
    expect(event.properties.id).toEqual(eventMappings.properties.event.properties.id);
    expect(existing.properties.user_agent).toEqual({ properties: {} });
    // Version 3 stopped indexing the content hash: an existing index keeps it indexed.
    const vigil = existing.properties.vigil as { properties: Record<string, unknown> };
    expect(vigil.properties).not.toHaveProperty('content_hash');
    expect(vigil.properties).toHaveProperty('time');
    expect(existing).not.toHaveProperty('_meta');
    const alert = mappingsForExistingIndices(alertMappings, ALERT_RETYPED_FIELDS).properties.kibana as { properties: { alert: { properties: Record<string, unknown> } } };
    expect(alert.properties.alert.properties).not.toHaveProperty('reason');
    expect(alert.properties.alert.properties).toHaveProperty('risk_score');
  });
});

describe('control characters', () => {
  /** Every string in a value with its dotted path (array items by position). */
  function stringLeaves(value: unknown, path: string[] = []): string[][] {
    if (typeof value === 'string') return [path];
    if (Array.isArray(value)) return value.flatMap((item, position) => stringLeaves(item, [...path, String(position)]));
    if (isRecord(value)) return Object.entries(value).flatMap(([key, item]) => stringLeaves(item, [...path, key]));
    return [];
  }

  /** A copy of `value` with the string at `path` given `insert` in its middle. */
  function withInserted(value: object, path: string[], insert: string): unknown {
    const copy: unknown = structuredClone(value);
    let target: unknown = copy;
    for (const key of path.slice(0, -1)) target = (target as Record<string, unknown>)[key];
    const last = path[path.length - 1] ?? '';
    const holder = target as Record<string, string>;
    const text = holder[last] ?? '';
    holder[last] = `${text.slice(0, 1)}${insert}${text.slice(1)}`;
    return copy;
  }

  const cases = FAMILIES.flatMap((family) => stringLeaves(validExamples[family]()).map((path) => [family, path.join('.'), path] as const));

  it('finds the text fields of every family', () => {
    expect(cases.map(([, label]) => label)).toEqual(
      expect.arrayContaining(['policy.resource.path', 'policy.reason', 'policy.scopes.0', 'client.userAgent', 'labels.region', 'device.geo.city', 'invocation.route']),
    );
  });

  it.each(cases.flatMap(([family, label, path]) => ['\u0000', '\r\n', '\u001b', '\u007f', '\u0085'].map((control) => [family, label, JSON.stringify(control), path, control] as const)))(
    'refuses %s.%s holding %s, naming the field',
    (family, label, _shown, path, control) => {
      const issues = issuesOf(withInserted(validExamples[family](), path, control));
      expect(issues).toHaveLength(1);
      expect(issues[0]?.startsWith(`${label}: `)).toBe(true);
    },
  );

  it('says which characters in free text: the NUL path of the hostile-input run', () => {
    const event = withField(policyEvent(), 'policy.resource', { api: 'payments-v2', method: 'GET', path: '/\u0000null' });
    expect(issuesOf(event)).toStrictEqual(['policy.resource.path: must not contain control characters (U+0000–U+001F, U+007F–U+009F)']);
  });

  it('lets a tab through in a User-Agent (HTTP allows one in a header value) and nowhere else', () => {
    expect(eventSchema.safeParse(withField(policyEvent(), 'client.userAgent', 'Mozilla/5.0\t(X11)')).success).toBe(true);
    expect(eventSchema.safeParse(withField(deviceEvent(), 'device.userAgent', 'App/1.0\t(Android)')).success).toBe(true);
    expect(issuesOf(withField(policyEvent(), 'policy.name', 'verify\tkey'))).toStrictEqual([
      'policy.name: must not contain control characters (U+0000–U+001F, U+007F–U+009F)',
    ]);
  });

  it('keeps printable text beyond ASCII', () => {
    expect(eventSchema.safeParse(withField(deviceEvent(), 'device.geo.city', 'São Paulo · 東京 ✓')).success).toBe(true);
  });
});

describe('IP addresses in one spelling', () => {
  // Four spellings of one address were four attackers to every per-IP rule.
  it.each([
    ['198.51.100.23', '198.51.100.23'],
    ['::ffff:198.51.100.23', '198.51.100.23'],
    ['::FFFF:198.51.100.23', '198.51.100.23'],
    ['::ffff:c633:6417', '198.51.100.23'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8::0001', '2001:db8::1'],
    ['::1', '::1'],
    ['::ffff:0:1.2.3.4', '::ffff:0:102:304'],
  ])('writes %s as %s', (written, kept) => {
    expect(canonicalIp(written)).toBe(kept);
  });

  it.each([
    ['::ffff:198.51.100.23', '198.51.100.23'],
    ['::FFFF:198.51.100.23', '198.51.100.23'],
    ['198.51.100.23', '198.51.100.23'],
    ['2001:db8::1', '2001:db8::1'],
    ['::ffff:198.51.100.23:80', '::ffff:198.51.100.23:80'],
    ['not an address', 'not an address'],
  ])('unmappedIpv4 (the lookups\' and filters\' cheap check) reads %s as %s', (written, read) => {
    expect(unmappedIpv4(written)).toBe(read);
  });

  it('applies to client.ip and device.ip as events are validated', () => {
    const parsed = eventSchema.parse({
      id: 'evt-spelling-1',
      schemaVersion: 1,
      family: 'device',
      time: '2026-11-27T10:00:00Z',
      source: { service: 'mobile-app', kind: 'service' },
      actor: { userId: 'u-1' },
      client: { ip: '::FFFF:C633:6417' },
      device: { deviceId: 'phone-1', type: 'mobile', ip: '2001:DB8::0:1', action: 'login' },
    });
    expect([parsed.client.ip, parsed.family === 'device' ? parsed.device.ip : undefined]).toEqual(['198.51.100.23', '2001:db8::1']);
  });
});
