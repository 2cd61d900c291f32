import type { Detection } from '../schemas';
import type { Predicate } from './filter';
import { fieldValue, type DetectionInput } from './input';
import { listReferencesOf, type ListKind } from './lists';
import type { RuleSet } from './rule-loader';
import { isOfType } from './rule-type';
import { sequenceType } from './rule-types/sequence';

/** What one rule's filters matched over the data. */
export interface RuleCoverage {
  ruleId: string;
  type: string;
  /** Events that passed the rule's filter (for a sequence: its filter and at least one step). */
  matched: number;
  /** For a sequence: events that passed the rule's filter and each step's, in step order. */
  steps?: { name: string; matched: number }[];
  /** Detections the rule raised in the replay. */
  detections: number;
  /**
   * No event passed the rule's filter, or a sequence's step never matched: on this data the rule
   * cannot fire, whatever its thresholds.
   */
  neverMatched: boolean;
}

/** What one list's entries met in the fields that name the list. */
export interface ListCoverage {
  listId: string;
  kind: ListKind;
  /** The rules that name the list in an `inList`, and the fields they test with it. */
  referencedBy: { ruleId: string; field: string }[];
  /** Per entry, the values of those fields the entry held (an event with two scopes counts twice). */
  seen: Record<string, number>;
  /** Entries that held no value: a name the platform does not use, or a range nobody came from. */
  unseen: string[];
}

/** The report of `vigil rules coverage`: which rules and list entries the data exercised. */
export interface CoverageReport {
  events: number;
  digest: string;
  rules: RuleCoverage[];
  lists: ListCoverage[];
}

interface RuleCounter {
  matched: number;
  steps: number[];
  stepPredicates: readonly Predicate[] | undefined;
  detections: number;
}

/**
 * Counts, over batches of detection inputs, what each rule's filters and each list's entries
 * matched. Pure: the caller reads the events and runs the engine (for `detectedBy`, a condition
 * is true for an event a detection of the named rule cites in the same batch).
 */
export class CoverageCounter {
  private events = 0;
  private readonly rules: Map<string, RuleCounter>;
  private readonly listFields: Map<string, string[]>;
  private readonly seen: Map<string, Map<string, number>>;

  constructor(private readonly ruleSet: RuleSet) {
    this.rules = new Map(
      ruleSet.rules.map((compiled) => {
        const steps = isOfType(compiled, sequenceType) ? compiled.extras : undefined;
        return [compiled.rule.id, { matched: 0, steps: steps ? steps.map(() => 0) : [], stepPredicates: steps, detections: 0 }];
      }),
    );
    this.listFields = new Map();
    for (const compiled of ruleSet.rules) {
      for (const reference of listReferencesOf(compiled.rule)) {
        const fields = this.listFields.get(reference.list) ?? [];
        if (!fields.includes(reference.field)) fields.push(reference.field);
        this.listFields.set(reference.list, fields);
      }
    }
    this.seen = new Map([...ruleSet.lists.keys()].map((id) => [id, new Map<string, number>()]));
  }

  /** Adds one batch: the inputs as the engine saw them, and the detections it raised on them. */
  add(inputs: readonly DetectionInput[], detections: readonly Detection[]): void {
    this.events += inputs.length;
    const cited = new Map<string, Set<string>>();
    for (const detection of detections) {
      const counter = this.rules.get(detection.ruleId);
      if (counter) counter.detections++;
      for (const eventId of detection.eventIds) {
        const rules = cited.get(eventId) ?? new Set<string>();
        rules.add(detection.ruleId);
        cited.set(eventId, rules);
      }
    }
    for (const plain of inputs) {
      const detectedBy = cited.get(plain.event.id);
      const input = detectedBy ? { ...plain, detectedBy } : plain;
      for (const compiled of this.ruleSet.rules) {
        const counter = this.rules.get(compiled.rule.id);
        if (counter === undefined || !compiled.matches(input)) continue;
        if (counter.stepPredicates === undefined) {
          counter.matched++;
          continue;
        }
        let any = false;
        counter.stepPredicates.forEach((step, index) => {
          if (!step(input)) return;
          any = true;
          counter.steps[index] = (counter.steps[index] ?? 0) + 1;
        });
        if (any) counter.matched++;
      }
      for (const [listId, fields] of this.listFields) {
        const list = this.ruleSet.lists.get(listId);
        const seen = this.seen.get(listId);
        if (list === undefined || seen === undefined) continue;
        for (const field of fields) {
          const value = fieldValue(input, field);
          for (const item of Array.isArray(value) ? value : [value]) {
            if (item === undefined) continue;
            for (const entry of list.entriesHolding(item)) seen.set(entry, (seen.get(entry) ?? 0) + 1);
          }
        }
      }
    }
  }

  report(): CoverageReport {
    const rules = this.ruleSet.rules.map((compiled): RuleCoverage => {
      const counter = this.rules.get(compiled.rule.id) ?? { matched: 0, steps: [], stepPredicates: undefined, detections: 0 };
      const steps = compiled.rule.type === 'sequence' ? compiled.rule.steps.map((step, index) => ({ name: step.name, matched: counter.steps[index] ?? 0 })) : undefined;
      return {
        ruleId: compiled.rule.id,
        type: compiled.rule.type,
        matched: counter.matched,
        ...(steps ? { steps } : {}),
        detections: counter.detections,
        neverMatched: counter.matched === 0 || (steps?.some((step) => step.matched === 0) ?? false),
      };
    });
    const lists = [...this.ruleSet.lists.values()].map((list): ListCoverage => {
      const seen = this.seen.get(list.id) ?? new Map<string, number>();
      const referencedBy = new Map<string, { ruleId: string; field: string }>();
      for (const compiled of this.ruleSet.rules) {
        for (const reference of listReferencesOf(compiled.rule)) {
          if (reference.list === list.id) referencedBy.set(`${compiled.rule.id} ${reference.field}`, { ruleId: compiled.rule.id, field: reference.field });
        }
      }
      return {
        listId: list.id,
        kind: list.kind,
        referencedBy: [...referencedBy.values()],
        seen: Object.fromEntries(list.values.map((entry) => [entry, seen.get(entry) ?? 0])),
        unseen: list.values.filter((entry) => (seen.get(entry) ?? 0) === 0),
      };
    });
    return { events: this.events, digest: this.ruleSet.digest, rules, lists };
  }
}
