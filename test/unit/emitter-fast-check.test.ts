import { partitionKeyOf } from '../../ingest/sdk';
import { fastMessage } from '../../ingest/sdk/fast-check';
import { CURRENT_SCHEMA_VERSION, familySchemas, type Family } from '../../schemas';
import { deviceInput, invocationInput, minimalEvents, policyInput, withField } from './fixtures';

/**
 * The emitter's fast check (ingest/sdk/fast-check.ts) may skip zod only for events zod accepts,
 * and must then give zod's very output. Here it is held to that over every field of each family
 * replaced by each of a set of awkward values: whenever it accepts, zod must accept the same
 * candidate, and the message it wrote must be JSON.stringify of zod's output, its key
 * partitionKeyOf of that output, and its size their UTF-8 bytes.
 */

const source = { service: 'unit-service', kind: 'service' } as const;
const id = 'generated-0001';
const time = '2024-05-01T10:00:00.000Z';

/** Inputs the fast check should prove valid: the fixtures without what it leaves to zod. */
function fastInputs(): Array<{ family: Family; input: Record<string, unknown> }> {
  const policy = withField(withField(policyInput(), 'labels', undefined), 'policy.scopes', undefined);
  const device = withField(deviceInput(), 'device.geo', undefined);
  const minimal = minimalEvents();
  const bare = (event: object): Record<string, unknown> =>
    ['id', 'schemaVersion', 'time', 'source', 'family'].reduce<Record<string, unknown>>((left, key) => withField(left, key, undefined), { ...event });
  return [
    { family: 'policy', input: policy },
    { family: 'invocation', input: invocationInput() },
    { family: 'device', input: device },
    { family: 'policy', input: bare(minimal.policy) },
    { family: 'invocation', input: bare(minimal.invocation) },
    { family: 'device', input: bare(minimal.device) },
  ];
}

/** Every dotted path to a leaf or an object in `value`. */
function pathsOf(value: unknown, path = ''): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return path ? [path] : [];
  const inner = Object.entries(value).flatMap(([key, child]) => pathsOf(child, path ? `${path}.${key}` : key));
  return path ? [path, ...inner] : inner;
}

const AWKWARD: unknown[] = [
  undefined, null, '', 'x', '/', '/ok', 'ok', 'a'.repeat(256), 'a'.repeat(257), 'b'.repeat(1024), 'b'.repeat(1025), '/'.repeat(2049),
  'tab\there', 'nul\u0000', 'line\nbreak', 'del\u007F', 'c1\u0085', 'é', 0, -0, 1, -1, 1.5, 99, 100, 599, 600, 3_600_000, 3_600_001,
  Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, true, {}, [], ['a'], { extra: 1 },
  '1.2.3.4', '01.2.3.4', '256.1.1.1', '1.2.3', '::1', 'fe80::1%eth0', 'GET', 'get', 'POST', 'authn', 'pass', 'fail', 'mobile', 'login',
  'gateway', 'service', 'api_key', new Date(0), Object.create(null) as object,
  // What JSON writes escaped, or in more than one byte: the message must still be JSON.stringify's.
  'say "hi"', 'back\\slash', '/q"uo\\te', 'lone\uD800', 'pair\uD83D\uDE00', 'ünïcode', '/é', '\u2028line',
];

const TIMES: unknown[] = [
  time, '2024-02-29T00:00:00.000Z', '2023-02-29T00:00:00.000Z', '2024-02-30T00:00:00.000Z', '2024-13-01T00:00:00.000Z',
  '2024-01-01T24:00:00.000Z', '2024-01-01T23:59:60.000Z', '0000-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z',
  '+010000-01-01T00:00:00.000Z', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00.000+02:00', '2024-01-01 00:00:00.000Z', 'Invalid Date', 0,
];

const IDS: unknown[] = [id, 'short', 'a'.repeat(128), 'a'.repeat(129), '-leading-dash', 'with space here', 'ünïcode-id-1', 'ok.id:with_-all', 7];

/** Checks one candidate; returns whether the fast check accepted it. */
function agrees(family: Family, input: Record<string, unknown>, eventId: unknown, eventTime: unknown, eventSource: unknown): boolean {
  const fast = fastMessage(family, input, eventId, eventTime, eventSource);
  if (fast === undefined) return false;
  const zod = familySchemas[family].safeParse({ ...input, family, id: eventId, schemaVersion: CURRENT_SCHEMA_VERSION, time: eventTime, source: eventSource });
  if (!zod.success) throw new Error(`fast check accepted what zod refuses: ${family} ${JSON.stringify(input)} ${String(eventId)} ${String(eventTime)}: ${zod.error.message}`);
  const value = JSON.stringify(zod.data);
  const key = partitionKeyOf(zod.data);
  expect(fast.value).toBe(value);
  expect(fast.key).toBe(key);
  expect(fast.bytes).toBe(Buffer.byteLength(key) + Buffer.byteLength(value));
  return true;
}

describe('the emitter fast check against the zod schema', () => {
  it('accepts the common events of every family, with the output zod gives', () => {
    for (const { family, input } of fastInputs()) expect(agrees(family, input, id, time, source)).toBe(true);
  });

  it('never accepts a field value zod refuses, at any field of any family', () => {
    let accepted = 0;
    let tried = 0;
    for (const { family, input } of fastInputs()) {
      for (const path of pathsOf(input)) {
        for (const value of AWKWARD) {
          tried++;
          if (agrees(family, withField(input, path, value), id, time, source)) accepted++;
        }
        const at = path.split('.').reduce<unknown>((object, key) => (object as Record<string, unknown>)[key], input);
        if (typeof at !== 'object' || at === null) continue;
        tried++;
        if (agrees(family, withField(input, `${path}.unknownKey`, 'x'), id, time, source)) accepted++;
      }
      for (const path of pathsOf(source)) {
        for (const value of AWKWARD) {
          tried++;
          if (agrees(family, input, id, time, withField(source, path, value))) accepted++;
        }
      }
      for (const eventTime of TIMES) {
        tried++;
        if (agrees(family, input, id, eventTime, source)) accepted++;
      }
      for (const eventId of IDS) {
        tried++;
        if (agrees(family, input, eventId, time, source)) accepted++;
      }
      tried++;
      if (agrees(family, { ...input, unknownKey: 'x' }, id, time, source)) accepted++;
    }
    // Both answers were given many times: the check is neither always sure nor never.
    expect(tried).toBeGreaterThan(5000);
    expect(accepted).toBeGreaterThan(500);
    expect(accepted).toBeLessThan(tried);
  });

  it('reuses the text of a source or user agent only for the very values proven, whatever came before', () => {
    // One after another, as a service's events come: each is held to zod's output or refused.
    const input = invocationInput();
    const sources: unknown[] = [
      source,
      { service: 'unit-service', kind: 'gateway' },
      { service: 'unit-service', kind: 'service', instance: 'unit-7f' },
      { service: 'unit-service', kind: 'service', instance: 'unit-7f', environment: 'prod "eu"' },
      { service: 'unit\u0000service', kind: 'service' },
      { service: 'unit-service', kind: 'service', extra: 1 },
      source,
    ];
    expect(sources.map((eventSource) => agrees('invocation', input, id, time, eventSource))).toStrictEqual([true, true, true, true, false, false, true]);
    const agents = ['agent/1', 'agent\t2', 'agent\n3', 'agent/1', 'say "hi"', 'agent/1\u0085'];
    expect(agents.map((agent) => agrees('invocation', withField(input, 'client.userAgent', agent), id, time, source))).toStrictEqual([true, true, false, true, true, false]);
  });

  it("writes the emitter's own UUID as zod does without matching it against the id pattern", () => {
    const uuid = '3b241101-e2bb-4255-8caf-4136c566a962';
    const input = invocationInput();
    const trusted = fastMessage('invocation', input, uuid, time, source, false, true);
    expect(trusted).toStrictEqual(fastMessage('invocation', input, uuid, time, source));
    expect(trusted?.value).toContain(`{"id":"${uuid}","schemaVersion":`);
  });

  it('leaves labels, scopes, geo and IPv6 addresses to zod', () => {
    expect(fastMessage('policy', policyInput(), id, time, source)).toBeUndefined();
    expect(fastMessage('device', deviceInput(), id, time, source)).toBeUndefined();
    expect(fastMessage('invocation', withField(invocationInput(), 'client.ip', '2001:db8::1'), id, time, source)).toBeUndefined();
  });
});
