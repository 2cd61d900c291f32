import type { z } from 'zod';
import { nearest } from '../platform';
import { POLICY_KINDS, deviceEventSchema, invocationEventSchema, ipAddress, policyEventSchema } from '../schemas';
import { IDENTITIES } from './trust';

/**
 * The field paths a rule may name, and what each holds: the events' own fields (read from the
 * contract, so a new field is known at once), what enrichment and correlation add (`geo.*`,
 * `ipScope`, `identity`, `correlated.*`), and anything under a free-form map (`labels.*`,
 * `correlated.request.policies.*`). `rules validate` and every load check a rule's fields against
 * it: a misspelt field never matches, and a rule naming one could never fire.
 */
export interface FieldInfo {
  /** What the field holds; `any` when its values are not checked (maps, unions of kinds). */
  kind: 'string' | 'number' | 'boolean' | 'object' | 'any';
  /** The only values it may hold (an enum or literal), when it has such a list. */
  values?: readonly string[];
  /** It holds an IP address (the contract checks it): what a `cidr` condition can hold on. */
  ip?: boolean;
  /** It holds an ISO 3166-1 alpha-2 country code, upper case (`US`): what enrichment and the contract write. */
  country?: boolean;
  /** The families whose events have it; undefined when every input may (enrichment). */
  families?: readonly string[];
}

interface ZodDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  options?: readonly z.ZodType[];
  entries?: Record<string, string | number>;
  values?: readonly unknown[];
  format?: string;
  checks?: readonly { _zod: { def: { format?: string; pattern?: RegExp } } }[];
  keyType?: z.ZodType;
  valueType?: z.ZodType;
}

/** The contract's pattern of a country code (schemas/device.ts). */
const COUNTRY_CODE = /^[A-Z]{2}$/;

const defOf = (schema: z.ZodType): ZodDef => (schema as unknown as { _zod: { def: ZodDef } })._zod.def;

/**
 * Free-form maps: a path one key under them is a field, when the key is one the map can hold
 * (`labels.<key>`: the contract's label key pattern; `correlated.request.policies.<kind>`: a
 * policy kind), holding what its values are (labels: text; a policy's outcome: pass or fail).
 */
const OPEN = new Map<string, { keys: RegExp | readonly string[]; value: FieldInfo; what: string }>();
/** Fields that hold a list: a condition holds on any element, but a key or a counted value needs one value. */
const LISTS = new Set<string>();

function walk(schema: z.ZodType, path: string, into: Map<string, FieldInfo>, family: string): void {
  const def = defOf(schema);
  const note = (info: FieldInfo): void => {
    if (path === '') return;
    const known = into.get(path);
    const families = [...new Set([...(known?.families ?? []), family])];
    if (known === undefined) {
      into.set(path, { ...info, families });
      return;
    }
    // The same path in several families (or union members): the values of both, if both list them.
    const values = known.values !== undefined && info.values !== undefined ? [...new Set([...known.values, ...info.values])] : undefined;
    const ip = known.ip === true && info.ip === true;
    const country = known.country === true && info.country === true;
    into.set(path, { kind: known.kind === info.kind ? known.kind : 'any', ...(values !== undefined ? { values } : {}), ...(ip ? { ip } : {}), ...(country ? { country } : {}), families });
  };
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      if (def.innerType) walk(def.innerType, path, into, family);
      return;
    case 'pipe':
      if (def.in) walk(def.in, path, into, family);
      return;
    case 'lazy':
      note({ kind: 'any' });
      return;
    case 'object':
      note({ kind: 'object' });
      for (const [key, child] of Object.entries(def.shape ?? {})) walk(child, path === '' ? key : `${path}.${key}`, into, family);
      return;
    case 'array':
      // A condition on an array holds when one of its elements meets it.
      LISTS.add(path);
      if (def.element) walk(def.element, path, into, family);
      return;
    case 'record': {
      note({ kind: 'object' });
      const keyPattern = def.keyType === undefined ? undefined : defOf(def.keyType).checks?.find((check) => check._zod.def.pattern !== undefined)?._zod.def.pattern;
      const valueType = def.valueType === undefined ? undefined : defOf(def.valueType).type;
      const value: FieldInfo = { kind: valueType === 'string' ? 'string' : valueType === 'number' ? 'number' : valueType === 'boolean' ? 'boolean' : 'any' };
      OPEN.set(path, { keys: keyPattern ?? /^/, value, what: keyPattern === undefined ? 'a key' : `a key matching ${String(keyPattern)}` });
      return;
    }
    case 'enum':
      note({ kind: 'string', values: Object.values(def.entries ?? {}).map(String) });
      return;
    case 'literal':
      note({ kind: typeof def.values?.[0] === 'number' ? 'number' : typeof def.values?.[0] === 'boolean' ? 'boolean' : 'string', values: (def.values ?? []).map(String) });
      return;
    case 'string':
      note({
        kind: 'string',
        ...(def.format === 'ipv4' || def.format === 'ipv6' ? { ip: true } : {}),
        ...(def.checks?.some((check) => String(check._zod.def.pattern) === String(COUNTRY_CODE)) === true ? { country: true } : {}),
      });
      return;
    case 'number':
    case 'int':
    case 'bigint':
      note({ kind: 'number' });
      return;
    case 'boolean':
      note({ kind: 'boolean' });
      return;
    case 'union':
      for (const option of def.options ?? []) walk(option, path, into, family);
      return;
    default:
      note({ kind: 'any' });
  }
}

const CATALOGUE: ReadonlyMap<string, FieldInfo> = (() => {
  const fields = new Map<string, FieldInfo>();
  for (const [family, schema] of [['policy', policyEventSchema], ['invocation', invocationEventSchema], ['device', deviceEventSchema]] as const) walk(schema, '', fields, family);
  const everywhere = (path: string, info: FieldInfo): void => void fields.set(path, info);
  everywhere('geo', { kind: 'object' });
  // Enrichment's country is the geo database's ISO code, upper case, as the contract's.
  everywhere('geo.country', { kind: 'string', country: true });
  everywhere('geo.city', { kind: 'string' });
  for (const key of ['lat', 'lon', 'accuracyKm']) everywhere(`geo.${key}`, { kind: 'number' });
  everywhere('geo.precision', { kind: 'string', values: ['city', 'country'] });
  everywhere('ipScope', { kind: 'string', values: ['public', 'private', 'reserved'] });
  everywhere('identity', { kind: 'string', values: IDENTITIES });
  everywhere('ipNetwork', { kind: 'string' });
  everywhere('correlated', { kind: 'object' });
  everywhere('correlated.request', { kind: 'object' });
  everywhere('correlated.request.policies', { kind: 'object' });
  OPEN.set('correlated.request.policies', { keys: POLICY_KINDS, value: { kind: 'string', values: ['pass', 'fail'] }, what: `a policy kind (${POLICY_KINDS.join(', ')})` });
  everywhere('correlated.request.failedPolicies', { kind: 'string' });
  LISTS.add('correlated.request.failedPolicies');
  everywhere('correlated.device', { kind: 'object' });
  everywhere('correlated.device.deviceId', { kind: 'string' });
  everywhere('correlated.device.country', { kind: 'string', country: true });
  for (const key of ['deviceAgeMs', 'knownDevices']) everywhere(`correlated.device.${key}`, { kind: 'number' });
  everywhere('correlated.device.fromSession', { kind: 'boolean' });
  return fields;
})();

/** The fields that hold an IP address, for the messages refusing a `cidr` (or a `cidr` list) on another. */
export function ipFields(): string[] {
  return [...CATALOGUE].filter(([, info]) => info.ip === true).map(([path]) => path);
}

/**
 * A value an `equals` or `in` condition compares, in the spelling events have: an IP address on a
 * field that holds one as the contract writes it ({@link ipAddress}: IPv6 lower case and
 * compressed, IPv4-mapped IPv6 as IPv4), so `2001:DB8:0:0::1` matches the event's `2001:db8::1`.
 * Anything else as it is (fieldProblems refuses a value that is no address there).
 */
export function comparedValue(field: string, value: unknown): unknown {
  if (typeof value !== 'string' || fieldInfo(field)?.ip !== true) return value;
  const parsed = ipAddress.safeParse(value);
  return parsed.success ? parsed.data : value;
}

/** What a rule's field path holds, or undefined when no input has it. */
export function fieldInfo(path: string): FieldInfo | undefined {
  const known = CATALOGUE.get(path);
  if (known !== undefined) return known;
  const open = openField(path);
  return open?.fits === true ? open.value : undefined;
}

/** The free-form map a path is one key under, and whether the map can hold that key. */
function openField(path: string): { map: string; key: string; fits: boolean; value: FieldInfo; what: string } | undefined {
  for (const [map, spec] of OPEN) {
    if (!path.startsWith(`${map}.`)) continue;
    const key = path.slice(map.length + 1);
    const fits = !key.includes('.') && (spec.keys instanceof RegExp ? spec.keys.test(key) : spec.keys.includes(key));
    return { map, key, fits, value: spec.value, what: spec.what };
  }
  return undefined;
}

/** The candidate a few edits from `text` (at most 2, or a sixth of its length), for "did you mean". */
export function nearestOf(text: string, candidates: Iterable<string>): string | undefined {
  return nearest(text, candidates, Math.max(2, Math.floor(text.length / 6)), { ignoreCase: true });
}

/** The known path a few edits from `path`, for "did you mean". */
export function nearestFieldPath(path: string): string | undefined {
  const near = nearestOf(path, CATALOGUE.keys());
  if (near !== undefined) return near;
  // The right parent, a longer or shorter name: `invocation.statusCode` for `invocation.status`.
  const cut = path.lastIndexOf('.');
  const [parent, last] = [path.slice(0, cut), path.slice(cut + 1).toLowerCase()];
  for (const candidate of CATALOGUE.keys()) {
    const at = candidate.lastIndexOf('.');
    if (candidate.slice(0, at) !== parent) continue;
    const name = candidate.slice(at + 1).toLowerCase();
    if (name.length >= 3 && (last.startsWith(name) || name.startsWith(last))) return candidate;
  }
  return undefined;
}

/** One field a rule names, where in the rule, and the condition's value when it compares one. */
interface FieldUse {
  at: string;
  field: string;
  compared?: { operator: 'equals' | 'in'; values: readonly unknown[] };
  /** A key (`groupBy`) or a counted value (a rule's `field`, a measure's, a concentration's): one value per event. */
  single?: boolean;
  /** The condition's operator, when it is one that holds on one kind of value only. */
  operator?: 'gt' | 'gte' | 'lt' | 'lte' | 'prefix' | 'regex' | 'cidr';
}

const NUMERIC_OPERATORS = ['gt', 'gte', 'lt', 'lte'] as const;
const TEXT_OPERATORS = ['prefix', 'regex'] as const;
const IP_OPERATORS = ['cidr'] as const;

/** Every field a parsed rule names: `field` and `distinctField` keys at any depth, and `groupBy`. */
function fieldUses(value: unknown, at: string, into: FieldUse[]): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => fieldUses(item, `${at}.${index}`, into));
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  const record = value as Record<string, unknown>;
  for (const [key, child] of Object.entries(record)) {
    const here = at === '' ? key : `${at}.${key}`;
    if ((key === 'field' || key === 'distinctField') && typeof child === 'string') {
      const compared = 'equals' in record ? { operator: 'equals' as const, values: [record.equals] } : 'in' in record && Array.isArray(record.in) ? { operator: 'in' as const, values: record.in as unknown[] } : undefined;
      // Not a condition: a rule's counted field (cardinality, new_value), a measure's, a concentration's.
      const single = key === 'distinctField' || 'type' in record || 'kind' in record || 'minPerSource' in record || at.endsWith('concentration');
      const operator = [...NUMERIC_OPERATORS, ...TEXT_OPERATORS, ...IP_OPERATORS].find((name) => name in record);
      into.push({ at: here, field: child, ...(compared ? { compared } : {}), ...(single ? { single } : {}), ...(operator ? { operator } : {}) });
    } else if (key === 'groupBy' && Array.isArray(child)) {
      child.forEach((item, index) => {
        if (typeof item === 'string') into.push({ at: `${here}.${index}`, field: item, single: true });
      });
    } else {
      fieldUses(child, here, into);
    }
  }
}

/** The families every part allows, and what named them; `families` undefined when no part narrows any. */
function intersection(parts: readonly { families?: ReadonlySet<string>; named: readonly string[] }[]): Reach {
  let families: Set<string> | undefined;
  const named: string[] = [];
  for (const part of parts) {
    const own = part.families;
    if (own === undefined) continue;
    named.push(...part.named);
    families = new Set([...(families ?? own)].filter((family) => own.has(family)));
  }
  return families === undefined ? { named: [] } : { families, named };
}

/**
 * `all` blocks whose parts no one event can meet: fields of two families (a device's on an
 * invocation), directly or through a block inside (an `any` none of whose branches has a family
 * the rest allow). A part no event meets by itself is refused where it is, and left out here.
 */
function familyProblems(value: unknown, at: string, into: { path: string; message: string }[]): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => familyProblems(item, `${at}.${index}`, into));
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    const here = at === '' ? key : `${at}.${key}`;
    if (key === 'all' && Array.isArray(child)) {
      const allowed = intersection(child.map(filterReach).filter((part) => part.families === undefined || part.families.size > 0));
      if (allowed.families !== undefined && allowed.families.size === 0) {
        into.push({ path: here, message: `no one event meets all of these: ${allowed.named.join(', ')}; a step or filter sees one event at a time (a sequence takes one step per event)` });
      }
    }
    familyProblems(child, here, into);
  }
}

/** The families events come in: what a `family` condition may name. */
const FAMILIES: readonly string[] = CATALOGUE.get('family')?.values ?? [];

/** The families a filter can let through, and the conditions that narrow them; `families` undefined: any (or unsure). */
interface Reach {
  families?: Set<string>;
  named: string[];
}

/** The families one condition (`{ field, <operator>: value }`) can hold on; undefined when any. */
function conditionFamilies(condition: Record<string, unknown>): { families: string[]; named: string } | undefined {
  const { field, equals, in: among, exists } = condition as { field?: unknown; equals?: unknown; in?: unknown; exists?: unknown };
  // `exists: false` holds on any event without the field: it narrows no family.
  if (typeof field !== 'string' || exists === false) return undefined;
  const text = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));
  if (field === 'family') {
    const own = equals !== undefined ? [text(equals)] : Array.isArray(among) ? among.map(text) : undefined;
    return own === undefined ? undefined : { families: own, named: `family ${own.join('/')}` };
  }
  const own = fieldInfo(field)?.families;
  return own === undefined ? undefined : { families: [...own], named: `${field} (${own.join('/')})` };
}

/**
 * The families of the events a filter can let through: an `all` the families every part allows,
 * an `any` those some part allows. Conservative: a `not`, a `detectedBy`, an `exists: false` and a
 * field every family may have (enrichment, labels) allow every family.
 */
function filterReach(filter: unknown): Reach {
  if (typeof filter !== 'object' || filter === null) return { named: [] };
  const record = filter as Record<string, unknown>;
  if (Array.isArray(record.all)) return intersection(record.all.map(filterReach));
  if (Array.isArray(record.any)) {
    const parts = record.any.map(filterReach);
    if (parts.length === 0 || parts.some((reach) => reach.families === undefined)) return { named: [] };
    // One entry, `a or b`: a message listing what an `all` around it asks must not read the branches as all asked.
    const named = parts.map((reach) => (reach.named.length === 1 ? reach.named.join('') : `(${reach.named.join(', ')})`)).join(' or ');
    return { families: new Set(parts.flatMap((reach) => [...(reach.families ?? [])])), named: [named] };
  }
  const own = conditionFamilies(record);
  return own === undefined ? { named: [] } : { families: new Set(own.families), named: [own.named] };
}

/**
 * The conditions that keep a filter from ever passing an event of the `allowed` families: a
 * condition on a field none of them has, or a family none of them is. Empty when it can pass one
 * (an `any` with one part that can; anything under `not`).
 */
function deadConditions(filter: unknown, at: string, allowed: ReadonlySet<string>): { at: string; field: string; families: string[] }[] {
  if (typeof filter !== 'object' || filter === null) return [];
  const record = filter as Record<string, unknown>;
  if (Array.isArray(record.all)) return record.all.flatMap((part, index) => deadConditions(part, `${at}.all.${index}`, allowed));
  if (Array.isArray(record.any)) {
    const parts = record.any.map((part, index) => deadConditions(part, `${at}.any.${index}`, allowed));
    return parts.every((dead) => dead.length > 0) ? parts.flat() : [];
  }
  const own = conditionFamilies(record);
  // A family no event is (`invocations`) is refused as such, not again here.
  if (own === undefined || own.families.some((family) => allowed.has(family) || !FAMILIES.includes(family))) return [];
  return [{ at: `${at}.field`, field: String(record.field), families: own.families }];
}

/** The filters a rule type runs on the events the rule's filter passed: sequence steps, `counted`, a measure's `where` or `numerator`, `failures`. */
function innerFilters(value: unknown, at: string, into: { at: string; filter: unknown }[]): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => innerFilters(item, `${at}.${index}`, into));
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    const here = at === '' ? key : `${at}.${key}`;
    // The rule's own filter is what the others are compared with.
    if (here === 'filter') continue;
    if ((key === 'filter' || key === 'where' || key === 'numerator') && typeof child === 'object' && child !== null) into.push({ at: here, filter: child });
    else innerFilters(child, here, into);
  }
}

/** What a setting naming a field no event the rule's filter passes has means: the rule never fires, or the setting does nothing. */
function unreachedConsequence(at: string, type: unknown): string {
  if (at.startsWith('groupBy.')) {
    return type === 'match' ? 'no event it passes has this key, so every detection gets the default key instead' : 'every event it passes lacks this key and is skipped, so the rule never fires';
  }
  if (at === 'distinctField') return 'no event it passes has a value of it, so no detection ever lists one';
  if (at === 'concentration.field') return 'no event it passes has a value of it, so the traffic is never found concentrated';
  return 'every event it passes lacks it and is skipped, so the rule never fires';
}

/** The families of a reach that events come in; undefined when any. A family no event is (`invocations`) is refused as such. */
function knownFamilies(reach: Reach): Set<string> | undefined {
  return reach.families === undefined ? undefined : new Set([...reach.families].filter((family) => FAMILIES.includes(family)));
}

/** The keys and counted fields (one value per event) no event of the `allowed` families has, with the families that have each. */
function unreachedFields(uses: readonly FieldUse[], allowed: ReadonlySet<string>): { use: FieldUse; families: readonly string[] }[] {
  return uses.flatMap((use) => {
    const families = fieldInfo(use.field)?.families;
    return use.single !== true || families === undefined || families.some((family) => allowed.has(family)) ? [] : [{ use, families }];
  });
}

/**
 * Sequence steps only events without a `groupBy` field can match: the engine skips an event
 * without its key before trying the steps, so such a step never matches and the sequence never
 * completes. A step sees the families both the rule's filter (`reach`) and its own allow; a key
 * the rule's filter already keeps out (`allowed`) is refused for the filter, once.
 */
function stepKeyProblems(rule: object, reach: Reach, allowed: ReadonlySet<string> | undefined, uses: readonly FieldUse[], into: { path: string; message: string }[]): void {
  const steps = (rule as { steps?: unknown }).steps;
  if (!Array.isArray(steps)) return;
  const keys = uses.filter((use) => use.at.startsWith('groupBy.') && (allowed === undefined || unreachedFields([use], allowed).length === 0));
  steps.forEach((step: unknown, index) => {
    const { name, filter } = (typeof step === 'object' && step !== null ? step : {}) as { name?: unknown; filter?: unknown };
    const stepReach = intersection([reach, filterReach(filter)]);
    const matched = knownFamilies(stepReach);
    // None: a step no one event meets, or none the rule's filter passes, each refused as such.
    if (matched === undefined || matched.size === 0) return;
    for (const { use, families } of unreachedFields(keys, matched)) {
      const lets = `step ${index} ${JSON.stringify(name)} matches ${[...matched].join('/')} events only (${stepReach.named.join(', ')})`;
      into.push({ path: `steps.${index}.filter`, message: `${use.field} (${use.at}) is a field of ${families.join('/')} events only, and ${lets}: every event it matches lacks this key and is skipped, so the sequence never completes` });
    }
  });
}

/**
 * Settings and inner filters that name a field no event the rule's `filter` lets through has: a
 * `groupBy` entry, a counted or measured `field`, a `distinctField`, a condition of a sequence step
 * or of another filter the rule type runs after the rule's own, and a sequence step only events
 * without a `groupBy` field can match. A field some of the allowed families have is taken (events
 * without it are skipped).
 */
function reachProblems(rule: unknown, uses: readonly FieldUse[], into: { path: string; message: string }[]): void {
  if (typeof rule !== 'object' || rule === null) return;
  const reach = filterReach((rule as { filter?: unknown }).filter);
  const allowed = knownFamilies(reach);
  // None: an `all` no one event meets, or a family no event is (`invocations`), each refused as such.
  if (allowed?.size === 0) return;
  stepKeyProblems(rule, reach, allowed, uses, into);
  if (allowed === undefined) return;
  const lets = `the rule's filter lets through ${[...allowed].join('/')} events only (${reach.named.join(', ')})`;
  for (const { use, families } of unreachedFields(uses, allowed)) {
    into.push({ path: use.at, message: `${use.field} is a field of ${families.join('/')} events only, and ${lets}: ${unreachedConsequence(use.at, (rule as { type?: unknown }).type)}` });
  }
  const inner: { at: string; filter: unknown }[] = [];
  innerFilters(rule, '', inner);
  for (const { at, filter } of inner) {
    const step = /^steps\.\d+\.filter$/.test(at);
    for (const dead of deadConditions(filter, at, allowed)) {
      const what = dead.field === 'family' ? `family is never ${dead.families.join('/')} here` : `${dead.field} is a field of ${dead.families.join('/')} events only`;
      const consequence = step ? 'this step never matches, so the sequence never completes' : 'this filter never passes an event';
      into.push({ path: dead.at, message: `${what}, and ${lets}: ${consequence} (it sees only the events the rule's filter passed)` });
    }
  }
}

/**
 * What is wrong with the fields a parsed rule names: a field no input has (with the nearest
 * one), a value compared with `equals` or `in` that the field can never hold (outside its
 * enum, or a number's field compared with text, or text's with a number), and a setting or an
 * inner filter naming a field no event the rule's filter lets through has.
 */
export function fieldProblems(rule: unknown): { path: string; message: string }[] {
  const uses: FieldUse[] = [];
  fieldUses(rule, '', uses);
  const problems: { path: string; message: string }[] = [];
  for (const use of uses) {
    const info = fieldInfo(use.field);
    if (info === undefined) {
      const open = openField(use.field);
      if (open !== undefined) {
        problems.push({ path: use.at, message: `${open.map} holds no key ${JSON.stringify(open.key)}: its keys are ${open.what}, so ${use.field} is never there and such a condition never matches` });
        continue;
      }
      const near = nearestFieldPath(use.field);
      problems.push({ path: use.at, message: `no event has the field ${use.field}${near ? ` (did you mean ${near}?)` : ''}; such a condition never matches (docs/events.md lists the fields)` });
      continue;
    }
    if (use.single === true && (LISTS.has(use.field) || info.kind === 'object')) {
      // The engine skips an event whose value here is a list or an object: the rule never fires.
      problems.push({ path: use.at, message: `${use.field} holds ${info.kind === 'object' ? 'an object' : 'a list'}, not one value: an event is skipped by a rule keyed or counted on it, so the rule never fires (a filter condition on it holds on any element)` });
      continue;
    }
    if (use.operator !== undefined && info.kind !== 'any' && info.kind !== 'object') {
      const numeric = (NUMERIC_OPERATORS as readonly string[]).includes(use.operator);
      if (use.operator === 'cidr') {
        if (info.ip !== true) problems.push({ path: use.at, message: `${use.field} is ${info.kind === 'string' ? 'text' : info.kind === 'number' ? 'a number' : info.kind}, not an IP address: cidr never holds on it (the fields that hold one: ${ipFields().join(', ')})` });
      } else if (numeric && info.kind !== 'number') {
        problems.push({ path: use.at, message: `${use.field} is ${info.kind === 'string' ? 'text' : info.kind}, not a number: ${use.operator} never holds on it` });
      } else if (!numeric && info.kind !== 'string') {
        problems.push({ path: use.at, message: `${use.field} is ${info.kind === 'number' ? 'a number' : info.kind}, not text: ${use.operator} never holds on it (compare a number with gt, gte, lt, lte or equals)` });
      }
    }
    if (use.compared === undefined || info.kind === 'any' || info.kind === 'object') continue;
    for (const compared of use.compared.values) {
      if (info.ip === true && (typeof compared !== 'string' || !ipAddress.safeParse(compared).success)) {
        problems.push({ path: use.at, message: `${use.field} holds an IP address, and ${JSON.stringify(compared)} is not one: the condition never holds (write one address such as 203.0.113.9 or 2001:db8::1; a range takes cidr)` });
      } else if (info.country === true && (typeof compared !== 'string' || !COUNTRY_CODE.test(compared))) {
        const upper = typeof compared === 'string' && COUNTRY_CODE.test(compared.toUpperCase()) ? ` (write "${compared.toUpperCase()}")` : '';
        problems.push({ path: use.at, message: `${use.field} holds an upper-case ISO 3166-1 alpha-2 country code such as "US", never ${JSON.stringify(compared)}${upper}` });
      } else if (info.values !== undefined && !info.values.includes(String(compared))) {
        problems.push({ path: use.at, message: `${use.field} is never ${JSON.stringify(compared)}: it is one of ${info.values.join(', ')}` });
      } else if (info.kind === 'number' && typeof compared !== 'number') {
        problems.push({ path: use.at, message: `${use.field} is a number: compare it with ${String(compared)} written without quotes` });
      } else if (info.kind === 'string' && (typeof compared === 'number' || typeof compared === 'boolean')) {
        problems.push({ path: use.at, message: `${use.field} is text: compare it with "${String(compared)}" in quotes` });
      } else if (info.kind === 'boolean' && typeof compared !== 'boolean') {
        problems.push({ path: use.at, message: `${use.field} is true or false: compare it with ${String(compared)} written without quotes` });
      }
    }
  }
  familyProblems(rule, '', problems);
  reachProblems(rule, uses, problems);
  measureProblems(rule, problems);
  return problems;
}

/** A surge's `p95` of a field that is not a number: it counts only numbers, so it never fires. */
function measureProblems(rule: unknown, into: { path: string; message: string }[]): void {
  if (typeof rule !== 'object' || rule === null) return;
  const measure = (rule as { measure?: unknown }).measure;
  if (typeof measure !== 'object' || measure === null) return;
  const { kind, field } = measure as { kind?: unknown; field?: unknown };
  if (kind !== 'p95' || typeof field !== 'string') return;
  const info = fieldInfo(field);
  if (info === undefined || info.kind === 'number' || info.kind === 'any') return;
  const holds = info.kind === 'string' ? 'text' : info.kind === 'object' ? 'an object' : 'true or false';
  into.push({ path: 'measure.field', message: `${field} holds ${holds}: a p95 measure counts numbers only (invocation.latencyMs, say), so this one would never fire` });
}
