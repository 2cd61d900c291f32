import { decayedScore, entitiesOf, parseContribution, riskDetection, riskSettingsOf, type RiskSettings } from '../../detectors';
import { loadConfig } from '../../platform';
import { detectionSchema, type Detection } from '../../schemas';

const HOUR = 3_600_000;
const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const SETTINGS: RiskSettings = { threshold: 100, halfLifeMs: HOUR, scores: { low: 25, medium: 50, high: 75, critical: 100 }, pagingSeverity: 'medium', severity: 'high' };

function crossing(time = T0): Detection {
  return detectionSchema.parse({
    id: 'det-cross',
    ruleId: 'new-country',
    ruleVersion: 1,
    ruleName: 'New country',
    ruleType: 'new_value',
    severity: 'low',
    tags: [],
    reasonCode: 'new_value',
    reason: 'first login from NZ',
    key: { 'actor.userId': 'u-1' },
    observedValue: 1,
    window: { start: new Date(time).toISOString(), end: new Date(time).toISOString(), durationMs: 0 },
    eventIds: ['evt-1'],
    time: new Date(time).toISOString(),
    detectedAt: new Date(time + 500).toISOString(),
  });
}

describe('risk decay', () => {
  it('halves a score every half-life of event time', () => {
    expect(decayedScore(100, T0, T0 + HOUR, HOUR)).toBeCloseTo(50, 9);
    expect(decayedScore(100, T0, T0 + 3 * HOUR, HOUR)).toBeCloseTo(12.5, 9);
    expect(decayedScore(80, T0, T0 + HOUR / 2, HOUR)).toBeCloseTo(80 / Math.SQRT2, 9);
  });

  it('never grows a score backwards in time', () => {
    expect(decayedScore(40, T0, T0, HOUR)).toBe(40);
    expect(decayedScore(40, T0, T0 - HOUR, HOUR)).toBe(40);
  });

  it('puts the threshold where the settings say: 4 fresh lows reach 100, 4 lows an hour apart do not', () => {
    const fresh = [0, 0, 0, 0].reduce((score) => score + SETTINGS.scores.low, 0);
    expect(fresh).toBeGreaterThanOrEqual(SETTINGS.threshold);
    let spread = 0;
    for (let n = 0; n < 4; n += 1) spread = decayedScore(spread, T0 + (n - 1) * HOUR, T0 + n * HOUR, HOUR) + SETTINGS.scores.low;
    expect(spread).toBeCloseTo(25 + 12.5 + 6.25 + 3.125, 9);
    expect(spread).toBeLessThan(SETTINGS.threshold);
  });
});

describe('risk entities and detections', () => {
  it('takes the user, consumer and IP of a key, nothing else', () => {
    expect(entitiesOf({ key: { 'client.ip': '198.51.100.7', 'actor.userId': 'u-1', 'invocation.route': '/login' } })).toEqual([
      { field: 'actor.userId', value: 'u-1' },
      { field: 'client.ip', value: '198.51.100.7' },
    ]);
    expect(entitiesOf({ key: { 'invocation.resource.api': 'accounts-v1' } })).toEqual([]);
  });

  it('reads a contributor as the script stores it (a rule id may hold the separator)', () => {
    expect(parseContribution('det-1', `${T0}|25|new|device`)).toEqual({ detectionId: 'det-1', ruleId: 'new|device', points: 25, time: T0 });
  });

  it('synthesizes a deterministic detection on the entity listing what added up, strongest first, negligible ones left out', () => {
    const contributions = [
      { detectionId: 'det-a', ruleId: 'new-device', points: 25, time: T0 - HOUR },
      { detectionId: 'det-b', ruleId: 'new-country', points: 25, time: T0 - 60_000 },
      { detectionId: 'det-c', ruleId: 'new-country', points: 50, time: T0 - 30_000 },
      { detectionId: 'det-old', ruleId: 'new-device', points: 25, time: T0 - 20 * HOUR },
      { detectionId: 'det-cross', ruleId: 'new-country', points: 25, time: T0 },
    ];
    const made = riskDetection({ field: 'actor.userId', value: 'u-1' }, crossing(), 112.345, contributions, SETTINGS);
    expect(detectionSchema.parse(made)).toEqual(made);
    expect(made).toMatchObject({
      ruleId: 'risk-threshold',
      ruleType: 'risk',
      severity: 'high',
      key: { 'actor.userId': 'u-1' },
      observedValue: 112.3,
      threshold: 100,
      time: crossing().time,
      detectedAt: crossing().detectedAt,
      window: { start: new Date(T0 - HOUR).toISOString(), end: new Date(T0).toISOString(), durationMs: HOUR },
    });
    expect(made.reason).toBe('user u-1 reached risk 112.3 (threshold 100) from 4 detections: new-country 99.4 (3 detections), new-device 12.5.');
    expect(made.eventIds).toEqual(['det-c', 'det-cross', 'det-b', 'det-a']);
    expect(riskDetection({ field: 'actor.userId', value: 'u-1' }, crossing(), 112.345, [...contributions].reverse(), SETTINGS)).toEqual(made);
    expect(riskDetection({ field: 'client.ip', value: 'u-1' }, crossing(), 112.345, contributions, SETTINGS).id).not.toBe(made.id);
  });

  it('reads its settings from VIGIL_RISK_*', () => {
    const config = loadConfig({ VIGIL_RISK_THRESHOLD: '60', VIGIL_RISK_SCORE_LOW: '30', VIGIL_RISK_PAGING_SEVERITY: 'high', VIGIL_RISK_HALF_LIFE_MS: '600000' });
    expect(riskSettingsOf(config)).toEqual({ threshold: 60, halfLifeMs: 600_000, scores: { low: 30, medium: 50, high: 75, critical: 100 }, pagingSeverity: 'high', severity: 'high' });
    expect(() => loadConfig({ VIGIL_RISK_PAGING_SEVERITY: 'urgent' })).toThrow(/VIGIL_RISK_PAGING_SEVERITY/);
  });
});
