import { z } from 'zod';
import { SEVERITIES } from '../schemas';
import { durationSchema } from './duration';
import { cidrRangesSchema, filterSchema } from './filter';

const fieldPath = z.string().regex(/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/, 'expected a dotted field path');

const base = {
  /** Stable id: detections, fixtures and dashboards refer to it. */
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{2,80}$/, 'lower-case letters, digits and "-", 3 to 81 characters'),
  /** Bumped on every change of meaning; carried on each detection. */
  version: z.number().int().min(1),
  name: z.string().min(3).max(200),
  description: z.string().min(3).max(2000),
  severity: z.enum(SEVERITIES),
  /** MITRE ATT&CK technique ids (T1110, T1110.004) and free tags. */
  tags: z.array(z.string().min(1).max(100)).default([]),
  /** @defaultValue true */
  enabled: z.boolean().default(true),
  /** Which events the rule looks at. @defaultValue every event */
  filter: filterSchema.optional(),
  /**
   * When Redis is unavailable: `pause` holds the partition until it is back (nothing is
   * evaluated without state, nothing lost); `skip` goes on without this rule and counts
   * every skipped evaluation as degraded. @defaultValue 'pause'
   */
  onStateUnavailable: z.enum(['pause', 'skip']).default('pause'),
  /** Words for the sentence: "12 <noun> for user u-17 ...". @defaultValue 'matching events' */
  noun: z.string().min(1).max(100).default('matching events'),
};

const grouped = {
  /** Fields whose values make the key state is kept per, e.g. `[actor.userId]`. */
  groupBy: z.array(fieldPath).min(1).max(4),
};

export const matchRuleSchema = z.strictObject({ ...base, type: z.literal('match') });

export const thresholdRuleSchema = z.strictObject({
  ...base,
  ...grouped,
  type: z.literal('threshold'),
  window: durationSchema,
  threshold: z.number().int().min(1),
  /** A field whose distinct values the detection lists as evidence ("from 3 IPs"). */
  distinctField: fieldPath.optional(),
});

export const cardinalityRuleSchema = z.strictObject({
  ...base,
  ...grouped,
  type: z.literal('cardinality'),
  window: durationSchema,
  /** The field whose distinct values are counted per key. */
  field: fieldPath,
  threshold: z.number().int().min(2),
});

export const sequenceStepSchema = z.strictObject({
  name: z.string().min(1).max(100),
  filter: filterSchema,
  /** How many events must match this step. @defaultValue 1 */
  count: z.number().int().min(1).max(1000).default(1),
});

export const sequenceRuleSchema = z.strictObject({
  ...base,
  ...grouped,
  type: z.literal('sequence'),
  window: durationSchema,
  steps: z.array(sequenceStepSchema).min(2).max(5),
});

export const newValueRuleSchema = z.strictObject({
  ...base,
  ...grouped,
  type: z.literal('new_value'),
  field: fieldPath,
  /** How long a value is remembered. @defaultValue 30d */
  horizon: durationSchema.default(30 * 86_400_000),
  /**
   * Values the key must already have before a new one counts: 1 means a user's very first
   * device is learned, not reported. @defaultValue 1
   */
  minKnownValues: z.number().int().min(0).default(1),
});

export const geoVelocityRuleSchema = z.strictObject({
  ...base,
  ...grouped,
  type: z.literal('geo_velocity'),
  /** Faster than this between two located events is impossible travel. @defaultValue 900 (a jet) */
  maxSpeedKmh: z.number().positive().default(900),
  /** Nearer than this (after subtracting both accuracies) never fires. @defaultValue 300 */
  minDistanceKm: z.number().min(0).default(300),
  /** How long the last location is kept. @defaultValue 24h */
  horizon: durationSchema.default(86_400_000),
  /** Addresses (VPN egress, corporate proxies) that never take part in a detection. */
  allowlistCidrs: cidrRangesSchema.default([]),
});

const measureSchema = z.discriminatedUnion('kind', [
  /** Events per bucket (requests to an endpoint, calls by a consumer). */
  z.strictObject({ kind: z.literal('count') }),
  /** Distinct values of a field per bucket (source IPs on an endpoint), estimated by HyperLogLog. */
  z.strictObject({ kind: z.literal('distinct'), field: fieldPath }),
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
});

/** One detection rule, as written in a rule file. */
export const ruleSchema = z.discriminatedUnion('type', [
  matchRuleSchema,
  thresholdRuleSchema,
  cardinalityRuleSchema,
  sequenceRuleSchema,
  newValueRuleSchema,
  geoVelocityRuleSchema,
  surgeRuleSchema,
]);

export type Rule = z.infer<typeof ruleSchema>;
export type RuleOf<T extends Rule['type']> = Extract<Rule, { type: T }>;

/** A rule file: a list of rules, or `{ rules: [...] }`. */
export const ruleFileSchema = z.union([z.array(z.unknown()), z.strictObject({ rules: z.array(z.unknown()) })]);
