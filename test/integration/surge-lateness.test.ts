import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { DetectionEngine, deleteKeysUnder, loadRuleSet, stateKey, type DetectionInput, type RuleSet } from '../../detectors';
import { eventSchema, type Detection } from '../../schemas';

/**
 * Surge rules and the order events arrive in, on the real Redis (issue 15). Within the allowed
 * lateness, the same events give the same surge detections whatever their order: a minute
 * meets the baseline folded through six minutes before it (5 minutes of lateness + 1), whose
 * minutes are complete in every order, and a rule whose checks can go down as a minute fills
 * (events per source, here) judges the minute once, complete, when the lateness has passed it.
 * Before version 5 of surgeTick, a minute was judged "so far" against the minutes before it as
 * they stood: the flood minute read before the end of the minute before it met a lower baseline
 * and fired at the edge of minRatio where the in-order run did not, and a minute whose few-IP
 * part came first looked concentrated before its spread-out part arrived. An event older than
 * the key's open minutes is counted as late for the rule (stats and /metrics).
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MINUTE = 60_000;
const T0 = Date.parse('2026-03-02T09:00:00.000Z');
const COUNT_RULE = 'it-order-count';
const SOURCES_RULE = 'it-order-sources';
const A = '/accounts/:id';
const B = '/orders/:id';
const keyText = (route: string): string => `invocation.resource.api=accounts-v1,invocation.route=${route}`;

const rule = (id: string, extra: string): string => `
- id: ${id}
  version: 1
  name: Request flood on an endpoint (${id})
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
${extra}`;

const RULES_YAML = rule(COUNT_RULE, '') + rule(SOURCES_RULE, '  concentration: { field: client.ip, minPerSource: 5 }\n');

function call(id: string, route: string, time: number, ip: string): DetectionInput {
  const event = eventSchema.parse({
    id,
    schemaVersion: 1,
    family: 'invocation',
    time: new Date(time).toISOString(),
    source: { service: 'edge-gateway-eu', kind: 'gateway' },
    client: { ip },
    invocation: { resource: { api: 'accounts-v1', method: 'GET', path: route === A ? '/accounts/17' : '/orders/9' }, route, status: 200, latencyMs: 12 },
  });
  return { event };
}

/**
 * One minute of both endpoints. Usually four calls each. Endpoint A: minute 11 a bump of 19
 * (under minVolume, it never fires itself), minute 12 a flood of 24 from one IP: 6x the steady
 * 4, but only 4.4x a baseline that has folded the bump in (4 + 0.1 x 15 = 5.5), so the old
 * "so far" baseline fired only when minute 12 was read before minute 11. Endpoint B: minute 12 is
 * 40 calls from two IPs, then 30 from thirty IPs: 70 from 32 IPs in all, spread out (2.2 per IP),
 * though the first 20 alone look concentrated.
 */
function minute(m: number): DetectionInput[] {
  const at = (index: number, count: number): number => T0 + m * MINUTE + Math.floor((index * MINUTE) / count);
  const a = m === 11 ? 19 : m === 12 ? 24 : 4;
  const events = Array.from({ length: a }, (_, index) => call(`evt-a-${m}-${index}`, A, at(index, a), m === 12 ? '203.0.113.7' : `10.1.2.${index}`));
  const b = m === 12 ? 70 : 4;
  for (let index = 0; index < b; index++) {
    const ip = m !== 12 ? `10.2.0.${index}` : index < 40 ? `203.0.113.${20 + (index % 2)}` : `198.51.100.${index}`;
    events.push(call(`evt-b-${m}-${index}`, B, at(index, b), ip));
  }
  // Both endpoints' calls of the minute in event-time order.
  return events.sort((x, y) => x.event.time.localeCompare(y.event.time) || x.event.id.localeCompare(y.event.id));
}

const MINUTES = 20;
const all = Array.from({ length: MINUTES }, (_, m) => m);

let redis: Redis;
let rules: RuleSet;
let folder: string;
const prefixes: string[] = [];

beforeAll(() => {
  redis = new Redis(REDIS_URL);
  folder = mkdtempSync(join(tmpdir(), 'vigil-surge-order-'));
  writeFileSync(join(folder, 'flood.yaml'), RULES_YAML);
  rules = loadRuleSet([folder]);
});

afterAll(async () => {
  for (const prefix of prefixes) await deleteKeysUnder(redis, prefix);
  await redis.quit();
  rmSync(folder, { recursive: true, force: true });
});

function engine(): { engine: DetectionEngine; prefix: string } {
  const prefix = `it-surge-order-${randomBytes(4).toString('hex')}`;
  prefixes.push(prefix);
  // Event time throughout, as a replay does; the default allowed lateness (5 minutes).
  return { engine: new DetectionEngine({ redis, rules, keyPrefix: prefix, clock: 'watermark' }), prefix };
}

type Step = { stream: string; inputs: readonly DetectionInput[] };

/** Feeds each step's events in batches of ten to its stream; the surge detections. */
async function run(target: DetectionEngine, steps: Step[]): Promise<Detection[]> {
  const found: Detection[] = [];
  for (const { stream, inputs } of steps) {
    for (let start = 0; start < inputs.length; start += 10) {
      found.push(...(await target.evaluateBatch(inputs.slice(start, start + 10), { stream })));
    }
  }
  return found;
}

const ids = (detections: readonly Detection[]): string[] =>
  detections.map((detection) => `${detection.ruleId} ${detection.key['invocation.route']} ${detection.window.start} ${detection.id} ${detection.judgedAt ?? '-'}`).sort();

/** The orders: every one within the allowed lateness of 5 minutes. */
const ORDERS: Record<string, () => Step[]> = {
  // Two partitions (the calls split by position), each block of three minutes of p0 read before p1's.
  "one partition's minutes read last": () =>
    [0, 3, 6, 9, 12, 15, 18].flatMap((first) => {
      const block = all.filter((m) => m >= first && m < first + 3).flatMap(minute);
      return [
        { stream: 'p0', inputs: block.filter((_, index) => index % 2 === 0) },
        { stream: 'p1', inputs: block.filter((_, index) => index % 2 === 1) },
      ];
    }),
  // Minutes 13 and 14 first, then the flood minute, then the bump before it: the old edge flip.
  "earlier minutes' events after later minutes": () => [{ stream: 'p0', inputs: [...all.slice(0, 11), 13, 14, 12, 11, ...all.slice(15)].flatMap(minute) }],
  // The spread-out part of the flood minute before its few-IP part.
  'each minute newest first': () => [{ stream: 'p0', inputs: all.flatMap((m) => minute(m).reverse()) }],
  // A later minute from another partition before the rest of the flood minute.
  'the next minute from another partition first': () => [
    { stream: 'p0', inputs: [...all.slice(0, 12).flatMap(minute), ...minute(12).slice(0, 30)] },
    { stream: 'p1', inputs: minute(13) },
    { stream: 'p0', inputs: [...minute(12).slice(30), ...all.slice(14).flatMap(minute)] },
  ],
};

describe('surge rules give the same detections in any order within the allowed lateness', () => {
  let expected: Detection[];
  let inOrder: DetectionEngine;

  beforeAll(async () => {
    inOrder = engine().engine;
    expected = await run(inOrder, [{ stream: 'p0', inputs: all.flatMap(minute) }]);
  });

  it('in order: the count rule fires on both flood minutes, the per-source rule on the one from one IP, complete', () => {
    expect(inOrder.stats()).toMatchObject({ errors: 0, late: 0 });
    const flood = new Date(T0 + 12 * MINUTE).toISOString();
    expect(expected.map((detection) => [detection.ruleId, detection.key['invocation.route'], detection.window.start]).sort()).toEqual(
      [
        [COUNT_RULE, A, flood],
        [COUNT_RULE, B, flood],
        [SOURCES_RULE, A, flood],
      ].sort(),
    );
    // Judged complete: the per-source detection names the flood minute's last call and its 24 calls.
    const sources = expected.find((detection) => detection.ruleId === SOURCES_RULE);
    expect(sources).toMatchObject({ observedValue: 24, eventIds: ['evt-a-12-23'], time: new Date(T0 + 12 * MINUTE + Math.floor((23 * MINUTE) / 24)).toISOString() });
    // Decided when the lateness had passed the minute's end, whichever event closed it: the alerter folds it then.
    expect(sources?.judgedAt).toBe(new Date(T0 + 13 * MINUTE + 5 * MINUTE).toISOString());
    // The count rule fires as its minute crosses: decided at its time.
    for (const detection of expected.filter((candidate) => candidate.ruleId === COUNT_RULE)) expect(detection.judgedAt).toBeUndefined();
  });

  it.each(Object.keys(ORDERS))('gives the same detection ids when %s', async (order) => {
    const { engine: target } = engine();
    const found = await run(target, (ORDERS[order] as () => Step[])());
    expect(ids(found)).toEqual(ids(expected));
    expect(target.stats()).toMatchObject({ errors: 0, late: 0 });
    for (const id of [COUNT_RULE, SOURCES_RULE]) expect(target.stats().byRule[id]?.late ?? 0).toBe(0);
  });

  it("counts an event older than the key's open minutes as late for the rule, and keeps a bounded number of minutes and baselines", async () => {
    const { engine: target, prefix } = engine();
    // Partition p0 runs to minute 19: minutes up to 13 are folded into the baseline (5 minutes of lateness).
    await run(target, [{ stream: 'p0', inputs: all.flatMap(minute) }]);
    // Partition p1 is at minute 12: not late for the engine (its own clock), too late for the key's state.
    await run(target, [{ stream: 'p1', inputs: [call('evt-late', A, T0 + 12 * MINUTE + 30_000, '10.9.9.9')] }]);
    expect(target.stats().late).toBe(0);
    expect(target.stats().byRule[COUNT_RULE]).toMatchObject({ late: 1 });
    expect(target.stats().byRule[SOURCES_RULE]).toMatchObject({ late: 1 });
    const fields = Object.keys(await redis.hgetall(stateKey(prefix, COUNT_RULE, keyText(A), 'surge')));
    const first = Math.floor(T0 / MINUTE);
    // Open: minutes 14 to 19; baselines kept: after minutes 7 to 13 (lag 6 + 1), what those open minutes meet.
    expect(fields.filter((field) => field.startsWith('n:')).sort()).toEqual([14, 15, 16, 17, 18, 19].map((m) => `n:${first + m}`));
    expect(fields.filter((field) => field.startsWith('p:')).sort()).toEqual([7, 8, 9, 10, 11, 12, 13].map((m) => `p:${first + m}`));
  });
});
