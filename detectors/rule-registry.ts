import { z } from 'zod';
import type { RuleType } from './rule-type';
import { matchType } from './rule-types/match';
import { thresholdType } from './rule-types/threshold';
import { cardinalityType } from './rule-types/cardinality';
import { sequenceType } from './rule-types/sequence';
import { newValueType } from './rule-types/new-value';
import { geoVelocityType } from './rule-types/geo-velocity';
import { surgeType } from './rule-types/surge';

/**
 * Every rule type, one line each: adding a type is a file under rule-types/ and a line here.
 * The order is the order the rule schema tries them in.
 */
export const RULE_TYPES = [matchType, thresholdType, cardinalityType, sequenceType, newValueType, geoVelocityType, surgeType] as const;

type RuleOfType<T> = T extends { configSchema: z.ZodType<infer R> } ? R : never;

/** One detection rule, as written in a rule file and validated: one of the registered types. */
export type Rule = RuleOfType<(typeof RULE_TYPES)[number]>;
export type RuleOf<T extends Rule['type']> = Extract<Rule, { type: T }>;

/** One detection rule, as written in a rule file: the union of the registered types' schemas. */
export const ruleSchema = z.discriminatedUnion(
  'type',
  // Each configSchema is a strict object with a literal `type`, which zod checks when it builds
  // the union; the plug-in interface types it by its output only.
  RULE_TYPES.map((ruleType) => ruleType.configSchema) as unknown as [z.ZodObject, ...z.ZodObject[]],
) as unknown as z.ZodType<Rule>;

// Each plug-in is typed for its own rule; here they share one type, so that a compiled rule can
// hold its plug-in without a per-type switch. Sound because a rule only ever reaches the plug-in
// registered under its own `type` (ruleTypeOf).
const BY_TYPE = new Map<string, RuleType<Rule>>(RULE_TYPES.map((ruleType) => [ruleType.type, ruleType as unknown as RuleType<Rule>]));

/**
 * The plug-in of a rule type.
 * @throws RangeError for a type nobody registered (the rule schema refuses those first)
 */
export function ruleTypeOf(type: string): RuleType<Rule> {
  const found = BY_TYPE.get(type);
  if (found === undefined) throw new RangeError(`no rule type ${type} is registered`);
  return found;
}
