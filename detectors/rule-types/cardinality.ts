import type { DetectionInput } from '../input';
import { fieldValue, scalarText } from '../input';
import { fieldLabel, keyPhrase } from '../describe';
import { formatDuration } from '../duration';
import { stateKey } from '../state';
import { eventTime, none, parseFired, suppressed, type Evaluation, type EvaluationContext, type StateRequest } from '../evaluation';
import { z } from 'zod';
import { base, grouped, fieldPath } from '../rule-schema';
import { durationSchema } from '../duration';
import type { StatefulRuleType } from '../rule-type';

export const cardinalityRuleSchema = z.strictObject({
  ...base,
  ...grouped,
  type: z.literal('cardinality'),
  window: durationSchema,
  /** The field whose distinct values are counted per key. */
  field: fieldPath,
  threshold: z.number().int().min(2),
});

/** A cardinality rule, as validated. */
export type CardinalityRule = z.infer<typeof cardinalityRuleSchema>;

/** Distinct values in a window, as distinctAdd-3.lua returns them. */
export interface DistinctState {
  count: number;
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

/** The distinctAdd call for one event, or undefined when it has no value of the field. */
export function cardinalityRequest(
  input: DetectionInput,
  rule: CardinalityRule,
  context: EvaluationContext & { prefix: string; latenessMs: number; maxEvidence: number },
): StateRequest | undefined {
  const value = scalarText(fieldValue(input, rule.field));
  if (value === undefined) return undefined;
  const time = eventTime(input.event.time);
  return {
    script: 'distinctAdd',
    keys: [
      stateKey(context.prefix, rule.id, context.keyText, 'values'),
      stateKey(context.prefix, rule.id, context.keyText, 'ids'),
      stateKey(context.prefix, rule.id, context.keyText, 'fired'),
    ],
    args: [
      value,
      input.event.id,
      time,
      time - rule.window,
      time,
      context.now - rule.window - context.latenessMs,
      rule.window + context.latenessMs + 60_000,
      context.maxEvidence,
      // Below the threshold the script returns the count alone.
      rule.threshold,
    ],
  };
}

/**
 * cardinality: distinct values of a field per key in a sliding window reach N (one IP trying
 * many users: credential stuffing; one user on many devices or countries).
 */
export function evaluateCardinality(
  input: DetectionInput,
  state: DistinctState,
  rule: CardinalityRule,
  context: EvaluationContext,
): Evaluation {
  if (state.count < rule.threshold) return none('below_threshold');
  const time = eventTime(input.event.time);
  const identity = [rule.id, context.keyText, state.eventIds[0] ?? input.event.id];
  if (suppressed(state, context, time, rule.window, identity)) return none('suppressed_in_window');
  const shown = state.values.slice(0, 5).join(', ');
  const more = state.values.length > 5 ? ', …' : '';
  return {
    outcome: 'detected',
    detection: {
      reasonCode: 'cardinality_reached',
      reason: `${keyPhrase(context.key)}: ${rule.noun} with ${state.count} distinct ${fieldLabel(rule.field, true)} (${shown}${more}) within ${formatDuration(rule.window)}; threshold ${rule.threshold}.`,
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

/** cardinality, as a plug-in: one distinctAdd item per matching event with a value of the field. */
export const cardinalityType: StatefulRuleType<CardinalityRule> = {
  type: 'cardinality',
  configSchema: cardinalityRuleSchema,
  plan(entries, { rule }, _batch, out) {
    for (const { input, context, order } of entries) {
      const request = cardinalityRequest(input, rule, context);
      if (request) out.push({ input, context, request, extra: undefined, order });
    }
  },
  decide: (item, reply, { rule }, context) => evaluateCardinality(item.input, parseDistinctState(reply), rule, context),
};
