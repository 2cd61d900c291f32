import type { z } from 'zod';
import type { ListLookup, Predicate } from './filter';
import type { DetectionInput } from './input';
import type { BaseRule } from './rule-schema';
import type { Evaluation, EvaluationContext, StateRequest } from './evaluation';

/** What a rule's state requests are built with: the evaluation context, and where and how long state lives. */
export interface PlanContext extends EvaluationContext {
  /** Prefix of every Redis key. */
  prefix: string;
  latenessMs: number;
  /** Wall-clock time state outlives its event-time span ({@link DetectionEngineOptions.stateGraceMs}). */
  stateGraceMs: number;
  maxEvidence: number;
}

/** An event of the batch that passed a stateful rule's filter and has its group key. */
export interface PlanEntry {
  input: DetectionInput;
  context: PlanContext;
  /** Where its results go in the batch's output (event, then rule). */
  order: number;
}

/** One script item of the batch's round trip, and what `decide` needs of it afterwards. */
export interface StateItem<Extra = unknown> {
  /** The event the evaluation is about (for a tally of several, the latest). */
  input: DetectionInput;
  context: PlanContext;
  request: StateRequest;
  /** What the plan learnt that the reply does not say (a sequence's matched steps, a new_value's value). */
  extra: Extra;
  /** The entry's `order`; for an item standing for several events, plus `afterEvents`. */
  order: number;
}

/** What `plan` is told about the whole batch, and what it reports back. */
export interface PlanBatch {
  /**
   * Add to an entry's order for an item that stands for several events (a surge tally): it is
   * decided, and its detection emitted, after every per-event item of the batch.
   */
  readonly afterEvents: number;
  /** Entries decided without a state item (a new_value already asked for in this batch): counted as evaluations. */
  settled: number;
}

/** A rule as the engine runs it: validated, with filters and its type's extras compiled once. */
export interface CompiledRuleOf<R extends BaseRule = BaseRule, Extras = unknown> {
  rule: R;
  /** The rule type's plug-in, resolved once here so the engine never looks it up per event. */
  ruleType: RuleType<R, Extras>;
  matches: Predicate;
  /** The fields state is kept per ([] for a stateless rule). */
  groupBy: readonly string[];
  /** What the rule type compiled (step predicates, an allowlist), see {@link RuleType.compile}. */
  extras: Extras;
  /** Rules named in `detectedBy` conditions: this rule runs after them. */
  dependsOn: string[];
  file: string;
}

interface RuleTypeBase<R extends BaseRule, Extras> {
  /** The `type` of the rules it runs. */
  readonly type: R['type'];
  /** The rule's fields, `type` (a literal) included: the rule schema is the union of these. */
  readonly configSchema: z.ZodType<R>;
  /**
   * Compiles what the type needs beyond the rule's filter, once per rule load; filters it
   * compiles get `lists` for their `inList` conditions.
   */
  compile?(rule: R, lists: ListLookup): Extras;
  /** Rules named in the type's own filters (beyond `filter`), for `detectedBy` ordering. */
  references?(rule: R): string[];
}

/** A rule type that needs no state: it decides each matching event alone. */
export interface StatelessRuleType<R extends BaseRule = BaseRule, Extras = unknown> extends RuleTypeBase<R, Extras> {
  readonly plan?: undefined;
  /** Pure: no I/O, no clock. */
  evaluate(input: DetectionInput, compiled: CompiledRuleOf<R, Extras>, context: EvaluationContext): Evaluation;
}

/**
 * A rule type with state in Redis. `plan` sees every matching event of the batch for one rule
 * and adds the script items to send (none for an event it skips; one for many when it tallies);
 * after the round trip, `decide` turns each item's reply into an evaluation.
 */
export interface StatefulRuleType<R extends BaseRule = BaseRule, Extras = unknown, Extra = unknown> extends RuleTypeBase<R, Extras> {
  plan(entries: readonly PlanEntry[], compiled: CompiledRuleOf<R, Extras>, batch: PlanBatch, out: StateItem<Extra>[]): void;
  /**
   * Pure: the reply parsed and evaluated, with the context of the moment (firedEarlierInBatch).
   * Several evaluations when one event completes several detections (a location between two
   * others, far from both).
   */
  decide(item: StateItem<Extra>, reply: unknown, compiled: CompiledRuleOf<R, Extras>, context: EvaluationContext, carried?: readonly unknown[]): Evaluation | readonly Evaluation[];
  /**
   * What of an item's reply a redo of the batch could not read again, if any: state the script
   * changed for good and reported once (a surge bucket folded into its baseline), with what the
   * item decided it with (its input: a detection's claim names the event that completed it). The
   * engine keeps it with the batch's clock; when that clock is rewound (the batch failed after the
   * round trip and will be redone), the stream's next batch holding an item of the same rule and
   * key hands it back to `decide`, as `carried`.
   */
  carry?(item: StateItem<Extra>, reply: unknown): unknown;
}

/** A rule type plug-in: one file under rule-types/, one line in rule-registry.ts. */
export type RuleType<R extends BaseRule = BaseRule, Extras = unknown, Extra = unknown> = StatelessRuleType<R, Extras> | StatefulRuleType<R, Extras, Extra>;

/** Whether a compiled rule runs on the given plug-in; narrows its rule and extras. */
export function isOfType<R extends BaseRule, Extras, Extra>(compiled: CompiledRuleOf, ruleType: RuleType<R, Extras, Extra>): compiled is CompiledRuleOf<R, Extras> {
  return (compiled.ruleType as unknown) === ruleType;
}
