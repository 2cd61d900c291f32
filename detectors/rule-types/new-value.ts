import type { DetectionInput } from '../input';
import { fieldValue, inputIdentity, scalarText } from '../input';
import { mayWriteHistory } from '../trust';
import { fieldLabel, keyPhrase } from '../describe';
import { formatDuration } from '../duration';
import { stateKey } from '../state';
import { eventTime, none, renewalMs, type Evaluation, type EvaluationContext, type StateRequest } from '../evaluation';
import { z } from 'zod';
import { attributed, base, grouped, fieldPath } from '../rule-schema';
import { durationSchema } from '../duration';
import type { StatefulRuleType } from '../rule-type';

export const newValueRuleSchema = z.strictObject({
  ...base,
  ...grouped,
  ...attributed,
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

/** A new_value rule, as validated. */
export type NewValueRule = z.infer<typeof newValueRuleSchema>;

/** What firstSeen-1.lua says of a value. */
export interface FirstSeenState {
  /** When the value was last seen for the key (ms), if within the horizon. */
  previous?: number;
  /** Other values the key has within the horizon: counted only when the value is not known. */
  known?: number;
  value: string;
}

export function parseFirstSeenState(reply: unknown, value: string): FirstSeenState {
  const [previous, known] = reply as [string | null, number | null];
  const state: FirstSeenState = { value };
  if (previous !== null && previous !== undefined) state.previous = Number(previous);
  if (known !== null && known !== undefined) state.known = Number(known);
  return state;
}

/** The firstSeen call, or undefined when the event has no value of the field. */
export function newValueRequest(
  input: DetectionInput,
  rule: NewValueRule,
  context: EvaluationContext & { prefix: string },
): { request: StateRequest; value: string } | undefined {
  const value = scalarText(fieldValue(input, rule.field));
  if (value === undefined) return undefined;
  const time = eventTime(input.event.time);
  return {
    value,
    request: {
      script: 'firstSeen',
      keys: [stateKey(context.prefix, rule.id, context.keyText, 'seen')],
      args: [value, time, Math.min(context.now, time) - rule.horizon, rule.horizon, renewalMs(rule.horizon)],
    },
  };
}

/**
 * new_value (first seen): a value not seen for the key within the history horizon, once the
 * key has enough history that "new" means something (a new device, a new country for a user).
 * Keyed by a user, it takes only events that prove the user unless the rule says `evidence: any`
 * (the trust model): a failed login's user id neither adds a value nor reports one.
 */
export function evaluateNewValue(
  input: DetectionInput,
  state: FirstSeenState,
  rule: NewValueRule,
  context: EvaluationContext,
): Evaluation {
  const time = eventTime(input.event.time);
  // Seen at exactly this event's time: this very event, redelivered; decide as the first time.
  if (state.previous !== undefined && state.previous !== time) return none('seen_before');
  const known = state.known ?? 0;
  if (known < rule.minKnownValues) return none('learning');
  return {
    outcome: 'detected',
    detection: {
      reasonCode: 'new_value',
      reason: `New ${fieldLabel(rule.field)} ${state.value} for ${keyPhrase(context.key)}: not seen in the last ${formatDuration(rule.horizon)}, which held ${known} other ${fieldLabel(rule.field, known !== 1)}.`,
      observedValue: known,
      distinct: { field: rule.field, values: [state.value] },
      eventIds: [input.event.id],
      windowStart: time - rule.horizon,
      windowEnd: time,
      // Not the event's id: the events of one request (policy, invocation, device) carry the same
      // new value within milliseconds, on three topics read side by side, and whichever comes
      // first fires. Named by the value and the horizon period it appeared in, the detection is
      // the same whichever it was (a value seen again only after a horizon falls in a later period).
      identity: [rule.id, context.keyText, state.value, `period-${Math.floor(time / rule.horizon)}`],
    },
  };
}

/** new_value, as a plug-in: one firstSeen item per key and value of the batch, from events the trust model lets write. */
export const newValueType: StatefulRuleType<NewValueRule, undefined, string> = {
  type: 'new_value',
  configSchema: newValueRuleSchema,
  plan(entries, { rule }, batch, out) {
    // A value already asked for in this batch is known by now, whatever Redis says: only its
    // first event needs a script call.
    const asked = new Set<string>();
    for (const { input, context, order } of entries) {
      if (!mayWriteHistory(inputIdentity(input), rule.groupBy, rule.evidence)) continue;
      const planned = newValueRequest(input, rule, context);
      if (planned === undefined) continue;
      const key = `${context.keyText}\u0000${planned.value}`;
      if (asked.has(key)) {
        batch.settled++; // seen in this batch: known, so no detection
        continue;
      }
      asked.add(key);
      out.push({ input, context, request: planned.request, extra: planned.value, order });
    }
  },
  decide: (item, reply, { rule }, context) => evaluateNewValue(item.input, parseFirstSeenState(reply, item.extra), rule, context),
};
