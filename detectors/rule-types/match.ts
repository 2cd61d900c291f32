import type { DetectionInput } from '../input';
import { eventPhrase } from '../describe';
import { eventTime, type Evaluation, type EvaluationContext } from '../evaluation';
import { z } from 'zod';
import { base, groupByFields } from '../rule-schema';
import type { StatelessRuleType } from '../rule-type';

export const matchRuleSchema = z.strictObject({
  ...base,
  type: z.literal('match'),
  /**
   * Fields whose values make the key a detection is filed under (the alert it joins). When absent,
   * or when the event lacks one of them, the most specific actor the event proves: the user of a
   * proven event, else the IP, else the consumer (engine.ts `defaultKey`). @defaultValue the proven actor
   */
  groupBy: groupByFields.optional(),
});

/** A match rule, as validated. */
export type MatchRule = z.infer<typeof matchRuleSchema>;

/**
 * match: one event that passes the filter is a detection (an authZ failure on a privileged
 * scope, a JSON threat protection violation). Stateless; identity is the event itself.
 */
export function evaluateMatch(input: DetectionInput, rule: MatchRule, context: EvaluationContext): Evaluation {
  const time = eventTime(input.event.time);
  return {
    outcome: 'detected',
    detection: {
      reasonCode: 'matched',
      reason: `${rule.name}: ${eventPhrase(input)}.`,
      observedValue: 1,
      eventIds: [input.event.id],
      windowStart: time,
      windowEnd: time,
      identity: [rule.id, context.keyText, input.event.id],
    },
  };
}

/** match, as a plug-in: stateless, so no plan. */
export const matchType: StatelessRuleType<MatchRule> = {
  type: 'match',
  configSchema: matchRuleSchema,
  evaluate: (input, { rule }, context) => evaluateMatch(input, rule, context),
};
