import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { DetectionEngine, keysUnder as keysUnderPrefix, loadRuleSet, type DetectionEngineOptions, type DetectionInput, type InputGeo, type RuleSet } from '../../detectors';
import { StoreUnavailableError } from '../../platform';
import { detectionSchema, eventSchema, type Detection } from '../../schemas';

/**
 * The detection engine end to end on the real Redis: small rule sets written as YAML, events
 * validated by the event schema, the event-time watermark as the clock, and a key prefix of its
 * own per test.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DEFAULT_RULES = join(__dirname, '..', '..', 'detectors', 'rules', 'default');

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const T0 = Date.parse('2026-03-02T09:00:00.000Z');

const iso = (offsetMs: number): string => new Date(T0 + offsetMs).toISOString();
const source = { service: 'edge-gateway-eu', kind: 'gateway' } as const;

// --- rules ---------------------------------------------------------------------------------------

const RULES = {
  threshold: `
- id: it-failures-per-user
  version: 1
  name: Failed logins per user
  description: Three failed logins for one user within a minute.
  severity: medium
  tags: [T1110]
  noun: failed logins
  type: threshold
  filter:
    all:
      - { field: policy.kind, equals: authn }
      - { field: policy.outcome, equals: fail }
  groupBy: [actor.userId]
  window: 1m
  threshold: 3
  distinctField: client.ip
`,
  network: `
- id: it-failures-per-network
  version: 1
  name: Failed logins per network
  description: Five failed logins from one IPv4 address or one IPv6 /64 within a minute.
  severity: medium
  tags: [T1110]
  noun: failed logins
  type: threshold
  filter:
    all:
      - { field: policy.kind, equals: authn }
      - { field: policy.outcome, equals: fail }
  groupBy: [ipNetwork]
  window: 1m
  threshold: 5
  distinctField: client.ip
`,
  cardinality: `
- id: it-credential-stuffing
  version: 1
  name: Credential stuffing from one IP
  description: One IP tries eight distinct users within ten minutes.
  severity: high
  tags: [T1110.004]
  noun: authentication attempts
  type: cardinality
  filter:
    all:
      - { field: policy.kind, equals: authn }
      - { field: actor.userId, exists: true }
  groupBy: [client.ip]
  field: actor.userId
  window: 10m
  threshold: 8
`,
  sequence: `
- id: it-takeover-sequence
  version: 1
  name: Failures then a success from one IP
  description: Five failed logins and then a successful one from the same IP within ten minutes.
  severity: high
  tags: [T1110, T1078]
  type: sequence
  groupBy: [client.ip]
  window: 10m
  steps:
    - name: failed login
      count: 5
      filter:
        all:
          - { field: policy.kind, equals: authn }
          - { field: policy.outcome, equals: fail }
    - name: successful login
      filter:
        all:
          - { field: policy.kind, equals: authn }
          - { field: policy.outcome, equals: pass }
`,
  newDevice: `
- id: it-new-device
  version: 1
  name: New device for a user
  description: A user signs in from a device not seen for them in 30 days.
  severity: low
  tags: [device]
  type: new_value
  filter: { field: family, equals: device }
  groupBy: [actor.userId]
  field: device.deviceId
  horizon: 30d
  minKnownValues: 1
`,
  travel: `
- id: it-impossible-travel
  version: 1
  name: Impossible travel
  description: Two located events of one user imply a speed no traveller reaches.
  severity: high
  tags: [location]
  type: geo_velocity
  groupBy: [actor.userId]
  maxSpeedKmh: 900
  minDistanceKm: 300
  horizon: 24h
  allowlistCidrs: [203.0.113.0/24]
`,
  newDeviceThenWrite: `
- id: it-new-device-then-write
  version: 1
  name: New device followed by a sensitive write
  description: Within ten minutes of a new device, the user makes a payment or changes account data.
  severity: high
  tags: [account-takeover]
  type: sequence
  groupBy: [actor.userId]
  window: 10m
  steps:
    - name: new device
      filter: { detectedBy: it-new-device }
    - name: sensitive write
      filter:
        all:
          - { field: family, equals: invocation }
          - { field: invocation.resource.method, in: [POST, PUT, PATCH, DELETE] }
          - { field: invocation.group, in: [payments, accounts] }
          - { field: invocation.status, lt: 400 }
`,
  jsonThreat: `
- id: it-json-threat
  version: 1
  name: JSON threat protection violation
  description: The gateway refused a JSON payload.
  severity: medium
  tags: [T1190]
  type: match
  filter:
    all:
      - { field: policy.kind, equals: json_threat }
      - { field: policy.outcome, equals: fail }
`,
} as const;

const ruleDirectories: string[] = [];

/** Writes rules to a YAML file in a new temporary folder and loads that folder. */
function ruleSet(...parts: string[]): RuleSet {
  const directory = mkdtempSync(join(tmpdir(), 'vigil-it-rules-'));
  ruleDirectories.push(directory);
  writeFileSync(join(directory, 'rules.yaml'), parts.join('\n'));
  return loadRuleSet([directory]);
}

/** The same rules with every stateful rule set to `skip` when Redis is away. */
function skipping(yaml: string): string {
  return yaml.replace(/^(- id: .*)$/gm, '$1\n  onStateUnavailable: skip');
}

// --- events --------------------------------------------------------------------------------------

const resource = { api: 'accounts-v1', method: 'POST', path: '/login' } as const;

function login(id: string, at: number, who: { userId?: string; ip: string }, outcome: 'pass' | 'fail', geo?: InputGeo): DetectionInput {
  const event = eventSchema.parse({
    id,
    schemaVersion: 1,
    family: 'policy',
    time: iso(at),
    source,
    actor: who.userId === undefined ? {} : { userId: who.userId },
    client: { ip: who.ip },
    policy: {
      kind: 'authn',
      name: 'verify-password',
      outcome,
      ...(outcome === 'fail' ? { reason: 'invalid_credentials' } : {}),
      authContext: 'basic',
      group: 'accounts',
      resource,
    },
  });
  return geo === undefined ? { event } : { event, geo, ipScope: 'public' };
}

const failure = (id: string, at: number, who: { userId?: string; ip: string }): DetectionInput => login(id, at, who, 'fail');
const success = (id: string, at: number, who: { userId?: string; ip: string }, geo?: InputGeo): DetectionInput => login(id, at, who, 'pass', geo);

function jsonThreat(id: string, at: number, ip: string): DetectionInput {
  return {
    event: eventSchema.parse({
      id,
      schemaVersion: 1,
      family: 'policy',
      time: iso(at),
      source,
      actor: { consumerId: 'app-1' },
      client: { ip },
      policy: { kind: 'json_threat', name: 'json-threat-protection', outcome: 'fail', reason: 'depth_exceeded', group: 'payments', resource },
    }),
  };
}

function deviceLogin(id: string, at: number, userId: string, deviceId: string, ip = '81.2.69.142', geo?: InputGeo): DetectionInput {
  const event = eventSchema.parse({
    id,
    schemaVersion: 1,
    family: 'device',
    time: iso(at),
    source: { service: 'mobile-bff', kind: 'service' },
    actor: { userId },
    client: { ip },
    device: { deviceId, type: 'mobile', os: 'Android 14', ip, action: 'login' },
  });
  return geo === undefined ? { event } : { event, geo, ipScope: 'public' };
}

function sensitiveWrite(id: string, at: number, userId: string, status = 201): DetectionInput {
  return {
    event: eventSchema.parse({
      id,
      schemaVersion: 1,
      family: 'invocation',
      time: iso(at),
      source,
      actor: { userId, consumerId: 'mobile-app' },
      client: { ip: '81.2.69.142' },
      invocation: {
        resource: { api: 'payments-v2', method: 'POST', path: '/payments' },
        route: '/payments',
        status,
        latencyMs: 42,
        group: 'payments',
      },
    }),
  };
}

const LONDON: InputGeo = { lat: 51.5074, lon: -0.1278, accuracyKm: 10, country: 'GB', city: 'London' };
const SYDNEY: InputGeo = { lat: -33.8688, lon: 151.2093, accuracyKm: 10, country: 'AU', city: 'Sydney' };
const PARIS: InputGeo = { lat: 48.8566, lon: 2.3522, accuracyKm: 10, country: 'FR', city: 'Paris' };

// --- Redis and the engine ------------------------------------------------------------------------

let redis: Redis;
let prefix: string;
const prefixes: string[] = [];

function freshPrefix(): string {
  prefix = `it-${randomBytes(4).toString('hex')}`;
  prefixes.push(prefix);
  return prefix;
}

function keysUnder(keyPrefix: string): Promise<string[]> {
  return keysUnderPrefix(redis, keyPrefix);
}

beforeAll(() => {
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  await redis.quit();
  for (const directory of ruleDirectories) rmSync(directory, { recursive: true, force: true });
});

beforeEach(() => {
  freshPrefix();
});

afterEach(async () => {
  for (const used of prefixes.splice(0)) {
    const keys = await keysUnder(used);
    if (keys.length > 0) await redis.del(...keys);
  }
});

function engineFor(rules: RuleSet, options: Partial<DetectionEngineOptions> = {}): DetectionEngine {
  return new DetectionEngine({ redis, rules, keyPrefix: prefix, clock: 'watermark', ...options });
}

/** Every detection must be a valid detection document, whatever the test. */
function validated(detections: Detection[]): Detection[] {
  for (const detection of detections) {
    const parsed = detectionSchema.safeParse(detection);
    if (!parsed.success) throw new Error(`invalid detection ${detection.ruleId}: ${JSON.stringify(parsed.error.issues)}`);
  }
  return detections;
}

/** One batch. */
async function batch(engine: DetectionEngine, inputs: readonly DetectionInput[]): Promise<Detection[]> {
  return validated(await engine.evaluateBatch(inputs));
}

/** One batch per event, in order; the detections of each. */
async function oneByOne(engine: DetectionEngine, inputs: readonly DetectionInput[]): Promise<Detection[][]> {
  const results: Detection[][] = [];
  for (const input of inputs) results.push(await batch(engine, [input]));
  return results;
}

const ids = (inputs: readonly DetectionInput[]): string[] => inputs.map((input) => input.event.id);

// --- tests ---------------------------------------------------------------------------------------

describe('the detection engine on the real Redis', () => {
  describe('threshold', () => {
    const user = { userId: 'u-1', ip: '198.51.100.7' };
    const otherIp = { userId: 'u-1', ip: '198.51.100.8' };

    it('fires at exactly N events within the window, not at N-1', async () => {
      const engine = engineFor(ruleSet(RULES.threshold));
      const events = [failure('evt-th-0001', 0, user), failure('evt-th-0002', 30 * SECOND, otherIp), failure('evt-th-0003', MINUTE, user)];
      expect(await batch(engine, events.slice(0, 2))).toEqual([]);
      const [detection, ...rest] = await batch(engine, events.slice(2));
      expect(rest).toEqual([]);
      expect(detection).toMatchObject({
        ruleId: 'it-failures-per-user',
        ruleType: 'threshold',
        reasonCode: 'threshold_reached',
        observedValue: 3,
        threshold: 3,
        key: { 'actor.userId': 'u-1' },
        eventIds: ids(events),
        // The first event sits exactly at the window start: it counts.
        window: { start: iso(0), end: iso(MINUTE), durationMs: MINUTE },
        distinct: { field: 'client.ip', values: ['198.51.100.7', '198.51.100.8'] },
        time: iso(MINUTE),
      });
      expect(detection?.reason).toContain('3 failed logins for user u-1');
    });

    it('does not fire when the N events span more than the window', async () => {
      const engine = engineFor(ruleSet(RULES.threshold));
      const results = await oneByOne(engine, [
        failure('evt-th-0001', 0, user),
        failure('evt-th-0002', 30 * SECOND, user),
        failure('evt-th-0003', MINUTE + 1, user),
      ]);
      expect(results.flat()).toEqual([]);
    });

    it('does not count a redelivered event twice', async () => {
      const engine = engineFor(ruleSet(RULES.threshold));
      const first = failure('evt-th-0001', 0, user);
      const second = failure('evt-th-0002', 10 * SECOND, user);
      expect((await oneByOne(engine, [first, second, second, first])).flat()).toEqual([]);
    });

    it.each(['one batch per event', 'one batch'])('fires once per window, suppresses later events, and fires again after the window (%s)', async (mode) => {
      const engine = engineFor(ruleSet(RULES.threshold));
      const events = [0, 10, 20, 30, 40, 79, 81].map((second, index) => failure(`evt-th-000${index}`, second * SECOND, user));
      const perEvent = mode === 'one batch' ? undefined : await oneByOne(engine, events);
      const detections = perEvent ? perEvent.flat() : await batch(engine, events);
      expect(detections.map((detection) => detection.time)).toEqual([iso(20 * SECOND), iso(81 * SECOND)]);
      if (perEvent) expect(perEvent.map((found) => found.length)).toEqual([0, 0, 1, 0, 0, 0, 1]);
      expect(detections[0]?.eventIds).toEqual(ids(events.slice(0, 3)));
      // The second window: [21s, 81s].
      expect(detections[1]?.eventIds).toEqual(ids(events.slice(3)));
      expect(detections[1]?.observedValue).toBe(4);
      expect(new Set(detections.map((detection) => detection.id)).size).toBe(2);
    });

    it('counts an out-of-order event inside the window', async () => {
      const engine = engineFor(ruleSet(RULES.threshold));
      const control = { userId: 'u-2', ip: '198.51.100.9' };
      const results = await oneByOne(engine, [
        failure('evt-th-0001', 30 * SECOND, user),
        failure('evt-th-0002', 10 * SECOND, user), // arrives after a later one
        failure('evt-th-0003', 50 * SECOND, user),
        failure('evt-th-0101', 30 * SECOND, control),
        failure('evt-th-0103', 50 * SECOND, control),
      ]);
      expect(results.map((found) => found.length)).toEqual([0, 0, 1, 0, 0]);
      expect(results[2]?.[0]?.eventIds).toEqual(['evt-th-0002', 'evt-th-0001', 'evt-th-0003']);
    });

    it('in a flood, fires once a window, on time, counting the whole window (more events than a reply holds)', async () => {
      // One failure every 200 ms for 3 minutes and a bit: 300 per one-minute window, far past the reply's members.
      const engine = engineFor(ruleSet(RULES.threshold));
      const events = Array.from({ length: 920 }, (_, index) => failure(`evt-flood-${String(index).padStart(4, '0')}`, index * 200, user));
      const detections: Detection[] = [];
      for (let index = 0; index < events.length; index += 100) detections.push(...(await batch(engine, events.slice(index, index + 100))));
      // The first at the third failure; each next one window after the last (version 2 of the script came about a window late, counting a few seconds).
      expect(detections.map((detection) => detection.time)).toEqual([iso(400), iso(60_400), iso(120_400), iso(180_400)]);
      expect(detections.slice(1).map((detection) => detection.observedValue)).toEqual([301, 301, 301]);
      expect(detections[1]?.window).toEqual({ start: iso(400), end: iso(60_400), durationMs: MINUTE });
      expect(detections[1]?.reason).toContain('301 failed logins for user u-1');
    });

    it('fires when a late event completes N within the window, even though a later event arrived before it', async () => {
      // 0s, 40s, then 20s arrives: three failures within one minute.
      const engine = engineFor(ruleSet(RULES.threshold));
      const results = await oneByOne(engine, [
        failure('evt-th-0001', 0, user),
        failure('evt-th-0002', 40 * SECOND, user),
        failure('evt-th-0003', 20 * SECOND, user),
      ]);
      expect(results.flat().map((detection) => detection.eventIds)).toEqual([['evt-th-0001', 'evt-th-0003', 'evt-th-0002']]);
    });
  });

  // An attacker on IPv6 tries from a fresh address of the /64 its provider gave it each time:
  // grouped by client.ip, every try is a new source.
  describe('grouped by ipNetwork', () => {
    it('counts the addresses of one IPv6 /64 as one source, and an IPv4 address as itself', async () => {
      const engine = engineFor(ruleSet(RULES.network));
      const rotating = Array.from({ length: 5 }, (_, index) => failure(`evt-net-000${index}`, index * SECOND, { userId: `u-${index}`, ip: `2001:db8:7:1::${(index + 1).toString(16)}a` }));
      // One address in each of five /64s: five sources of one failure each.
      const spread = Array.from({ length: 5 }, (_, index) => failure(`evt-net-010${index}`, index * SECOND, { userId: `u-${index}`, ip: `2001:db8:7:${index + 10}::1` }));
      const ipv4 = Array.from({ length: 5 }, (_, index) => failure(`evt-net-020${index}`, index * SECOND, { userId: `u-${index}`, ip: index % 2 === 0 ? '198.51.100.40' : '::ffff:198.51.100.40' }));
      const detections = await batch(engine, [...rotating, ...spread, ...ipv4]);
      expect(detections.map((detection) => detection.key)).toEqual([{ ipNetwork: '2001:db8:7:1::/64' }, { ipNetwork: '198.51.100.40' }]);
      expect(detections[0]).toMatchObject({ observedValue: 5, eventIds: ids(rotating), distinct: { field: 'client.ip', values: rotating.map((input) => input.event.client.ip) } });
      expect(detections[0]?.reason).toContain('network 2001:db8:7:1::/64');
    });
  });

  describe('cardinality', () => {
    const ip = '198.51.100.20';

    it('fires when one IP tries 8 distinct users (credential stuffing)', async () => {
      const engine = engineFor(ruleSet(RULES.cardinality));
      const events = Array.from({ length: 8 }, (_, index) => failure(`evt-cs-000${index}`, index * SECOND, { userId: `u-${index}`, ip }));
      const detections = await batch(engine, events);
      expect(detections).toHaveLength(1);
      expect(detections[0]).toMatchObject({
        ruleId: 'it-credential-stuffing',
        reasonCode: 'cardinality_reached',
        observedValue: 8,
        threshold: 8,
        key: { 'client.ip': ip },
        eventIds: ids(events),
        time: iso(7 * SECOND),
      });
      expect(detections[0]?.distinct?.values).toEqual(events.map((event) => event.event.actor.userId));
    });

    it('does not fire for the same user 8 times', async () => {
      const engine = engineFor(ruleSet(RULES.cardinality));
      const events = Array.from({ length: 8 }, (_, index) => failure(`evt-cs-000${index}`, index * SECOND, { userId: 'u-1', ip }));
      expect(await batch(engine, events)).toEqual([]);
    });

    it('does not fire when the distinct values span more than the window, even when one arrives late', async () => {
      // u-0..u-3 at 0-3s, u-4..u-7 at 12m, then u-0 again at 8m (late, within the allowed
      // lateness). No 10-minute window holds more than 5 distinct users.
      const engine = engineFor(ruleSet(RULES.cardinality));
      const early = Array.from({ length: 4 }, (_, index) => failure(`evt-cs-00${index}`, index * SECOND, { userId: `u-${index}`, ip }));
      const later = Array.from({ length: 4 }, (_, index) =>
        failure(`evt-cs-01${index}`, 12 * MINUTE + index * SECOND, { userId: `u-${index + 4}`, ip }),
      );
      const late = failure('evt-cs-0200', 8 * MINUTE, { userId: 'u-0', ip });
      const detections = (await oneByOne(engine, [...early, ...later, late])).flat();
      expect(detections.map((detection) => `${detection.observedValue} distinct users, ${detection.eventIds.length} events`)).toEqual([]);
    });
  });

  describe('sequence', () => {
    const ip = '198.51.100.30';

    it('fires on a step of 250 events (more than the 200 newest entries the state once read back), then the success', async () => {
      const engine = engineFor(ruleSet(RULES.sequence.replace('count: 5', 'count: 250')));
      const failures = Array.from({ length: 250 }, (_, index) => failure(`evt-sq-big-${index}`, index * SECOND, { userId: `u-${index}`, ip }));
      expect(await batch(engine, failures)).toEqual([]);
      const found = await batch(engine, [success('evt-sq-big-end', 251 * SECOND, { userId: 'u-0', ip })]);
      expect(found.map((detection) => detection.ruleId)).toEqual(['it-takeover-sequence']);
    });

    it('fires on 5 failures then a success from one IP, with the event ids in order', async () => {
      const engine = engineFor(ruleSet(RULES.sequence));
      const failures = Array.from({ length: 5 }, (_, index) => failure(`evt-sq-000${index}`, index * MINUTE, { userId: `u-${index}`, ip }));
      const last = success('evt-sq-0010', 5 * MINUTE, { userId: 'u-4', ip });
      const results = await oneByOne(engine, [...failures, last]);
      expect(results.map((found) => found.length)).toEqual([0, 0, 0, 0, 0, 1]);
      expect(results[5]?.[0]).toMatchObject({
        ruleId: 'it-takeover-sequence',
        ruleType: 'sequence',
        reasonCode: 'sequence_completed',
        observedValue: 6,
        key: { 'client.ip': ip },
        eventIds: ids([...failures, last]),
        window: { start: iso(0), end: iso(5 * MINUTE), durationMs: 5 * MINUTE },
      });
      expect(results[5]?.[0]?.reason).toContain(`IP ${ip}`);
    });

    it('does not fire on a success before the failures', async () => {
      const engine = engineFor(ruleSet(RULES.sequence));
      const first = success('evt-sq-0010', 0, { userId: 'u-1', ip });
      const failures = Array.from({ length: 5 }, (_, index) => failure(`evt-sq-000${index}`, (index + 1) * MINUTE, { userId: 'u-1', ip }));
      expect((await oneByOne(engine, [first, ...failures])).flat()).toEqual([]);
    });

    it('still sees the failures when the IP had many successful logins earlier in the window', async () => {
      // A busy egress IP (an office NAT): 200 successful logins, then 5 failures and a success.
      const engine = engineFor(ruleSet(RULES.sequence));
      const busy = Array.from({ length: 200 }, (_, index) => success(`evt-sq-busy-${index}`, index * SECOND, { userId: `u-${index}`, ip }));
      const failures = Array.from({ length: 5 }, (_, index) => failure(`evt-sq-000${index}`, 210 * SECOND + index * SECOND, { userId: 'u-9', ip }));
      const last = success('evt-sq-0010', 220 * SECOND, { userId: 'u-9', ip });
      const detections = await batch(engine, [...busy, ...failures, last]);
      expect(detections.map((detection) => detection.eventIds)).toEqual([ids([...failures, last])]);
    });
  });

  describe('new_value', () => {
    it('learns the first device, fires on a second one, and not on a repeat', async () => {
      const engine = engineFor(ruleSet(RULES.newDevice));
      const results = await oneByOne(engine, [
        deviceLogin('evt-nv-0001', 0, 'u-1', 'dev-a'),
        deviceLogin('evt-nv-0002', HOUR, 'u-1', 'dev-b'),
        deviceLogin('evt-nv-0003', 2 * HOUR, 'u-1', 'dev-a'),
        deviceLogin('evt-nv-0004', 3 * HOUR, 'u-1', 'dev-b'),
      ]);
      expect(results.map((found) => found.length)).toEqual([0, 1, 0, 0]);
      expect(results[1]?.[0]).toMatchObject({
        ruleId: 'it-new-device',
        ruleType: 'new_value',
        reasonCode: 'new_value',
        observedValue: 1,
        key: { 'actor.userId': 'u-1' },
        distinct: { field: 'device.deviceId', values: ['dev-b'] },
        eventIds: ['evt-nv-0002'],
      });
    });
  });

  describe('geo_velocity', () => {
    it('fires on London then Sydney 10 minutes later, with a sentence naming both', async () => {
      const engine = engineFor(ruleSet(RULES.travel));
      const london = success('evt-gv-0001', 0, { userId: 'u-1', ip: '81.2.69.142' }, LONDON);
      const sydney = success('evt-gv-0002', 10 * MINUTE, { userId: 'u-1', ip: '1.144.110.23' }, SYDNEY);
      const results = await oneByOne(engine, [london, sydney]);
      expect(results[0]).toEqual([]);
      expect(results[1]).toHaveLength(1);
      const detection = results[1]?.[0];
      expect(detection).toMatchObject({
        ruleId: 'it-impossible-travel',
        ruleType: 'geo_velocity',
        reasonCode: 'impossible_travel',
        threshold: 900,
        key: { 'actor.userId': 'u-1' },
        eventIds: ['evt-gv-0001', 'evt-gv-0002'],
        geo: { from: { city: 'London', ip: '81.2.69.142' }, to: { city: 'Sydney', ip: '1.144.110.23' } },
      });
      expect(detection?.observedValue).toBeGreaterThan(900);
      expect(detection?.reason).toContain('London');
      expect(detection?.reason).toContain('Sydney');
    });

    it.each([
      ['the same IP', '81.2.69.142', '81.2.69.142'],
      ['the same /24', '81.2.69.142', '81.2.69.77'],
      ['an allowlisted CIDR (second event)', '81.2.69.142', '203.0.113.7'],
      ['an allowlisted CIDR (first event)', '203.0.113.7', '81.2.69.142'],
    ])('never fires from %s', async (_label, fromIp, toIp) => {
      const engine = engineFor(ruleSet(RULES.travel));
      const results = await oneByOne(engine, [
        success('evt-gv-0001', 0, { userId: 'u-1', ip: fromIp }, LONDON),
        success('evt-gv-0002', 10 * MINUTE, { userId: 'u-1', ip: toIp }, SYDNEY),
      ]);
      expect(results.flat()).toEqual([]);
    });

    it('does not fire on London then Paris 3 hours later', async () => {
      const engine = engineFor(ruleSet(RULES.travel));
      const results = await oneByOne(engine, [
        success('evt-gv-0001', 0, { userId: 'u-1', ip: '81.2.69.142' }, LONDON),
        success('evt-gv-0002', 3 * HOUR, { userId: 'u-1', ip: '90.84.0.1' }, PARIS),
      ]);
      expect(results.flat()).toEqual([]);
    });
  });

  describe('detectedBy', () => {
    it.each(['one batch per event', 'one batch'])('fires the dependent sequence on a new device then a sensitive write (%s)', async (mode) => {
      const engine = engineFor(ruleSet(RULES.newDevice, RULES.newDeviceThenWrite));
      const events = [
        deviceLogin('evt-db-0001', 0, 'u-1', 'dev-a'),
        deviceLogin('evt-db-0011', 0, 'u-2', 'dev-c'),
        deviceLogin('evt-db-0002', MINUTE, 'u-1', 'dev-b'),
        deviceLogin('evt-db-0012', MINUTE, 'u-2', 'dev-c'),
        sensitiveWrite('evt-db-0003', 3 * MINUTE, 'u-1'),
        // u-2 writes from a known device: no new device, no sequence.
        sensitiveWrite('evt-db-0013', 3 * MINUTE, 'u-2'),
      ];
      const detections = mode === 'one batch' ? await batch(engine, events) : (await oneByOne(engine, events)).flat();
      expect(detections.map((detection) => [detection.ruleId, detection.eventIds])).toEqual([
        ['it-new-device', ['evt-db-0002']],
        ['it-new-device-then-write', ['evt-db-0002', 'evt-db-0003']],
      ]);
      expect(detections[1]?.key).toEqual({ 'actor.userId': 'u-1' });
    });

    it('runs dependent rules on every event of a batch that spans more than the allowed lateness (a replay)', async () => {
      const engine = engineFor(ruleSet(RULES.newDevice, RULES.newDeviceThenWrite));
      const detections = await batch(engine, [
        deviceLogin('evt-db-0001', 0, 'u-1', 'dev-a'),
        deviceLogin('evt-db-0002', MINUTE, 'u-1', 'dev-b'),
        sensitiveWrite('evt-db-0003', 3 * MINUTE, 'u-1'),
        // Later in the same batch, in order: an hour of history replayed at full speed.
        deviceLogin('evt-db-0021', HOUR, 'u-3', 'dev-x'),
      ]);
      expect(detections.map((detection) => [detection.ruleId, detection.eventIds])).toEqual([
        ['it-new-device', ['evt-db-0002']],
        ['it-new-device-then-write', ['evt-db-0002', 'evt-db-0003']],
      ]);
      expect(engine.stats().late).toBe(0);
    });
  });

  it('gives the same detection ids when the same input is replayed (fresh state each time)', async () => {
    const rules = ruleSet(RULES.threshold, RULES.cardinality, RULES.sequence, RULES.newDevice, RULES.travel, RULES.newDeviceThenWrite, RULES.jsonThreat);
    const ip = '198.51.100.40';
    const inputs = [
      ...Array.from({ length: 10 }, (_, index) => failure(`evt-rp-fail-${index}`, index * SECOND, { userId: index < 3 ? 'u-1' : `u-${index}`, ip })),
      success('evt-rp-0010', 20 * SECOND, { userId: 'u-1', ip }, LONDON),
      success('evt-rp-0011', 4 * MINUTE, { userId: 'u-1', ip: '1.144.110.23' }, SYDNEY),
      deviceLogin('evt-rp-0020', 0, 'u-2', 'dev-a'),
      deviceLogin('evt-rp-0021', MINUTE, 'u-2', 'dev-b'),
      sensitiveWrite('evt-rp-0022', 2 * MINUTE, 'u-2'),
      jsonThreat('evt-rp-0030', 3 * MINUTE, ip),
    ];
    const replay = async (): Promise<Detection[]> => {
      freshPrefix();
      return batch(engineFor(rules), inputs);
    };
    const first = await replay();
    const second = await replay();
    expect(new Set(first.map((detection) => detection.ruleId))).toEqual(
      new Set(['it-failures-per-user', 'it-credential-stuffing', 'it-takeover-sequence', 'it-new-device', 'it-impossible-travel', 'it-new-device-then-write', 'it-json-threat']),
    );
    expect(second.map((detection) => detection.id)).toEqual(first.map((detection) => detection.id));
    expect(second).toEqual(first);
  });

  describe('the same events in another order, within the allowed lateness (issue 15)', () => {
    /**
     * One key's events read from two partitions at different paces: each partition in event-time
     * order, one read ahead of the other. The detection fires at a different event in each order
     * and its state holds different events then; its id must not change.
     */
    const bothOrders = async (rules: RuleSet, ahead: readonly DetectionInput[], behind: readonly DetectionInput[]): Promise<Detection[][]> => {
      const runs: Detection[][] = [];
      for (const order of [[...ahead, ...behind], [...behind, ...ahead]]) {
        freshPrefix();
        runs.push((await oneByOne(engineFor(rules), order)).flat());
      }
      return runs;
    };
    const summary = (detections: readonly Detection[]): string[] => detections.map((detection) => `${detection.ruleId} ${detection.id}`);

    it('a late event in the batch after a firing: the batch suppresses by the window that fired, as the claim in Redis does, not by the event\'s time', async () => {
      const rules = ruleSet(RULES.threshold.replace('threshold: 3', 'threshold: 2'));
      const who = { userId: 'u-late-batch', ip: '198.51.100.61' };
      const x = failure('evt-lb-x', 59 * SECOND, who);
      const a = failure('evt-lb-a', 0, who);
      const c = failure('evt-lb-c', -50 * SECOND, who);
      const b = failure('evt-lb-b', -30 * SECOND, who);
      const counts: number[] = [];
      for (const batches of [[[x], [a, c, b]], [[x], [a], [c], [b]], [[c], [b], [a], [x]]]) {
        freshPrefix();
        const engine = engineFor(rules);
        let found = 0;
        for (const inputs of batches) found += (await batch(engine, inputs)).length;
        counts.push(found);
      }
      // However the four events are cut into batches: [-50 s, -30 s] and [0, 59 s] each fire once.
      expect(counts).toEqual([2, 2, 2]);
    });

    it('credential stuffing: one detection, the same id, whichever partition of the IP is read first', async () => {
      const ip = '198.51.100.50';
      // Partition a holds the oldest attempt; partition b alone reaches the 8 users.
      const a = Array.from({ length: 4 }, (_, index) => failure(`evt-or-a${index}`, index * 20 * SECOND, { userId: `a-${index}`, ip }));
      const b = Array.from({ length: 10 }, (_, index) => failure(`evt-or-b${index}`, (index + 1) * 10 * SECOND, { userId: `b-${index}`, ip }));
      const [aFirst, bFirst] = await bothOrders(ruleSet(RULES.cardinality), a, b);
      // It fired at a different event, holding different events, in each order (partition a read
      // first, b's attempt at 40 s completes the window that ends at a's last, at 60 s)...
      expect([aFirst, bFirst].map((found) => [found?.[0]?.time, found?.[0]?.window.end])).toEqual([
        [iso(40 * SECOND), iso(60 * SECOND)],
        [iso(80 * SECOND), iso(80 * SECOND)],
      ]);
      expect(aFirst?.[0]?.eventIds[0]).not.toBe(bFirst?.[0]?.eventIds[0]);
      // ...and is the same detection.
      expect(summary(bFirst ?? [])).toEqual(summary(aFirst ?? []));
      expect(aFirst).toHaveLength(1);
    });

    it('credential stuffing: the earlier half of a burst read after the later half, in separate batches, is the same one detection', async () => {
      const rules = ruleSet(RULES.cardinality);
      // Ten users from one IP, 10 s apart: the 8th (at 70 s) completes the window in order.
      const burst = Array.from({ length: 10 }, (_, index) => failure(`evt-lh-${index}`, index * 10 * SECOND, { userId: `u-${index}`, ip: '198.51.100.54' }));
      freshPrefix();
      const inOrder = (await oneByOne(engineFor(rules), burst)).flat();
      expect(inOrder.map((detection) => detection.time)).toEqual([iso(70 * SECOND)]);
      // The later half first (5 users: below the threshold), then the earlier half: each of its
      // events is older than everything stored, yet completes a window that ends after it.
      freshPrefix();
      const engine = engineFor(rules);
      const later = await batch(engine, burst.slice(5));
      const earlier = await batch(engine, burst.slice(0, 5));
      expect(later).toEqual([]);
      expect(summary(earlier)).toEqual(summary(inOrder));
      // Read one event per batch, the later half first: the same again.
      freshPrefix();
      const oneAtATime = (await oneByOne(engineFor(rules), [...burst.slice(5), ...burst.slice(0, 5)])).flat();
      expect(summary(oneAtATime)).toEqual(summary(inOrder));
    });

    it('credential stuffing: values spread wider than the window never fire, in either order, though a window either side holds them all', async () => {
      const ip = '198.51.100.55';
      // Four users in the first 30 s, four more from 10:01 to 10:29: within 10 minutes either side
      // of the 4th (at 30 s) there are 8, but no 10-minute window holds more than 5.
      const early = [0, 10, 20, 30].map((offset, index) => failure(`evt-sp-a${index}`, offset * SECOND, { userId: `a-${index}`, ip }));
      const late = [1, 11, 21, 29].map((offset, index) => failure(`evt-sp-b${index}`, 10 * MINUTE + offset * SECOND, { userId: `b-${index}`, ip }));
      // Lateness of 30 minutes: the early users, read last, are not too late for the rule's state.
      const options = { allowedLatenessMs: 30 * MINUTE };
      for (const order of [[...early, ...late], [...late, ...early]]) {
        freshPrefix();
        expect((await oneByOne(engineFor(ruleSet(RULES.cardinality), options), order)).flat()).toEqual([]);
      }
      freshPrefix();
      const engine = engineFor(ruleSet(RULES.cardinality), options);
      expect([...(await batch(engine, late)), ...(await batch(engine, early))]).toEqual([]);
      // Every event was evaluated against the rule's state (none skipped as too late).
      expect(engine.stats().byRule['it-credential-stuffing']?.evaluations).toBe(8);
    });

    it('clockBatch is the reading evaluateBatch takes: late events marked, and evaluating with it equals evaluating without (issue 15)', async () => {
      const user = { userId: 'u-cb', ip: '198.51.100.60' };
      // Three failures within a minute at 30:00, with one 28 minutes behind them in between.
      const events = [failure('evt-cb-0', 30 * MINUTE, user), failure('evt-cb-1', 30 * MINUTE + 10 * SECOND, user), failure('evt-cb-old', 2 * MINUTE, user), failure('evt-cb-2', 30 * MINUTE + 20 * SECOND, user)];
      const runs: { detections: string[]; late: number }[] = [];
      for (const read of ['with', 'without'] as const) {
        freshPrefix();
        const engine = engineFor(ruleSet(RULES.threshold));
        let detections: Detection[];
        if (read === 'with') {
          const clock = engine.clockBatch(events, 'p:0');
          expect(clock.late).toEqual([false, false, true, false]);
          // The watermark: the latest event time so far, which the old event does not move.
          expect(clock.nows.map((now) => now - (clock.nows[0] ?? 0))).toEqual([0, 10 * SECOND, 10 * SECOND, 20 * SECOND]);
          // A reading of another batch is refused, not misapplied.
          await expect(engine.evaluateBatch(events.slice(1), { clock })).rejects.toThrow('a clock reading of 4 events for a batch of 3');
          detections = await engine.evaluateBatch(events, { clock });
        } else {
          detections = await engine.evaluateBatch(events, { stream: 'p:0' });
        }
        runs.push({ detections: detections.map((detection) => `${detection.ruleId} ${detection.id}`), late: engine.stats().late });
      }
      expect(runs[0]?.detections).toHaveLength(1);
      expect(runs[0]?.late).toBe(1);
      expect(runs[1]).toEqual(runs[0]);

      // In order, 10 minutes apart: neither is late at its own reading, though the first would be
      // behind a reading taken after the second. evaluateBatch must use the reading it is given,
      // and a failed batch's reading, rewound, is read again the same.
      freshPrefix();
      const engine = engineFor(ruleSet(RULES.threshold));
      const spread = [failure('evt-cb-s0', 0, user), failure('evt-cb-s1', 10 * MINUTE, user)];
      const reading = engine.clockBatch(spread, 'p:1');
      expect(reading.late).toEqual([false, false]);
      expect(engine.clockBatch(spread, 'p:1').late).toEqual([true, false]);
      engine.rewind(engine.clockBatch(spread, 'p:1'));
      engine.rewind(reading);
      expect(engine.clockBatch(spread, 'p:1')).toEqual(reading);
      engine.rewind(reading);
      const clock = engine.clockBatch(spread, 'p:1');
      await engine.evaluateBatch(spread, { clock });
      expect(engine.stats().late).toBe(0);
      await expect(engine.evaluateBatch(spread, { clock, stream: 'p:2' })).rejects.toThrow('a clock reading of stream p:1 for stream p:2');
    });

    it('threshold and sequence: one detection each, the same id, whichever partition of the key is read first', async () => {
      const user = { userId: 'u-1', ip: '198.51.100.51' };
      // Six failures 10 s apart (three within a minute: the threshold rule; five: the sequence), then a success.
      const failures = Array.from({ length: 6 }, (_, index) => failure(`evt-or-f${index}`, index * 10 * SECOND, user));
      const last = success('evt-or-s0', 3 * MINUTE, user);
      // The threshold rule: the oldest failure read first, or last.
      const threshold = await bothOrders(ruleSet(RULES.threshold), failures.slice(0, 1), failures.slice(1));
      // The sequence: the newest failure read first, or after the success.
      const sequence = await bothOrders(ruleSet(RULES.sequence), [...failures.slice(0, 5), last], failures.slice(5));
      for (const [first, second] of [threshold, sequence]) {
        // Different events held, in each order...
        expect(first?.[0]?.eventIds[0]).not.toBe(second?.[0]?.eventIds[0]);
        // ...one detection, the same one.
        expect(first).toHaveLength(1);
        expect(summary(second ?? [])).toEqual(summary(first ?? []));
      }
    });

    it('a burst across a period boundary is one detection; a long attack is one per window, each its own id', async () => {
      const rules = ruleSet(RULES.cardinality);
      // Ten users from 9:09:20 to 9:10:50: the 10-minute periods turn at 9:10.
      const burst = Array.from({ length: 10 }, (_, index) => failure(`evt-bd-${index}`, 9 * MINUTE + 20 * SECOND + index * 10 * SECOND, { userId: `u-${index}`, ip: '198.51.100.52' }));
      const [forwards, backwards] = await bothOrders(rules, burst.filter((_, index) => index % 2 === 0), burst.filter((_, index) => index % 2 === 1));
      // One detection in either order, though its window began before the turn: each order fires
      // at the event that completes a window (9:10:10, 9:10:00), a window ending after it
      // (9:10:40, 9:10:50) once the late events are read.
      expect([forwards, backwards].map((found) => found?.map((detection) => [detection.time, detection.window.start, detection.window.end]))).toEqual([
        [[iso(10 * MINUTE + 10 * SECOND), iso(9 * MINUTE + 20 * SECOND), iso(10 * MINUTE + 40 * SECOND)]],
        [[iso(10 * MINUTE), iso(9 * MINUTE + 20 * SECOND), iso(10 * MINUTE + 50 * SECOND)]],
      ]);
      expect(summary(backwards ?? [])).toEqual(summary(forwards ?? []));
      // 35 minutes of one new user every 10 s from one IP.
      freshPrefix();
      const attack = Array.from({ length: 210 }, (_, index) => failure(`evt-la-${index}`, index * 10 * SECOND, { userId: `u-${index}`, ip: '198.51.100.53' }));
      const found = (await oneByOne(engineFor(rules), attack)).flat();
      expect(found.map((detection) => detection.time)).toEqual([iso(70 * SECOND), iso(10 * MINUTE + 70 * SECOND), iso(20 * MINUTE + 70 * SECOND), iso(30 * MINUTE + 70 * SECOND)]);
      expect(new Set(found.map((detection) => detection.id)).size).toBe(4);
    });
  });

  describe('Redis round trips', () => {
    it('makes one round trip for a batch of 100 events with no detections, and one more when something fires', async () => {
      const engine = engineFor(ruleSet(RULES.threshold, RULES.cardinality, RULES.sequence, RULES.newDevice, RULES.travel));
      const inputs = [
        ...Array.from({ length: 60 }, (_, index) => failure(`evt-rt-f${index}`, index * SECOND, { userId: `u-${index}`, ip: `198.51.${index}.1` })),
        ...Array.from({ length: 40 }, (_, index) => deviceLogin(`evt-rt-d${index}`, index * SECOND, `u-d${index}`, `dev-${index}`, `81.2.${index}.1`, LONDON)),
      ];
      expect(await batch(engine, inputs)).toEqual([]);
      // Every event went through at least one stateful rule, all in one pipeline.
      expect(engine.stats()).toMatchObject({ events: 100, detections: 0, roundTrips: 1, errors: 0 });
      expect(engine.stats().evaluations).toBeGreaterThanOrEqual(100);
      // Per rule, the same evaluations: every rule of the set had some, and they add up to the total.
      const byRule = engine.stats().byRule;
      expect(Object.keys(byRule).sort()).toEqual(['it-credential-stuffing', 'it-failures-per-user', 'it-impossible-travel', 'it-new-device', 'it-takeover-sequence']);
      expect(Object.values(byRule).reduce((sum, rule) => sum + rule.evaluations, 0)).toBe(engine.stats().evaluations);

      const burst = [0, 1, 2].map((index) => failure(`evt-rt-b${index}`, MINUTE + index * SECOND, { userId: 'u-burst', ip: '198.51.100.50' }));
      expect(await batch(engine, burst)).toHaveLength(1);
      // The state round trip, then the claim of the window that fired.
      expect(engine.stats().roundTrips).toBe(3);
    });

    it('makes one round trip for a batch with no detections under the default rule pack', async () => {
      const engine = engineFor(loadRuleSet([DEFAULT_RULES]));
      const inputs = [
        ...Array.from({ length: 98 }, (_, index) => failure(`evt-rt-f${index}`, index * SECOND, { userId: `u-${index}`, ip: `198.51.${index}.1` })),
        deviceLogin('evt-rt-d0001', 99 * SECOND, 'u-d1', 'dev-1'),
        // A payment by a user on a known (here: first) device: matches a step of the detectedBy rule.
        sensitiveWrite('evt-rt-w0001', 100 * SECOND, 'u-d1'),
      ];
      expect(await batch(engine, inputs)).toEqual([]);
      expect(engine.stats()).toMatchObject({ events: 100, detections: 0, errors: 0, roundTrips: 1 });
    });
  });

  describe('when Redis is unavailable', () => {
    let unreachable: Redis;

    beforeEach(() => {
      unreachable = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true, retryStrategy: () => null });
      unreachable.on('error', () => undefined);
    });

    afterEach(() => {
      unreachable.disconnect();
    });

    it("rejects the batch with a retriable StoreUnavailableError under 'pause' (the default)", async () => {
      const engine = engineFor(ruleSet(RULES.threshold, RULES.jsonThreat), { redis: unreachable });
      const evaluation = engine.evaluateBatch([failure('evt-un-0001', 0, { userId: 'u-1', ip: '198.51.100.60' })]);
      await expect(evaluation).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(evaluation).rejects.toMatchObject({ retriable: true, store: 'redis' });
    });

    it("goes on under 'skip': counts the skipped evaluations as degraded, and match rules still fire", async () => {
      const engine = engineFor(ruleSet(skipping(RULES.threshold), skipping(RULES.newDevice), RULES.jsonThreat), { redis: unreachable });
      const inputs = [
        failure('evt-un-0001', 0, { userId: 'u-1', ip: '198.51.100.60' }),
        failure('evt-un-0002', SECOND, { userId: 'u-1', ip: '198.51.100.60' }),
        deviceLogin('evt-un-0003', 2 * SECOND, 'u-1', 'dev-a'),
        jsonThreat('evt-un-0004', 3 * SECOND, '198.51.100.61'),
      ];
      const detections = await batch(engine, inputs);
      expect(detections.map((detection) => [detection.ruleId, detection.eventIds])).toEqual([['it-json-threat', ['evt-un-0004']]]);
      expect(engine.stats()).toMatchObject({ degraded: 3, errors: 0 });
      // Two failures skipped by the threshold rule, one login by the new-device rule; the match rule evaluated once per event.
      expect(engine.stats().byRule).toMatchObject({
        'it-failures-per-user': { degraded: 2, evaluations: 0 },
        'it-new-device': { degraded: 1, evaluations: 0 },
        'it-json-threat': { degraded: 0, errors: 0 },
      });
    });
  });

  it('produces, for every rule type, detections that validate against detectionSchema, and puts a TTL on every key', async () => {
    const engine = engineFor(ruleSet(RULES.threshold, RULES.cardinality, RULES.sequence, RULES.newDevice, RULES.travel, RULES.jsonThreat));
    const ip = '198.51.100.70';
    const inputs = [
      ...Array.from({ length: 10 }, (_, index) => failure(`evt-all-fail-${index}`, index * SECOND, { userId: index < 3 ? 'u-1' : `u-${index}`, ip })),
      success('evt-all-0010', 20 * SECOND, { userId: 'u-1', ip }, LONDON),
      success('evt-all-0011', 5 * MINUTE, { userId: 'u-1', ip: '1.144.110.23' }, SYDNEY),
      deviceLogin('evt-all-0020', 0, 'u-2', 'dev-a'),
      deviceLogin('evt-all-0021', MINUTE, 'u-2', 'dev-b'),
      jsonThreat('evt-all-0030', 3 * MINUTE, ip),
    ];
    const detections = await engine.evaluateBatch(inputs);
    expect(new Set(detections.map((detection) => detection.ruleType))).toEqual(
      new Set(['match', 'threshold', 'cardinality', 'sequence', 'new_value', 'geo_velocity']),
    );
    for (const detection of detections) expect(detectionSchema.parse(detection)).toEqual(detection);

    const keys = await keysUnder(prefix);
    expect(keys.length).toBeGreaterThan(0);
    const withoutTtl: string[] = [];
    for (const key of keys) if ((await redis.pttl(key)) <= 0) withoutTtl.push(key);
    expect(withoutTtl).toEqual([]);
  });

  describe('state across a stop (VIGIL_STATE_GRACE_MS)', () => {
    // The threshold rule with a one-second window, so a test can outlast its state.
    const shortWindow = RULES.threshold.replace('id: it-failures-per-user', 'id: it-grace-failures').replace('window: 1m', 'window: 1s');

    it('keeps a window and a firing claim for their event-time span plus the grace, 15 minutes by default', async () => {
      const user = { userId: 'u-grace-ttl', ip: '198.51.100.71' };
      const span = MINUTE + 5 * MINUTE; // the rule's window (and cooldown) plus the default lateness
      const fired = await engineFor(ruleSet(RULES.threshold)).evaluateBatch([failure('evt-gr-1', 0, user), failure('evt-gr-2', SECOND, user), failure('evt-gr-3', 2 * SECOND, user)]);
      expect(fired).toHaveLength(1);
      const keys = (await keysUnder(prefix)).filter((key) => key.includes('it-failures-per-user') && key.includes('u-grace-ttl'));
      expect(keys.map((key) => key.split(':').pop()).sort()).toEqual(['fired', 'window']);
      for (const key of keys) {
        const ttl = await redis.pttl(key);
        expect(ttl).toBeGreaterThan(span + 14 * MINUTE);
        expect(ttl).toBeLessThanOrEqual(span + 15 * MINUTE);
      }
    });

    it('comes back to a burst after a stop shorter than the grace, and forgets it after a longer one', async () => {
      // Two failures, then the pipeline stops (1.5 s of wall clock, no event time passes), then
      // the third failure, within the rule's 1 s window of event time.
      const run = async (userId: string, stateGraceMs: number): Promise<Detection[]> => {
        const engine = engineFor(ruleSet(shortWindow), { allowedLatenessMs: 0, stateGraceMs });
        const who = { userId, ip: '198.51.100.72' };
        expect(await engine.evaluateBatch([failure(`evt-${userId}-1`, 0, who), failure(`evt-${userId}-2`, 100, who)])).toEqual([]);
        await new Promise((resolve) => setTimeout(resolve, 1500));
        return engine.evaluateBatch([failure(`evt-${userId}-3`, 200, who)]);
      };
      const [kept, forgotten] = await Promise.all([run('u-grace-long', 10 * SECOND), run('u-grace-short', 100)]);
      expect(kept.map((detection) => detection.ruleId)).toEqual(['it-grace-failures']);
      expect(forgotten).toEqual([]);
    });
  });

  describe('a redelivered batch (at-least-once)', () => {
    it('re-emits the same detections with the same ids instead of losing them', async () => {
      const user = { userId: 'u-redelivered', ip: '198.51.100.9' };
      const inputs = [
        failure('evt-rd-1', 0, user),
        failure('evt-rd-2', 10 * SECOND, user),
        failure('evt-rd-3', 20 * SECOND, user),
        // The burst goes on past the threshold in the same chunk: a redo must still find the
        // window that fired first, not a fuller one ending later.
        failure('evt-rd-3b', 25 * SECOND, user),
        failure('evt-rd-3c', 28 * SECOND, user),
        deviceLogin('evt-rd-d1', 0, 'u-rd-dev', 'phone-1', '81.2.69.142', LONDON),
        deviceLogin('evt-rd-d2', 2 * MINUTE, 'u-rd-dev', 'laptop-2', '1.1.1.9', SYDNEY),
      ];
      const engine = engineFor(ruleSet(RULES.threshold, RULES.newDevice, RULES.travel));
      const first = await batch(engine, inputs);
      // The same chunk again: its offsets were not committed (indexing failed, a crash).
      const again = await batch(engine, inputs);
      expect(first.map((detection) => detection.ruleId).sort()).toEqual(['it-failures-per-user', 'it-impossible-travel', 'it-new-device']);
      expect(again.map((detection) => `${detection.ruleId} ${detection.id}`).sort()).toEqual(first.map((detection) => `${detection.ruleId} ${detection.id}`).sort());
      // A later event of the same window is still suppressed.
      expect(await batch(engine, [failure('evt-rd-4', 30 * SECOND, user)])).toEqual([]);
    });
  });
});
