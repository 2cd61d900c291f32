import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { z } from 'zod';
import { nearest } from '../platform';
import { unmappedIpv4 } from '../schemas';
import { compilePath, type DetectionInput } from './input';
import { comparedValue } from './field-paths';

/*
 * A rule's regular expression runs on event data, which an attacker writes. V8 backtracks, so a
 * pattern such as `^(\w+\s?)*$` takes seconds on 30 crafted characters, and the event loop with
 * it: every partition, heartbeat and health check stalls. With this flag, V8 runs a match that
 * backtracks excessively again on its linear-time engine (measured: 28 characters, 1,039 ms →
 * under 1 ms; 1,000 characters, 6 ms). That engine can't run lookarounds, backreferences or a
 * counted repeat over 16 (`{1,63}`: measured, `^(\w{1,17}\s?)*$` backtracks as before), so a
 * pattern using one of those may not repeat a group holding a quantifier or alternatives: refused
 * at load ({@link nestedQuantifier}). Process-wide, and set before any rule's pattern is compiled.
 */
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

/** Whether V8's linear-time engine can't run a pattern: a lookaround, a backreference, or a count over 16. */
function backtracksOnly(source: string): boolean {
  if (/\(\?<?[=!]|\\[1-9]|\\k</.test(source)) return true;
  for (const bounds of source.matchAll(/\{(\d+)(?:,(\d*))?\}/g)) {
    if (Number(bounds[1]) > 16 || (bounds[2] !== undefined && bounds[2] !== '' && Number(bounds[2]) > 16)) return true;
  }
  return false;
}

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const field = z.string().regex(/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/, 'expected a dotted field path such as policy.outcome');

/** CIDR ranges such as `10.0.0.0/8` or `2001:db8::/32`; a bare address is a /32 or /128. */
export const cidrRangesSchema = z
  .array(z.string())
  .refine((ranges) => ranges.every((range) => parseCidr(range) !== undefined), 'expected CIDR ranges such as 10.0.0.0/8');

/** What each operator of a condition (`{ field, <operator>: value }`) takes. */
const operators = {
  equals: scalar,
  in: z.array(scalar).min(1),
  prefix: z.string().min(1),
  regex: z
    .string()
    .refine((source) => {
      try {
        new RegExp(source);
        return true;
      } catch {
        return false;
      }
    }, 'not a valid regular expression')
    .superRefine((source, context) => {
      const nested = backtracksOnly(source) ? nestedQuantifier(source, { strict: true }) : undefined;
      if (nested !== undefined) {
        context.addIssue({
          code: 'custom',
          message: `${nested} repeats a group holding a quantifier or alternatives, in a pattern V8's linear-time engine can't run (a lookaround, a backreference or a count over 16): on a crafted value (event data) that can take exponential time and stall the pipeline; drop those, or the repetition of that group`,
        });
      }
    }),
  cidr: cidrRangesSchema.min(1),
  /** Membership of a named value list (lists.ts), resolved when the rule set is compiled. */
  inList: z.string().regex(/^[a-z0-9][a-z0-9-]{2,80}$/, 'expected a list id: lower-case letters, digits and "-"'),
  gt: z.number(),
  gte: z.number(),
  lt: z.number(),
  lte: z.number(),
  exists: z.boolean(),
};
type Operator = keyof typeof operators;
const OPERATOR_NAMES = Object.keys(operators) as Operator[];

const conditionOf = <K extends Operator>(operator: K) =>
  z.strictObject({ field, [operator]: operators[operator] } as { field: typeof field } & { [P in K]: (typeof operators)[K] });

const condition = z.union([
  conditionOf('equals'),
  conditionOf('in'),
  conditionOf('prefix'),
  conditionOf('regex'),
  conditionOf('cidr'),
  conditionOf('inList'),
  conditionOf('gt'),
  conditionOf('gte'),
  conditionOf('lt'),
  conditionOf('lte'),
  conditionOf('exists'),
]);

/**
 * "This event made that rule fire in this evaluation": lets a sequence start at a detection
 * (a new device, then a sensitive write). Rules that use it run after the rules they name.
 */
const detectedBy = z.strictObject({ detectedBy: z.string().min(3) });

/** A filter over event fields: conditions combined with all / any / not. */
export type Filter = z.infer<typeof condition> | z.infer<typeof detectedBy> | { all: Filter[] } | { any: Filter[] } | { not: Filter };

export const filterSchema: z.ZodType<Filter> = z.lazy(() =>
  z.union(
    [
      z.strictObject({ all: z.array(filterSchema).min(1) }),
      z.strictObject({ any: z.array(filterSchema).min(1) }),
      z.strictObject({ not: filterSchema }),
      detectedBy,
      condition,
    ],
    // A union that fails says only "Invalid input": name the block and what is wrong in it.
    { error: (issue) => explainFilter(issue.input) },
  ),
);

/**
 * What is wrong with a filter that does not parse, as one line: where in it (`all[1].not: `) and
 * what (an unknown operator and the nearest one, two operators in one condition, a value of the
 * wrong type). Undefined when the filter is valid.
 */
export function explainFilter(node: unknown, at = ''): string | undefined {
  const where = at === '' ? '' : `${at}: `;
  if (typeof node !== 'object' || node === null || Array.isArray(node)) {
    return `${where}expected a condition such as { field: policy.outcome, equals: failure }, or a block of all, any, not or detectedBy`;
  }
  const keys = Object.keys(node);
  const record = node as Record<string, unknown>;
  const block = keys.find((key) => key === 'all' || key === 'any' || key === 'not' || key === 'detectedBy');
  if (block !== undefined) {
    const others = keys.filter((key) => key !== block);
    if (others.length > 0) return `${where}${block} stands alone in its block, beside ${others.join(', ')}; put the rest inside it, or use all: [...]`;
    const value = record[block];
    if (block === 'not') return explainFilter(value, `${at}${at === '' ? '' : '.'}not`);
    if (block === 'detectedBy') return firstIssue(detectedBy.safeParse(node), where);
    if (!Array.isArray(value) || value.length === 0) return `${where}${block} takes a non-empty list of filters`;
    for (const [index, item] of value.entries()) {
      const problem = explainFilter(item, `${at}${at === '' ? '' : '.'}${block}[${index}]`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (!('field' in record)) {
    const guess = keys.length === 1 && keys[0] !== undefined ? nearest(keys[0], ['all', 'any', 'not', 'detectedBy', 'field'], 2) : undefined;
    return `${where}expected a condition ({ field, <operator> }) or a block of all, any, not or detectedBy; got ${keys.length > 0 ? keys.join(', ') : 'an empty object'}${guess !== undefined ? ` (did you mean ${guess}?)` : ''}`;
  }
  const named = keys.filter((key) => key !== 'field');
  const expected = `expected one of ${OPERATOR_NAMES.join(', ')}`;
  if (named.length === 0) return `${where}the condition on ${String(record.field)} has no operator; ${expected}`;
  const unknown = named.find((key) => !(OPERATOR_NAMES as string[]).includes(key));
  if (unknown !== undefined) {
    const guess = nearest(unknown, OPERATOR_NAMES, 2, { ignoreCase: true });
    return `${where}unknown operator ${unknown}${guess !== undefined ? ` (did you mean ${guess}?)` : ''}; ${expected}`;
  }
  const [operator] = named as [Operator, ...Operator[]];
  if (named.length > 1) return `${where}one condition takes one operator, this one has ${named.join(', ')}; write one condition per operator inside all: [...]`;
  return firstIssue(conditionOf(operator).safeParse(node), where);
}

function firstIssue(result: { success: boolean; error?: z.ZodError }, where: string): string | undefined {
  const issue = result.error?.issues[0];
  if (result.success || issue === undefined) return undefined;
  return `${where}${issue.path.map(String).join('.')}${issue.path.length > 0 ? ': ' : ''}${issue.message}`;
}

const REPEATING = (text: string, at: number): boolean => {
  const character = text[at];
  if (character === '*' || character === '+') return true;
  if (character !== '{') return false;
  const bounds = /^\{(\d+)(,(\d*))?\}/.exec(text.slice(at));
  if (bounds === null) return false;
  // {n} repeats exactly; {n,} and {n,m} with m > 1 repeat a varying number of times.
  return bounds[2] !== undefined && (bounds[3] === '' || Number(bounds[3]) > 1);
};

/**
 * The first group of a regular expression that is repeated (`*`, `+`, `{n,}`) and holds a
 * repeated part itself, such as `(\w+\s?)*` or `(a+)+`: the shape of catastrophic backtracking,
 * where a near-match of a few dozen characters takes seconds or hours. Undefined when there is
 * none. With `strict`, a repeated group holding an optional part or alternatives counts too
 * (`(a|a?)*`, `(\w{1,20}\s?)*`): for patterns with no linear-time fallback.
 */
export function nestedQuantifier(source: string, options: { strict?: boolean } = {}): string | undefined {
  const groups: { start: number; repeats: boolean }[] = [];
  for (let at = 0; at < source.length; at++) {
    const character = source[at];
    if (character === '\\') {
      at++;
      continue;
    }
    if (character === '[') {
      // A class: up to its unescaped closing bracket (a first `]` is a literal).
      at++;
      if (source[at] === '^') at++;
      if (source[at] === ']') at++;
      while (at < source.length && source[at] !== ']') at += source[at] === '\\' ? 2 : 1;
      continue;
    }
    if (character === '(') {
      groups.push({ start: at, repeats: false });
      // (?:, (?=, (?!, (?<=, (?<!, (?<name>: the `?` is not a quantifier.
      if (source[at + 1] === '?') at += source[at + 2] === '<' && source[at + 3] !== '=' && source[at + 3] !== '!' ? source.indexOf('>', at) - at : source[at + 2] === '<' ? 3 : 2;
      continue;
    }
    if (character === ')') {
      const group = groups.pop();
      if (group === undefined) continue;
      const repeated = REPEATING(source, at + 1);
      if (repeated && group.repeats) return source.slice(group.start, source[at + 1] === '{' ? source.indexOf('}', at) + 1 : at + 2);
      const parent = groups.at(-1);
      if (parent !== undefined) parent.repeats ||= group.repeats || repeated;
      continue;
    }
    const parent = groups.at(-1);
    // Strict: an optional part or alternatives inside a repeated group ((a|a?)*) are enough.
    const strictly = options.strict === true && (character === '?' || character === '|');
    if (parent !== undefined && (REPEATING(source, at) || strictly)) parent.repeats = true;
  }
  return undefined;
}

/** A CIDR range taken apart, or undefined when it is not one (`10.0.0.0/8`; a bare address is a /32 or /128). */
export function parseCidr(range: string): { network: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const parts = range.split('/');
  const [network, bits] = parts;
  if (network === undefined || parts.length > 2) return undefined;
  // Digits only: Number('') is 0, and '/' alone must not silently mean "everything".
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return undefined;
  const family = isIPv4(network) ? 'ipv4' : isIPv6(network) ? 'ipv6' : undefined;
  if (family === undefined) return undefined;
  const prefix = bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) return undefined;
  return { network, prefix, family };
}

/** A BlockList of CIDR ranges (already validated). */
export function cidrList(ranges: readonly string[]): BlockList {
  const list = new BlockList();
  for (const range of ranges) {
    const parsed = parseCidr(range);
    if (parsed) list.addSubnet(parsed.network, parsed.prefix, parsed.family);
  }
  return list;
}

/** Whether an address is in a list; false for anything that is not an address. */
export function inCidrList(list: BlockList, ip: unknown): boolean {
  if (typeof ip !== 'string') return false;
  const address = unmappedIpv4(ip);
  if (isIPv4(address)) return list.check(address, 'ipv4');
  if (isIPv6(address)) return list.check(address, 'ipv6');
  return false;
}

export type Predicate = (input: DetectionInput) => boolean;

/** A named value list as filters use it: compiled once, tested per value (see lists.ts). */
export interface ValueList {
  readonly id: string;
  readonly kind: string;
  /** Whether one value of a field is in the list. */
  has(value: unknown): boolean;
}

/** The lists a filter's `inList` conditions are resolved against, by id. */
export type ListLookup = ReadonlyMap<string, ValueList>;

/** A filter names a list that is not defined: the rule can't be compiled. */
export class UnknownListError extends RangeError {
  constructor(readonly listId: string, known: readonly string[]) {
    super(`names list ${listId}, which is not defined (lists: ${known.length > 0 ? known.join(', ') : 'none'})`);
    this.name = 'UnknownListError';
  }
}

/** Every `inList` condition of a filter: the field it tests and the list it names. */
export function referencedLists(filter: Filter | undefined): { field: string; list: string }[] {
  if (filter === undefined) return [];
  if ('all' in filter) return filter.all.flatMap(referencedLists);
  if ('any' in filter) return filter.any.flatMap(referencedLists);
  if ('not' in filter) return referencedLists(filter.not);
  if ('inList' in filter) return [{ field: filter.field, list: filter.inList }];
  return [];
}

/** The rule ids a filter names in `detectedBy` conditions. */
export function referencedRules(filter: Filter | undefined): string[] {
  if (filter === undefined) return [];
  if ('all' in filter) return filter.all.flatMap(referencedRules);
  if ('any' in filter) return filter.any.flatMap(referencedRules);
  if ('not' in filter) return referencedRules(filter.not);
  if ('detectedBy' in filter) return [filter.detectedBy];
  return [];
}

const anyValue = (value: unknown, test: (item: unknown) => boolean): boolean =>
  Array.isArray(value) ? value.some(test) : test(value);

/**
 * Compiles a filter once (regexes, CIDR lists and named lists resolved at load) into a predicate.
 * @param lists what `inList` conditions name. @defaultValue no lists
 * @throws UnknownListError when an `inList` names a list not in `lists`
 */
export function compileFilter(filter: Filter | undefined, lists: ListLookup = new Map()): Predicate {
  if (filter === undefined) return () => true;
  if ('all' in filter) {
    const parts = filter.all.map((part) => compileFilter(part, lists));
    return (input) => {
      for (const part of parts) if (!part(input)) return false;
      return true;
    };
  }
  if ('any' in filter) {
    const parts = filter.any.map((part) => compileFilter(part, lists));
    return (input) => {
      for (const part of parts) if (part(input)) return true;
      return false;
    };
  }
  if ('not' in filter) {
    const inner = compileFilter(filter.not, lists);
    return (input) => !inner(input);
  }
  if ('detectedBy' in filter) {
    const ruleId = filter.detectedBy;
    return (input) => input.detectedBy?.has(ruleId) ?? false;
  }
  const get = compilePath(filter.field);
  // Tests are made once here, not per event: filters run per event, per rule.
  const where = (test: (value: unknown) => boolean): Predicate => (input) => anyValue(get(input), test);
  // An address in the spelling events have it (`2001:DB8::1` is `2001:db8::1`): field-paths.ts.
  if ('equals' in filter) {
    const expected = comparedValue(filter.field, filter.equals);
    return (input) => {
      const value = get(input);
      return value === expected || (Array.isArray(value) && value.includes(expected));
    };
  }
  if ('in' in filter) {
    const allowed = new Set<unknown>(filter.in.map((value) => comparedValue(filter.field, value)));
    return (input) => {
      const value = get(input);
      return allowed.has(value) || (Array.isArray(value) && value.some((item) => allowed.has(item)));
    };
  }
  if ('prefix' in filter) {
    const prefix = filter.prefix;
    return where((value) => typeof value === 'string' && value.startsWith(prefix));
  }
  if ('regex' in filter) {
    const pattern = new RegExp(filter.regex);
    return where((value) => typeof value === 'string' && pattern.test(value));
  }
  if ('cidr' in filter) {
    const list = cidrList(filter.cidr);
    return (input) => inCidrList(list, get(input));
  }
  if ('inList' in filter) {
    // Resolved here, once per rule load: no lookup by name per event.
    const list = lists.get(filter.inList);
    if (list === undefined) throw new UnknownListError(filter.inList, [...lists.keys()]);
    return where((value) => list.has(value));
  }
  if ('exists' in filter) {
    const exists = filter.exists;
    return (input) => (get(input) !== undefined) === exists;
  }
  const numeric = (test: (value: number) => boolean): Predicate => where((value) => typeof value === 'number' && test(value));
  if ('gt' in filter) {
    const bound = filter.gt;
    return numeric((value) => value > bound);
  }
  if ('gte' in filter) {
    const bound = filter.gte;
    return numeric((value) => value >= bound);
  }
  if ('lt' in filter) {
    const bound = filter.lt;
    return numeric((value) => value < bound);
  }
  const bound = filter.lte;
  return numeric((value) => value <= bound);
}
