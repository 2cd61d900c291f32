import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { DetectionEngine, deleteKeysUnder, loadRuleSet, type DetectionEngineOptions, type DetectionInput, type InputGeo } from '../../detectors';
import { eventSchema, type Detection } from '../../schemas';

/**
 * Impossible travel in any arrival order, with the default rule pack on the real Redis: a
 * traveller's hour read in order, newest first, and as a backlog whose device topic is read ahead
 * of its policy topic gives one detection, with one id. Before locationAdd-2 compared an event
 * with its neighbours in event time, each older event was compared with the newest location
 * stored and fired (issue 15: 208 detections for one traveller).
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DEFAULT_RULES = join(__dirname, '..', '..', 'detectors', 'rules', 'default');
const MINUTE = 60_000;
const T0 = Date.parse('2026-03-02T09:00:00.000Z');
const rules = loadRuleSet([DEFAULT_RULES]);

const LONDON: InputGeo = { lat: 51.5074, lon: -0.1278, accuracyKm: 10, country: 'GB', city: 'London', precision: 'city' };
const SYDNEY: InputGeo = { lat: -33.8688, lon: 151.2093, accuracyKm: 10, country: 'AU', city: 'Sydney', precision: 'city' };
const MOSCOW: InputGeo = { lat: 55.7558, lon: 37.6173, accuracyKm: 10, country: 'RU', city: 'Moscow', precision: 'city' };
const resource = { api: 'accounts-v1', method: 'POST', path: '/login' } as const;

function login(id: string, minute: number, ip: string, geo: InputGeo, outcome: 'pass' | 'fail' = 'pass'): DetectionInput {
  const event = eventSchema.parse({
    id,
    schemaVersion: 1,
    family: 'policy',
    time: new Date(T0 + minute * MINUTE).toISOString(),
    source: { service: 'edge-gateway-eu', kind: 'gateway' },
    actor: { userId: 'u-42' },
    client: { ip },
    policy: { kind: 'authn', name: 'verify-password', outcome, ...(outcome === 'fail' ? { reason: 'invalid_credentials' } : {}), group: 'accounts', resource },
  });
  return { event, geo, ipScope: 'public' };
}

function deviceLogin(id: string, minute: number, ip: string, geo: InputGeo): DetectionInput {
  const event = eventSchema.parse({
    id,
    schemaVersion: 1,
    family: 'device',
    time: new Date(T0 + minute * MINUTE).toISOString(),
    source: { service: 'mobile-bff', kind: 'service' },
    actor: { userId: 'u-42' },
    client: { ip },
    device: { deviceId: 'phone-1', type: 'mobile', ip, action: 'login' },
  });
  return { event, geo, ipScope: 'public' };
}

/**
 * The hour: signed in from London every five minutes; an attacker typing the user's name from
 * Moscow (failed, so it proves nothing); the user's phone signs in from Sydney at minute 30 and
 * the user's requests follow from there.
 */
const policyTopic: DetectionInput[] = [
  ...[0, 5, 10, 15, 20].map((minute) => login(`evt-lon-${minute}`, minute, '81.2.69.142', LONDON)),
  login('evt-mow-12', 12, '5.5.5.5', MOSCOW, 'fail'),
  ...[31, 33, 35].map((minute) => login(`evt-syd-${minute}`, minute, '1.144.110.23', SYDNEY)),
].sort((a, b) => Date.parse(a.event.time) - Date.parse(b.event.time));
const deviceTopic: DetectionInput[] = [deviceLogin('evt-phone-30', 30, '1.144.110.23', SYDNEY)];
const inOrder = [...policyTopic, ...deviceTopic].sort((a, b) => Date.parse(a.event.time) - Date.parse(b.event.time));

let redis: Redis;
const prefixes: string[] = [];

beforeAll(() => {
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  for (const prefix of prefixes) await deleteKeysUnder(redis, prefix);
  await redis.quit();
});

function engine(options: Partial<DetectionEngineOptions> = {}): DetectionEngine {
  const keyPrefix = `it-travel-${randomBytes(4).toString('hex')}`;
  prefixes.push(keyPrefix);
  return new DetectionEngine({ redis, rules, keyPrefix, clock: 'watermark', ...options });
}

/** Feeds batches of `size` from each stream in turn; the impossible-travel detections. */
async function run(target: DetectionEngine, streams: { stream: string; inputs: readonly DetectionInput[]; size: number }[]): Promise<Detection[]> {
  const found: Detection[] = [];
  for (const { stream, inputs, size } of streams) {
    for (let start = 0; start < inputs.length; start += size) {
      const detections = await target.evaluateBatch(inputs.slice(start, start + size), { stream });
      found.push(...detections.filter((detection) => detection.ruleId === 'impossible-travel'));
    }
  }
  return found;
}

describe('impossible travel in any arrival order (default rule pack)', () => {
  let expected: Detection[];

  beforeAll(async () => {
    expected = await run(engine(), [{ stream: 'live', inputs: inOrder, size: 1 }]);
  });

  it('fires once in order: London (minute 20) to Sydney (minute 30), not from the failed logins typed in Moscow', () => {
    expect(expected).toHaveLength(1);
    expect(expected[0]?.eventIds).toEqual(['evt-lon-20', 'evt-phone-30']);
    expect(expected[0]?.key).toEqual({ 'actor.userId': 'u-42' });
  });

  it('fires once with the same id when the hour arrives newest first', async () => {
    // A replay of stored events in reverse: lateness is measured against the newest, so it is
    // allowed the whole hour here.
    const reversed = await run(engine({ allowedLatenessMs: 60 * MINUTE }), [{ stream: 'replay', inputs: [...inOrder].reverse(), size: 2 }]);
    expect(reversed.map((detection) => detection.id)).toEqual([expected[0]?.id]);
  });

  it('fires once with the same id when the device topic is read ahead of the policy topic', async () => {
    const found = await run(engine(), [
      { stream: 'device-0', inputs: deviceTopic, size: 10 },
      { stream: 'policy-0', inputs: policyTopic, size: 2 },
    ]);
    expect(found.map((detection) => detection.id)).toEqual([expected[0]?.id]);
    // Found from the place left (London, minute 0), it still happened at the arrival, as in order.
    expect(found[0]?.time).toBe(expected[0]?.time);
    expect(found[0]?.eventIds).toEqual(['evt-lon-0', 'evt-phone-30']);
  });

  it('finds it again with the same id when the batch that found it is delivered again (at least once)', async () => {
    const backlog = engine();
    await run(backlog, [{ stream: 'device-0', inputs: deviceTopic, size: 10 }]);
    const first = await run(backlog, [{ stream: 'policy-0', inputs: policyTopic.slice(0, 2), size: 2 }]);
    const again = await run(backlog, [{ stream: 'policy-0', inputs: policyTopic.slice(0, 2), size: 2 }]);
    const rest = await run(backlog, [{ stream: 'policy-0', inputs: policyTopic.slice(2), size: 2 }]);
    expect(first.map((detection) => detection.id)).toEqual([expected[0]?.id]);
    expect(again.map((detection) => detection.id)).toEqual([expected[0]?.id]);
    expect(rest).toEqual([]);
  });

  it('fires both legs, with the in-order ids, for a late event far from two neighbours close to each other', async () => {
    const other = (input: DetectionInput): DetectionInput => ({ ...input, event: { ...input.event, id: `${input.event.id}-b`, actor: { userId: 'u-43' } } });
    const there = [login('evt-lon-0', 0, '81.2.69.142', LONDON), login('evt-syd-30', 30, '1.144.110.23', SYDNEY), login('evt-lon-60', 60, '81.2.70.1', LONDON)].map(other);
    const live = await run(engine(), [{ stream: 'live', inputs: there, size: 1 }]);
    expect(live.map((detection) => detection.eventIds)).toEqual([
      ['evt-lon-0-b', 'evt-syd-30-b'],
      ['evt-syd-30-b', 'evt-lon-60-b'],
    ]);
    const late = await run(engine({ allowedLatenessMs: 60 * MINUTE }), [{ stream: 'replay', inputs: [there[0], there[2], there[1]] as DetectionInput[], size: 1 }]);
    expect(late.map((detection) => detection.id)).toEqual(live.map((detection) => detection.id));
  });

  it('fires once with the same id whatever the batch size', async () => {
    const found = await run(engine(), [{ stream: 'live', inputs: inOrder, size: 50 }]);
    expect(found.map((detection) => detection.id)).toEqual([expected[0]?.id]);
  });
});
