import type { Correlated } from '../../detectors';
import { correlationDocument } from '../../ingest';
import { POLICY_KINDS, eventMappings } from '../../schemas';
import { absentValuePaths } from './fixtures';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What a request's policy decisions correlate to: authn passed, authz failed. */
const request = (): NonNullable<Correlated['request']> => ({ policies: { authn: 'pass', authz: 'fail' }, failedPolicies: ['authz'] });

/** The session's device, known for an hour, in France, one of two devices of the user. */
const device = (): NonNullable<Correlated['device']> => ({ deviceId: 'phone-3', deviceAgeMs: 3_600_000, country: 'FR', knownDevices: 2, fromSession: true });

/** Every shape correlation produces. */
const examples: Record<string, Correlated> = {
  requestOnly: { request: request() },
  deviceOnly: { device: device() },
  both: { request: request(), device: device() },
  bareDevice: { device: { knownDevices: 0, fromSession: false } },
  newDevice: { device: { deviceId: 'phone-4', deviceAgeMs: 0, knownDevices: 1, fromSession: false } },
  everyPolicy: {
    request: {
      policies: Object.fromEntries(POLICY_KINDS.map((kind, index) => [kind, index % 2 === 0 ? 'pass' : 'fail'])),
      failedPolicies: POLICY_KINDS.filter((_, index) => index % 2 === 1).sort(),
    },
  },
};

describe('correlationDocument', () => {
  it('is undefined when nothing was correlated', () => {
    expect(correlationDocument(undefined)).toBeUndefined();
  });

  it('writes the request view alone', () => {
    expect(correlationDocument({ request: request() })).toStrictEqual({ policies: { authn: 'pass', authz: 'fail' }, failed_policies: ['authz'] });
  });

  it('writes the device alone', () => {
    expect(correlationDocument({ device: device() })).toStrictEqual({
      device_id: 'phone-3',
      device_age_ms: 3_600_000,
      country: 'FR',
      known_devices: 2,
      from_session: true,
    });
  });

  it('writes both together', () => {
    expect(correlationDocument({ request: request(), device: device() })).toStrictEqual({
      policies: { authn: 'pass', authz: 'fail' },
      failed_policies: ['authz'],
      device_id: 'phone-3',
      device_age_ms: 3_600_000,
      country: 'FR',
      known_devices: 2,
      from_session: true,
    });
  });

  it('leaves out what the device does not know, and keeps a zero age and zero devices', () => {
    expect(correlationDocument({ device: { knownDevices: 0, fromSession: false } })).toStrictEqual({ known_devices: 0, from_session: false });
    expect(correlationDocument({ device: { deviceId: 'phone-4', deviceAgeMs: 0, knownDevices: 1, fromSession: false } })).toStrictEqual({
      device_id: 'phone-4',
      device_age_ms: 0,
      known_devices: 1,
      from_session: false,
    });
  });

  it('keeps a request in which every policy passed, with no failed policies', () => {
    expect(correlationDocument({ request: { policies: { authn: 'pass' }, failedPolicies: [] } })).toStrictEqual({ policies: { authn: 'pass' }, failed_policies: [] });
  });

  it.each(Object.keys(examples))('writes no null or undefined value for %s, and survives a JSON round trip', (name) => {
    const document = correlationDocument(examples[name]);
    expect(document).toBeDefined();
    expect(absentValuePaths(document)).toStrictEqual([]);
    expect(Object.values(document ?? {})).not.toContain(undefined);
    expect(JSON.parse(JSON.stringify(document)) as unknown).toStrictEqual(document);
  });
});

describe('correlationDocument: every field is in the event mapping (vigil.correlation)', () => {
  const FITS: Record<string, (value: unknown) => boolean> = {
    keyword: (value) => typeof value === 'string',
    long: (value) => Number.isInteger(value),
    boolean: (value) => typeof value === 'boolean',
  };

  /** The problems of a value against a mapping that has no dynamic part (`dynamic: strict` above it). */
  function walk(value: unknown, mapping: Record<string, unknown>, path: string, seen: Set<string>): string[] {
    if (Array.isArray(value)) return value.flatMap((item) => walk(item, mapping, path, seen));
    if (isRecord(mapping.properties)) {
      if (!isRecord(value)) return [`${path}: expected an object, got ${JSON.stringify(value)}`];
      const properties = mapping.properties;
      return Object.entries(value).flatMap(([name, child]) => {
        const childPath = `${path}.${name}`;
        const childMapping = properties[name];
        if (!isRecord(childMapping)) return [`${childPath}: not in the mapping`];
        return walk(child, childMapping, childPath, seen);
      });
    }
    seen.add(path);
    const type = String(mapping.type);
    const fits = FITS[type];
    if (fits === undefined) return [`${path}: unknown mapping type ${type}`];
    return fits(value) ? [] : [`${path}: ${JSON.stringify(value)} does not fit a ${type}`];
  }

  function leaves(mapping: Record<string, unknown>, path: string): string[] {
    if (!isRecord(mapping.properties)) return [path];
    return Object.entries(mapping.properties).flatMap(([name, child]) => (isRecord(child) ? leaves(child, `${path}.${name}`) : []));
  }

  const mapping = eventMappings.properties.vigil.properties.correlation as unknown as Record<string, unknown>;
  const ROOT = 'vigil.correlation';

  it.each(Object.keys(examples))('maps every field of %s, with a value of its type', (name) => {
    expect(walk(correlationDocument(examples[name]), mapping, ROOT, new Set())).toStrictEqual([]);
  });

  it('covers every mapped field with the examples, including every policy kind', () => {
    const seen = new Set<string>();
    for (const example of Object.values(examples)) walk(correlationDocument(example), mapping, ROOT, seen);
    const declared = leaves(mapping, ROOT);
    expect(declared).toEqual(expect.arrayContaining(POLICY_KINDS.map((kind) => `${ROOT}.policies.${kind}`)));
    expect(declared.length).toBe(POLICY_KINDS.length + 6);
    expect(declared.filter((path) => !seen.has(path))).toStrictEqual([]);
  });

  it('finds a field that is not mapped, and a value of the wrong type (the walk can fail)', () => {
    expect(walk({ policies: { oauth: 'pass' }, known_devices: 1.5, from_session: 'yes', device: 'phone-3' }, mapping, ROOT, new Set())).toStrictEqual([
      'vigil.correlation.policies.oauth: not in the mapping',
      'vigil.correlation.known_devices: 1.5 does not fit a long',
      'vigil.correlation.from_session: "yes" does not fit a boolean',
      'vigil.correlation.device: not in the mapping',
    ]);
  });
});
