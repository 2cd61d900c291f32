import type { DetectionInput } from '../input';
import { keyPhrase } from '../describe';
import { formatDuration } from '../duration';
import type { Predicate } from '../filter';
import type { RuleOf } from '../rule-schema';
import { stateKey } from '../keys';
import { eventTime, lastFired, none, type Evaluation, type EvaluationContext, type StateRequest } from '../evaluation';

/** The steps recorded for a key in the window, as sequenceAdd-2.lua returns them. */
export interface SequenceState {
  lastFired?: number;
  entries: { step: number; id: string; time: number }[];
}

export function parseSequenceState(reply: unknown): SequenceState {
  const items = reply as (string | number | null)[];
  const entries: SequenceState['entries'] = [];
  for (let index = 1; index + 1 < items.length; index += 2) {
    const member = String(items[index]);
    const separator = member.indexOf(':');
    entries.push({ step: Number(member.slice(0, separator)), id: member.slice(separator + 1), time: Number(items[index + 1]) });
  }
  const fired = items[0];
  return { ...(fired === null || fired === undefined ? {} : { lastFired: Number(fired) }), entries };
}

/** The steps an event matches (indices), given the compiled step filters. */
export function matchedSteps(input: DetectionInput, steps: readonly Predicate[]): number[] {
  return steps.flatMap((matches, index) => (matches(input) ? [index] : []));
}

/** The sequenceAdd call for an event that matched at least one step. */
export function sequenceRequest(
  input: DetectionInput,
  rule: RuleOf<'sequence'>,
  steps: readonly number[],
  context: EvaluationContext & { prefix: string; latenessMs: number; maxEvidence: number },
): StateRequest {
  const time = eventTime(input.event.time);
  return {
    script: 'sequenceAdd',
    keys: [stateKey(context.prefix, rule.id, context.keyText, 'steps'), stateKey(context.prefix, rule.id, context.keyText, 'fired')],
    args: [
      time,
      time - rule.window,
      time,
      context.now - rule.window - context.latenessMs,
      rule.window + context.latenessMs + 60_000,
      context.maxEvidence * 4,
      ...steps.map((step) => `${step}:${input.event.id}`),
    ],
  };
}

/**
 * sequence: ordered steps per key within a window (5 authN failures, then a success from the
 * same IP). Evaluated when an event completes the last step: walking back from it, each earlier
 * step needs its count of events, each no later than the step after it.
 */
export function evaluateSequence(
  input: DetectionInput,
  state: SequenceState,
  rule: RuleOf<'sequence'>,
  steps: readonly number[],
  context: EvaluationContext,
): Evaluation {
  const last = rule.steps.length - 1;
  if (!steps.includes(last)) return none('not_final_step');
  const time = eventTime(input.event.time);
  const fired = lastFired(state.lastFired, context.firedEarlierInBatch);
  if (fired !== undefined && Math.abs(time - fired) < rule.window) return none('suppressed_in_window');
  const chain: { step: number; id: string; time: number }[] = [{ step: last, id: input.event.id, time }];
  let cursor = time;
  for (let step = last - 1; step >= 0; step--) {
    const need = rule.steps[step]?.count ?? 1;
    const candidates = state.entries
      .filter((entry) => entry.step === step && entry.time <= cursor && entry.time >= time - rule.window && entry.id !== input.event.id)
      .sort((a, b) => b.time - a.time);
    if (candidates.length < need) return none('sequence_incomplete');
    const chosen = candidates.slice(0, need);
    cursor = Math.min(...chosen.map((entry) => entry.time));
    chain.unshift(...chosen.reverse());
  }
  const first = chain[0] ?? { id: input.event.id, time };
  const description = rule.steps.map((step) => (step.count > 1 ? `${step.count}× ${step.name}` : step.name)).join(' → ');
  return {
    outcome: 'detected',
    detection: {
      reasonCode: 'sequence_completed',
      reason: `${keyPhrase(context.key)}: ${description} within ${formatDuration(time - first.time)}; the rule allows ${formatDuration(rule.window)}.`,
      observedValue: chain.length,
      eventIds: chain.map((entry) => entry.id),
      windowStart: first.time,
      windowEnd: time,
      identity: [rule.id, context.keyText, first.id],
      cooldownMs: rule.window,
    },
  };
}
