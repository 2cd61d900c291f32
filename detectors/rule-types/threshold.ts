import type { DetectionInput } from '../input';
import { fieldValue } from '../input';
import { fieldLabel, keyPhrase } from '../describe';
import { formatDuration } from '../duration';
import type { RuleOf } from '../rule-schema';
import { stateKey } from '../keys';
import { eventTime, lastFired, none, type Evaluation, type EvaluationContext, type StateRequest } from '../evaluation';

/** A sliding window as windowAdd-2.lua returns it. */
export interface WindowState {
  /** Events in [event time - window, event time]. */
  count: number;
  lastFired?: number;
  /** Oldest first, capped: event id, its distinct-field value, and its time. */
  members: { id: string; value?: string; time: number }[];
}

/** Parses windowAdd-2's reply. */
export function parseWindowState(reply: unknown): WindowState {
  const items = reply as (string | number | null)[];
  const members: WindowState['members'] = [];
  for (let index = 2; index + 1 < items.length; index += 2) {
    const member = String(items[index]);
    const separator = member.indexOf('|');
    members.push({
      id: separator < 0 ? member : member.slice(0, separator),
      ...(separator < 0 ? {} : { value: member.slice(separator + 1) }),
      time: Number(items[index + 1]),
    });
  }
  const fired = items[1];
  return { count: Number(items[0]), ...(fired === null || fired === undefined ? {} : { lastFired: Number(fired) }), members };
}

/** The windowAdd call for one event. */
export function thresholdRequest(
  input: DetectionInput,
  rule: RuleOf<'threshold'>,
  context: EvaluationContext & { prefix: string; latenessMs: number; maxEvidence: number },
): StateRequest {
  const time = eventTime(input.event.time);
  const value = rule.distinctField === undefined ? undefined : fieldValue(input, rule.distinctField);
  const member = value === undefined || value === null ? input.event.id : `${input.event.id}|${String(value)}`;
  return {
    script: 'windowAdd',
    keys: [stateKey(context.prefix, rule.id, context.keyText, 'window'), stateKey(context.prefix, rule.id, context.keyText, 'fired')],
    args: [
      member,
      time,
      time - rule.window,
      time,
      context.now - rule.window - context.latenessMs,
      rule.window + context.latenessMs + 60_000,
      context.maxEvidence,
    ],
  };
}

/**
 * threshold: the count of matching events per key in a true sliding window of event time
 * reaches N. Fires once per window per key: later events inside the window after a detection
 * are suppressed (the alerter counts them), so a 10-minute attack is one detection per window.
 */
export function evaluateThreshold(
  input: DetectionInput,
  state: WindowState,
  rule: RuleOf<'threshold'>,
  context: EvaluationContext,
): Evaluation {
  if (state.count < rule.threshold) return none('below_threshold');
  const time = eventTime(input.event.time);
  const fired = lastFired(state.lastFired, context.firedEarlierInBatch);
  if (fired !== undefined && Math.abs(time - fired) < rule.window) return none('suppressed_in_window');
  const first = state.members[0];
  const windowStart = first?.time ?? time;
  const values = [...new Set(state.members.map((member) => member.value).filter((value): value is string => value !== undefined))];
  const spread =
    rule.distinctField === undefined ? '' : ` from ${values.length} ${fieldLabel(rule.distinctField, values.length !== 1)}`;
  return {
    outcome: 'detected',
    detection: {
      reasonCode: 'threshold_reached',
      reason: `${state.count} ${rule.noun} for ${keyPhrase(context.key)}${spread} in ${formatDuration(time - windowStart)}; threshold ${rule.threshold} in ${formatDuration(rule.window)}.`,
      observedValue: state.count,
      threshold: rule.threshold,
      ...(rule.distinctField === undefined ? {} : { distinct: { field: rule.distinctField, values } }),
      eventIds: state.members.map((member) => member.id),
      windowStart,
      windowEnd: time,
      identity: [rule.id, context.keyText, first?.id ?? input.event.id],
      cooldownMs: rule.window,
    },
  };
}
