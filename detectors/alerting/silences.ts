/**
 * Silences: on-call mutes the notifications of matching alerts for a while, as Alertmanager's
 * silences do (a penetration test from known addresses, a load test on one endpoint, an incident
 * already being handled). A silenced alert is still opened, grouped, escalated, resolved and
 * indexed as usual: only its notifications are held back. Silences live in Redis (one hash under
 * the `{alerts}` hash tag), so every alerter instance sees the same ones, and end by themselves.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { StoreUnavailableError, errorMessage, nearest, type RedisClient } from '../../platform';
import type { Alert } from '../../schemas';
import { DEFAULT_KEY_FIELDS } from '../engine';
import { RISK_RULE_ID } from './risk';

/** The key field of a campaign alert of the storm guard: the rule whose alerts it folds in. */
const CAMPAIGN_KEY_FIELD = 'rule.id';
import type { CompiledRuleOf } from '../rule-type';
import { alertKeys } from '../state';

/** A field name as an alert's key writes it: no spaces, no "=". */
const FIELD_NAME = /^[^=\s]+$/;

/** A silence as it is stored and listed. */
export const silenceSchema = z.strictObject({
  /** A UUID, given when the silence is made. */
  id: z.string().min(1),
  /** Every field must hold this value in the alert's key or among its entities (`client.ip`: `203.0.113.7`). */
  matchers: z.record(z.string().regex(FIELD_NAME), z.string().min(1)),
  /** When set, only alerts this rule contributed to. */
  rule: z.string().min(1).optional(),
  startsAt: z.iso.datetime(),
  endsAt: z.iso.datetime(),
  /** Why, and who: shown by `vigil silences list`. */
  comment: z.string().min(1),
});
export type Silence = z.infer<typeof silenceSchema>;

/** The longest a silence may last: a forgotten one must not mute an entity for good. */
export const MAX_SILENCE_MS = 30 * 86_400_000;

/** How long an ended silence is kept, for `vigil silences list`, before it is dropped. */
export const ENDED_SILENCE_KEPT_MS = 7 * 86_400_000;

/** A silence that can't be made: what is wrong, named. */
export class SilenceError extends Error {
  readonly retriable = false;
  constructor(message: string) {
    super(message);
    this.name = 'SilenceError';
  }
}

/**
 * What a silence can match under a rule set: its rule ids, and the fields an alert's key or
 * entities can hold (every rule's `groupBy`, and the user, IP and consumer a detection without
 * one is filed under). A silence naming anything else would silence nothing while pages go on.
 */
export interface SilenceVocabulary {
  rules: ReadonlySet<string>;
  fields: ReadonlySet<string>;
  /** Where the rules came from, for the error (`the default pack`, the rule files). */
  source: string;
}

/** The {@link SilenceVocabulary} of a loaded rule set, with what the alerter adds to any: the risk rule, and the `rule.id` a storm guard's campaign alert is keyed by. */
export function silenceVocabularyOf(rules: readonly Pick<CompiledRuleOf, 'rule' | 'groupBy'>[], source: string): SilenceVocabulary {
  return {
    rules: new Set([...rules.map(({ rule }) => rule.id), RISK_RULE_ID]),
    fields: new Set([...DEFAULT_KEY_FIELDS, CAMPAIGN_KEY_FIELD, ...rules.flatMap(({ groupBy }) => groupBy)]),
    source,
  };
}

/** Why a silence names a rule or a field no alert of `vocabulary`'s rules can have, or undefined when it names none. */
export function unknownToRules(silence: Pick<Silence, 'matchers' | 'rule'>, vocabulary: SilenceVocabulary): string | undefined {
  const problems: string[] = [];
  if (silence.rule !== undefined && !vocabulary.rules.has(silence.rule)) {
    const near = nearest(silence.rule, vocabulary.rules, 3, { ignoreCase: true });
    problems.push(`no rule "${silence.rule}" in ${vocabulary.source}${near === undefined ? ` (its rules: ${[...vocabulary.rules].sort().join(', ')})` : `; did you mean ${near}?`}`);
  }
  for (const field of Object.keys(silence.matchers)) {
    if (vocabulary.fields.has(field)) continue;
    const near = nearest(field, vocabulary.fields, 3, { ignoreCase: true });
    problems.push(
      `no alert of ${vocabulary.source} has ${field} in its key or entities${near === undefined ? '' : `; did you mean ${near}?`} (they have ${[...vocabulary.fields].sort().join(', ')})`,
    );
  }
  return problems.length === 0 ? undefined : `${problems.join('; ')}: the silence would hold back nothing`;
}

/** Whether a silence is in force at `nowMs` (wall clock). */
export function silenceInForce(silence: Pick<Silence, 'startsAt' | 'endsAt'>, nowMs: number): boolean {
  return Date.parse(silence.startsAt) <= nowMs && nowMs < Date.parse(silence.endsAt);
}

/**
 * Whether a silence matches an alert: its rule (when set) is among the alert's rules, and each
 * matcher's field holds its value in the alert's key (`client.ip=203.0.113.7` on an alert keyed by
 * that address) or among the entities the incident linked (a takeover's victim and its IP). A
 * flood's alert is keyed by its endpoint: `invocation.route=/v1/login` silences it.
 */
export function silenceMatches(silence: Pick<Silence, 'matchers' | 'rule'>, alert: Pick<Alert, 'key' | 'rules' | 'entities'>): boolean {
  if (silence.rule !== undefined && !alert.rules.includes(silence.rule)) return false;
  for (const [field, value] of Object.entries(silence.matchers)) {
    if (alert.key[field] !== value && !(alert.entities ?? []).includes(`${field}=${value}`)) return false;
  }
  return true;
}

/** One line about a silence: what it matches and until when. */
export function describeSilence(silence: Silence, nowMs: number): string {
  const what = [...Object.entries(silence.matchers).map(([field, value]) => `${field}=${value}`), ...(silence.rule === undefined ? [] : [`rule ${silence.rule}`])].join(', ');
  const state = silenceInForce(silence, nowMs) ? `active until ${silence.endsAt}` : Date.parse(silence.endsAt) <= nowMs ? `ended ${silence.endsAt}` : `from ${silence.startsAt} until ${silence.endsAt}`;
  return `${silence.id}  ${state}  ${what}  (${silence.comment})`;
}

/** Silences in Redis. */
export interface SilenceStore {
  /**
   * Makes a silence from now for `forMs`; throws {@link SilenceError} naming what is wrong, a rule
   * or field `vocabulary` (when given) does not know among it.
   */
  add(input: { matchers: Record<string, string>; rule?: string; forMs: number; comment: string }, nowMs: number, vocabulary?: SilenceVocabulary): Promise<Silence>;
  /** Every silence kept, the ones in force first, then by end. Ended ones older than {@link ENDED_SILENCE_KEPT_MS} are dropped. */
  list(nowMs: number): Promise<Silence[]>;
  /** The silences in force at `nowMs`. */
  active(nowMs: number): Promise<Silence[]>;
  /** Ends a silence now; false when there is no silence of that id in force. */
  expire(id: string, nowMs: number): Promise<boolean>;
}

/** Silences under `<prefix>:{alerts}:silences`. A read or write that fails throws {@link StoreUnavailableError}. */
export function createSilenceStore(redis: RedisClient, prefix: string): SilenceStore {
  const key = alertKeys(prefix).silences;
  /** A stored silence; undefined for one not of ours (written by hand, or by a newer version): ignored rather than trusted. */
  const parse = (text: string): Silence | undefined => {
    try {
      return silenceSchema.parse(JSON.parse(text));
    } catch {
      return undefined;
    }
  };
  const readAll = async (): Promise<Silence[]> => {
    let flat: Record<string, string>;
    try {
      flat = await redis.hgetall(key);
    } catch (error) {
      throw new StoreUnavailableError('redis', `silences: ${errorMessage(error)}`, error);
    }
    return Object.values(flat).flatMap((text) => parse(text) ?? []);
  };
  const write = async (silence: Silence): Promise<void> => {
    try {
      await redis.hset(key, silence.id, JSON.stringify(silence));
    } catch (error) {
      throw new StoreUnavailableError('redis', `silences: ${errorMessage(error)}`, error);
    }
  };
  return {
    async add(input, nowMs, vocabulary) {
      if (Object.keys(input.matchers).length === 0 && input.rule === undefined) throw new SilenceError('a silence needs at least one --match FIELD=VALUE or a --rule: it would silence every alert');
      const badField = Object.keys(input.matchers).find((field) => !FIELD_NAME.test(field));
      if (badField !== undefined) throw new SilenceError(`"${badField}" is not a field name: it holds a space or "=" (a field is written as in an alert's key, e.g. client.ip)`);
      const unknown = vocabulary === undefined ? undefined : unknownToRules(input, vocabulary);
      if (unknown !== undefined) throw new SilenceError(unknown);
      if (!(input.forMs > 0) || input.forMs > MAX_SILENCE_MS) throw new SilenceError(`a silence lasts more than 0 and at most 30d, not ${input.forMs} ms`);
      const parsed = silenceSchema.safeParse({
        id: randomUUID(),
        matchers: input.matchers,
        ...(input.rule === undefined ? {} : { rule: input.rule }),
        startsAt: new Date(nowMs).toISOString(),
        endsAt: new Date(nowMs + input.forMs).toISOString(),
        comment: input.comment.trim(),
      });
      if (!parsed.success) throw new SilenceError(parsed.error.issues.map((issue) => `${issue.path.join('.') || '(silence)'}: ${issue.message}`).join('; '));
      await write(parsed.data);
      return parsed.data;
    },
    async list(nowMs) {
      const silences = await readAll();
      const stale = silences.filter((silence) => Date.parse(silence.endsAt) < nowMs - ENDED_SILENCE_KEPT_MS);
      if (stale.length > 0) {
        try {
          await redis.hdel(key, ...stale.map((silence) => silence.id));
        } catch (error) {
          throw new StoreUnavailableError('redis', `silences: ${errorMessage(error)}`, error);
        }
      }
      const kept = silences.filter((silence) => !stale.includes(silence));
      const rank = (silence: Silence): number => (silenceInForce(silence, nowMs) ? 0 : 1);
      return kept.sort((a, b) => rank(a) - rank(b) || Date.parse(b.endsAt) - Date.parse(a.endsAt) || a.id.localeCompare(b.id));
    },
    async active(nowMs) {
      return (await readAll()).filter((silence) => silenceInForce(silence, nowMs));
    },
    async expire(id, nowMs) {
      let text: string | null;
      try {
        text = await redis.hget(key, id);
      } catch (error) {
        throw new StoreUnavailableError('redis', `silences: ${errorMessage(error)}`, error);
      }
      const silence = text === null ? undefined : parse(text);
      if (silence === undefined || !silenceInForce(silence, nowMs)) return false;
      await write({ ...silence, endsAt: new Date(nowMs).toISOString() });
      return true;
    },
  };
}
