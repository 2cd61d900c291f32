import type { DetectionInput } from '../input';
import { keyPhrase } from '../describe';
import { formatDuration } from '../duration';
import type { Predicate } from '../filter';
import { stateKey } from '../state';
import { eventTime, none, parseFired, suppressed, windowPeriod, type Evaluation, type EvaluationContext, type StateRequest } from '../evaluation';
import { z } from 'zod';
import { base, grouped } from '../rule-schema';
import { filterSchema } from '../filter';
import { durationSchema } from '../duration';
import { compileFilter, referencedRules } from '../filter';
import type { StatefulRuleType } from '../rule-type';

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

/** A sequence rule, as validated. */
export type SequenceRule = z.infer<typeof sequenceRuleSchema>;

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
  rule: SequenceRule,
  steps: readonly number[],
  context: EvaluationContext & { prefix: string; latenessMs: number; stateGraceMs: number; maxEvidence: number },
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
      rule.window + context.latenessMs + context.stateGraceMs,
      // Enough of the newest entries to hold every step's count twice over (a chain of 200
      // failures then a success never fired when the reply held 200 entries at most).
      Math.max(context.maxEvidence * 4, 2 * rule.steps.reduce((sum, step) => sum + step.count, 0) + context.maxEvidence),
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
  rule: SequenceRule,
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
  rule: SequenceRule,
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
    // Named by the period its final step falls in, not by the first step it chose (docs/detection.md#the-id-rule-key-and-window).
    const identity = [rule.id, context.keyText, windowPeriod(final.time, rule.window)];
    if (suppressed(state, context, final.time, rule.window, identity, input.event.id)) return none('suppressed_in_window');
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
        // It happened when its final step did, whichever event completed it: an earlier step
        // arriving late yields the same time as in order, so alerting and risk see one time.
        time: final.time,
        identity,
        cooldownMs: rule.window,
      },
    };
  }
  return none(steps.includes(last) ? 'sequence_incomplete' : 'waiting_for_final_step');
}

/** sequence, as a plug-in: its steps' filters compiled once; one sequenceAdd item per event that matches a step. */
export const sequenceType: StatefulRuleType<SequenceRule, Predicate[], number[]> = {
  type: 'sequence',
  configSchema: sequenceRuleSchema,
  compile: (rule, lists) => rule.steps.map((step) => compileFilter(step.filter, lists)),
  references: (rule) => rule.steps.flatMap((step) => referencedRules(step.filter)),
  plan(entries, { rule, extras }, _batch, out) {
    for (const { input, context, order } of entries) {
      const steps = matchedSteps(input, extras);
      if (steps.length > 0) out.push({ input, context, request: sequenceRequest(input, rule, steps, context), extra: steps, order });
    }
  },
  decide: (item, reply, { rule }, context) => evaluateSequence(item.input, parseSequenceState(reply), rule, item.extra, context),
};
