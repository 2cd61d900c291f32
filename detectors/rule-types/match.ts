import type { DetectionInput } from '../input';
import { eventPhrase } from '../describe';
import type { RuleOf } from '../rule-schema';
import { eventTime, type Evaluation, type EvaluationContext } from '../evaluation';

/**
 * match: one event that passes the filter is a detection (an authZ failure on a privileged
 * scope, a JSON threat protection violation). Stateless; identity is the event itself.
 */
export function evaluateMatch(input: DetectionInput, rule: RuleOf<'match'>, context: EvaluationContext): Evaluation {
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
