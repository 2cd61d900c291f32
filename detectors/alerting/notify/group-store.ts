import type { RedisClient } from '../../../platform';
import { StoreUnavailableError, ValidationError, errorMessage, scanKeys } from '../../../platform';
import { defineScripts, groupKeys, roundTrip } from '../../state';
import { groupStateSchema, type GroupState } from './grouping';

/** A state as read, with the version a write must name. */
export interface StoredGroup {
  version: number;
  state: GroupState;
}

/** One compare-and-set write of a grouping state. */
export interface GroupWrite {
  /** The version read (0 when there was no state). */
  version: number;
  state: GroupState;
  /** When the state is next due, or null when never. */
  dueAt: number | null;
  /** How long the state is kept after this write. */
  ttlMs: number;
}

/**
 * Where the notifier keeps grouping state: per (destination, alert), versioned, with an index
 * of due work per destination. Writes are compare-and-set, so several notifier instances may
 * share it (docs/alerting.md#notification-grouping).
 */
export interface GroupStore {
  /** The states of some incidents at one destination, in order (undefined: none). */
  read(destination: string, alertIds: readonly string[]): Promise<(StoredGroup | undefined)[]>;
  /** Writes states; per write, whether it was stored (false: someone wrote since it was read). */
  swap(writes: readonly GroupWrite[]): Promise<boolean[]>;
  /** Alert ids at one destination due at `now` or before, soonest first, at most `limit`. */
  due(destination: string, now: number, limit: number): Promise<string[]>;
  /** Drops an alert id from a destination's due index (its state expired). */
  forget(destination: string, alertId: string): Promise<void>;
  /**
   * Per destination name with work in the index, how many incidents wait there: names no longer
   * configured are found this way (their notifications are sent by nobody).
   */
  waiting(): Promise<Map<string, number>>;
}

function parseStored(destination: string, alertId: string, version: string | null, json: string | null): StoredGroup | undefined {
  if (version === null || json === null) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new ValidationError('invalid notification grouping state', [`${destination}/${alertId}: not JSON`], 'grouping_state_invalid');
  }
  const parsed = groupStateSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ValidationError(
      'invalid notification grouping state',
      parsed.error.issues.map((issue) => `${destination}/${alertId}.${issue.path.join('.')}: ${issue.message}`),
      'grouping_state_invalid',
    );
  }
  return { version: Number(version), state: parsed.data };
}

/**
 * The grouping store in Redis (layout in docs/alerting.md#notification-grouping): per destination
 * `<prefix>:notify:{group:<name>}:state:<alertId>` (hash: `v` version, `s` state JSON) and
 * `<prefix>:notify:{group:<name>}:due` (sorted set of alert ids by due time). Writes go through
 * the groupSwap-2 script; a chunk's reads and writes are one round trip each.
 */
export function createGroupStore(redis: RedisClient, prefix: string): GroupStore {
  defineScripts(redis);
  const unavailable = (error: unknown): StoreUnavailableError =>
    error instanceof StoreUnavailableError ? error : new StoreUnavailableError('redis', `notification grouping: ${errorMessage(error)}`, error);
  return {
    async read(destination, alertIds) {
      if (alertIds.length === 0) return [];
      const keys = groupKeys(prefix, destination);
      let replies: [Error | null, unknown][] | null;
      try {
        const pipeline = redis.pipeline();
        for (const alertId of alertIds) pipeline.hmget(keys.state(alertId), 'v', 's');
        replies = await pipeline.exec();
      } catch (error) {
        throw unavailable(error);
      }
      return alertIds.map((alertId, position) => {
        const [error, value] = replies?.[position] ?? [new Error('no reply'), null];
        if (error) throw unavailable(error);
        const [version, json] = value as [string | null, string | null];
        return parseStored(destination, alertId, version, json);
      });
    },
    async swap(writes) {
      if (writes.length === 0) return [];
      const replies = await roundTrip(
        redis,
        writes.map((write) => {
          const keys = groupKeys(prefix, write.state.destination);
          return {
            script: 'groupSwap' as const,
            keys: [keys.state(write.state.alertId), keys.due],
            args: [write.version, JSON.stringify(write.state), write.dueAt === null ? '' : Math.max(0, Math.round(write.dueAt)), write.state.alertId, Math.max(1, Math.round(write.ttlMs))],
          };
        }),
        { operation: 'notification grouping' },
      );
      return replies.map((reply) => {
        if (!reply.ok) throw unavailable(reply.error);
        return Number(reply.value) > 0;
      });
    },
    async due(destination, now, limit) {
      try {
        return await redis.zrangebyscore(groupKeys(prefix, destination).due, '-inf', Math.round(now), 'LIMIT', 0, limit);
      } catch (error) {
        throw unavailable(error);
      }
    },
    async forget(destination, alertId) {
      try {
        await redis.zrem(groupKeys(prefix, destination).due, alertId);
      } catch (error) {
        throw unavailable(error);
      }
    },
    async waiting() {
      const pattern = groupKeys(prefix, '*').due;
      const [head = '', tail = ''] = pattern.split('*');
      try {
        // Asked together, not one round trip per destination (separate commands: on a Redis
        // Cluster the keys may be on different nodes).
        const keys = await scanKeys(redis, pattern);
        const counts = await Promise.all(keys.map((key) => redis.zcard(key)));
        const found = new Map<string, number>();
        keys.forEach((key, position) => {
          const count = counts[position] ?? 0;
          if (count > 0) found.set(key.slice(head.length, key.length - tail.length), count);
        });
        return found;
      } catch (error) {
        throw unavailable(error);
      }
    },
  };
}

/**
 * The incidents waiting at destinations that are not configured (renamed or removed): nobody
 * sends them. Per name, how many; empty when there are none.
 */
export async function unconfiguredWaiting(store: GroupStore, configured: readonly { name: string }[]): Promise<Record<string, number>> {
  const names = new Set(configured.map((destination) => destination.name));
  return Object.fromEntries([...(await store.waiting())].filter(([name]) => !names.has(name)).sort(([left], [right]) => left.localeCompare(right)));
}

/** A grouping store in memory, with the same compare-and-set semantics: for one process (tests, a CLI run). */
export function createMemoryGroupStore(): GroupStore {
  const states = new Map<string, { version: number; json: string }>();
  const dues = new Map<string, Map<string, number>>();
  const id = (destination: string, alertId: string): string => `${destination}\u0000${alertId}`;
  return {
    read(destination, alertIds) {
      return Promise.resolve(
        alertIds.map((alertId) => {
          const stored = states.get(id(destination, alertId));
          return stored === undefined ? undefined : parseStored(destination, alertId, String(stored.version), stored.json);
        }),
      );
    },
    swap(writes) {
      return Promise.resolve(
        writes.map((write) => {
          const key = id(write.state.destination, write.state.alertId);
          const current = states.get(key)?.version ?? 0;
          if (current !== write.version) return false;
          states.set(key, { version: current + 1, json: JSON.stringify(write.state) });
          const due = dues.get(write.state.destination) ?? new Map<string, number>();
          dues.set(write.state.destination, due);
          if (write.dueAt === null) due.delete(write.state.alertId);
          else due.set(write.state.alertId, write.dueAt);
          return true;
        }),
      );
    },
    due(destination, now, limit) {
      const due = [...(dues.get(destination) ?? new Map<string, number>()).entries()].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1]);
      return Promise.resolve(due.slice(0, limit).map(([alertId]) => alertId));
    },
    forget(destination, alertId) {
      dues.get(destination)?.delete(alertId);
      return Promise.resolve();
    },
    waiting() {
      return Promise.resolve(new Map([...dues].filter(([, due]) => due.size > 0).map(([destination, due]) => [destination, due.size])));
    },
  };
}
