import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { DetectionEngine, deleteKeysUnder, loadRuleSet, type DetectionInput, type RuleSet } from '../../detectors';
import { eventSchema, type Detection } from '../../schemas';

/**
 * A surge rule judged on complete buckets (a ratio: error-surge-per-endpoint's kind) judges a
 * minute once, in the call that folds it into the baseline for good. When the batch holding
 * that call fails after its state round trip (the claim round trip, the chunk's indexing) and is
 * redone, the redo's call folds nothing: before, the minute was never judged again and its
 * detection was lost. The engine now hands the folded minute to the redo.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MINUTE = 60_000;
const T0 = Date.parse('2026-03-02T09:00:00.000Z');
const RULE = 'it-error-surge';

const RULES_YAML = `
- id: ${RULE}
  version: 1
  name: Error surge on an endpoint
  description: The share of 5xx answers on one endpoint in a minute reaches 5x its usual share.
  severity: high
  noun: 5xx answers
  type: surge
  filter: { field: family, equals: invocation }
  groupBy: [invocation.resource.api, invocation.route]
  bucket: 1m
  measure: { kind: ratio, numerator: { field: invocation.status, gte: 500 } }
  minSamples: 3
  minVolume: 5
  minRatio: 5
  baselineFloor: 0.02
`;

let redis: Redis;
let rules: RuleSet;
let folder: string;
const prefixes: string[] = [];
let serial = 0;

beforeAll(() => {
  redis = new Redis(REDIS_URL);
  folder = mkdtempSync(join(tmpdir(), 'vigil-surge-redo-'));
  writeFileSync(join(folder, 'surge.yaml'), RULES_YAML);
  rules = loadRuleSet([folder]);
});

afterAll(async () => {
  for (const prefix of prefixes) await deleteKeysUnder(redis, prefix);
  await redis.quit();
  rmSync(folder, { recursive: true, force: true });
});

function call(time: number, status: number, route = '/orders/:id'): DetectionInput {
  serial++;
  const event = eventSchema.parse({
    id: `evt-redo-${String(serial).padStart(6, '0')}`,
    schemaVersion: 1,
    family: 'invocation',
    time: new Date(time).toISOString(),
    source: { service: 'edge-gateway-eu', kind: 'gateway' },
    client: { ip: `8.8.4.${serial % 200}` },
    invocation: { resource: { api: 'orders-v1', method: 'GET', path: route === '/orders/:id' ? '/orders/9' : '/carts/9' }, route, status, latencyMs: 12 },
  });
  return { event };
}

/** An engine on a prefix of its own, fed 8 quiet minutes (one 5xx in ten) and a minute of 5xx only; the chunk that closes that minute. */
async function primed(client: Redis): Promise<{ engine: DetectionEngine; closing: DetectionInput[] }> {
  const prefix = `it-surge-redo-${randomBytes(4).toString('hex')}`;
  prefixes.push(prefix);
  const engine = new DetectionEngine({ redis: client, rules, keyPrefix: prefix, clock: 'watermark', allowedLatenessMs: MINUTE });
  for (let m = 0; m < 8; m++) {
    expect(await engine.evaluateBatch(Array.from({ length: 10 }, (_, i) => call(T0 + m * MINUTE + i * 1000, i === 0 ? 500 : 200)))).toEqual([]);
  }
  expect(await engine.evaluateBatch(Array.from({ length: 30 }, (_, i) => call(T0 + 8 * MINUTE + i * 1000, 503)))).toEqual([]);
  // Events two minutes on: the allowed lateness (a minute) has passed minute 8, which this chunk folds.
  return { engine, closing: Array.from({ length: 3 }, (_, i) => call(T0 + 10 * MINUTE + 5000 + i * 1000, 200)) };
}

describe('a surge rule judged on complete minutes, when the batch that closes the minute is redone', () => {
  it('fires when the minute closes, once (the control)', async () => {
    const { engine, closing } = await primed(redis);
    const found = await engine.evaluateBatch(closing, { clock: engine.clockBatch(closing) });
    expect(found.map((detection) => detection.ruleId)).toEqual([RULE]);
  });

  it('still fires on the redo when the claim round trip failed the first time', async () => {
    const client = new Redis(REDIS_URL);
    try {
      const { engine, closing } = await primed(client);
      const control = await primed(redis);
      const expected = await control.engine.evaluateBatch(control.closing, { clock: control.engine.clockBatch(control.closing) });
      // The next pipeline after the state round trip (the claims) fails, as a connection reset would.
      const pipeline = client.pipeline.bind(client);
      let trips = 0;
      client.pipeline = ((...args: Parameters<typeof pipeline>) => {
        const made = pipeline(...args);
        if (++trips === 2) made.exec = () => Promise.reject(new Error('ECONNRESET (injected by the test)'));
        return made;
      });
      const clock = engine.clockBatch(closing);
      await expect(engine.evaluateBatch(closing, { clock })).rejects.toThrow();
      expect(trips).toBe(2);
      client.pipeline = pipeline;
      engine.rewind(clock);
      const redone = await engine.evaluateBatch(closing, { clock: engine.clockBatch(closing) });
      expect(redone.map((detection: Detection) => detection.ruleId)).toEqual([RULE]);
      expect(redone[0]?.window).toEqual(expected[0]?.window);
      expect(redone[0]?.observedValue).toBe(expected[0]?.observedValue);
    } finally {
      client.disconnect();
    }
  });

  it('fires again, with the same id, when the chunk failed after the engine (its indexing), and not on a batch that was not rewound', async () => {
    const { engine, closing } = await primed(redis);
    const clock = engine.clockBatch(closing);
    const first = await engine.evaluateBatch(closing, { clock });
    expect(first).toHaveLength(1);
    engine.rewind(clock);
    const redone = await engine.evaluateBatch(closing, { clock: engine.clockBatch(closing) });
    expect(redone.map((detection) => detection.id)).toEqual(first.map((detection) => detection.id));
    // Done with: the next chunk of the stream judges nothing again.
    const next = [call(T0 + 10 * MINUTE + 20_000, 200)];
    expect(await engine.evaluateBatch(next, { clock: engine.clockBatch(next) })).toEqual([]);
  });

  it('judges the minute with the item that folded it, not the first of its key in the redo (a chunk across two minutes)', async () => {
    const { engine } = await primed(redis);
    // Minute 9's events fold nothing yet; minute 10's fold minute 8: the second item of the key judges it.
    const across = [call(T0 + 9 * MINUTE + 58_000, 200), call(T0 + 10 * MINUTE + 1000, 200)];
    const clock = engine.clockBatch(across);
    const first = await engine.evaluateBatch(across, { clock });
    expect(first.map((detection) => detection.ruleId)).toEqual([RULE]);
    engine.rewind(clock);
    const redone = await engine.evaluateBatch(across, { clock: engine.clockBatch(across) });
    expect(redone.map((detection) => detection.id)).toEqual(first.map((detection) => detection.id));
  });

  it('keeps the minute for the redo when the stream\'s next batch holds no event of its key', async () => {
    const { engine, closing } = await primed(redis);
    const clock = engine.clockBatch(closing);
    const first = await engine.evaluateBatch(closing, { clock });
    engine.rewind(clock);
    // The redo cut smaller (fetching ahead, alignment): another endpoint's event first.
    const other = [call(T0 + 10 * MINUTE + 4000, 200, '/carts/:id')];
    expect(await engine.evaluateBatch(other, { clock: engine.clockBatch(other) })).toEqual([]);
    const redone = await engine.evaluateBatch(closing, { clock: engine.clockBatch(closing) });
    expect(redone.map((detection) => detection.id)).toEqual(first.map((detection) => detection.id));
  });

  it('forgets what it kept for a redo on a new assignment (the partition\'s new owner redoes it)', async () => {
    const { engine, closing } = await primed(redis);
    const clock = engine.clockBatch(closing);
    expect(await engine.evaluateBatch(closing, { clock })).toHaveLength(1);
    engine.rewind(clock);
    engine.forgetCarried();
    expect(await engine.evaluateBatch(closing, { clock: engine.clockBatch(closing) })).toEqual([]);
  });
});
