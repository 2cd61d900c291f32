/**
 * Alert state in Redis: the `alertUpsert` and `alertResolve` calls and the decoding of their
 * replies. Keys come from the one key builder and every script call goes through the state
 * layer's one round-trip helper, as the engine's and the correlator's do.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { StoreUnavailableError, errorMessage, type Instrumentation } from '../../platform';
import { ALERT_CHANGES, type Alert, type AlertChange } from '../../schemas';
import { alertKeys, defineScripts, roundTrip } from '../state';
import { severityOfRank } from './grouping-policy';

const unsentRecord = z.object({ kind: z.enum(ALERT_CHANGES), fields: z.string(), reason: z.string(), at: z.number() });

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function list(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

/** An alert from the hash fields the Lua scripts return (HGETALL as a flat JSON array). */
export function alertFromFields(json: string, reason: string): Alert {
  const flat = JSON.parse(json) as string[];
  const fields = new Map<string, string>();
  for (let index = 0; index + 1 < flat.length; index += 2) fields.set(String(flat[index]), String(flat[index + 1]));
  const get = (name: string): string => fields.get(name) ?? '';
  const parse = (name: string): unknown => {
    try {
      return JSON.parse(get(name) || 'null');
    } catch {
      return null;
    }
  };
  const key = parse('key');
  const resolved = fields.get('resolved');
  return {
    id: get('id'),
    status: get('status') === 'resolved' ? 'resolved' : 'open',
    severity: severityOfRank(Number(get('rank'))),
    groupKey: get('group'),
    key: typeof key === 'object' && key !== null && !Array.isArray(key) ? (key as Record<string, string>) : {},
    title: get('title'),
    reason,
    rules: list(parse('rules')),
    ruleNames: list(parse('names')),
    tags: list(parse('tags')),
    count: Number(get('count')),
    suppressed: Number(get('suppressed')),
    firstSeen: new Date(Number(get('first'))).toISOString(),
    lastSeen: new Date(Number(get('last'))).toISOString(),
    ...(resolved ? { resolvedAt: new Date(Number(resolved)).toISOString() } : {}),
    detections: list(parse('detections')),
    revision: Number(get('revision')),
  };
}

/** One detection to fold into its group's alert (the arguments of `alertUpsert-3.lua`). */
export interface AlertUpsert {
  detectionId: string;
  group: string;
  /** The id and title the alert gets if this detection opens it. */
  newId: string;
  title: string;
  ruleId: string;
  ruleName: string;
  severityRank: number;
  tags: readonly string[];
  key: Record<string, string>;
  /** The reason the returned alert carries (the detection's). */
  reason: string;
}

/** What `alertUpsert` did with one detection. */
export type AlertUpsertKind = 'opened' | 'escalated' | 'updated' | 'duplicate';

/** The reply for one detection: the alert after it, and the alert it replaced (now resolved), if any; or the error of that call. */
export type AlertUpsertReply = { ok: true; kind: AlertUpsertKind; alert: Alert; replaced?: Alert } | { ok: false; error: StoreUnavailableError };

/**
 * The id of one change of one alert, `<alert id>:<revision>:<kind>`: the field the Lua scripts
 * record it under in the unsent hash, and the seed of its delivery ids (the same change written
 * twice to the outbox carries the same delivery ids).
 */
export function changeIdOf(change: AlertChange): string {
  return `${change.alert.id}:${change.alert.revision}:${change.kind}`;
}

/** A change recorded by the Lua scripts that the notification outbox may not hold yet. */
export interface UnsentChange {
  change: AlertChange;
  /** When it was recorded (the alerter's clock, ms). */
  at: number;
}

/** Options of {@link createAlertStore}. */
export interface AlertStoreOptions {
  redis: Redis;
  /** `config.redis.prefix`. */
  prefix: string;
  /** TTL of the alert keys. */
  ttlMs: number;
  /** Detection ids kept per alert. */
  maxDetections: number;
  /** The reason a resolved alert carries. */
  resolvedReason: string;
  /** Receives `state.round_trip` for each trip. */
  instrumentation?: Instrumentation;
}

/** Alert state in Redis. */
export interface AlertStore {
  /**
   * Folds detections into their groups' alerts in one round trip: a detection within `windowMs`
   * of its open alert's last one joins it, otherwise it opens a new alert. One reply per item, in order.
   */
  upsert(items: readonly AlertUpsert[], nowMs: number, windowMs: number): Promise<AlertUpsertReply[]>;
  /** Resolves the open alerts quiet for at least `quietMs`, and returns them. */
  resolveQuiet(nowMs: number, quietMs: number): Promise<Alert[]>;
  /** The changes recorded unsent, recorded at or before `beforeMs`, oldest first (then by revision). */
  unsent(beforeMs: number): Promise<UnsentChange[]>;
  /** Forgets changes the outbox now holds. */
  markSent(changes: readonly AlertChange[]): Promise<void>;
}

/** Creates the alert store; registers the Lua scripts on the client. */
export function createAlertStore(options: AlertStoreOptions): AlertStore {
  const { redis, ttlMs, maxDetections, resolvedReason } = options;
  const keys = alertKeys(options.prefix);
  const tripOptions = { operation: 'alert state', ...(options.instrumentation ? { events: options.instrumentation } : {}) };
  defineScripts(redis);

  return {
    async upsert(items, nowMs, windowMs) {
      if (items.length === 0) return [];
      const replies = await roundTrip(
        redis,
        items.map((item) => ({
          script: 'alertUpsert' as const,
          keys: [keys.alert(item.group), keys.open, keys.unsent],
          args: [
            item.detectionId,
            nowMs,
            windowMs,
            item.newId,
            item.ruleId,
            item.ruleName,
            item.severityRank,
            JSON.stringify(item.tags),
            item.title,
            JSON.stringify(item.key),
            item.group,
            ttlMs,
            maxDetections,
            item.reason,
            resolvedReason,
          ],
        })),
        tripOptions,
      );
      return items.map((item, position): AlertUpsertReply => {
        const reply = replies[position];
        if (!reply?.ok) {
          const error = reply?.error ?? new Error('no reply');
          return { ok: false, error: new StoreUnavailableError('redis', `alert state: ${error.message}`, error) };
        }
        const [kind, fields, replaced] = reply.value as [AlertUpsertKind, string, string | null];
        return {
          ok: true,
          kind,
          alert: alertFromFields(fields, item.reason),
          ...(typeof replaced === 'string' ? { replaced: alertFromFields(replaced, resolvedReason) } : {}),
        };
      });
    },

    async resolveQuiet(nowMs, quietMs) {
      let groups: string[];
      try {
        groups = await redis.zrangebyscore(keys.open, '-inf', nowMs - quietMs);
      } catch (error) {
        throw new StoreUnavailableError('redis', `alert state unavailable (${errorMessage(error)})`, error);
      }
      if (groups.length === 0) return [];
      const replies = await roundTrip(
        redis,
        groups.map((group) => ({ script: 'alertResolve' as const, keys: [keys.alert(group), keys.open, keys.unsent], args: [nowMs, quietMs, group, ttlMs, resolvedReason] })),
        tripOptions,
      );
      // A group another instance resolved first, or that got a detection meanwhile, replies false.
      return replies.flatMap((reply) => (!reply.ok || typeof reply.value !== 'string' ? [] : [alertFromFields(reply.value, resolvedReason)]));
    },

    async unsent(beforeMs) {
      let recorded: Record<string, string>;
      try {
        recorded = await redis.hgetall(keys.unsent);
      } catch (error) {
        throw new StoreUnavailableError('redis', `alert state unavailable (${errorMessage(error)})`, error);
      }
      const found: UnsentChange[] = [];
      for (const value of Object.values(recorded)) {
        const parsed = unsentRecord.safeParse(safeJson(value));
        // Written by our own script: a record that does not parse is a bug, not worth a jam.
        if (!parsed.success || parsed.data.at > beforeMs) continue;
        const { kind, fields, reason, at } = parsed.data;
        found.push({ change: { kind, alert: alertFromFields(fields, reason) }, at });
      }
      // Oldest first; within one alert, by revision: the order the changes happened in.
      return found.sort((a, b) => a.at - b.at || a.change.alert.revision - b.change.alert.revision);
    },

    async markSent(changes) {
      if (changes.length === 0) return;
      try {
        await redis.hdel(keys.unsent, ...changes.map(changeIdOf));
      } catch (error) {
        throw new StoreUnavailableError('redis', `alert state unavailable (${errorMessage(error)})`, error);
      }
    },
  };
}
