import type { DetectionInput } from '../input';
import { fieldValue, scalarText } from '../input';
import { fieldLabel, keyPhrase } from '../describe';
import { formatDuration } from '../duration';
import { stateKey } from '../state';
import { eventTime, none, parseFired, suppressed, windowPeriod, type Evaluation, type EvaluationContext, type StateRequest } from '../evaluation';
import { z } from 'zod';
import { base, grouped, fieldPath } from '../rule-schema';
import { durationSchema } from '../duration';
import { compileFilter, filterSchema, referencedRules, type Predicate } from '../filter';
import type { StatefulRuleType } from '../rule-type';

export const cardinalityRuleSchema = z.strictObject({
  ...base,
  ...grouped,
  type: z.literal('cardinality'),
  window: durationSchema,
  /** The field whose distinct values are counted per key. */
  field: fieldPath,
  threshold: z.number().int().min(2),
  /**
   * Count the values of some of the matching events only, and require their share: distinct
   * values among the events that pass `filter` (failed logins) reach the threshold, and those
   * events are at least `minShare` of the key's matching events in the window (all attempts).
   * One IP failing as 10 users fires; an office NAT where 40 staff sign in, a few with a typo,
   * does not. Without it, every matching event's value counts.
   */
  counted: z
    .strictObject({
      /** The events whose values are counted (`{ field: policy.outcome, equals: fail }`). */
      filter: filterSchema,
      /** Least share of the key's matching events in the window that pass `filter`, 0 to 1. @defaultValue 0.5 */
      minShare: z.number().min(0).max(1).default(0.5),
    })
    .optional(),
});

/** A cardinality rule, as validated. */
export type CardinalityRule = z.infer<typeof cardinalityRuleSchema>;

/** Distinct values in a window, as distinctAdd-3.lua (or distinctShare-4.lua) returns them. */
export interface DistinctState {
  count: number;
  /** With `counted`: the counted events and all the matching events in the window (distinctShare-4). */
  share?: { counted: number; total: number };
  lastFired?: number;
  lastFiredId?: string;
  values: string[];
  eventIds: string[];
}

export function parseDistinctState(reply: unknown): DistinctState {
  const items = reply as (string | number | null)[];
  const valueCount = Number(items[2]);
  return {
    count: Number(items[0]),
    ...parseFired(items[1]),
    values: items.slice(3, 3 + valueCount).map(String),
    eventIds: items.slice(3 + valueCount).map(String),
  };
}

/** Parses distinctShare-4's reply: counted events and the others first, then as distinctAdd-3. */
export function parseDistinctShareState(reply: unknown): DistinctState {
  const [count, counted, others, ...rest] = reply as (string | number | null)[];
  return { ...parseDistinctState([count ?? 0, ...rest]), share: { counted: Number(counted ?? 0), total: Number(counted ?? 0) + Number(others ?? 0) } };
}

/**
 * The distinctAdd call for one event, or undefined when it has no value of the field. With
 * `counted` (and its compiled filter), the distinctShare call: an event the filter passes adds
 * its value, any other only counts in the share.
 */
export function cardinalityRequest(
  input: DetectionInput,
  rule: CardinalityRule,
  context: EvaluationContext & { prefix: string; latenessMs: number; maxEvidence: number },
  counted?: Predicate,
): StateRequest | undefined {
  const isCounted = counted === undefined || counted(input);
  const value = scalarText(fieldValue(input, rule.field));
  if (value === undefined && isCounted) return undefined;
  const time = eventTime(input.event.time);
  const keys = [
    stateKey(context.prefix, rule.id, context.keyText, 'values'),
    stateKey(context.prefix, rule.id, context.keyText, 'ids'),
    stateKey(context.prefix, rule.id, context.keyText, 'fired'),
  ];
  return {
    script: counted === undefined ? 'distinctAdd' : 'distinctShare',
    keys: counted === undefined ? keys : [...keys, stateKey(context.prefix, rule.id, context.keyText, 'others')],
    args: [
      value ?? '',
      input.event.id,
      time,
      time - rule.window,
      time,
      context.now - rule.window - context.latenessMs,
      rule.window + context.latenessMs + 60_000,
      context.maxEvidence,
      // Below the threshold the script returns the count alone.
      rule.threshold,
      ...(counted === undefined ? [] : [isCounted ? 1 : 0]),
    ],
  };
}

/**
 * cardinality: distinct values of a field per key in a sliding window reach N (one IP failing as
 * many users: credential stuffing; one user on many devices or countries). With `counted`, only
 * the values of the events its filter passes count, and those events must be at least
 * `minShare` of the key's matching events.
 */
export function evaluateCardinality(
  input: DetectionInput,
  state: DistinctState,
  rule: CardinalityRule,
  context: EvaluationContext,
): Evaluation {
  if (state.count < rule.threshold) return none('below_threshold');
  const { counted } = rule;
  const share = state.share && state.share.total > 0 ? state.share.counted / state.share.total : 0;
  if (counted && share < counted.minShare) return none('below_share');
  const time = eventTime(input.event.time);
  // Named by the window period it fired in, not by the oldest event it held (docs/detection.md#detection-ids).
  const identity = [rule.id, context.keyText, windowPeriod(time, rule.window)];
  if (suppressed(state, context, time, rule.window, identity, input.event.id)) return none('suppressed_in_window');
  const shown = state.values.slice(0, 5).join(', ');
  const more = state.values.length > 5 ? ', …' : '';
  return {
    outcome: 'detected',
    detection: {
      reasonCode: 'cardinality_reached',
      reason: counted
        ? `${keyPhrase(context.key)}: ${rule.noun} with ${state.count} distinct ${fieldLabel(rule.field, true)} (${shown}${more}) within ${formatDuration(rule.window)}, ${state.share?.counted ?? 0} of its ${state.share?.total ?? 0} matching events (${Math.round(share * 100)}%); threshold ${rule.threshold}, and at least ${Math.round(counted.minShare * 100)}%.`
        : `${keyPhrase(context.key)}: ${rule.noun} with ${state.count} distinct ${fieldLabel(rule.field, true)} (${shown}${more}) within ${formatDuration(rule.window)}; threshold ${rule.threshold}.`,
      observedValue: state.count,
      threshold: rule.threshold,
      distinct: { field: rule.field, values: state.values },
      eventIds: state.eventIds,
      windowStart: time - rule.window,
      windowEnd: time,
      identity,
      cooldownMs: rule.window,
    },
  };
}

/**
 * cardinality, as a plug-in: one distinctAdd item per matching event with a value of the field
 * (with `counted`, one distinctShare item per matching event; its filter compiled once).
 */
export const cardinalityType: StatefulRuleType<CardinalityRule, Predicate | undefined> = {
  type: 'cardinality',
  configSchema: cardinalityRuleSchema,
  compile: (rule, lists) => (rule.counted ? compileFilter(rule.counted.filter, lists) : undefined),
  references: (rule) => (rule.counted ? referencedRules(rule.counted.filter) : []),
  plan(entries, { rule, extras }, _batch, out) {
    for (const { input, context, order } of entries) {
      const request = cardinalityRequest(input, rule, context, extras);
      if (request) out.push({ input, context, request, extra: undefined, order });
    }
  },
  decide: (item, reply, { rule }, context) =>
    evaluateCardinality(item.input, rule.counted ? parseDistinctShareState(reply) : parseDistinctState(reply), rule, context),
};
