import type { DetectionInput } from '../input';
import { fieldValue, scalarText } from '../input';
import { fieldLabel, keyPhrase } from '../describe';
import { formatDuration } from '../duration';
import type { Predicate } from '../filter';
import { stateKey } from '../state';
import { eventTime, none, type Evaluation, type EvaluationContext, type StateRequest } from '../evaluation';
import { z } from 'zod';
import { base, grouped, fieldPath } from '../rule-schema';
import { filterSchema } from '../filter';
import { durationSchema } from '../duration';
import { compileFilter, referencedRules } from '../filter';
import type { PlanContext, StatefulRuleType } from '../rule-type';

const measureSchema = z.discriminatedUnion('kind', [
  /** Events per bucket (requests to an endpoint, calls by a consumer). */
  z.strictObject({ kind: z.literal('count') }),
  /**
   * Distinct values of a field per bucket (source IPs on an endpoint), estimated by HyperLogLog.
   * With `where`, only the values of the events that pass it are counted, while every event of
   * the rule's filter keeps the key's baseline: minutes with none count as 0, so a flood of such
   * events on an endpoint that never had any meets a baseline, instead of being its first
   * samples (and learned as the usual).
   */
  z.strictObject({ kind: z.literal('distinct'), field: fieldPath, where: filterSchema.optional() }),
  /** Share of the bucket's events that pass a filter (the 5xx ratio). */
  z.strictObject({ kind: z.literal('ratio'), numerator: filterSchema }),
  /** 95th percentile of a numeric field per bucket (latency), from a log-scale histogram. */
  z.strictObject({ kind: z.literal('p95'), field: fieldPath }),
]);

export const surgeRuleSchema = z.strictObject({
  ...base,
  ...grouped,
  type: z.literal('surge'),
  /** The short window the measure is taken over, and the step of its baseline. @defaultValue 1m */
  bucket: durationSchema.default(60_000),
  measure: measureSchema,
  /** Weight of each new bucket in the rolling baseline (EWMA): 0.1 follows a change over about ten buckets. @defaultValue 0.1 */
  alpha: z.number().gt(0).max(1).default(0.1),
  /** Full buckets of history before the rule may fire (warm-up). @defaultValue 10 */
  minSamples: z.number().int().min(1).default(10),
  /** Events in the current bucket before the rule may fire: a quiet endpoint's 5 requests are no surge. @defaultValue 50 */
  minVolume: z.number().int().min(1).default(50),
  /** Fire when the measure reaches this multiple of its baseline. @defaultValue 5 */
  minRatio: z.number().gt(1).default(5),
  /** And, when set, when it is this many standard deviations above the baseline. */
  minZ: z.number().positive().optional(),
  /** The smallest baseline a ratio is taken against (a baseline of 0 would make any traffic infinite). @defaultValue 1 */
  baselineFloor: z.number().positive().default(1),
  /**
   * Fire only when the bucket's events come from few sources: at least `minPerSource` events per
   * distinct value of the field on average. A flood from a handful of IPs (hundreds each, even
   * mixed with normal users) passes; a flash crowd of many users (one or two each) does not.
   */
  concentration: z.strictObject({ field: fieldPath, minPerSource: z.number().positive().default(5) }).optional(),
  /**
   * A surge spread too thin for `concentration` (each source under the per-source bar) is still
   * a flood when most of it fails: the share of the bucket's events that pass `filter` (failed
   * authentication) reaches `minRatio` times its usual share (never less than `baselineFloor`).
   * A distributed login flood from 800 IPs at 4 requests a minute each fires; a flash crowd of
   * signed-in users, who pass authentication, does not. Without `concentration`, the surge fires
   * only when failing. Not with measure `ratio`, whose numerator the same counter holds.
   */
  failures: z
    .strictObject({
      /** The events that count as failures (`{ field: identity, equals: claimed }`: a user named, not proven). */
      filter: filterSchema,
      /** Fire when the bucket's failure share reaches this multiple of the usual share. @defaultValue 5 */
      minRatio: z.number().gt(1).default(5),
      /** The smallest usual share the ratio is taken against. @defaultValue 0.05 */
      baselineFloor: z.number().gt(0).max(1).default(0.05),
    })
    .optional(),
})
  .refine((rule) => rule.failures === undefined || rule.measure.kind !== 'ratio', {
    message: 'failures cannot be used with measure ratio (both count the numerator): use measure count or distinct',
    path: ['failures'],
  })
  // A ratio is at most 1: against a floor of 1 (the default) or any floor with floor × minRatio >
  // 1, it can never reach minRatio times its baseline (at exactly 1, only a share of 100% does),
  // and the rule would load and never fire.
  // The same for the failure share: a share is at most 1 too.
  .refine((rule) => rule.failures === undefined || rule.failures.baselineFloor * rule.failures.minRatio <= 1, {
    message: 'a failure share is at most 1, so with this failures.baselineFloor it can never reach failures.minRatio times the usual share: set failures.baselineFloor to at most 1 / failures.minRatio (the default 0.05 takes a minRatio up to 20)',
    path: ['failures', 'baselineFloor'],
  })
  .refine((rule) => rule.measure.kind !== 'ratio' || rule.baselineFloor * rule.minRatio <= 1, {
    message: 'a ratio is at most 1, so with this baselineFloor it can never reach minRatio times its baseline: set baselineFloor to at most 1 / minRatio (e.g. 0.02 with minRatio 5, as error-surge-per-endpoint does)',
    path: ['baselineFloor'],
  });

/** A surge rule, as validated. */
export type SurgeRule = z.infer<typeof surgeRuleSchema>;

/** A measure's bucket and the baseline before it, as surgeTick-2.lua returns them. */
export interface SurgeState {
  /** The measure of the event's bucket so far. */
  value: number;
  /** Baseline: EWMA mean and variance of the measure per full bucket. */
  mean: number;
  variance: number;
  /** Full buckets folded into the baseline. */
  samples: number;
  /** Events in the current bucket. */
  volume: number;
  /** Distinct values of the HLL field in the current bucket. */
  distinct: number;
  /**
   * Events not counted because their bucket was already folded into the baseline: older than
   * the allowed lateness (0 when they counted).
   */
  late: number;
  /** Events in the current bucket that pass the numerator (measure `ratio`) or the failure filter. */
  numerator: number;
  /** Baseline events per full bucket (EWMA), whatever the measure. */
  volumeMean: number;
  /** Baseline numerator events per full bucket (EWMA). */
  numeratorMean: number;
  /** Full buckets in those two baselines. */
  volumeSamples: number;
  /**
   * The buckets this item folded into the baseline for good (the lateness passed them), each
   * complete and with the baseline it is judged against, when the rule judges complete buckets
   * (see judgesOnClose); otherwise empty.
   */
  closed: ClosedBucket[];
}

/** A bucket folded for good: its final content and its own baseline, as surgeTick-2.lua reports it. */
export interface ClosedBucket extends Omit<SurgeState, 'late' | 'closed'> {
  bucket: number;
  /** The bucket's latest event (greatest event time, then id), whatever the order it came in. */
  latestTime: number;
  latestId: string;
}

function parseClosed(text: unknown): ClosedBucket[] {
  if (typeof text !== 'string' || text === '' || text === '[]' || text === '{}') return [];
  const rows = JSON.parse(text) as unknown[][];
  return rows.map((row) => {
    const [bucket, value, mean, variance, samples, volume, distinct, numerator, volumeMean, numeratorMean, volumeSamples, latestTime] = row.slice(0, 12).map(Number);
    return {
      bucket: bucket ?? 0,
      ...measures({ value, mean, variance, samples, volume, distinct, numerator, volumeMean, numeratorMean, volumeSamples }),
      latestTime: latestTime ?? 0,
      latestId: typeof row[12] === 'string' ? row[12] : '',
    };
  });
}

/** The measure and baselines shared by a bucket's reply and a closed bucket's row (absent: 0). */
type Measures = Omit<SurgeState, 'late' | 'closed'>;
function measures(fields: { [K in keyof Measures]: number | undefined }): Measures {
  return {
    value: fields.value ?? 0,
    mean: fields.mean ?? 0,
    variance: fields.variance ?? 0,
    samples: fields.samples ?? 0,
    volume: fields.volume ?? 0,
    distinct: fields.distinct ?? 0,
    numerator: fields.numerator ?? 0,
    volumeMean: fields.volumeMean ?? 0,
    numeratorMean: fields.numeratorMean ?? 0,
    volumeSamples: fields.volumeSamples ?? 0,
  };
}

export function parseSurgeState(reply: unknown): SurgeState {
  const fields = reply as (string | number)[];
  const [value, mean, variance, samples, volume, distinct, late, numerator, volumeMean, numeratorMean, volumeSamples] = fields.slice(0, 11).map(Number);
  return {
    ...measures({ value, mean, variance, samples, volume, distinct, numerator, volumeMean, numeratorMean, volumeSamples }),
    late: late ?? 0,
    closed: parseClosed(fields[11]),
  };
}

/**
 * Whether a rule is judged on complete buckets only: when any of its checks can go down as a
 * bucket fills (a ratio, a percentile, events per source, a failure share), a bucket judged "so
 * far" could fire in one arrival order and not another. Those rules judge each bucket once, when
 * the lateness has passed it and it is folded (complete); `count` and `distinct` alone only grow,
 * so their rules fire as soon as the bucket crosses, which its final content does in every order.
 */
export function judgesOnClose(rule: SurgeRule): boolean {
  return rule.measure.kind === 'ratio' || rule.measure.kind === 'p95' || rule.concentration !== undefined || rule.failures !== undefined;
}

/**
 * How many buckets back a bucket's baseline ends: bucket M meets the baseline folded through
 * M - lag, whose buckets the lateness has closed whenever an event of M still counts, so the
 * same bucket meets the same baseline in every order.
 */
export function baselineLag(latenessMs: number, bucketMs: number): number {
  return Math.min(Math.ceil(latenessMs / bucketMs) + 1, MAX_OPEN_BUCKETS);
}

/** Histogram bin of a non-negative value: quarter powers of two, so p95 is within about 19%. */
export function histogramBin(value: number): number {
  return value <= 1 ? 0 : Math.floor(Math.log2(value) * 4);
}

/** What one event adds to its key's current bucket. */
export interface SurgeContribution {
  bucket: number;
  /** HyperLogLog member ("" for none). */
  member: string;
  numerator: boolean;
  /** Histogram bin (measure p95), else -1. */
  bin: number;
}

/** What an event adds to a surge rule's bucket, or undefined when the rule skips the event. */
export function surgeContribution(input: DetectionInput, rule: SurgeRule, numerator: Predicate | undefined, where?: Predicate): SurgeContribution | undefined {
  const { measure } = rule;
  const hllField = measure.kind === 'distinct' ? measure.field : rule.concentration?.field;
  // A distinct measure's `where`: an event that fails it still counts in the bucket, without a value.
  const valued = measure.kind !== 'distinct' || measure.where === undefined || where?.(input) === true;
  const member = hllField === undefined || !valued ? '' : (scalarText(fieldValue(input, hllField)) ?? '');
  if (measure.kind === 'distinct' && measure.where === undefined && member === '') return undefined;
  let bin = -1;
  if (measure.kind === 'p95') {
    const value = fieldValue(input, measure.field);
    if (typeof value !== 'number' || value < 0) return undefined;
    bin = histogramBin(value);
  }
  // The predicate is the ratio's numerator or the failure filter (never both: the schema says so).
  const counted = (measure.kind === 'ratio' || rule.failures !== undefined) && numerator?.(input) === true;
  return { bucket: Math.floor(eventTime(input.event.time) / rule.bucket), member, numerator: counted, bin };
}

/**
 * The events of one key and bucket in a batch, added up: they make one surgeTick item, so a
 * flood of a thousand requests on an endpoint costs one script item per batch, not a thousand.
 * The rule is evaluated once for the tally, with its latest event.
 */
export class SurgeTally {
  events = 0;
  numerator = 0;
  readonly members = new Set<string>();
  readonly bins = new Map<number, number>();
  latest: DetectionInput;
  latestTime: number;
  /** The earliest engine clock of its events: the lateness that admitted them all is judged from it. */
  now = Number.POSITIVE_INFINITY;
  /** The greatest id among the latest events (a tie in event time is broken by id, as the script does). */
  latestId: string;

  constructor(
    readonly bucket: number,
    first: DetectionInput,
  ) {
    this.latest = first;
    this.latestTime = eventTime(first.event.time);
    this.latestId = first.event.id;
  }

  add(input: DetectionInput, contribution: SurgeContribution, now: number): void {
    this.events++;
    this.now = Math.min(this.now, now);
    if (contribution.numerator) this.numerator++;
    if (contribution.member !== '') this.members.add(contribution.member);
    if (contribution.bin >= 0) this.bins.set(contribution.bin, (this.bins.get(contribution.bin) ?? 0) + 1);
    const time = eventTime(input.event.time);
    if (time > this.latestTime || (time === this.latestTime && input.event.id >= this.latestId)) {
      this.latest = input;
      this.latestTime = time;
      this.latestId = input.event.id;
    }
  }
}

/**
 * Text with lone UTF-16 surrogates replaced by U+FFFD: Redis's cjson refuses their JSON escapes,
 * which would fail the whole tally for one crafted value.
 */
function wellFormed(text: string): string {
  return text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/** Most buckets of a key kept open for late events (as surgeTick-2.lua keeps at most). */
export const MAX_OPEN_BUCKETS = 64;

/**
 * When a bucket is closed (event time, ms): the engine clock at which the allowed lateness has
 * passed its end, so the oldest open bucket (below) moves past it. A bucket judged on close is
 * decided then, whichever event closed it: the same time in every arrival order.
 */
export function closedAt(bucket: number, latenessMs: number, bucketMs: number): number {
  return (bucket + 1) * bucketMs + latenessMs;
}

/**
 * The oldest bucket still open for an engine clock: the bucket of (clock - allowed lateness).
 * Older buckets are folded into the baseline, and their events are too late.
 */
export function oldestOpenBucket(now: number, latenessMs: number, bucketMs: number): number {
  return Math.floor((now - latenessMs) / bucketMs);
}

/** The surgeTick item of a tally. */
export function surgeTallyRequest(tally: SurgeTally, rule: SurgeRule, context: EvaluationContext & { prefix: string; latenessMs: number; stateGraceMs: number }): StateRequest {
  const bins: number[] = [];
  for (const [bin, count] of tally.bins) bins.push(bin, count);
  const now = Number.isFinite(tally.now) ? tally.now : context.now;
  return {
    script: 'surgeTick',
    keys: [stateKey(context.prefix, rule.id, context.keyText, 'surge'), stateKey(context.prefix, rule.id, context.keyText, `surge-hll:${tally.bucket}`)],
    args: [
      tally.bucket,
      rule.measure.kind,
      tally.events,
      tally.numerator,
      JSON.stringify([...tally.members].map(wellFormed)),
      JSON.stringify(bins),
      rule.alpha,
      // Long enough to keep the baseline through quiet hours.
      Math.max(rule.bucket * rule.minSamples * 20, 86_400_000),
      oldestOpenBucket(now, context.latenessMs, rule.bucket),
      // A bucket's sources are written while the lateness covers it; then only its count is kept.
      context.latenessMs + 2 * rule.bucket + context.stateGraceMs,
      baselineLag(context.latenessMs, rule.bucket),
      // Complete buckets are reported only to the rules that judge them (and only with the volume to fire).
      judgesOnClose(rule) ? rule.minVolume : 0,
      tally.latestTime,
      tally.latestId,
    ],
  };
}

/** The surgeTick item for one event alone (a tally of one), or undefined when the rule skips it. */
export function surgeRequest(
  input: DetectionInput,
  rule: SurgeRule,
  numerator: Predicate | undefined,
  context: EvaluationContext & { prefix: string; latenessMs: number; stateGraceMs: number },
  where?: Predicate,
): StateRequest | undefined {
  const contribution = surgeContribution(input, rule, numerator, where);
  if (contribution === undefined) return undefined;
  const tally = new SurgeTally(contribution.bucket, input);
  tally.add(input, contribution, context.now);
  return surgeTallyRequest(tally, rule, context);
}

const MEASURE_WORDS: Record<SurgeRule['measure']['kind'], string> = {
  count: 'requests',
  distinct: 'distinct',
  ratio: 'ratio',
  p95: 'p95',
};

function show(rule: SurgeRule, value: number): string {
  const { measure } = rule;
  if (measure.kind === 'ratio') return `${(value * 100).toFixed(1)}%`;
  if (measure.kind === 'p95') return `${Math.round(value)}`;
  return `${Math.round(value)}`;
}

/** The bucket's failure share against its usual share, when it surged (see the `failures` option). */
function failureSurge(state: Omit<SurgeState, 'closed'>, rule: SurgeRule): { share: number; usual: number; ratio: number } | undefined {
  const { failures } = rule;
  // Without a learnt usual share (state from before it was kept), a share alone proves nothing.
  if (failures === undefined || state.volume === 0 || state.volumeSamples < rule.minSamples) return undefined;
  const share = state.numerator / state.volume;
  const usual = Math.max(state.volumeMean > 0 ? state.numeratorMean / state.volumeMean : 0, failures.baselineFloor);
  const ratio = share / usual;
  return ratio >= failures.minRatio ? { share, usual, ratio } : undefined;
}

/**
 * surge: a measure per key over a short bucket (requests, distinct source IPs, the 5xx ratio,
 * p95 latency) against its own rolling baseline. Fires when the bucket so far reaches `minRatio`
 * times the baseline (and `minZ` deviations, when set), with enough volume and history, so a
 * quiet endpoint's handful of calls never fires and a slow ramp is absorbed by the baseline.
 * With `concentration`, only a surge from few sources fires (a flood, not a flash crowd); with
 * `failures` as well, a surge spread over many sources fires when most of it fails (a
 * distributed login flood).
 */
export function evaluateSurge(
  input: DetectionInput,
  state: Omit<SurgeState, 'closed'>,
  rule: SurgeRule,
  context: EvaluationContext,
  /** The bucket judged, when it is not the event's own (a closed bucket): its number and its latest event. */
  judged?: { bucket: number; latestTime: number; latestId: string; judgedAt: number },
): Evaluation {
  if (state.late > 0) return { outcome: 'none', reasonCode: 'late_bucket', lateEvents: state.late };
  if (state.samples < rule.minSamples) return none('warming_up');
  if (state.volume < rule.minVolume) return none('low_volume');
  const baseline = Math.max(state.mean, rule.baselineFloor);
  const ratio = state.value / baseline;
  if (ratio < rule.minRatio) return none('within_baseline');
  const deviation = Math.sqrt(state.variance);
  // Floating-point dust in a constant baseline's variance is no deviation at all.
  const z = deviation > 1e-6 * Math.max(1, Math.abs(state.mean)) ? (state.value - state.mean) / deviation : Number.POSITIVE_INFINITY;
  if (rule.minZ !== undefined && z < rule.minZ) return none('within_deviation');
  const perSource = state.distinct > 0 ? state.volume / state.distinct : 0;
  // No event carried the field: how concentrated the traffic is can't be told, so no flood
  // claim from concentration (a failure surge may still make one).
  const concentrated = rule.concentration !== undefined && state.distinct > 0 && perSource >= rule.concentration.minPerSource;
  const failing = !concentrated && rule.failures ? failureSurge(state, rule) : undefined;
  if (rule.concentration && !concentrated && failing === undefined) return none(state.distinct === 0 ? 'no_sources' : 'spread_out');
  if (!rule.concentration && rule.failures && failing === undefined) return none('not_failing');
  const bucket = judged?.bucket ?? Math.floor(eventTime(input.event.time) / rule.bucket);
  const bucketStart = bucket * rule.bucket;
  const end = judged?.latestTime ?? eventTime(input.event.time);
  const { measure } = rule;
  const what =
    measure.kind === 'count'
      ? `${rule.noun}`
      : measure.kind === 'distinct'
        ? `distinct ${fieldLabel(measure.field, true)}`
        : measure.kind === 'ratio'
          ? `${rule.noun} ratio`
          : `p95 ${measure.field}`;
  const sources = rule.concentration
    ? ` from ${state.distinct} ${fieldLabel(rule.concentration.field, state.distinct !== 1)} (${Math.round(perSource)} each on average)`
    : '';
  const failures = failing
    ? `, ${(failing.share * 100).toFixed(1)}% of them failing, ${failing.ratio.toFixed(1)}× the usual ${(failing.usual * 100).toFixed(1)}%`
    : '';
  return {
    outcome: 'detected',
    detection: {
      reasonCode: `surge_${MEASURE_WORDS[measure.kind]}`,
      reason: `${keyPhrase(context.key)}: ${show(rule, state.value)} ${what} in the ${formatDuration(rule.bucket)} from ${bucketText(bucketStart)}${sources}${failures}, ${ratio.toFixed(1)}× the baseline of ${show(rule, baseline)}${Number.isFinite(z) ? ` (${z.toFixed(1)} standard deviations)` : ''}; fires at ${rule.minRatio}×.`,
      observedValue: Math.round(state.value * 1000) / 1000,
      threshold: Math.round(baseline * rule.minRatio * 1000) / 1000,
      ...(rule.concentration ? { distinct: { field: rule.concentration.field, values: [] } } : {}),
      eventIds: [judged?.latestId ?? input.event.id],
      windowStart: bucketStart,
      windowEnd: end,
      ...(judged ? { time: end, judgedAt: judged.judgedAt } : {}),
      identity: [rule.id, context.keyText, String(bucketStart)],
      // Claimed per bucket: one detection per bucket, and neighbouring buckets never refuse each other.
      cooldownMs: rule.bucket,
      claimScope: String(bucket),
    },
  };
}

/**
 * The decisions of one surgeTick item. A rule of growing measures (judgesOnClose false) judges
 * the item's bucket as it stands against that bucket's own baseline: it fires as soon as the
 * bucket crosses, and later items of the bucket are refused by its claim. The other rules judge
 * only the buckets the item folded for good (complete), each once, and say `bucket_open` for the
 * item's own bucket meanwhile.
 */
export function decideSurge(input: DetectionInput, state: SurgeState, rule: SurgeRule, context: EvaluationContext, latenessMs: number): Evaluation[] {
  const decisions: Evaluation[] = [];
  if (judgesOnClose(rule)) {
    for (const closed of state.closed) decisions.push(evaluateSurge(input, { ...closed, late: 0 }, rule, context, { ...closed, judgedAt: closedAt(closed.bucket, latenessMs, rule.bucket) }));
    decisions.push(state.late > 0 ? { outcome: 'none', reasonCode: 'late_bucket', lateEvents: state.late } : none('bucket_open'));
    return decisions;
  }
  return [evaluateSurge(input, state, rule, context)];
}

/** What a surge rule compiles beyond its filter. */
export interface SurgeExtras {
  /** The ratio's numerator, or the failure filter (never both: the schema says so). */
  numerator: Predicate | undefined;
  /** A distinct measure's `where`: the events whose values it counts. */
  where: Predicate | undefined;
}

/**
 * surge, as a plug-in: the ratio's numerator compiled once; the batch's events added up per key
 * and bucket (see SurgeTally), one surgeTick item per tally, decided after the per-event items.
 */
export const surgeType: StatefulRuleType<SurgeRule, SurgeExtras> = {
  type: 'surge',
  configSchema: surgeRuleSchema,
  compile: (rule, lists) => ({
    numerator: rule.measure.kind === 'ratio' ? compileFilter(rule.measure.numerator, lists) : rule.failures ? compileFilter(rule.failures.filter, lists) : undefined,
    where: rule.measure.kind === 'distinct' && rule.measure.where !== undefined ? compileFilter(rule.measure.where, lists) : undefined,
  }),
  references: (rule) => [
    ...(rule.measure.kind === 'ratio' ? referencedRules(rule.measure.numerator) : []),
    ...(rule.measure.kind === 'distinct' && rule.measure.where !== undefined ? referencedRules(rule.measure.where) : []),
    ...(rule.failures ? referencedRules(rule.failures.filter) : []),
  ],
  plan(entries, { rule, extras }, batch, out) {
    const tallies = new Map<string, { tally: SurgeTally; context: PlanContext; order: number }>();
    for (const { input, context, order } of entries) {
      const contribution = surgeContribution(input, rule, extras.numerator, extras.where);
      if (contribution === undefined) continue;
      const id = `${context.keyText}\u0000${contribution.bucket}`;
      let entry = tallies.get(id);
      if (entry === undefined) {
        entry = { tally: new SurgeTally(contribution.bucket, input), context, order: order + batch.afterEvents };
        tallies.set(id, entry);
      }
      entry.tally.add(input, contribution, context.now);
      // The evaluation's clock is the latest event's.
      if (entry.tally.latest === input) entry.context = context;
    }
    for (const { tally, context, order } of tallies.values()) {
      out.push({ input: tally.latest, context, request: surgeTallyRequest(tally, rule, context), extra: undefined, order });
    }
  },
  decide: (item, reply, { rule }, context, carried) => {
    const state = parseSurgeState(reply);
    const decisions = decideSurge(item.input, state, rule, context, item.context.latenessMs);
    // Buckets a failed batch folded, judged as they were then: with the input that judged them,
    // whose event the detection's claim names (another would be refused by that claim).
    const held = new Set(state.closed.map((bucket) => bucket.bucket));
    for (const value of carried ?? []) {
      const { input, closed } = value as CarriedBuckets;
      const fresh = closed.filter((bucket) => !held.has(bucket.bucket));
      for (const bucket of fresh) held.add(bucket.bucket);
      if (fresh.length === 0) continue;
      for (const decision of decideSurge(input, { ...state, late: 0, closed: fresh }, rule, context, item.context.latenessMs)) {
        if (decision.outcome === 'detected') decisions.unshift({ ...decision, input });
      }
    }
    return decisions;
  },
  // A folded bucket is reported by the one call that folds it: a redo of that batch (its claim
  // round trip failed, or the chunk's indexing) must judge it again, or its detection is lost.
  carry: (item, reply): CarriedBuckets | undefined => {
    const { closed } = parseSurgeState(reply);
    return closed.length > 0 ? { input: item.input, closed } : undefined;
  },
};

/** Closed buckets a batch's reply reported, with the input that judged them (see `carry`). */
interface CarriedBuckets {
  input: DetectionInput;
  closed: ClosedBucket[];
}

/** A bucket's start in a reason: UTC, to the second (a bucket judged when it closes is not "the current" one). */
function bucketText(startMs: number): string {
  return new Date(startMs).toISOString().replace(/\.000Z$/, 'Z');
}
