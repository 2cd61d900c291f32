import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SEVERITIES } from '../schemas';
import { filterSchema } from './filter';

/** A dotted field path of an event (`actor.userId`). */
export const fieldPath = z.string().regex(/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/, 'expected a dotted field path');

/** The fields every rule has; each rule type's schema spreads them. */
export const base = {
  /** Stable id: detections, fixtures and dashboards refer to it. */
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{2,80}$/, 'lower-case letters, digits and "-", 3 to 81 characters'),
  /** Bumped on every change of meaning; carried on each detection. */
  version: z.number().int().min(1),
  name: z.string().min(3).max(200),
  description: z.string().min(3).max(2000),
  severity: z.enum(SEVERITIES),
  /** MITRE ATT&CK technique ids (T1110, T1110.004) and free tags. */
  tags: z.array(z.string().min(1).max(100)).default([]),
  /** @defaultValue true */
  enabled: z.boolean().default(true),
  /** Which events the rule looks at. @defaultValue every event */
  filter: filterSchema.optional(),
  /**
   * When Redis is unavailable: `pause` holds the partition until it is back (nothing is
   * evaluated without state, nothing lost); `skip` goes on without this rule and counts
   * every skipped evaluation as degraded. @defaultValue 'pause'
   */
  onStateUnavailable: z.enum(['pause', 'skip']).default('pause'),
  /** Words for the sentence: "12 <noun> for user u-17 ...". @defaultValue 'matching events' */
  noun: z.string().min(1).max(100).default('matching events'),
};

/**
 * A `groupBy` list of 1–4 fields; one field written alone (`groupBy: actor.userId`) is taken as a
 * list of one, where zod would answer "expected array" and then a string-length error.
 */
export const groupByFields = z.preprocess((value) => (typeof value === 'string' ? [value] : value), z.array(fieldPath).min(1).max(4));

/** The fields of a rule that keeps state per key. */
export const grouped = {
  /** Fields whose values make the key state is kept per, e.g. `[actor.userId]`. */
  groupBy: groupByFields,
};

/** The option of rules that build an entity's history or location (new_value, geo_velocity). */
export const attributed = {
  /**
   * Which events may write a user's history or location when `groupBy` names a user
   * (`actor.userId`): `proven` takes only events that prove the user (a passed authentication, a
   * device event, a request in an authenticated session; see trust.ts), `any` takes every event.
   * A key that names no user (an IP, a consumer) takes every event either way. @defaultValue 'proven'
   */
  evidence: z.enum(['proven', 'any']).default('proven'),
};

/** The base fields of every rule, whatever its type (each type's schema adds its own). */
export type BaseRule = z.output<z.ZodObject<typeof base>> & { type: string };

/** A rule file: a list of rules, or `{ rules: [...] }`. */
export const ruleFileSchema = z.union([z.array(z.unknown()), z.strictObject({ rules: z.array(z.unknown()) })]);

/** A key written twice in one object of a JSON file: JSON.parse would keep the last one without a word. */
export class DuplicateKeyError extends SyntaxError {
  /**
   * @param key the key written twice
   * @param at where the second one is, from the top of the file (`[0, 'filter']`)
   * @param entryId the `id` of the rule or list holding it, when it has one
   */
  constructor(
    readonly key: string,
    readonly at: readonly (string | number)[],
    readonly entryId: string | undefined,
  ) {
    super(`the key ${key} is written twice in one object; JSON would keep the last one without a word (YAML refuses it too): keep one`);
    this.name = 'DuplicateKeyError';
  }

  /** The path as rule and list problems write it: the entry's index, then the keys (`[0].filter`), past a `rules:` or `lists:` wrapper. */
  get path(): string {
    const at = typeof this.at[0] === 'string' && typeof this.at[1] === 'number' ? this.at.slice(1) : this.at;
    const [first, ...rest] = at;
    if (first === undefined) return '';
    return [typeof first === 'number' ? `[${first}]` : first, ...rest.map(String)].join('.');
  }
}

/** The first key written twice in one object of a text JSON.parse has taken, and where; undefined when there is none. */
function duplicateJsonKey(json: string): { key: string; at: (string | number)[] } | undefined {
  type Frame = { keys: Set<string>; key?: string } | { index: number };
  const frames: Frame[] = [];
  let expectingKey = false;
  for (let at = 0; at < json.length; at++) {
    const character = json[at];
    if (character === '"') {
      let end = at + 1;
      while (end < json.length && json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
      const top = frames.at(-1);
      if (top !== undefined && 'keys' in top && expectingKey) {
        // Decoded, as JSON.parse reads it: "a" and "\u0061" are one key.
        const key = JSON.parse(json.slice(at, end + 1)) as string;
        if (top.keys.has(key)) return { key, at: [...frames.slice(0, -1).map((frame) => ('keys' in frame ? (frame.key ?? '') : frame.index)), key] };
        top.keys.add(key);
        top.key = key;
        expectingKey = false;
      }
      at = end;
    } else if (character === '{') {
      frames.push({ keys: new Set() });
      expectingKey = true;
    } else if (character === '[') {
      frames.push({ index: 0 });
      expectingKey = false;
    } else if (character === '}' || character === ']') {
      frames.pop();
      expectingKey = false;
    } else if (character === ',') {
      const top = frames.at(-1);
      if (top !== undefined && 'index' in top) top.index++;
      else expectingKey = true;
    }
  }
  return undefined;
}

/** The `id` of the entry (rule or list) a path runs through, past a `rules:` or `lists:` wrapper. */
function entryIdAt(content: unknown, at: readonly (string | number)[]): string | undefined {
  let node = content;
  for (const step of at) {
    if (typeof node !== 'object' || node === null) return undefined;
    if (!Array.isArray(node) && typeof (node as { id?: unknown }).id === 'string') return (node as { id: string }).id;
    node = (node as Record<string | number, unknown>)[step];
  }
  return undefined;
}

/**
 * The content of a rule or list file: YAML, or JSON for a `.json` file. A leading byte-order mark
 * (Windows editors, PowerShell 5.1) is dropped; a key written twice in one JSON object is refused,
 * as YAML refuses it, not left to JSON.parse's last-one-wins.
 * @throws SyntaxError (a {@link DuplicateKeyError} for a key written twice) when it can't be parsed
 */
export function parseRuleFileText(file: string, text: string): unknown {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  if (extname(file).toLowerCase() !== '.json') return parseYaml(body, { merge: true });
  const content = JSON.parse(body) as unknown;
  const duplicate = duplicateJsonKey(body);
  if (duplicate !== undefined) throw new DuplicateKeyError(duplicate.key, duplicate.at, entryIdAt(content, duplicate.at));
  return content;
}
