import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { DetectionEngine, deleteKeysUnder, loadRuleSet, stateKey, type DetectionInput, type RuleSet } from '../../detectors';
import { eventSchema, type Detection } from '../../schemas';

/**
 * Surge rules and late events, on the real Redis (issue 15). A surge's minute used to close as
 * soon as a later minute of its key opened: the rest of the minute, arriving a moment later
 * (another producer in the partition, another partition), was dropped as `late_bucket`, counted
 * nowhere, and the flood it made was lost. Now a minute stays open while the allowed lateness
 * covers it: the late part counts in its own minute, which fires with the id the in-order run
 * gives; an event older than that is counted as late for the rule (stats and /metrics).
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MINUTE = 60_000;
const T0 = Date.parse('2026-03-02T09:00:00.000Z');
const RULE_ID = 'it-late-flood';
const KEY_TEXT = 'invocation.resource.api=accounts-v1,invocation.route=/accounts/:id';

const RULE_YAML = `
- id: ${RULE_ID}
  version: 1
  name: Request flood on an endpoint (test)
  description: Requests on one endpoint in a minute reach 5x the baseline.
  severity: high
  noun: requests
  type: surge
  filter: { field: family, equals: invocation }
  groupBy: [invocation.resource.api, invocation.route]
  bucket: 1m
  measure: { kind: count }
  minSamples: 3
  minVolume: 20
  minRatio: 5
`;

function call(id: string, minute: number, second: number): DetectionInput {
  const resource = { api: 'accounts-v1', method: 'GET', path: '/accounts/17' } as const;
  const event = eventSchema.parse({
    id,
    schemaVersion: 1,
    family: 'invocation',
    time: new Date(T0 + minute * MINUTE + second * 1000).toISOString(),
    source: { service: 'edge-gateway-eu', kind: 'gateway' },
    client: { ip: '10.1.2.3' },
    invocation: { resource, route: '/accounts/:id', status: 200, latencyMs: 12 },
  });
  return { event };
}

/** Minutes 0 to 5 and 7: four calls each; minute 6: a flood of sixty. */
const minuteOf = (minute: number): DetectionInput[] =>
  Array.from({ length: minute === 6 ? 60 : 4 }, (_, index) => call(`evt-call-${minute}-${index}`, minute, minute === 6 ? index : index * 15));
const baseline = [0, 1, 2, 3, 4, 5].flatMap(minuteOf);
const flood = minuteOf(6);
const after = minuteOf(7);

let redis: Redis;
let rules: RuleSet;
let folder: string;
const prefixes: string[] = [];

beforeAll(() => {
  redis = new Redis(REDIS_URL);
  folder = mkdtempSync(join(tmpdir(), 'vigil-surge-late-'));
  writeFileSync(join(folder, 'flood.yaml'), RULE_YAML);
  rules = loadRuleSet([folder]);
});

afterAll(async () => {
  for (const prefix of prefixes) await deleteKeysUnder(redis, prefix);
  await redis.quit();
  rmSync(folder, { recursive: true, force: true });
});

function engine(): { engine: DetectionEngine; prefix: string } {
  const prefix = `it-surge-late-${randomBytes(4).toString('hex')}`;
  prefixes.push(prefix);
  // Event time throughout, as a replay does; the default allowed lateness (5 minutes).
  return { engine: new DetectionEngine({ redis, rules, keyPrefix: prefix, clock: 'watermark' }), prefix };
}

/** Feeds each step's events in batches of ten to its stream; the rule's detections. */
async function run(target: DetectionEngine, steps: { stream: string; inputs: readonly DetectionInput[] }[]): Promise<Detection[]> {
  const found: Detection[] = [];
  for (const { stream, inputs } of steps) {
    for (let start = 0; start < inputs.length; start += 10) {
      found.push(...(await target.evaluateBatch(inputs.slice(start, start + 10), { stream })).filter((detection) => detection.ruleId === RULE_ID));
    }
  }
  return found;
}

describe('surge rules accept events within the allowed lateness', () => {
  let expected: Detection[];
  let inOrderStats: unknown;

  beforeAll(async () => {
    const first = engine().engine;
    expected = await run(first, [{ stream: 'p0', inputs: [...baseline, ...flood, ...after] }]);
    inOrderStats = first.stats();
  });

  it('fires once for the flood minute in order', () => {
    expect(inOrderStats).toMatchObject({ errors: 0 });
    expect(expected).toHaveLength(1);
    expect(expected[0]?.window.start).toBe(new Date(T0 + 6 * MINUTE).toISOString());
  });

  it('fires with the same id when most of the flood minute arrives after the next minute opened (one partition)', async () => {
    const { engine: target } = engine();
    const found = await run(target, [{ stream: 'p0', inputs: [...baseline, ...flood.slice(0, 10), ...after, ...flood.slice(10)] }]);
    expect(found.map((detection) => detection.id)).toEqual(expected.map((detection) => detection.id));
    expect(found).toHaveLength(1);
    expect(target.stats().late).toBe(0);
  });

  it('fires with the same id when the next minute comes from another partition first', async () => {
    const { engine: target } = engine();
    const found = await run(target, [
      { stream: 'p0', inputs: [...baseline, ...flood.slice(0, 10)] },
      { stream: 'p1', inputs: after },
      { stream: 'p0', inputs: flood.slice(10) },
    ]);
    expect(found.map((detection) => detection.id)).toEqual(expected.map((detection) => detection.id));
    expect(found).toHaveLength(1);
  });

  it('fires with the same id when each block of three minutes arrives newest first', async () => {
    const minutes = [[0, 1, 2], [3, 4, 5], [6, 7]].flatMap((block) => [...block].reverse());
    const found = await run(engine().engine, [{ stream: 'p0', inputs: minutes.flatMap(minuteOf) }]);
    expect(found.map((detection) => detection.id)).toEqual(expected.map((detection) => detection.id));
    expect(found).toHaveLength(1);
  });

  it("counts an event older than the key's open minutes as late for the rule, and keeps a bounded number of minutes open", async () => {
    const { engine: target, prefix } = engine();
    // Partition p0 runs to minute 13: minutes up to 7 are folded into the baseline (5 minutes of lateness).
    await run(target, [{ stream: 'p0', inputs: [...baseline, ...after, call('evt-call-13', 13, 0)] }]);
    // Partition p1 is at minute 6: not late for the engine (its own clock), too late for the key's state.
    await run(target, [{ stream: 'p1', inputs: [call('evt-call-late', 6, 30)] }]);
    expect(target.stats().late).toBe(0);
    expect(target.stats().byRule[RULE_ID]).toMatchObject({ late: 1 });
    const fields = Object.keys(await redis.hgetall(stateKey(prefix, RULE_ID, KEY_TEXT, 'surge')));
    expect(fields.filter((field) => field.startsWith('n:'))).toEqual(['n:' + String(Math.floor(T0 / MINUTE) + 13)]);
  });
});
