import {
  defaultKey,
  geoVelocityRuleSchema,
  geoVelocityType,
  identityOf,
  mayWriteHistory,
  matchRuleSchema,
  newValueRuleSchema,
  newValueType,
  type CompiledRuleOf,
  type Correlated,
  type DetectionInput,
  type PlanBatch,
  type PlanEntry,
  type StateItem,
} from '../../detectors';
import { geoPrecision, toDetectionInput } from '../../ingest';
import { eventSchema, type VigilEvent } from '../../schemas';
import { deviceEvent, invocationEvent, policyEvent, withField } from './fixtures';

/**
 * The trust model in the rules: who may write a user's history and location (the `evidence`
 * option of new_value and geo_velocity), the key a match rule files a detection under, and which
 * locations are places (InputGeo `precision`).
 */

function event(example: object, changes: Record<string, unknown> = {}): VigilEvent {
  let value: object = example;
  for (const [path, replacement] of Object.entries(changes)) value = withField(value, path, replacement);
  return eventSchema.parse(value);
}

const T = Date.parse('2024-05-01T10:30:00.250Z');
const common = { version: 1, name: 'A rule', description: 'A rule under test.', severity: 'low' } as const;
const london = { lat: 51.5074, lon: -0.1278, city: 'London', country: 'GB', precision: 'city' as const };

const passed = event(policyEvent(), { 'policy.kind': 'authn', 'policy.outcome': 'pass', 'actor.userId': 'u-1' });
const failed = event(policyEvent(), { 'policy.kind': 'authn', 'policy.outcome': 'fail', 'actor.userId': 'u-1' });

/** What a stateful plug-in plans for the given inputs (the items it would send to Redis). */
function planned<R extends { groupBy: string[] }>(
  ruleType: { plan(entries: readonly PlanEntry[], compiled: CompiledRuleOf<never, never>, batch: PlanBatch, out: StateItem[]): void },
  rule: R,
  inputs: readonly DetectionInput[],
): number {
  const entries: PlanEntry[] = inputs.map((input, order) => ({
    input,
    order,
    context: { key: { [rule.groupBy[0] ?? '']: 'x' }, keyText: `${rule.groupBy[0]}=x`, now: T, prefix: 'test', latenessMs: 300_000, stateGraceMs: 900_000, maxEvidence: 50 },
  }));
  const out: StateItem[] = [];
  ruleType.plan(entries, { rule } as unknown as CompiledRuleOf<never, never>, { afterEvents: 1000, settled: 0 }, out);
  return out.length;
}

describe('identityOf, refined', () => {
  it('takes a later policy decision on a request the gateway says carried no authentication as claimed', () => {
    const decision = (kind: string, authContext?: string): VigilEvent =>
      event(policyEvent(), { 'policy.kind': kind, 'policy.outcome': 'fail', 'policy.authContext': authContext, 'actor.userId': 'admin' });
    expect(identityOf(decision('authz', 'none'))).toBe('claimed');
    expect(identityOf(decision('authz', 'oauth2'))).toBe('proven');
    expect(identityOf(decision('authz', undefined))).toBe('proven');
    // A threat check proves nobody by itself (it may come before authentication), with or without a context.
    const passed: Correlated = { request: { policies: { authn: 'pass' }, failedPolicies: [], authnUser: 'admin' } };
    expect(identityOf(decision('json_threat', 'none'), passed)).toBe('claimed');
    expect(identityOf(decision('json_threat', 'oauth2'), passed)).toBe('proven');
    expect(identityOf(decision('json_threat', 'oauth2'))).toBe('claimed');
  });
});

describe('mayWriteHistory', () => {
  it('lets only proven events write state kept per user, unless the rule takes any evidence', () => {
    expect(mayWriteHistory('proven', ['actor.userId'], 'proven')).toBe(true);
    expect(mayWriteHistory('claimed', ['actor.userId'], 'proven')).toBe(false);
    expect(mayWriteHistory('claimed', ['client.ip', 'actor.userId'], 'proven')).toBe(false);
    expect(mayWriteHistory('claimed', ['actor.userId'], 'any')).toBe(true);
  });

  it('lets every event write state kept per IP or consumer: failed attempts count against them', () => {
    expect(mayWriteHistory('claimed', ['client.ip'], 'proven')).toBe(true);
    expect(mayWriteHistory('anonymous', ['actor.consumerId'], 'proven')).toBe(true);
  });
});

describe('evidence (new_value, geo_velocity)', () => {
  const newCountry = newValueRuleSchema.parse({ ...common, id: 'new-country', type: 'new_value', groupBy: ['actor.userId'], field: 'geo.country' });
  const travel = geoVelocityRuleSchema.parse({ ...common, id: 'travel', type: 'geo_velocity', groupBy: ['actor.userId'] });

  it('defaults to proven', () => {
    expect(newCountry.evidence).toBe('proven');
    expect(travel.evidence).toBe('proven');
    expect(newValueRuleSchema.safeParse({ ...common, id: 'x-rule', type: 'new_value', groupBy: ['actor.userId'], field: 'geo.country', evidence: 'some' }).success).toBe(false);
  });

  it('keeps a failed login out of a user history and location: no state written, nothing reported', () => {
    const located = (input: VigilEvent): DetectionInput => ({ event: input, geo: london, ipScope: 'public' });
    expect(planned(newValueType, newCountry, [located(passed)])).toBe(1);
    expect(planned(newValueType, newCountry, [located(failed)])).toBe(0);
    expect(planned(geoVelocityType, travel, [located(passed)])).toBe(1);
    expect(planned(geoVelocityType, travel, [located(failed)])).toBe(0);
  });

  it('takes a failed login when the rule says any, or keys on the IP', () => {
    const located: DetectionInput = { event: failed, geo: london, ipScope: 'public' };
    expect(planned(newValueType, { ...newCountry, evidence: 'any' }, [located])).toBe(1);
    expect(planned(geoVelocityType, { ...travel, evidence: 'any' }, [located])).toBe(1);
    expect(planned(geoVelocityType, { ...travel, groupBy: ['client.ip'] }, [located])).toBe(1);
  });

  it('reads the identity correlation set on the input', () => {
    const invocation = event(invocationEvent(), { 'actor.userId': 'u-1', 'invocation.status': 200 });
    expect(planned(geoVelocityType, travel, [{ event: invocation, geo: london, ipScope: 'public', identity: 'claimed' }])).toBe(0);
    expect(planned(geoVelocityType, travel, [{ event: invocation, geo: london, ipScope: 'public' }])).toBe(1);
  });
});

describe('defaultKey (a match rule without groupBy)', () => {
  it('files a proven event under its user', () => {
    expect(defaultKey({ event: passed })).toStrictEqual({ key: { 'actor.userId': 'u-1' }, keyText: 'actor.userId=u-1' });
  });

  it('files a claimed or anonymous event under its IP, not the user typed nor the whole application', () => {
    const ip = failed.client.ip ?? '';
    expect(ip).not.toBe('');
    expect(defaultKey({ event: failed })).toStrictEqual({ key: { 'client.ip': ip }, keyText: `client.ip=${ip}` });
    const unauthenticated = event(policyEvent(), { 'actor.userId': undefined, 'actor.consumerId': 'web-app' });
    expect(defaultKey({ event: unauthenticated }).key).toStrictEqual({ 'client.ip': ip });
  });

  it('takes the device IP of a device event, then the consumer, then the event itself', () => {
    const device = event(deviceEvent(), { 'actor.userId': undefined, 'client.ip': undefined });
    expect(defaultKey({ event: device }).key).toStrictEqual({ 'client.ip': '8.8.8.8' });
    const noIp = event(policyEvent(), { 'actor.userId': undefined, 'client.ip': undefined, 'actor.consumerId': 'web-app' });
    expect(defaultKey({ event: noIp }).key).toStrictEqual({ 'actor.consumerId': 'web-app' });
    const nothing = event(policyEvent(), { 'actor.userId': undefined, 'client.ip': undefined, 'actor.consumerId': undefined });
    expect(defaultKey({ event: nothing })).toStrictEqual({ key: {}, keyText: `event=${nothing.id}` });
  });

  it('lets a match rule name its own key', () => {
    const rule = matchRuleSchema.parse({ ...common, id: 'json-threat', type: 'match', groupBy: ['actor.consumerId'] });
    expect(rule.groupBy).toStrictEqual(['actor.consumerId']);
    expect(matchRuleSchema.safeParse({ ...common, id: 'json-threat', type: 'match', groupBy: [] }).success).toBe(false);
  });
});

describe('geoPrecision (which locations are places)', () => {
  const point = { lat: 40.7128, lon: -74.006 };

  it('is city for a database answer with a city, country without one', () => {
    expect(geoPrecision({ geoSource: 'geoip', geo: { location: point, city_name: 'New York', country_iso_code: 'US' } })).toBe('city');
    expect(geoPrecision({ geoSource: 'geoip', geo: { location: { lat: 46.2, lon: 2.2 }, country_iso_code: 'FR' }, accuracyKm: 500 })).toBe('country');
  });

  it('is country at a database default point, even with a city', () => {
    expect(geoPrecision({ geoSource: 'geoip', geo: { location: { lat: 37.751, lon: -97.822 }, city_name: 'Somewhere', country_iso_code: 'US' } })).toBe('country');
  });

  it('is city for the producer own position, and undefined without a point', () => {
    expect(geoPrecision({ geoSource: 'producer', geo: { location: point } })).toBe('city');
    expect(geoPrecision({ geoSource: 'geoip', geo: { country_iso_code: 'US' } })).toBeUndefined();
    expect(geoPrecision({ geoSource: 'none' })).toBeUndefined();
  });

  it('reaches the detectors as InputGeo precision', () => {
    const input = toDetectionInput(passed, { geoSource: 'geoip', geo: { location: { lat: 37.751, lon: -97.822 }, country_iso_code: 'US' }, accuracyKm: 1000 });
    expect(input.geo).toStrictEqual({ lat: 37.751, lon: -97.822, accuracyKm: 1000, country: 'US', precision: 'country' });
  });
});
