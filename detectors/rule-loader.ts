import { existsSync, readFileSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { ValidationError, type Logger } from '../platform';
import { UnknownListError, compileFilter, referencedRules } from './filter';
import { listReferencesOf, loadLists, type ListSet } from './lists';
import { DEFAULT_LISTS_PATH } from './default-rules';
import { DuplicateKeyError, parseRuleFileText, ruleFileSchema } from './rule-schema';
import { RULE_TYPES, ruleSchema, ruleTypeOf, type Rule } from './rule-registry';

const RULE_TYPE_NAMES: readonly string[] = RULE_TYPES.map((ruleType) => ruleType.type);
import type { CompiledRuleOf } from './rule-type';
import { scalarText } from './input';
import { fieldInfo, fieldProblems, ipFields, nearestOf } from './field-paths';

/** A rule as the engine runs it: validated, its plug-in resolved, filters and extras compiled once. */
export type CompiledRule = CompiledRuleOf<Rule>;

/** A complete rule set; the engine swaps whole sets, never single rules. */
export interface RuleSet {
  rules: readonly CompiledRule[];
  /** A digest of the rules' content: which set produced a detection. */
  digest: string;
  files: readonly string[];
  /** The value lists the rules were compiled with (shipped, then the operator's), by id. */
  lists: ListSet;
  /** The list files read, the shipped one first. */
  listFiles: readonly string[];
}

/** Options of {@link loadRuleSet}. */
export interface RuleSetOptions {
  /** The operator's list files and folders, loaded over the shipped lists. @defaultValue none */
  lists?: readonly string[];
  /** The shipped lists. @defaultValue DEFAULT_LISTS_PATH */
  defaultLists?: string;
}

/** What is wrong with a rule file: the file, the rule, and the field. */
export interface RuleProblem {
  file: string;
  ruleId?: string;
  /** Set for a problem in a value list file. */
  listId?: string;
  path: string;
  message: string;
}

/** A rule set that could not be loaded; the one already running stays in force. */
export class RuleSetError extends ValidationError {
  readonly problems: readonly RuleProblem[];

  constructor(problems: readonly RuleProblem[]) {
    super(
      'invalid rule set',
      problems.map((problem) => `${problem.file}${problem.ruleId ? ` rule ${problem.ruleId}` : ''}${problem.listId ? ` list ${problem.listId}` : ''} at ${problem.path || '(root)'}: ${problem.message}`),
      'rules_invalid',
    );
    this.problems = problems;
  }
}

const RULE_FILE = /\.(ya?ml|json)$/i;

/** The rule files under the given files and folders (not recursive), sorted. */
export function ruleFiles(paths: readonly string[]): string[] {
  const files: string[] = [];
  for (const path of paths) {
    if (!existsSync(path)) throw new RuleSetError([{ file: path, path: '', message: 'no such file or folder' }]);
    if (statSync(path).isDirectory()) {
      for (const entry of readdirSync(path).sort()) if (RULE_FILE.test(entry)) files.push(join(path, entry));
    } else files.push(path);
  }
  return files;
}

function compile(rule: Rule, file: string, lists: ListSet): CompiledRule {
  const ruleType = ruleTypeOf(rule.type);
  return {
    rule,
    ruleType,
    matches: compileFilter(rule.filter, lists),
    groupBy: 'groupBy' in rule ? (rule.groupBy ?? []) : [],
    extras: ruleType.compile?.(rule, lists),
    dependsOn: [...referencedRules(rule.filter), ...(ruleType.references?.(rule) ?? [])],
    file,
  };
}

/**
 * Loads and validates rule files (YAML or JSON) and the value lists they name. All or nothing:
 * any problem in any rule or list file refuses the whole set, with every problem listed. Lists
 * are compiled into the rules' filters here, so a changed list means a new rule set.
 * @throws RuleSetError
 */
export function loadRuleSet(paths: readonly string[], options: RuleSetOptions = {}): RuleSet {
  const files = ruleFiles(paths);
  // An empty folder is a mistake (a file moved aside mid-edit, a wrong path), not a rule set: it
  // would turn detection off without a word, at start or at a reload.
  if (files.length === 0) {
    throw new RuleSetError([{ file: paths.join(', '), path: '', message: 'holds no rule file (.yaml, .yml or .json); to run without rules, set VIGIL_DETECTION=off' }]);
  }
  const loaded = loadLists(options.defaultLists ?? DEFAULT_LISTS_PATH, options.lists ?? []);
  const { lists } = loaded;
  const problems: RuleProblem[] = [...loaded.problems];
  const compiled: CompiledRule[] = [];
  const seen = new Map<string, string>();
  const hash = createHash('sha256');
  for (const file of files) {
    let content: unknown;
    const text = readFileSync(file, 'utf8');
    // Names, not paths: the same rules loaded from another folder have the same digest.
    hash.update(basename(file)).update(text);
    try {
      content = parseRuleFileText(file, text);
    } catch (error) {
      if (error instanceof DuplicateKeyError) problems.push({ file, ...(error.entryId !== undefined ? { ruleId: error.entryId } : {}), path: error.path, message: error.message });
      else problems.push({ file, path: '', message: `cannot be parsed: ${(error as Error).message}` });
      continue;
    }
    const shape = ruleFileSchema.safeParse(content);
    if (!shape.success) {
      problems.push({ file, path: '', message: 'expected a list of rules, or { rules: [...] }' });
      continue;
    }
    const entries = Array.isArray(shape.data) ? shape.data : shape.data.rules;
    entries.forEach((entry, index) => {
      const declaredId = typeof entry === 'object' && entry !== null && 'id' in entry ? scalarText(entry.id) : undefined;
      const parsed = ruleSchema.safeParse(entry);
      if (!parsed.success) {
        // A misspelt type: zod lists the types; the nearest is the likely one.
        const declaredType = typeof entry === 'object' && entry !== null && 'type' in entry && typeof entry.type === 'string' ? entry.type : undefined;
        const typeGuess = declaredType !== undefined && !RULE_TYPE_NAMES.includes(declaredType) ? nearestOf(declaredType, RULE_TYPE_NAMES) : undefined;
        for (const issue of parsed.error.issues) {
          const onType = issue.path.length === 1 && issue.path[0] === 'type' && typeGuess !== undefined;
          problems.push({
            file,
            ...(declaredId ? { ruleId: declaredId } : {}),
            path: [`[${index}]`, ...issue.path.map(String)].join('.'),
            message: onType ? `${issue.message} (did you mean ${typeGuess}?)` : issue.message,
          });
        }
        return;
      }
      const earlier = seen.get(parsed.data.id);
      if (earlier !== undefined) {
        problems.push({ file, ruleId: parsed.data.id, path: `[${index}].id`, message: `duplicate rule id (also in ${earlier})` });
        return;
      }
      seen.set(parsed.data.id, file);
      // A field no event has, or a value its field never holds: a condition that never matches.
      for (const problem of fieldProblems(parsed.data)) problems.push({ file, ruleId: parsed.data.id, path: `[${index}].${problem.path}`, message: problem.message });
      // Checked before compiling, so the problem names where in the rule the list is named.
      const unknown = listReferencesOf(parsed.data).filter((reference) => !lists.has(reference.list));
      for (const reference of unknown) {
        // A list refused for its own problems is reported there, not again under every rule.
        if (loaded.refused.has(reference.list)) continue;
        problems.push({ file, ruleId: parsed.data.id, path: `[${index}].${reference.path}`, message: new UnknownListError(reference.list, [...lists.keys()]).message });
      }
      // A list holds only on the values its kind can test, as a condition does (fieldProblems above):
      // a cidr list an address, a wildcard list text. A keyword list compares an entry's text, so
      // `["404"]` holds on a status of 404: it holds on any kind.
      for (const reference of listReferencesOf(parsed.data)) {
        const kind = lists.get(reference.list)?.kind;
        const info = fieldInfo(reference.field);
        if (kind === undefined || info === undefined || info.kind === 'any' || info.kind === 'object') continue;
        const at = `[${index}].${reference.path}`;
        if (kind === 'cidr' && info.ip !== true) {
          problems.push({ file, ruleId: parsed.data.id, path: at, message: `${reference.list} is a cidr list and ${reference.field} holds no IP address: the condition never holds (the fields that hold one: ${ipFields().join(', ')})` });
        } else if (kind === 'wildcard' && info.kind !== 'string') {
          const holds = info.kind === 'number' ? 'a number' : 'true or false';
          problems.push({
            file,
            ruleId: parsed.data.id,
            path: at,
            message: `${reference.list} is a wildcard list and ${reference.field} holds ${holds}, not text: its patterns test text only, so the condition never holds (name a keyword list of the values, or compare a number with gt, gte, lt or lte)`,
          });
        }
      }
      if (unknown.length > 0 || !parsed.data.enabled) return;
      try {
        compiled.push(compile(parsed.data, file, lists));
      } catch (error) {
        if (!(error instanceof UnknownListError)) throw error;
        problems.push({ file, ruleId: parsed.data.id, path: `[${index}]`, message: error.message });
      }
    });
  }
  // The lists shape what the rules match: the same rules over other lists are another set.
  for (const source of loaded.sources) hash.update(`list:${basename(source.file)}`).update(source.text);
  const ids = new Set(compiled.map((item) => item.rule.id));
  for (const item of compiled) {
    for (const dependency of item.dependsOn) {
      const target = compiled.find((other) => other.rule.id === dependency);
      if (!ids.has(dependency)) {
        problems.push({ file: item.file, ruleId: item.rule.id, path: 'detectedBy', message: `names rule ${dependency}, which is not in the set (or disabled)` });
      } else if (target && target.dependsOn.length > 0) {
        problems.push({ file: item.file, ruleId: item.rule.id, path: 'detectedBy', message: `names rule ${dependency}, which itself uses detectedBy (one level only)` });
      }
    }
  }
  if (problems.length > 0) throw new RuleSetError(problems);
  // As an empty folder: files holding `[]`, or only disabled rules, turned detection off without a word.
  if (compiled.length === 0) {
    throw new RuleSetError([{ file: paths.join(', '), path: '', message: 'holds no enabled rule (the files hold none, or every rule has enabled: false); to run without rules, set VIGIL_DETECTION=off' }]);
  }
  return { rules: compiled, digest: hash.digest('hex').slice(0, 16), files, lists, listFiles: loaded.sources.map((source) => source.file) };
}

/** A file's content as a digest, to tell a change from an event that changed nothing in it. */
function contentDigest(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch (error) {
    // Gone or unreadable mid-swap: a state of its own, so its return is a change too.
    return `unreadable: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;
  }
}

/**
 * Reloads the rule set when a file under `paths`, or a list file, changes. A bad edit (of a
 * rule or of a list) is reported and the running set stays in force; a good one is handed to
 * `onLoad` whole, rules and lists together.
 *
 * A folder reloads on any event in it. A file named on its own is watched through its folder,
 * and any event there re-reads it: it reloads when its content differs from what was read at the
 * last load. Events need not name the file: an editor's save or `sed -i` replaces it under a
 * temporary name, and a Kubernetes ConfigMap update swaps the `..data` symlink the file's own
 * symlink points through, so the events name `..data`, never the file.
 * @param options the list files, as for {@link loadRuleSet}; they are watched too
 * @returns a function that stops watching
 */
export function watchRules(
  paths: readonly string[],
  onLoad: (ruleSet: RuleSet) => void,
  logger?: Logger,
  debounceMs = 250,
  options: RuleSetOptions = {},
): () => void {
  let timer: NodeJS.Timeout | undefined;
  const listPaths = [options.defaultLists ?? DEFAULT_LISTS_PATH, ...(options.lists ?? [])];
  const watched = [...paths, ...listPaths.filter((path) => existsSync(path))];
  const files = watched.filter((path) => statSync(path).isFile());
  // What each file held when the running set was read (as near as a watch can tell).
  let loaded = new Map(files.map((file) => [file, contentDigest(file)]));
  let folderChanged = false;
  const reload = (): void => {
    timer = undefined;
    const now = new Map(files.map((file) => [file, contentDigest(file)]));
    if (!folderChanged && files.every((file) => now.get(file) === loaded.get(file))) return;
    // Taken before the load: a change landing during it differs at the next event, and reloads then.
    loaded = now;
    folderChanged = false;
    try {
      const ruleSet = loadRuleSet(paths, options);
      onLoad(ruleSet);
      logger?.info({ rules: ruleSet.rules.length, lists: ruleSet.lists.size, digest: ruleSet.digest }, 'rule set reloaded');
    } catch (error) {
      // A refused set is its problems (file, rule, field); a stack trace would only bury them.
      logger?.error(error instanceof RuleSetError ? { problems: error.problems } : { err: error }, 'rule set refused; the running rules stay in force');
    }
  };
  const changed = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(reload, debounceMs);
  };
  const watchers: FSWatcher[] = watched.map((path) => {
    if (!files.includes(path)) {
      return watch(path, () => {
        folderChanged = true;
        changed();
      });
    }
    // Through its folder: a watch on the file itself follows the replaced one and hears only the
    // first save. Whatever the event names, the content decides (see above).
    return watch(dirname(path), changed);
  });
  return () => {
    if (timer !== undefined) clearTimeout(timer);
    for (const watcher of watchers) watcher.close();
  };
}
