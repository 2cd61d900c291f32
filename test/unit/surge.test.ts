import { join } from 'node:path';
import {
  compileFilter,
  detectionId,
  evaluateSurge,
  histogramBin,
  loadRuleSet,
  parseSurgeState,
  isOfType,
  ruleSchema,
  surgeType,
  stateKey,
  surgeContribution,
  surgeRequest,
  surgeTallyRequest,
  SurgeTally,
  type DetectionInput,
  type Evaluation,
  type EvaluationContext,
  type RuleOf,
  type SurgeState,
} from '../../detectors';
import { eventSchema, type VigilEvent } from '../../schemas';
import { deviceEvent, invocationEvent, withField } from './fixtures';

const DENIAL_OF_SERVICE = join(__dirname, '..', '..', 'detectors', 'rules', 'default', 'denial-of-service.yaml');

/** The time of the example events (12:30:00.250 at +02:00), in ms. */
const T = Date.parse('2024-05-01T10:30:00.250Z');
/** The start of T's one-minute bucket. */
const BUCKET_START = Date.parse('2024-05-01T10:30:00.000Z');
const FROM = '2024-05-01T10:30:00Z';
const MINUTE = 60_000;

function event(example: object, changes: Record<string, unknown> = {}): VigilEvent {
  let value: object = example;
  for (const [path, replacement] of Object.entries(changes)) value = withField(value, path, replacement);
  return eventSchema.parse(value);
}

/** An API call to accounts-v1 /accounts/:id from 10.1.2.3 (404, 12.5 ms) at `time` ms. */
const callAt = (time: number, changes: Record<string, unknown> = {}): DetectionInput => ({
  event: event(invocationEvent(), { id: `evt-call-${time}`, time: new Date(time).toISOString(), ...changes }),
});

/** A surge rule through the rule schema, so defaults apply as in a rule file. */
function surgeRule(changes: Record<string, unknown> = {}): RuleOf<'surge'> {
  const rule = ruleSchema.parse({
    id: 'request-flood-test',
    version: 1,
    name: 'Request flood on an endpoint',
    description: 'A rule under test.',
    severity: 'high',
    type: 'surge',
    noun: 'requests',
    groupBy: ['invocation.resource.api', 'invocation.route'],
    measure: { kind: 'count' },
    ...changes,
  });
  if (rule.type !== 'surge') throw new Error(`expected a surge rule, got ${rule.type}`);
  return rule;
}

const key = { 'invocation.resource.api': 'accounts-v1', 'invocation.route': '/accounts/:id' };
const keyText = 'invocation.resource.api=accounts-v1,invocation.route=/accounts/:id';
const context: EvaluationContext = { key, keyText, now: T };
const requestContext = { ...context, prefix: 'vigil-test', latenessMs: 300_000, stateGraceMs: 900_000 };

/**
 * A bucket that fires the default count rule (minSamples 10, minVolume 50, minRatio 5): 1000
 * requests against a baseline of 100 ± 20 after 20 buckets, from 4 sources.
 */
function surgeState(changes: Partial<SurgeState> = {}): SurgeState {
  return {
    value: 1000,
    mean: 100,
    variance: 400,
    samples: 20,
    volume: 1000,
    distinct: 4,
    late: 0,
    numerator: 0,
    volumeMean: 100,
    numeratorMean: 0,
    volumeSamples: 20,
    closed: [],
    ...changes,
  };
}

/** The detection of an evaluation that must have fired. */
function detected(evaluation: Evaluation): Extract<Evaluation, { outcome: 'detected' }>['detection'] {
  if (evaluation.outcome !== 'detected') throw new Error(`expected a detection, got ${evaluation.reasonCode}`);
  return evaluation.detection;
}

const quiet = (reasonCode: string): Evaluation => ({ outcome: 'none', reasonCode });

describe('parseSurgeState', () => {
  it('reads the surgeTick reply, which is strings, in its documented order', () => {
    expect(parseSurgeState(['1200', '100.5', '25.25', '12', '1180', '3', '0', '1100', '101.5', '4.5', '11'])).toStrictEqual({
      value: 1200,
      mean: 100.5,
      variance: 25.25,
      samples: 12,
      volume: 1180,
      distinct: 3,
      late: 0,
      numerator: 1100,
      volumeMean: 101.5,
      numeratorMean: 4.5,
      volumeSamples: 11,
      closed: [],
    });
  });

  it('reads the events that came too late to count', () => {
    expect(parseSurgeState(['0', '0', '0', '0', '0', '0', '3']).late).toBe(3);
    expect(parseSurgeState(['0', '0', '0', '0', '0', '0', '0']).late).toBe(0);
    expect(parseSurgeState([0.25, 0.02, 0.0001, 10, 80, 0, 1])).toStrictEqual({
      value: 0.25,
      mean: 0.02,
      variance: 0.0001,
      samples: 10,
      volume: 80,
      distinct: 0,
      late: 1,
      numerator: 0,
      volumeMean: 0,
      numeratorMean: 0,
      volumeSamples: 0,
      closed: [],
    });
  });

  it('reads a short reply as zeros, not undefined', () => {
    expect(parseSurgeState(['7'])).toStrictEqual({
      value: 7,
      mean: 0,
      variance: 0,
      samples: 0,
      volume: 0,
      distinct: 0,
      late: 0,
      numerator: 0,
      volumeMean: 0,
      numeratorMean: 0,
      volumeSamples: 0,
      closed: [],
    });
  });
});

describe('histogramBin', () => {
  it('puts every value up to 1 in bin 0, and a power of two at four bins per doubling', () => {
    expect([0, 0.5, 1].map(histogramBin)).toStrictEqual([0, 0, 0]);
    expect([2, 4, 8, 1024].map(histogramBin)).toStrictEqual([4, 8, 12, 40]);
    expect(histogramBin(812)).toBe(38);
  });

  it('keeps a value within a quarter power of two (about 19%) above its bin', () => {
    const step = 2 ** 0.25;
    for (const value of [1.5, 3, 12.5, 53, 99.9, 812, 2435, 65_537, 3_600_000]) {
      const lower = 2 ** (histogramBin(value) / 4);
      expect(lower).toBeLessThanOrEqual(value * (1 + 1e-12));
      expect(value).toBeLessThan(lower * step);
      expect(value / lower).toBeLessThan(1.19);
    }
  });

  it('never goes down as the value goes up', () => {
    const values = Array.from({ length: 400 }, (_, index) => 1 + index * 7.3);
    const bins = values.map(histogramBin);
    expect(bins.every((bin, index) => index === 0 || bin >= (bins[index - 1] ?? 0))).toBe(true);
  });
});

describe('surgeRequest', () => {
  const countRule = surgeRule();

  it('calls surgeTick with the keys from stateKey, the bucket number and the measure', () => {
    const input = callAt(T);
    const request = surgeRequest(input, countRule, undefined, requestContext);
    expect(request).toStrictEqual({
      script: 'surgeTick',
      keys: [stateKey('vigil-test', 'request-flood-test', keyText, 'surge'), stateKey('vigil-test', 'request-flood-test', keyText, `surge-hll:${Math.floor(T / MINUTE)}`)],
      // Bucket number, measure, events, numerator events, HLL members, histogram bins, alpha, TTL (at least a day),
      // the oldest bucket still open (the clock less 5 minutes of lateness), the bucket's HLL TTL (lateness + 2 buckets),
      // the baseline's lag (5 minutes of lateness + 1), no complete buckets reported (a count alone fires as it crosses),
      // the latest event's time and id.
      args: [Math.floor(T / MINUTE), 'count', 1, 0, '[]', '[]', 0.1, 86_400_000, Math.floor(T / MINUTE) - 5, 420_000 + 900_000, 6, 0, T, input.event.id],
    });
    expect(request?.keys).toStrictEqual([
      'vigil-test:rule:{request-flood-test|invocation.resource.api=accounts-v1,invocation.route=/accounts/:id}:surge',
      `vigil-test:rule:{request-flood-test|invocation.resource.api=accounts-v1,invocation.route=/accounts/:id}:surge-hll:${Math.floor(T / MINUTE)}`,
    ]);
  });

  it('puts both keys in one hash slot (one hash tag), so the two-key script is cluster-safe', () => {
    const tags = (surgeRequest(callAt(T), countRule, undefined, requestContext)?.keys ?? []).map((name) => /\{[^}]+\}/.exec(name)?.[0]);
    expect(tags).toHaveLength(2);
    expect(new Set(tags).size).toBe(1);
    expect(tags[0]).toBe(`{request-flood-test|${keyText}}`);
  });

  it('numbers buckets by event time, so events of the same minute share one', () => {
    const bucketOf = (time: number): unknown => surgeRequest(callAt(time), countRule, undefined, requestContext)?.args[0];
    expect(bucketOf(BUCKET_START)).toBe(bucketOf(BUCKET_START + 59_999));
    expect(bucketOf(BUCKET_START + MINUTE)).toBe(Number(bucketOf(BUCKET_START)) + 1);
    expect(bucketOf(BUCKET_START - 1)).toBe(Number(bucketOf(BUCKET_START)) - 1);
  });

  it('keeps the baseline for 20 warm-ups of buckets when that is longer than a day', () => {
    const hourly = surgeRule({ bucket: '1h', minSamples: 10, alpha: 0.2 });
    expect(surgeRequest(callAt(T), hourly, undefined, requestContext)?.args).toStrictEqual([
      Math.floor(T / 3_600_000),
      'count',
      1,
      0,
      '[]',
      '[]',
      0.2,
      3_600_000 * 10 * 20,
      Math.floor((T - 300_000) / 3_600_000),
      300_000 + 2 * 3_600_000 + 900_000,
      // 5 minutes of lateness is within one hour bucket: the baseline ends two buckets back.
      2,
      0,
      T,
      expect.any(String),
    ]);
  });

  it('counts the concentration field in the HyperLogLog', () => {
    const flood = surgeRule({ concentration: { field: 'client.ip' } });
    expect(surgeRequest(callAt(T), flood, undefined, requestContext)?.args[4]).toBe('["10.1.2.3"]');
    // An event without the field still counts in the volume, with no member.
    expect(surgeRequest(callAt(T, { 'client.ip': undefined }), flood, undefined, requestContext)?.args.slice(2, 5)).toStrictEqual([1, 0, '[]']);
  });

  it('measures distinct values of the field, and skips an event without it', () => {
    const distinct = surgeRule({ measure: { kind: 'distinct', field: 'client.ip' } });
    expect(surgeRequest(callAt(T), distinct, undefined, requestContext)?.args.slice(1, 5)).toStrictEqual(['distinct', 1, 0, '["10.1.2.3"]']);
    expect(surgeRequest(callAt(T, { 'client.ip': undefined }), distinct, undefined, requestContext)).toBeUndefined();
    // With where: an event that fails it counts in the bucket without its value; one that passes gives it.
    const counted = surgeRule({ measure: { kind: 'distinct', field: 'client.ip', where: { field: 'identity', in: ['claimed', 'anonymous'] } } });
    const where = compileFilter({ field: 'identity', in: ['claimed', 'anonymous'] });
    expect(surgeRequest({ ...callAt(T), identity: 'proven' }, counted, undefined, requestContext, where)?.args.slice(1, 5)).toStrictEqual(['distinct', 1, 0, '[]']);
    expect(surgeRequest({ ...callAt(T), identity: 'anonymous' }, counted, undefined, requestContext, where)?.args.slice(1, 5)).toStrictEqual(['distinct', 1, 0, '["10.1.2.3"]']);
    const byUser = surgeRule({ measure: { kind: 'distinct', field: 'actor.userId' } });
    expect(surgeRequest(callAt(T), byUser, undefined, requestContext)).toBeUndefined();
  });

  it('flags an event of a ratio measure that passes the numerator', () => {
    const errors = surgeRule({ noun: '5xx', measure: { kind: 'ratio', numerator: { field: 'invocation.status', gte: 500 } }, baselineFloor: 0.02 });
    if (errors.measure.kind !== 'ratio') throw new Error('expected a ratio measure');
    const numerator = compileFilter(errors.measure.numerator);
    const flag = (status: number): unknown => surgeRequest(callAt(T, { 'invocation.status': status }), errors, numerator, requestContext)?.args[3];
    expect([flag(503), flag(500), flag(499), flag(404), flag(200)]).toStrictEqual([1, 1, 0, 0, 0]);
    // Without its predicate nothing is in the numerator; never a throw.
    expect(surgeRequest(callAt(T, { 'invocation.status': 503 }), errors, undefined, requestContext)?.args[3]).toBe(0);
  });

  it('sets the numerator flag only for a ratio measure', () => {
    const always = (): boolean => true;
    expect(surgeRequest(callAt(T), countRule, always, requestContext)?.args[3]).toBe(0);
  });

  it('bins the value of a p95 measure, and skips an event whose field is not a number', () => {
    const latency = surgeRule({ measure: { kind: 'p95', field: 'invocation.latencyMs' }, baselineFloor: 50 });
    const args = surgeRequest(callAt(T, { 'invocation.latencyMs': 812 }), latency, undefined, requestContext)?.args;
    expect(args?.slice(1, 8)).toStrictEqual(['p95', 1, 0, '[]', '[38,1]', 0.1, 86_400_000]);
    expect(surgeRequest(callAt(T, { 'invocation.latencyMs': 0 }), latency, undefined, requestContext)?.args[5]).toBe('[0,1]');
    // A text field, and an event of another family that has no latency at all.
    const onRoute = surgeRule({ measure: { kind: 'p95', field: 'invocation.route' } });
    expect(surgeRequest(callAt(T), onRoute, undefined, requestContext)).toBeUndefined();
    expect(surgeRequest({ event: event(deviceEvent()) }, latency, undefined, requestContext)).toBeUndefined();
  });
});

describe('evaluateSurge: quiet, with a reason code', () => {
  const rule = surgeRule();
  const input = callAt(T);

  it('fires on the example bucket (so each quiet case below differs by one thing)', () => {
    expect(evaluateSurge(input, surgeState(), rule, context).outcome).toBe('detected');
  });

  it('late_bucket: the events belonged to a bucket already folded into the baseline, counted as late, even when the bucket is a surge', () => {
    expect(evaluateSurge(input, surgeState({ late: 3 }), rule, context)).toStrictEqual({ outcome: 'none', reasonCode: 'late_bucket', lateEvents: 3 });
  });

  it('warming_up: fewer full buckets than minSamples', () => {
    expect(evaluateSurge(input, surgeState({ samples: 9 }), rule, context)).toStrictEqual(quiet('warming_up'));
    expect(evaluateSurge(input, surgeState({ samples: 10 }), rule, context).outcome).toBe('detected');
    expect(evaluateSurge(input, surgeState({ samples: 0, late: 1 }), rule, context)).toStrictEqual({ outcome: 'none', reasonCode: 'late_bucket', lateEvents: 1 });
  });

  it('low_volume: fewer events in the bucket than minVolume', () => {
    expect(evaluateSurge(input, surgeState({ volume: 49, value: 49, mean: 5 }), rule, context)).toStrictEqual(quiet('low_volume'));
    expect(evaluateSurge(input, surgeState({ volume: 50, value: 50, mean: 5, variance: 0 }), rule, context).outcome).toBe('detected');
    expect(evaluateSurge(input, surgeState({ volume: 49, samples: 9 }), rule, context)).toStrictEqual(quiet('warming_up'));
  });

  it('within_baseline: below minRatio times the baseline', () => {
    expect(evaluateSurge(input, surgeState({ value: 499, volume: 499 }), rule, context)).toStrictEqual(quiet('within_baseline'));
    expect(evaluateSurge(input, surgeState({ value: 500, volume: 500 }), rule, context).outcome).toBe('detected');
    expect(evaluateSurge(input, surgeState({ value: 499, volume: 40 }), rule, context)).toStrictEqual(quiet('low_volume'));
  });

  it('within_deviation: a ratio reached, but fewer than minZ standard deviations', () => {
    const noisy = surgeRule({ minZ: 3 });
    // 600 against 100 ± 200 is 2.5 deviations; against 100 ± 100 it is 5.
    expect(evaluateSurge(input, surgeState({ value: 600, variance: 200 ** 2 }), noisy, context)).toStrictEqual(quiet('within_deviation'));
    expect(evaluateSurge(input, surgeState({ value: 600, variance: 100 ** 2 }), noisy, context).outcome).toBe('detected');
    // Without minZ the same noisy bucket fires; a baseline without variance is infinitely far.
    expect(evaluateSurge(input, surgeState({ value: 600, variance: 200 ** 2 }), rule, context).outcome).toBe('detected');
    expect(evaluateSurge(input, surgeState({ value: 600, variance: 0 }), noisy, context).outcome).toBe('detected');
    expect(evaluateSurge(input, surgeState({ value: 400, variance: 200 ** 2 }), noisy, context)).toStrictEqual(quiet('within_baseline'));
  });

  it('spread_out: fewer than concentration.minPerSource events per source (a flash crowd)', () => {
    const flood = surgeRule({ concentration: { field: 'client.ip', minPerSource: 5 } });
    expect(evaluateSurge(input, surgeState({ value: 600, volume: 600, distinct: 121 }), flood, context)).toStrictEqual(quiet('spread_out'));
    expect(evaluateSurge(input, surgeState({ value: 600, volume: 600, distinct: 120 }), flood, context).outcome).toBe('detected');
    // Without concentration, the crowd fires.
    expect(evaluateSurge(input, surgeState({ value: 600, volume: 600, distinct: 121 }), rule, context).outcome).toBe('detected');
    const strict = surgeRule({ minZ: 30, concentration: { field: 'client.ip' } });
    expect(evaluateSurge(input, surgeState({ value: 600, volume: 600, distinct: 600 }), strict, context)).toStrictEqual(quiet('within_deviation'));
  });

  it('takes the default minPerSource of 5 from the schema', () => {
    const flood = surgeRule({ concentration: { field: 'client.ip' } });
    expect(flood.concentration).toStrictEqual({ field: 'client.ip', minPerSource: 5 });
    expect(evaluateSurge(input, surgeState({ distinct: 201 }), flood, context)).toStrictEqual(quiet('spread_out'));
  });
});

describe('evaluateSurge: failures (a spread-out surge that mostly fails)', () => {
  const input = callAt(T);
  const failing = { field: 'identity', equals: 'claimed' };
  const flood = surgeRule({ concentration: { field: 'client.ip', minPerSource: 5 }, failures: { filter: failing, minRatio: 4 } });
  // 2400 requests from 800 IPs (3 each): too spread for the per-IP bar.
  const spread = { value: 2400, volume: 2400, distinct: 800, volumeMean: 120, numeratorMean: 6 };

  it('takes the defaults minRatio 5 and baselineFloor 0.05, and refuses the option with measure ratio', () => {
    expect(surgeRule({ failures: { filter: failing } }).failures).toStrictEqual({ filter: failing, minRatio: 5, baselineFloor: 0.05 });
    expect(() => surgeRule({ measure: { kind: 'ratio', numerator: failing }, failures: { filter: failing } })).toThrow(/failures cannot be used with measure ratio/);
    expect(() => surgeRule({ failures: { filter: failing, baselineFloor: 0 } })).toThrow();
  });

  it('fires on a spread-out surge whose failure share reaches minRatio times the usual share', () => {
    // Usual share 6 / 120 = 5%; 20% is 4x.
    expect(evaluateSurge(input, surgeState({ ...spread, numerator: 480 }), flood, context).outcome).toBe('detected');
    expect(evaluateSurge(input, surgeState({ ...spread, numerator: 479 }), flood, context)).toStrictEqual(quiet('spread_out'));
  });

  it('takes the share against baselineFloor when the usual share is below it, and never against a baseline not yet learnt', () => {
    const floored = { ...spread, numeratorMean: 0 };
    expect(evaluateSurge(input, surgeState({ ...floored, numerator: 480 }), flood, context).outcome).toBe('detected');
    expect(evaluateSurge(input, surgeState({ ...floored, numerator: 479 }), flood, context)).toStrictEqual(quiet('spread_out'));
    expect(evaluateSurge(input, surgeState({ ...spread, numerator: 2400, volumeSamples: 9 }), flood, context)).toStrictEqual(quiet('spread_out'));
  });

  it('stays quiet on a flash crowd with the usual share of failures, and a failing surge still needs the volume surge', () => {
    expect(evaluateSurge(input, surgeState({ ...spread, numerator: 130 }), flood, context)).toStrictEqual(quiet('spread_out'));
    expect(evaluateSurge(input, surgeState({ ...spread, value: 590, volume: 590, numerator: 590, mean: 120 }), flood, context)).toStrictEqual(quiet('within_baseline'));
  });

  it('without concentration, fires only when failing', () => {
    const failuresOnly = surgeRule({ failures: { filter: failing } });
    expect(evaluateSurge(input, surgeState({ ...spread, numerator: 100 }), failuresOnly, context)).toStrictEqual(quiet('not_failing'));
    expect(evaluateSurge(input, surgeState({ ...spread, numerator: 2000 }), failuresOnly, context).outcome).toBe('detected');
  });

  it('says the failure share, its multiple and the usual share', () => {
    const detection = detected(evaluateSurge(input, surgeState({ ...spread, numerator: 2280 }), flood, context));
    expect(detection.reason).toContain('from 800 IPs (3 each on average), 95.0% of them failing, 19.0× the usual 5.0%');
    expect(detection.reasonCode).toBe('surge_requests');
  });

  it('runs after the rules its failure filter or numerator names (detectedBy)', () => {
    expect(surgeType.references?.(flood)).toStrictEqual([]);
    expect(surgeType.references?.(surgeRule({ failures: { filter: { detectedBy: 'credential-stuffing' } } }))).toStrictEqual(['credential-stuffing']);
    expect(surgeType.references?.(surgeRule({ measure: { kind: 'ratio', numerator: { detectedBy: 'json-threat-violation' } }, baselineFloor: 0.02 }))).toStrictEqual(['json-threat-violation']);
  });

  // A ratio is at most 1: against the default floor of 1 the rule loaded and could never fire.
  it('refuses a ratio measure whose baselineFloor times minRatio reaches 1, naming the floor', () => {
    const ratio = { kind: 'ratio', numerator: { field: 'invocation.status', gte: 500 } };
    expect(() => surgeRule({ measure: ratio })).toThrow('a ratio is at most 1, so with this baselineFloor it can never reach minRatio times its baseline: set baselineFloor to at most 1 / minRatio');
    expect(() => surgeRule({ measure: ratio, baselineFloor: 0.21, minRatio: 5 })).toThrow('baselineFloor');
    // At exactly 1 a share of 100% still fires.
    expect(surgeRule({ measure: ratio, baselineFloor: 0.2, minRatio: 5 }).baselineFloor).toBe(0.2);
    // A failure share is at most 1 as well: a failures block that can never fire is refused.
    expect(() => surgeRule({ failures: { filter: { field: 'identity', equals: 'claimed' }, minRatio: 25 } })).toThrow(
      'a failure share is at most 1, so with this failures.baselineFloor it can never reach failures.minRatio times the usual share',
    );
    expect(surgeRule({ failures: { filter: { field: 'identity', equals: 'claimed' }, minRatio: 20 } }).failures?.minRatio).toBe(20);
    // Other measures keep the floor of 1.
    expect(surgeRule({ measure: { kind: 'count' } }).baselineFloor).toBe(1);
  });

  it('counts an event in the numerator when it passes the failure filter', () => {
    const numerator = compileFilter(failing);
    const claimed: DetectionInput = { ...callAt(T), identity: 'claimed' };
    expect(surgeContribution(claimed, flood, numerator)?.numerator).toBe(true);
    expect(surgeContribution({ ...claimed, identity: 'proven' }, flood, numerator)?.numerator).toBe(false);
    expect(surgeType.compile?.(flood, new Map())?.numerator?.(claimed)).toBe(true);
  });
});

describe("SurgeTally: a batch's events of one key and bucket, added up", () => {
  const latency = surgeRule({ measure: { kind: 'p95', field: 'invocation.latencyMs' }, concentration: { field: 'client.ip' } });
  const add = (tally: SurgeTally, input: DetectionInput): void => {
    const contribution = surgeContribution(input, latency, undefined);
    if (contribution === undefined) throw new Error('expected the event to count');
    tally.add(input, contribution, T);
  };

  it('counts events, distinct members and histogram bins, and keeps the latest event by event time', () => {
    const first = callAt(T, { 'invocation.latencyMs': 812, 'client.ip': '10.1.2.3' });
    const tally = new SurgeTally(Math.floor(T / MINUTE), first);
    add(tally, first);
    add(tally, callAt(T + 2000, { 'invocation.latencyMs': 812, 'client.ip': '10.1.2.4' }));
    // Arrives last but happened earlier: not the latest.
    add(tally, callAt(T + 1000, { 'invocation.latencyMs': 3, 'client.ip': '10.1.2.3' }));
    expect([tally.events, tally.numerator, [...tally.members].sort(), [...tally.bins]]).toStrictEqual([3, 0, ['10.1.2.3', '10.1.2.4'], [[38, 2], [6, 1]]]);
    expect(tally.latest.event.id).toBe(`evt-call-${T + 2000}`);
    const context = { key, keyText, now: T, prefix: 'vigil-test', latenessMs: 300_000, stateGraceMs: 900_000 };
    expect(surgeTallyRequest(tally, latency, context).args.slice(0, 6)).toStrictEqual([Math.floor(T / MINUTE), 'p95', 3, 0, '["10.1.2.3","10.1.2.4"]', '[38,2,6,1]']);
  });

  it('sends members as well-formed text: a lone surrogate would make Redis refuse the whole tally', () => {
    const flood = surgeRule({ concentration: { field: 'actor.userId' } });
    const input = callAt(T, { 'actor.userId': 'u-\ud800-x' });
    const args = surgeRequest(input, flood, undefined, { key, keyText, now: T, prefix: 'vigil-test', latenessMs: 300_000, stateGraceMs: 900_000 })?.args ?? [];
    expect(args[4]).toBe(JSON.stringify(['u-\ufffd-x']));
    expect(String(args[4])).not.toMatch(/\\ud800/i);
  });
});

describe('evaluateSurge: a detection', () => {
  const flood = surgeRule({ concentration: { field: 'client.ip', minPerSource: 5 } });

  it('says the measure, the sources, the ratio and the baseline, and is identified by the bucket start', () => {
    const input = callAt(T);
    const detection = detected(evaluateSurge(input, surgeState(), flood, context));
    expect(detection.reason).toBe(
      `API accounts-v1 and route /accounts/:id: 1000 requests in the 1m from ${FROM} from 4 IPs (250 each on average), ` +
        '10.0× the baseline of 100 (45.0 standard deviations); fires at 5×.',
    );
    expect(detection).toStrictEqual({
      reasonCode: 'surge_requests',
      reason: detection.reason,
      observedValue: 1000,
      threshold: 500,
      distinct: { field: 'client.ip', values: [] },
      eventIds: [input.event.id],
      windowStart: BUCKET_START,
      windowEnd: T,
      identity: ['request-flood-test', keyText, String(BUCKET_START)],
      cooldownMs: MINUTE,
      claimScope: String(BUCKET_START / MINUTE),
    });
  });

  it('gives two events of the same bucket the same detection id, and the next bucket another', () => {
    const first = detected(evaluateSurge(callAt(BUCKET_START + 1), surgeState(), flood, context));
    const later = detected(evaluateSurge(callAt(BUCKET_START + 59_999), surgeState({ value: 1400, volume: 1400 }), flood, context));
    const next = detected(evaluateSurge(callAt(BUCKET_START + MINUTE), surgeState(), flood, context));
    expect(later.identity).toStrictEqual(first.identity);
    expect(detectionId(later.identity)).toBe(detectionId(first.identity));
    expect(later.windowStart).toBe(BUCKET_START);
    expect(later.eventIds).not.toStrictEqual(first.eventIds);
    expect(next.identity[2]).toBe(String(BUCKET_START + MINUTE));
    expect(detectionId(next.identity)).not.toBe(detectionId(first.identity));
  });

  it('separates the keys and the rules of the same bucket', () => {
    const other = { key: { ...key, 'invocation.route': '/v1/login' }, keyText: 'invocation.resource.api=accounts-v1,invocation.route=/v1/login', now: T };
    const here = detected(evaluateSurge(callAt(T), surgeState(), flood, context));
    const there = detected(evaluateSurge(callAt(T), surgeState(), flood, other));
    const otherRule = detected(evaluateSurge(callAt(T), surgeState(), surgeRule({ id: 'request-spike-test' }), context));
    expect(new Set([here, there, otherRule].map((detection) => detectionId(detection.identity))).size).toBe(3);
  });

  it('says "1 IP" for one source, and leaves out the sources without concentration and the deviations without variance', () => {
    const one = detected(evaluateSurge(callAt(T), surgeState({ distinct: 1 }), flood, context));
    expect(one.reason).toContain(' from 1 IP (1000 each on average), ');
    const plain = detected(evaluateSurge(callAt(T), surgeState({ variance: 0 }), surgeRule(), context));
    expect(plain.reason).toBe(`API accounts-v1 and route /accounts/:id: 1000 requests in the 1m from ${FROM}, 10.0× the baseline of 100; fires at 5×.`);
    expect(plain).not.toHaveProperty('distinct');
  });

  it('names each measure in its reason code and sentence', () => {
    const distinct = detected(
      evaluateSurge(callAt(T), surgeState({ value: 900, mean: 60, variance: 0 }), surgeRule({ measure: { kind: 'distinct', field: 'client.ip' }, minRatio: 8 }), context),
    );
    expect(distinct.reasonCode).toBe('surge_distinct');
    expect(distinct.reason).toContain(`: 900 distinct IPs in the 1m from ${FROM}, 15.0× the baseline of 60; fires at 8×.`);

    const latency = detected(
      evaluateSurge(
        callAt(T),
        surgeState({ value: 2435.4, mean: 52.8, variance: 7.5 }),
        surgeRule({ measure: { kind: 'p95', field: 'invocation.latencyMs' }, minRatio: 4, baselineFloor: 50 }),
        context,
      ),
    );
    expect(latency.reasonCode).toBe('surge_p95');
    expect(latency.reason).toContain(`: 2435 p95 invocation.latencyMs in the 1m from ${FROM}, 46.1× the baseline of 53 (870.0 standard deviations); fires at 4×.`);
    expect(latency.observedValue).toBe(2435.4);
    expect(latency.threshold).toBe(211.2);

    const errors = detected(
      evaluateSurge(
        callAt(T),
        surgeState({ value: 0.45, mean: 0.05, variance: 0 }),
        surgeRule({ noun: '5xx', measure: { kind: 'ratio', numerator: { field: 'invocation.status', gte: 500 } }, baselineFloor: 0.02 }),
        context,
      ),
    );
    expect(errors.reasonCode).toBe('surge_ratio');
    expect(errors.reason).toContain(`: 45.0% 5xx ratio in the 1m from ${FROM}, 9.0× the baseline of 5.0%; fires at 5×.`);
    expect(errors.observedValue).toBe(0.45);
    expect(errors.threshold).toBe(0.25);
  });
});

describe('evaluateSurge: baselineFloor', () => {
  const errors = surgeRule({ noun: '5xx', measure: { kind: 'ratio', numerator: { field: 'invocation.status', gte: 500 } }, minRatio: 5, baselineFloor: 0.02 });

  it('takes a ratio against the floor when the baseline is below it', () => {
    // A 0.1% baseline: 9% is 90 times that, but only 4.5 times the 2% floor.
    expect(evaluateSurge(callAt(T), surgeState({ value: 0.09, mean: 0.001, variance: 0 }), errors, context)).toStrictEqual(quiet('within_baseline'));
    const detection = detected(evaluateSurge(callAt(T), surgeState({ value: 0.1, mean: 0.001, variance: 0 }), errors, context));
    expect(detection.observedValue).toBe(0.1);
    expect(detection.threshold).toBe(0.1);
    expect(detection.reason).toContain(`10.0% 5xx ratio in the 1m from ${FROM}, 5.0×`);
  });

  it('fires on a ratio from a baseline of zero (a new or healthy endpoint), against the floor', () => {
    const detection = detected(evaluateSurge(callAt(T), surgeState({ value: 0.3, mean: 0, variance: 0 }), errors, context));
    expect(detection.threshold).toBe(0.1);
    expect(detection.reason).toContain('15.0×');
  });

  it('takes the baseline itself when it is above the floor', () => {
    expect(evaluateSurge(callAt(T), surgeState({ value: 0.24, mean: 0.05, variance: 0 }), errors, context)).toStrictEqual(quiet('within_baseline'));
    expect(detected(evaluateSurge(callAt(T), surgeState({ value: 0.25, mean: 0.05, variance: 0 }), errors, context)).threshold).toBe(0.25);
  });

  // The sentence states "<ratio>× the baseline of <baseline>": the baseline it names must be the one
  // the ratio and the threshold were taken against, or the numbers contradict each other.
  it('names the baseline the ratio was taken against (the floor), so the sentence adds up', () => {
    const ratio = detected(evaluateSurge(callAt(T), surgeState({ value: 0.1, mean: 0.001, variance: 0 }), errors, context));
    expect(ratio.reason).toContain(`10.0% 5xx ratio in the 1m from ${FROM}, 5.0× the baseline of 2.0%; fires at 5×.`);
    const count = detected(evaluateSurge(callAt(T), surgeState({ value: 120, volume: 120, mean: 0.2, variance: 0 }), surgeRule(), context));
    expect(count.threshold).toBe(5);
    expect(count.reason).toContain(`120 requests in the 1m from ${FROM}, 120.0× the baseline of 1; fires at 5×.`);
  });
});

describe('the default denial-of-service rules', () => {
  const ruleSet = loadRuleSet([DENIAL_OF_SERVICE]);
  const surges = ruleSet.rules.flatMap((compiled) => (isOfType(compiled, surgeType) ? [compiled] : []));

  it('load as five surge rules, keyed by endpoint or consumer', () => {
    expect(ruleSet.rules.map((compiled) => compiled.rule.id)).toStrictEqual([
      'request-flood-per-endpoint',
      'request-spike-per-consumer',
      'distributed-flood-per-endpoint',
      'error-surge-per-endpoint',
      'latency-surge-per-endpoint',
    ]);
    expect(surges).toHaveLength(5);
    expect(surges.map(({ rule }) => [rule.measure.kind, rule.bucket, rule.minSamples, rule.minRatio, rule.baselineFloor])).toStrictEqual([
      ['count', MINUTE, 10, 8, 1],
      ['count', MINUTE, 10, 8, 1],
      ['distinct', MINUTE, 10, 8, 25],
      ['ratio', MINUTE, 10, 5, 0.02],
      ['p95', MINUTE, 10, 4, 50],
    ]);
    expect(surges[0]?.rule.concentration).toStrictEqual({ field: 'client.ip', minPerSource: 5 });
  });

  it('compile the 5xx numerator, and make a request for an anonymous API call by a consumer', () => {
    const anonymous = callAt(T, { 'invocation.status': 503, 'invocation.latencyMs': 812 });
    const error = surges.find(({ rule }) => rule.id === 'error-surge-per-endpoint');
    expect(error?.extras.numerator?.(anonymous)).toBe(true);
    expect(error?.extras.numerator?.(callAt(T))).toBe(false);
    for (const { rule, matches, extras } of surges) {
      expect(matches(anonymous)).toBe(true);
      const request = surgeRequest(anonymous, rule, extras.numerator, requestContext, extras.where);
      expect(request?.keys[0]).toBe(stateKey('vigil-test', rule.id, keyText, 'surge'));
    }
    expect(surgeRequest(anonymous, error?.rule ?? surgeRule(), error?.extras.numerator, requestContext)?.args[3]).toBe(1);
  });

  it('keep a 2x bucket quiet and fire a 10x flood from few IPs on the endpoint rule', () => {
    const flood = surges[0];
    if (flood === undefined) throw new Error('no flood rule');
    const baseline = { mean: 120, variance: 15 ** 2, samples: 30 };
    expect(evaluateSurge(callAt(T), surgeState({ ...baseline, value: 240, volume: 240, distinct: 200 }), flood.rule, context)).toStrictEqual(quiet('within_baseline'));
    expect(evaluateSurge(callAt(T), surgeState({ ...baseline, value: 1200, volume: 1200, distinct: 900 }), flood.rule, context)).toStrictEqual(quiet('spread_out'));
    expect(detected(evaluateSurge(callAt(T), surgeState({ ...baseline, value: 1200, volume: 1200, distinct: 12 }), flood.rule, context)).reasonCode).toBe('surge_requests');
  });
});
