import { Redis } from 'ioredis';
import { createRiskScorer, deleteKeysUnder, riskKeys, type RiskScorer, type RiskSettings } from '../../detectors';
import { detectionSchema, type Detection, type Severity } from '../../schemas';
import { isolatedConfig, testLogger } from '../support/harness';

const HOUR = 3_600_000;
const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const SETTINGS: RiskSettings = {
  threshold: 100,
  halfLifeMs: HOUR,
  scores: { low: 25, medium: 50, high: 75, critical: 100 },
  pagingSeverity: 'medium',
  severity: 'high',
};

let sequence = 0;
/** A detection of `ruleId` at `time` for user u-1 (or the key given). */
function detection(ruleId: string, time: number, severity: Severity = 'low', key: Record<string, string> = { 'actor.userId': 'u-1' }): Detection {
  sequence += 1;
  return detectionSchema.parse({
    id: `det-risk-${sequence}`,
    ruleId,
    ruleVersion: 1,
    ruleName: ruleId,
    ruleType: 'new_value',
    severity,
    tags: [],
    reasonCode: 'new_value',
    reason: `${ruleId} for ${Object.values(key).join(',')}`,
    key,
    observedValue: 1,
    window: { start: new Date(time).toISOString(), end: new Date(time).toISOString(), durationMs: 0 },
    eventIds: [`evt-${sequence}`],
    time: new Date(time).toISOString(),
    detectedAt: new Date(time + 1000).toISOString(),
  });
}

describe('risk scores in Redis (riskAdd-2)', () => {
  let redis: Redis;
  let prefix: string;
  let scorer: RiskScorer;

  beforeEach(() => {
    const config = isolatedConfig();
    prefix = config.redis.prefix;
    redis = new Redis(config.redis.url);
    scorer = createRiskScorer({ redis, prefix, settings: SETTINGS, logger: testLogger });
  });

  afterEach(async () => {
    await deleteKeysUnder(redis, prefix);
    await redis.quit();
  });

  it('pages nothing for two low detections below the threshold, and keeps their score', async () => {
    const paged = await scorer.triage([detection('new-device', T0), detection('new-country', T0 + 1000)], T0 + 1000);
    expect(paged).toEqual([]);
    const score = await scorer.scoreOf({ field: 'actor.userId', value: 'u-1' }, T0 + 1000);
    expect(score?.score).toBeCloseTo(25 * 0.5 ** (1000 / HOUR) + 25, 6);
    expect(score?.above).toBe(false);
    expect(score?.contributions.map((contribution) => contribution.ruleId)).toEqual(['new-device', 'new-country']);
  });

  it('raises one risk-threshold detection when enough low signals add up for one user, listing the contributors; medium ones page on their own', async () => {
    const lows = [detection('new-device', T0), detection('new-country', T0 + 60_000), detection('new-device', T0 + 120_000), detection('new-asn', T0 + 180_000), detection('new-country', T0 + 240_000)];
    const medium = detection('password-spray', T0 + 200_000, 'medium', { 'client.ip': '203.0.113.9' });
    const paged = await scorer.triage([...lows.slice(0, 4), medium, lows[4] as Detection], T0 + 240_000);
    // 4 lows are 100 minus their decay: the fifth crosses, once.
    expect(paged.map((item) => item.ruleId)).toEqual(['password-spray', 'risk-threshold']);
    const [, risk] = paged;
    expect(risk).toMatchObject({
      ruleType: 'risk',
      severity: 'high',
      key: { 'actor.userId': 'u-1' },
      threshold: 100,
      reasonCode: 'risk_threshold_crossed',
      time: lows[4]?.time,
    });
    expect(detectionSchema.safeParse(risk).success).toBe(true);
    expect([...(risk?.eventIds ?? [])].sort()).toEqual(lows.map((item) => item.id).sort());
    expect(risk?.reason).toMatch(/^user u-1 reached risk 12\d\.\d \(threshold 100\) from 5 detections: /);
    // Strongest first, points decayed to the crossing, per rule.
    expect(risk?.reason).toMatch(/: new-country 4\d\.\d \(2 detections\), new-device 4\d\.\d \(2 detections\), new-asn 24\.\d\.$/);
    expect(risk?.observedValue).toBeGreaterThanOrEqual(100);

    // The batch redone (a redelivery, or the alerter failing later in the batch): nothing counted
    // twice, and the crossing said again as it was (same id, score and contributors), so the
    // risk detection is not lost with the failed attempt; the alert fold dedupes it by id.
    const before = await scorer.scoreOf({ field: 'actor.userId', value: 'u-1' }, T0 + 240_000);
    expect(await scorer.triage([...lows, medium], T0 + 240_000)).toEqual([risk, medium]);
    expect((await scorer.scoreOf({ field: 'actor.userId', value: 'u-1' }, T0 + 240_000))?.score).toBeCloseTo(before?.score ?? Number.NaN, 9);
    // More signals while over the threshold: still the one crossing.
    expect(await scorer.triage([detection('new-device', T0 + 300_000)], T0 + 300_000)).toEqual([]);
    // The medium detection's IP has a score of its own.
    expect((await scorer.scoreOf({ field: 'client.ip', value: '203.0.113.9' }, T0 + 200_000))?.score).toBeCloseTo(50, 6);
  });

  it('crosses again after the score decayed below the threshold and rose again, with another id', async () => {
    const first = await scorer.triage([0, 1, 2, 3, 4].map((n) => detection('new-device', T0 + n)), T0 + 4);
    expect(first.map((item) => item.ruleId)).toEqual(['risk-threshold']);
    // Two half-lives later, about 31 left: one more low is still far below.
    expect(await scorer.triage([detection('new-country', T0 + 2 * HOUR)], T0 + 2 * HOUR)).toEqual([]);
    const score = await scorer.scoreOf({ field: 'actor.userId', value: 'u-1' }, T0 + 2 * HOUR);
    expect(score?.score).toBeCloseTo(125 / 4 + 25, 2);
    expect(score?.above).toBe(false);
    const second = await scorer.triage([1, 2].map((n) => detection('new-device', T0 + 2 * HOUR + n)), T0 + 2 * HOUR + 2);
    expect(second.map((item) => item.ruleId)).toEqual(['risk-threshold']);
    expect(second[0]?.id).not.toBe(first[0]?.id);
    // Every contributor still counts for something, the first five at a quarter.
    expect(second[0]?.eventIds).toHaveLength(8);
  });

  it('counts a late detection at its decayed value, caps one stamped in the future at the given now, and keys by entity', async () => {
    await scorer.triage([detection('new-device', T0 + HOUR)], T0 + HOUR);
    // An hour late: it adds half its points.
    await scorer.triage([detection('new-country', T0)], T0 + HOUR);
    expect((await scorer.scoreOf({ field: 'actor.userId', value: 'u-1' }, T0 + HOUR))?.score).toBeCloseTo(37.5, 6);
    // A year ahead of the stream: taken at the stream's now, so the score does not age.
    await scorer.triage([detection('new-device', T0 + 365 * 24 * HOUR)], T0 + HOUR);
    expect((await scorer.scoreOf({ field: 'actor.userId', value: 'u-1' }, T0 + HOUR))?.score).toBeCloseTo(62.5, 6);
    // A value from event data is encoded in the key, under the entity's hash tag.
    const odd = 'u}{x y';
    await scorer.triage([detection('new-device', T0, 'low', { 'actor.userId': odd, 'actor.consumerId': 'c-1' })], T0);
    expect(await redis.exists(riskKeys(prefix, 'user', odd).score)).toBe(1);
    expect(riskKeys(prefix, 'user', odd).score).toBe(`${prefix}:risk:{user:u%7D%7Bx%20y}:score`);
    expect((await scorer.scoreOf({ field: 'actor.consumerId', value: 'c-1' }, T0))?.score).toBe(25);
    expect(await redis.pttl(riskKeys(prefix, 'user', odd).contributors)).toBeGreaterThan(9 * HOUR);
  });
});
