import type { DetectionInput } from '../input';
import { fieldValue, scalarText } from '../input';
import { fieldLabel, keyPhrase } from '../describe';
import { formatDuration } from '../duration';
import { stateKey } from '../state';
import { eventTime, none, parseFired, suppressed, windowPeriod, type Evaluation, type EvaluationContext, type StateRequest } from '../evaluation';
import { z } from 'zod';
import { base, grouped, fieldPath } from '../rule-schema';
import { durationSchema } from '../duration';
import type { StatefulRuleType } from '../rule-type';

export const thresholdRuleSchema = z.strictObject({
  ...base,
  ...grouped,
  type: z.literal('threshold'),
  window: durationSchema,
  threshold: z.number().int().min(1),
  /** A field whose distinct values the detection lists as evidence ("from 3 IPs"). */
  distinctField: fieldPath.optional(),
});

/** A threshold rule, as validated. */
export type ThresholdRule = z.infer<typeof thresholdRuleSchema>;

/** A sliding window as windowAdd-2.lua (version 3) returns it. */
export interface WindowState {
  /** Events in the range read: a window either side of the event's time. */
  count: number;
  lastFired?: number;
  lastFiredId?: string;
  /**
   * Set when the range held more than the reply does (a flood): the events in the window that ends
   * at the event, and the time of its oldest. `members` are then that window's newest.
   */
  flood?: { count: number; firstTime: number };
  /** Oldest first: every event of the range, or in a flood the window's newest; event id, its distinct-field value, and its time. */
  members: { id: string; value?: string; time: number }[];
}

/** Parses windowAdd-2's reply (version 3). */
export function parseWindowState(reply: unknown): WindowState {
  const items = reply as (string | number | null)[];
  const members: WindowState['members'] = [];
  for (let index = 4; index + 1 < items.length; index += 2) {
    const member = String(items[index]);
    const separator = member.indexOf('|');
    members.push({
      id: separator < 0 ? member : member.slice(0, separator),
      ...(separator < 0 ? {} : { value: member.slice(separator + 1) }),
      time: Number(items[index + 1]),
    });
  }
  const upTo = items[2];
  const flood = upTo === null || upTo === undefined ? undefined : { count: Number(upTo), firstTime: Number(items[3] ?? Number.NaN) };
  return { count: Number(items[0]), ...parseFired(items[1]), ...(flood ? { flood } : {}), members };
}

/** How many members the engine reads back: enough to find any window holding the threshold. */
export function thresholdReadLimit(rule: ThresholdRule, maxEvidence: number): number {
  return Math.max(maxEvidence, rule.threshold * 2 + 10);
}

/** The windowAdd call for one event: it reads a window either side, since events arrive out of order. */
export function thresholdRequest(
  input: DetectionInput,
  rule: ThresholdRule,
  context: EvaluationContext & { prefix: string; latenessMs: number; stateGraceMs: number; maxEvidence: number },
): StateRequest {
  const time = eventTime(input.event.time);
  const value = rule.distinctField === undefined ? undefined : scalarText(fieldValue(input, rule.distinctField));
  const member = value === undefined ? input.event.id : `${input.event.id}|${value}`;
  return {
    script: 'windowAdd',
    keys: [stateKey(context.prefix, rule.id, context.keyText, 'window'), stateKey(context.prefix, rule.id, context.keyText, 'fired')],
    args: [
      member,
      time,
      time - rule.window,
      time + rule.window,
      context.now - rule.window - context.latenessMs,
      rule.window + context.latenessMs + context.stateGraceMs,
      thresholdReadLimit(rule, context.maxEvidence),
      // Fewer events than the threshold within a window either side: no window can fire, so
      // the script returns the count alone (no members, no fired mark).
      rule.threshold,
    ],
  };
}

/**
 * The first window of the rule's length, containing the event, that reaches the threshold (or
 * else the fullest): for an event in order it ends at the event; a late event may complete a
 * window that ends at a later one. "First", not "fullest", so that a redelivered chunk, whose
 * later events are already stored, finds the same window, and so the same detection, again.
 */
function firstFullWindow(members: WindowState['members'], time: number, window: number, threshold: number): WindowState['members'] {
  let best: WindowState['members'] = [];
  let start = 0;
  for (let end = 0; end < members.length; end++) {
    const last = members[end];
    if (last === undefined || last.time < time) continue;
    if (last.time > time + window) break;
    while ((members[start]?.time ?? Infinity) < last.time - window) start++;
    const span = members.slice(start, end + 1);
    if ((span[0]?.time ?? Infinity) > time) continue;
    if (span.length >= threshold) return span;
    if (span.length > best.length) best = span;
  }
  return best;
}

/**
 * threshold: the count of matching events per key in a true sliding window of event time
 * reaches N. Fires once per window per key: later events inside the window after a detection
 * are suppressed (the alerter counts them), so a 10-minute attack is one detection per window.
 */
export function evaluateThreshold(
  input: DetectionInput,
  state: WindowState,
  rule: ThresholdRule,
  context: EvaluationContext,
): Evaluation {
  // The events within a window either side of this one: fewer than N, and no window holding it reaches N.
  if (state.count < rule.threshold) return none('below_threshold');
  const time = eventTime(input.event.time);
  // With every member in hand, take the first window containing the event that reaches N; in a
  // flood, the window that ends at the event, counted whole, its newest members as evidence.
  const window = state.flood === undefined ? firstFullWindow(state.members, time, rule.window, rule.threshold) : state.members;
  const count = state.flood?.count ?? window.length;
  if (count < rule.threshold) return none('below_threshold');
  const end = window[window.length - 1]?.time ?? time;
  const first = state.flood !== undefined && Number.isFinite(state.flood.firstTime) ? { time: state.flood.firstTime } : window[0];
  // Named by the period its full window ends in, not by the first event it held (docs/detection.md#the-id-rule-key-and-window).
  const identity = [rule.id, context.keyText, windowPeriod(end, rule.window)];
  if (suppressed(state, context, end, rule.window, identity, input.event.id)) return none('suppressed_in_window');
  const windowStart = first?.time ?? time;
  const values = [...new Set(window.map((member) => member.value).filter((value): value is string => value !== undefined))];
  // In a flood the values are those of the newest events read, not of the whole window: said so.
  const among = state.flood === undefined ? '' : ` (among the latest ${window.length})`;
  const spread =
    rule.distinctField === undefined ? '' : ` from ${values.length} ${fieldLabel(rule.distinctField, values.length !== 1)}${among}`;
  return {
    outcome: 'detected',
    detection: {
      reasonCode: 'threshold_reached',
      reason: `${count} ${rule.noun} for ${keyPhrase(context.key)}${spread} in ${formatDuration(end - windowStart)}; threshold ${rule.threshold} in ${formatDuration(rule.window)}.`,
      observedValue: count,
      threshold: rule.threshold,
      ...(rule.distinctField === undefined ? {} : { distinct: { field: rule.distinctField, values } }),
      eventIds: window.map((member) => member.id),
      windowStart,
      windowEnd: end,
      identity,
      cooldownMs: rule.window,
    },
  };
}

/** threshold, as a plug-in: one windowAdd item per matching event. */
export const thresholdType: StatefulRuleType<ThresholdRule> = {
  type: 'threshold',
  configSchema: thresholdRuleSchema,
  plan(entries, { rule }, _batch, out) {
    for (const { input, context, order } of entries) out.push({ input, context, request: thresholdRequest(input, rule, context), extra: undefined, order });
  },
  decide: (item, reply, { rule }, context) => evaluateThreshold(item.input, parseWindowState(reply), rule, context),
};
