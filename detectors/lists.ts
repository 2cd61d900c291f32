import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BlockList } from 'node:net';
import { z } from 'zod';
import { boundedMemo } from '../platform';
import { cidrList, inCidrList, parseCidr, type ValueList } from './filter';
import { scalarText } from './input';
import { DuplicateKeyError, parseRuleFileText } from './rule-schema';

/**
 * Named value lists: the site-specific values rules refer to by name (`inList`), so a rule pack
 * never hard-codes a platform's group, scope or network names. The shipped defaults live in
 * detectors/rules/lists/default.yaml; operators replace or extend them by id in their own files
 * (`VIGIL_LISTS_PATH`). See docs/rules.md#lists.
 */

/**
 * - `keyword`: a value is in the list when its text equals an entry (`payments`).
 * - `cidr`: a value is in the list when it is an IP address inside an entry's range (`10.0.0.0/8`).
 * - `wildcard`: an entry's `*` stands for any run of characters, and the entry covers the whole
 *   value (`admin:*` holds `admin:write`, not `x-admin:write`).
 */
export const LIST_KINDS = ['keyword', 'cidr', 'wildcard'] as const;
export type ListKind = (typeof LIST_KINDS)[number];

const listId = z.string().regex(/^[a-z0-9][a-z0-9-]{2,80}$/, 'lower-case letters, digits and "-", 3 to 81 characters');

/** One list as written in a list file. */
export const listSchema = z
  .strictObject({
    id: listId,
    description: z.string().min(3).max(2000),
    kind: z.enum(LIST_KINDS),
    /** May be empty: a list with nothing in it matches nothing (trusted egress on a fresh install). */
    values: z.array(z.union([z.string().min(1).max(1024), z.number()]).transform(String)).max(100_000),
    /**
     * For an operator list with the id of a shipped one: `replace` its values, or `append` to
     * them. @defaultValue 'replace'
     */
    merge: z.enum(['replace', 'append']).default('replace'),
  })
  .superRefine((list, context) => {
    const seen = new Set<string>();
    list.values.forEach((value, index) => {
      if (seen.has(value)) context.addIssue({ code: 'custom', path: ['values', index], message: `entry "${value}" is listed twice` });
      seen.add(value);
      if (list.kind === 'cidr' && parseCidr(value) === undefined) {
        context.addIssue({ code: 'custom', path: ['values', index], message: `entry "${value}" is not a CIDR range (expected e.g. 10.0.0.0/8, 2001:db8::/32 or one address)` });
      }
    });
  });

/** A list as written and validated. */
export type ListDefinition = z.output<typeof listSchema>;

/** A list file: a list of lists, or `{ lists: [...] }`. */
const listFileSchema = z.union([z.array(z.unknown()), z.strictObject({ lists: z.array(z.unknown()) })]);

/** A list ready for filters: its entries compiled once. */
export interface CompiledList extends ValueList {
  readonly id: string;
  readonly kind: ListKind;
  readonly description: string;
  /** The entries, in file order (appended ones after the shipped ones). */
  readonly values: readonly string[];
  /** The files that defined it, the shipped one first. */
  readonly files: readonly string[];
  /** The entries that hold a value (one for keyword; possibly several overlapping ranges or patterns). */
  entriesHolding(value: unknown): string[];
}

/** What is wrong with a list file: the file, the list and the entry. Shaped like a rule problem. */
export interface ListProblem {
  file: string;
  listId?: string;
  path: string;
  message: string;
}

/** The lists of a rule set, by id. */
export type ListSet = ReadonlyMap<string, CompiledList>;

function wildcardPattern(entry: string): RegExp {
  const source = entry
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 's');
}

/** How many addresses a `cidr` list remembers its answer for; the oldest is forgotten first. */
export const CIDR_ANSWERS_KEPT = 10_000;

/** Compiles a validated list: sets, block lists and patterns built here, once per load. */
export function compileList(definition: Pick<ListDefinition, 'id' | 'kind' | 'description' | 'values'>, files: readonly string[]): CompiledList {
  const { id, kind, description, values } = definition;
  const common = { id, kind, description, values: [...values], files: [...files] };
  if (kind === 'keyword') {
    const entries = new Set(values);
    return {
      ...common,
      has: (value) => {
        const text = scalarText(value);
        return text !== undefined && entries.has(text);
      },
      entriesHolding: (value) => {
        const text = scalarText(value);
        return text !== undefined && entries.has(text) ? [text] : [];
      },
    };
  }
  if (kind === 'cidr') {
    const all = cidrList(values);
    // One block list per entry too, only read by coverage (which entry saw traffic).
    let each: [string, BlockList][] | undefined;
    // The answer depends on the text alone and traffic repeats its addresses: BlockList.check
    // builds a SocketAddress per call (1.6 % of the rules-on path's busy time).
    const holds = boundedMemo(CIDR_ANSWERS_KEPT, (address) => inCidrList(all, address));
    return {
      ...common,
      has: (value) => (typeof value === 'string' ? holds(value) : inCidrList(all, value)),
      entriesHolding: (value) => {
        each ??= values.map((entry) => [entry, cidrList([entry])]);
        return each.filter(([, list]) => inCidrList(list, value)).map(([entry]) => entry);
      },
    };
  }
  const patterns = values.map((entry) => [entry, wildcardPattern(entry)] as const);
  return {
    ...common,
    has: (value) => typeof value === 'string' && patterns.some(([, pattern]) => pattern.test(value)),
    entriesHolding: (value) => (typeof value === 'string' ? patterns.filter(([, pattern]) => pattern.test(value)).map(([entry]) => entry) : []),
  };
}

const LIST_FILE = /\.(ya?ml|json)$/i;

/** The list files under the given files and folders (not recursive), sorted within a folder. */
function listFiles(paths: readonly string[], problems: ListProblem[]): string[] {
  const files: string[] = [];
  for (const path of paths) {
    if (!existsSync(path)) {
      problems.push({ file: path, path: '', message: 'no such file or folder' });
      continue;
    }
    if (statSync(path).isDirectory()) {
      for (const entry of readdirSync(path).sort()) if (LIST_FILE.test(entry)) files.push(join(path, entry));
    } else files.push(path);
  }
  return files;
}

/** One file's lists, validated; problems are added, never thrown. */
function readListFile(file: string, text: string, problems: ListProblem[]): { id?: string; definition?: ListDefinition }[] {
  let content: unknown;
  try {
    content = parseRuleFileText(file, text);
  } catch (error) {
    if (error instanceof DuplicateKeyError) problems.push({ file, ...(error.entryId !== undefined ? { listId: error.entryId } : {}), path: error.path, message: error.message });
    else problems.push({ file, path: '', message: `cannot be parsed: ${(error as Error).message}` });
    return [];
  }
  const shape = listFileSchema.safeParse(content);
  if (!shape.success) {
    problems.push({ file, path: '', message: 'expected a list of value lists, or { lists: [...] }' });
    return [];
  }
  const entries = Array.isArray(shape.data) ? shape.data : shape.data.lists;
  // Refused lists keep their declared id: a second list of that id is still a duplicate.
  return entries.map((entry, index) => {
    const id = typeof entry === 'object' && entry !== null && 'id' in entry ? scalarText(entry.id) : undefined;
    const parsed = listSchema.safeParse(entry);
    if (parsed.success) return { id: parsed.data.id, definition: parsed.data };
    for (const issue of parsed.error.issues) {
      problems.push({ file, ...(id ? { listId: id } : {}), path: [`[${index}]`, ...issue.path.map(String)].join('.'), message: issue.message });
    }
    return id === undefined ? {} : { id };
  });
}

/** What {@link loadLists} read: the lists, and what went into them. */
export interface LoadedLists {
  lists: ListSet;
  /** Every file read, the shipped one first, with its text (for the rule set's digest). */
  sources: { file: string; text: string }[];
  problems: ListProblem[];
  /** Ids that were declared but refused: rules naming them are not reported a second time. */
  refused: ReadonlySet<string>;
}

/**
 * Loads the shipped lists, then the operator's files over them. An operator list with a shipped
 * id replaces it (`merge: replace`, the default) or adds to it (`merge: append`), and must keep
 * its kind; any other id is a new list. Ids are unique across the operator's files. Problems are
 * returned, not thrown: the rule loader refuses the whole set with them.
 */
export function loadLists(defaultsFile: string, operatorPaths: readonly string[] = []): LoadedLists {
  const problems: ListProblem[] = [];
  const sources: LoadedLists['sources'] = [];
  const refused = new Set<string>();
  const shipped = new Map<string, { definition: ListDefinition; file: string }>();
  const read = (file: string): { id: string; definition?: ListDefinition }[] => {
    const text = readFileSync(file, 'utf8');
    sources.push({ file, text });
    const entries = readListFile(file, text, problems).flatMap((entry) => (entry.id === undefined ? [] : [{ ...entry, id: entry.id }]));
    for (const entry of entries) if (entry.definition === undefined) refused.add(entry.id);
    return entries;
  };

  if (!existsSync(defaultsFile)) problems.push({ file: defaultsFile, path: '', message: 'no such file or folder' });
  else {
    for (const { id, definition } of read(defaultsFile)) {
      if (shipped.has(id)) problems.push({ file: defaultsFile, listId: id, path: 'id', message: 'duplicate list id' });
      else if (definition) shipped.set(id, { definition, file: defaultsFile });
    }
  }

  const result = new Map<string, { definition: Pick<ListDefinition, 'id' | 'kind' | 'description' | 'values'>; files: string[] }>(
    [...shipped].map(([id, { definition, file }]) => [id, { definition, files: [file] }]),
  );
  const operatorFile = new Map<string, string>();
  for (const file of listFiles(operatorPaths, problems)) {
    for (const { id, definition } of read(file)) {
      const earlier = operatorFile.get(id);
      if (earlier !== undefined) {
        problems.push({ file, listId: id, path: 'id', message: `duplicate list id (also in ${earlier})` });
        continue;
      }
      operatorFile.set(id, file);
      if (definition === undefined) continue;
      const base = shipped.get(id);
      if (base === undefined) {
        if (definition.merge === 'append') {
          problems.push({ file, listId: id, path: 'merge', message: 'merge: append adds to a shipped list, and no shipped list has this id' });
          refused.add(id);
          continue;
        }
        result.set(id, { definition, files: [file] });
        continue;
      }
      if (base.definition.kind !== definition.kind) {
        // Rules were written against the shipped kind: a keyword list can't turn into ranges under them.
        problems.push({ file, listId: id, path: 'kind', message: `kind ${definition.kind} differs from the shipped list's kind ${base.definition.kind}` });
        refused.add(id);
        continue;
      }
      const values =
        definition.merge === 'append' ? [...base.definition.values, ...definition.values.filter((value) => !base.definition.values.includes(value))] : definition.values;
      result.set(id, { definition: { ...definition, values }, files: [base.file, file] });
    }
  }
  for (const id of refused) result.delete(id);
  const lists = new Map<string, CompiledList>();
  for (const [id, { definition, files }] of result) lists.set(id, compileList(definition, files));
  return { lists, sources, problems, refused };
}

/** An `inList` condition found in a rule: where it is, the field it tests, the list it names. */
export interface ListReference {
  /** The path inside the rule (`filter.all.3.inList`, `steps.1.filter.inList`). */
  path: string;
  field: string;
  list: string;
}

/**
 * Every `inList` condition anywhere in a rule (its filter, a sequence's steps, a surge's
 * numerator): found by walking the rule, so a new rule type's filters are covered without a hook.
 */
export function listReferencesOf(rule: unknown): ListReference[] {
  const found: ListReference[] = [];
  const walk = (node: unknown, path: string[]): void => {
    if (Array.isArray(node)) {
      node.forEach((item, index) => walk(item, [...path, String(index)]));
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const record = node as Record<string, unknown>;
    if (typeof record.inList === 'string' && typeof record.field === 'string') {
      found.push({ path: [...path, 'inList'].join('.'), field: record.field, list: record.inList });
      return;
    }
    for (const [key, value] of Object.entries(record)) walk(value, [...path, key]);
  };
  walk(rule, []);
  return found;
}
