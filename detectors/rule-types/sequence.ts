import type { DetectionInput } from '../input';
import { keyPhrase } from '../describe';
import { formatDuration } from '../duration';
import type { Predicate } from '../filter';
import type { RuleOf } from '../rule-schema';
import { stateKey } from '../state';
import { eventTime, none, parseFired, suppressed, type Evaluation, type EvaluationContext, type StateRequest } from '../evaluation';

/** The steps recorded for a key in the window, as sequenceAdd-2.lua returns them. */
export interface SequenceState {
  lastFired?: number;
  lastFiredId?: string;
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
  return { ...parseFired(items[0]), entries };
}

/** The steps an event matches (indices), given the compiled step filters. */
export function matchedSteps(input: DetectionInput, steps: readonly Predicate[]): number[] {
  const matched: number[] = [];
  for (let index = 0; index < steps.length; index++) if (steps[index]?.(input)) matched.push(index);
  return matched;
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
    // Up to a window after the event too: steps on other topics can arrive out of order, and a
    // chain is complete when its last missing piece arrives, whichever step that is.
    args: [
      time,
      time - rule.window,
      time + rule.window,
      context.now - rule.window - context.latenessMs,
      rule.window + context.latenessMs + 60_000,
      context.maxEvidence * 4,
      input.event.id,
      steps.join(','),
      // Final steps before the event can't be in a chain that holds it: left out of the reply.
      rule.steps.length - 1,
    ],
  };
}

/** The chain of steps ending at `final`, walking back: each step's latest events before the next. */
function chainEndingAt(
  final: { step: number; id: string; time: number },
  entries: readonly { step: number; id: string; time: number }[],
  rule: RuleOf<'sequence'>,
): { step: number; id: string; time: number }[] | undefined {
  const chain = [final];
  // One event plays one part: an event that matched two steps can't be both.
  const used = new Set([final.id]);
  let cursor = final.time;
  for (let step = rule.steps.length - 2; step >= 0; step--) {
    const need = rule.steps[step]?.count ?? 1;
    const candidates = entries
      .filter((entry) => entry.step === step && entry.time <= cursor && entry.time >= final.time - rule.window && !used.has(entry.id))
      .sort((a, b) => b.time - a.time);
    if (candidates.length < need) return undefined;
    const chosen = candidates.slice(0, need);
    for (const entry of chosen) used.add(entry.id);
    cursor = Math.min(...chosen.map((entry) => entry.time));
    chain.unshift(...chosen.reverse());
  }
  return chain;
}

/**
 * sequence: ordered steps per key within a window (5 authN failures, then a success from the
 * same IP). Order is by event time, not arrival: whenever an event adds a step, the engine looks
 * for a complete chain that contains it, ending at any final-step event within a window of it.
 */
export function evaluateSequence(
  input: DetectionInput,
  state: SequenceState,
  rule: RuleOf<'sequence'>,
  steps: readonly number[],
  context: EvaluationContext,
): Evaluation {
  const last = rule.steps.length - 1;
  const time = eventTime(input.event.time);
  const own = steps.map((step) => ({ step, id: input.event.id, time }));
  const entries = [...state.entries.filter((entry) => entry.id !== input.event.id), ...own];
  const finals = entries.filter((entry) => entry.step === last && entry.time >= time).sort((a, b) => a.time - b.time);
  for (const final of finals) {
    const chain = chainEndingAt(final, entries, rule);
    if (chain === undefined || !chain.some((entry) => entry.id === input.event.id)) continue;
    const first = chain[0] ?? final;
    const identity = [rule.id, context.keyText, first.id];
    if (suppressed(state, context, final.time, rule.window, identity)) return none('suppressed_in_window');
    const description = rule.steps.map((step) => (step.count > 1 ? `${step.count}× ${step.name}` : step.name)).join(' → ');
    return {
      outcome: 'detected',
      detection: {
        reasonCode: 'sequence_completed',
        reason: `${keyPhrase(context.key)}: ${description} within ${formatDuration(final.time - first.time)}; the rule allows ${formatDuration(rule.window)}.`,
        observedValue: chain.length,
        eventIds: chain.map((entry) => entry.id),
        windowStart: first.time,
        windowEnd: final.time,
        identity,
        cooldownMs: rule.window,
      },
    };
  }
  return none(steps.includes(last) ? 'sequence_incomplete' : 'waiting_for_final_step');
}
