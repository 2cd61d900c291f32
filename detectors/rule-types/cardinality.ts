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
   * values among the events that pass `filter` (users that failed) reach the threshold, and they
   * are at least `minShare` of the distinct values of all the key's matching events in the window
   * (users that attempted, failing or not). One IP failing as 10 users fires; an office NAT where
   * 40 staff sign in, a few with a typo, does not. A share of values, not of events (since
   * 6 December 2026): with events, one IP padding its stuffing with the sign-ins of one account
   * of its own stayed under any share. Without it, every matching event's value counts.
   */
  counted: z
    .strictObject({
      /** The events whose values are counted (`{ field: policy.outcome, equals: fail }`). */
      filter: filterSchema,
      /**
       * Least share, 0 to 1, of the distinct values of the key's matching events in the window that
       * are values of events `filter` passes. A value seen on both kinds (a user who mistyped, then
       * signed in) is one value, and counts as passing. @defaultValue 0.5
       */
      minShare: z.number().min(0).max(1).default(0.5),
    })
    .optional(),
});

/** A cardinality rule, as validated. */
export type CardinalityRule = z.infer<typeof cardinalityRuleSchema>;

/** An event held in a cardinality rule's state: its id, its value, its time. */
export interface DistinctMember {
  id: string;
  /** The value of the rule's field; undefined for an event without one (it counts for nothing). */
  value?: string;
  time: number;
  /** With `counted`: an event its filter did not pass, whose value counts only among the share's values. */
  other?: true;
}

/** What distinctAdd-3.lua (or distinctShare-4.lua) returns for one event. */
export interface DistinctState {
  /**
   * Distinct values last seen at or after the range's start (the event's time less a window): no
   * window holding the event has more. Below the threshold, the reply ends here.
   */
  bound: number;
  lastFired?: number;
  lastFiredId?: string;
  /**
   * Every event within a window either side of this one, oldest first (with `counted`, the
   * counted and the other events, each oldest first): the windows holding it are found here.
   */
  members?: DistinctMember[];
  /**
   * When too many events were held to read them all back: the window ending at the event, as
   * the script counted it (values last seen in it: exact for an event read in order, a lower
   * bound for a late one), with values and counted events oldest first, at most the evidence cap.
   * With `counted`, `share` is in values: the counted ones, and those with the other events' values
   * (a lower bound of these: see distinctShare-4.lua).
   */
  capped?: { count: number; share?: { counted: number; total: number }; values: string[]; members: DistinctMember[] };
}

/**
 * `"<id>|<value>"`, time pairs from a script reply, split at the first `|` as the scripts join
 * them. The others (distinctShare-4): an empty value is none, and so is a bare id (written by
 * version 2 of the script, which kept no values of the others).
 */
function parseMembers(items: readonly unknown[], other: boolean): DistinctMember[] {
  const members: DistinctMember[] = [];
  for (let index = 0; index + 1 < items.length; index += 2) {
    const member = String(items[index]);
    const separator = member.indexOf('|');
    const value = separator < 0 ? undefined : member.slice(separator + 1);
    members.push({
      id: separator < 0 ? member : member.slice(0, separator),
      ...(value === undefined || (other && value === '') ? {} : { value }),
      time: Number(items[index + 1]),
      ...(other ? { other: true as const } : {}),
    });
  }
  return members;
}

/** Parses distinctAdd-3's reply. */
export function parseDistinctState(reply: unknown): DistinctState {
  const items = reply as (string | number | null)[];
  const state: DistinctState = { bound: Number(items[0]), ...parseFired(items[1]) };
  if (items.length <= 3) return state;
  const valueCount = Number(items[4]);
  const members = parseMembers(items.slice(5 + valueCount), false);
  if (items[3] === null || items[3] === undefined) return { ...state, members };
  return { ...state, capped: { count: Number(items[3]), values: items.slice(5, 5 + valueCount).map(String), members } };
}

/**
 * Parses distinctShare-4's reply: as distinctAdd-3, with the counted and other events apart. A
 * capped reply's share is in values: the counted values, and the other events' values not among them.
 */
export function parseDistinctShareState(reply: unknown): DistinctState {
  const items = reply as (string | number | null)[];
  const state: DistinctState = { bound: Number(items[0]), ...parseFired(items[1]) };
  if (items.length <= 3) return state;
  const valueCount = Number(items[6]);
  const pairs = Number(items[7 + valueCount]);
  const rest = items.slice(8 + valueCount);
  const counted = parseMembers(rest.slice(0, pairs * 2), false);
  if (items[3] === null || items[3] === undefined) return { ...state, members: [...counted, ...parseMembers(rest.slice(pairs * 2), true)] };
  const share = { counted: Number(items[4]), total: Number(items[4]) + Number(items[5]) };
  return { ...state, capped: { count: Number(items[3]), share, values: items.slice(7, 7 + valueCount).map(String), members: counted } };
}

/**
 * How many events the engine reads back for one event whose range could reach the threshold:
 * enough for any window of an attack (each value seen a few times), bounded for a flood. A key
 * holding more falls back to the window ending at the event (the script's count).
 */
export function cardinalityReadLimit(rule: CardinalityRule, maxEvidence: number): number {
  return Math.max(maxEvidence, rule.threshold * 10, 200);
}

/**
 * The distinctAdd call for one event, or undefined when it has no value of the field. With
 * `counted` (and its compiled filter), the distinctShare call: an event the filter passes adds
 * its value, any other only counts in the share. Both read a window either side of the event,
 * since events arrive out of order.
 */
export function cardinalityRequest(
  input: DetectionInput,
  rule: CardinalityRule,
  context: EvaluationContext & { prefix: string; latenessMs: number; stateGraceMs: number; maxEvidence: number },
  counted?: Predicate,
): StateRequest | undefined {
  const isCounted = counted === undefined || counted(input);
  const value = scalarText(fieldValue(input, rule.field));
  if (value === undefined && isCounted) return undefined;
  const time = eventTime(input.event.time);
  const keys = [
    stateKey(context.prefix, rule.id, context.keyText, 'values'),
    stateKey(context.prefix, rule.id, context.keyText, 'events'),
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
      time + rule.window,
      context.now - rule.window - context.latenessMs,
      rule.window + context.latenessMs + context.stateGraceMs,
      cardinalityReadLimit(rule, context.maxEvidence),
      // Fewer distinct values than the threshold seen since a window before the event: no window
      // holding it can fire, so the script returns that bound alone.
      rule.threshold,
      ...(counted === undefined ? [] : [isCounted ? 1 : 0]),
      context.maxEvidence,
    ],
  };
}

/** A window found for a cardinality rule: its distinct values and its events. */
interface DistinctWindow {
  start: number;
  end: number;
  /** Distinct values, in the order first seen in the window. */
  values: string[];
  /** The counted events' ids, oldest first. */
  eventIds: string[];
  /** With `counted`: the counted values, and all the values of the window's events. */
  share?: { counted: number; total: number };
}

/**
 * The first window of the rule's length, containing the event, whose distinct values reach the
 * threshold (and, with `minShare`, whose counted values are that share of all its events' values): for an
 * event in order it ends at the event; a late event may complete a window that ends at a later
 * one. Windows end at an event, as they do when each event is read in order. "First", not
 * "fullest", so that a redelivered chunk, whose later events are already stored, finds the same
 * window, and so the same detection, again (as threshold's firstFullWindow). `reached` tells a
 * window that reached the threshold but not the share.
 */
export function firstFullDistinctWindow(
  members: readonly DistinctMember[],
  time: number,
  window: number,
  threshold: number,
  minShare?: number,
): { found?: DistinctWindow; reached: boolean } {
  // Counted and other events merged, oldest first (each list already is).
  const sorted = minShare === undefined ? members : [...members].sort((left, right) => left.time - right.time);
  // Events per value in the window: of the counted events (held), and of every event (all: the
  // share's values, so that a user who failed and also signed in is one of them, once).
  const held = new Map<string, number>();
  const all = new Map<string, number>();
  const add = (counts: Map<string, number>, value: string, step: 1 | -1): void => {
    const left = (counts.get(value) ?? 0) + step;
    if (left === 0) counts.delete(value);
    else counts.set(value, left);
  };
  const isCounted = (member: DistinctMember): member is DistinctMember & { value: string } => member.value !== undefined && member.other !== true;
  let start = 0;
  let reached = false;
  for (let end = 0; end < sorted.length; end++) {
    const last = sorted[end];
    if (last === undefined) break;
    if (last.time > time + window) break;
    if (last.value !== undefined) add(all, last.value, 1);
    if (isCounted(last)) add(held, last.value, 1);
    for (let first = sorted[start]; first !== undefined && first.time < last.time - window; first = sorted[++start]) {
      if (first.value !== undefined) add(all, first.value, -1);
      if (isCounted(first)) add(held, first.value, -1);
    }
    // Windows end at or after the event, and hold it.
    if (last.time < time || last.time - window > time || held.size < threshold) continue;
    reached = true;
    // Values, not events: padding with the sign-ins of one account adds one value, not N events.
    if (minShare !== undefined && held.size / all.size < minShare) continue;
    const span = sorted.slice(start, end + 1);
    const values = new Set<string>();
    const eventIds: string[] = [];
    for (const member of span) {
      if (!isCounted(member)) continue;
      eventIds.push(member.id);
      values.add(member.value);
    }
    return {
      found: {
        start: span[0]?.time ?? time,
        end: last.time,
        values: [...values],
        eventIds,
        ...(minShare === undefined ? {} : { share: { counted: held.size, total: all.size } }),
      },
      reached,
    };
  }
  return { reached };
}

/**
 * cardinality: distinct values of a field per key in a sliding window of event time reach N (one
 * IP failing as many users: credential stuffing; one user on many devices or countries). With
 * `counted`, only the values of the events its filter passes count, and those values must be at
 * least `minShare` of the distinct values of the key's matching events. Order-independent: the window is the first one
 * holding the event that reaches N, and the detection is named by the period that window ends
 * in, so a late event completing a window finds the same detection as the events read in order.
 */
export function evaluateCardinality(
  input: DetectionInput,
  state: DistinctState,
  rule: CardinalityRule,
  context: EvaluationContext,
  maxEvidence = 50,
): Evaluation {
  // Fewer distinct values since a window before the event: no window holding it reaches N.
  if (state.bound < rule.threshold) return none('below_threshold');
  const { counted } = rule;
  const time = eventTime(input.event.time);
  let window: DistinctWindow;
  if (state.members !== undefined) {
    const { found, reached } = firstFullDistinctWindow(state.members, time, rule.window, rule.threshold, counted?.minShare);
    if (found === undefined) return none(reached ? 'below_share' : 'below_threshold');
    window = found;
  } else {
    // Too many events held to read: the window ending at the event, as the script counted it.
    const capped = state.capped;
    if (capped === undefined || capped.count < rule.threshold) return none('below_threshold');
    const total = capped.share?.total ?? 0;
    if (counted && (total === 0 ? 0 : (capped.share?.counted ?? 0) / total) < counted.minShare) return none('below_share');
    window = {
      start: time - rule.window,
      end: time,
      values: capped.values,
      eventIds: capped.members.map((member) => member.id),
      ...(capped.share === undefined ? {} : { share: capped.share }),
    };
  }
  const count = state.members === undefined ? (state.capped?.count ?? 0) : window.values.length;
  // Named by the period its full window ends in, not by the oldest event it held (docs/detection.md#the-id-rule-key-and-window).
  const identity = [rule.id, context.keyText, windowPeriod(window.end, rule.window)];
  if (suppressed(state, context, window.end, rule.window, identity, input.event.id)) return none('suppressed_in_window');
  const values = window.values.slice(0, maxEvidence);
  const shown = values.slice(0, 5).join(', ');
  const more = count > 5 ? ', …' : '';
  const share = window.share && window.share.total > 0 ? window.share.counted / window.share.total : 0;
  return {
    outcome: 'detected',
    detection: {
      reasonCode: 'cardinality_reached',
      reason: counted
        ? `${keyPhrase(context.key)}: ${rule.noun} with ${count} distinct ${fieldLabel(rule.field, true)} (${shown}${more}) within ${formatDuration(rule.window)}, ${window.share?.counted ?? 0} of the ${window.share?.total ?? 0} distinct ${fieldLabel(rule.field, true)} of its matching events (${Math.round(share * 100)}%); threshold ${rule.threshold}, and at least ${Math.round(counted.minShare * 100)}%.`
        : `${keyPhrase(context.key)}: ${rule.noun} with ${count} distinct ${fieldLabel(rule.field, true)} (${shown}${more}) within ${formatDuration(rule.window)}; threshold ${rule.threshold}.`,
      observedValue: count,
      threshold: rule.threshold,
      distinct: { field: rule.field, values },
      eventIds: window.eventIds,
      windowStart: window.start,
      windowEnd: window.end,
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
    evaluateCardinality(item.input, rule.counted ? parseDistinctShareState(reply) : parseDistinctState(reply), rule, context, item.context.maxEvidence),
};
