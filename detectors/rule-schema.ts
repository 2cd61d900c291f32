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
