import { performance } from 'node:perf_hooks';
import { ReplyError } from 'ioredis';
import { StoreUnavailableError, errorMessage, execBySlot, hashSlot, isCluster, type Instrumentation, type RedisClient } from '../../platform';
import { queueBatch, queueScript, type ScriptItem, type ScriptName } from './scripts';

/** One script call of a round trip: a single call, or one call of a batch script for many items. */
export type StateCall =
  | { script: ScriptName; keys: readonly string[]; args: readonly (string | number)[] }
  | { script: ScriptName; items: readonly ScriptItem[] };

/**
 * The reply to one call: its value, or the error Redis replied for that call alone (a script
 * error: an ioredis `ReplyError`, typed `Error` since ioredis declares that class `any`). A
 * failed call is data, as in bullmq's `finished-errors`: the other calls stand.
 */
export type CallReply = { ok: true; value: unknown } | { ok: false; error: Error };

/** Options of {@link roundTrip}. */
export interface RoundTripOptions {
  /** Names the trip in events and errors. */
  operation: string;
  /** Where `state.round_trip` is emitted after the trip. @defaultValue none */
  events?: Instrumentation;
  /** Counters whose `roundTrips` is incremented once per trip made. @defaultValue none */
  stats?: { roundTrips: number };
}

/**
 * Sends every call in one round trip. Scripts must be registered on the client (`defineScripts`).
 * No calls, no trip.
 *
 * One Redis: every call in one pipeline. A Redis Cluster: a script call's keys must be in one
 * hash slot, so each batch call is split into one call per slot of its items (see
 * {@link sharesBySlot}), the calls of each node go in one pipeline, and every node's pipeline is
 * sent at once; the replies are put back in the calls' and items' order. It counts as one trip
 * (`stats.roundTrips`), since the nodes answer in parallel.
 * @returns one {@link CallReply} per call, in order
 * @throws StoreUnavailableError when Redis could not be reached (the pipeline failed or was
 *   aborted, or a call failed with anything but a reply from Redis): retriable, with the cause
 * @throws TypeError on a cluster, when one call's (or one item's) keys are in several slots
 */
export async function roundTrip(redis: RedisClient, calls: readonly StateCall[], options: RoundTripOptions): Promise<CallReply[]> {
  if (calls.length === 0) return [];
  if (isCluster(redis)) return clusterTrip(redis, calls, options);
  const pipeline = redis.pipeline();
  for (const call of calls) {
    if ('items' in call) queueBatch(pipeline, call.script, call.items);
    else queueScript(pipeline, call.script, call.keys, call.args);
  }
  if (options.stats) options.stats.roundTrips++;
  const started = performance.now();
  let reached = false;
  try {
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await pipeline.exec();
    } catch (error) {
      throw unavailable(options.operation, error);
    }
    if (replies === null) throw unavailable(options.operation, new Error('pipeline aborted'));
    const result = new Array<CallReply>(calls.length);
    for (let index = 0; index < calls.length; index++) {
      result[index] = callReply(options.operation, replies[index] ?? [new Error(`no reply for call ${index + 1}`), null]);
    }
    reached = true;
    return result;
  } finally {
    options.events?.emit('state.round_trip', { operation: options.operation, commands: calls.length, durationMs: performance.now() - started, reached });
  }
}

/** One reply as data: ioredis resolves a pipeline whose connection failed with an error per command. */
function callReply(operation: string, [error, value]: [Error | null, unknown]): CallReply {
  // A script's own error is a ReplyError from Redis; anything else means Redis was not reached.
  if (error === null) return { ok: true, value };
  if (error instanceof ReplyError) return { ok: false, error };
  throw unavailable(operation, error);
}

/**
 * One script call of a cluster trip: call number `call` whole (a single call), or the items of
 * batch call `call` at the positions `items` (ascending: the items' order is kept), all of whose
 * keys are in hash slot `slot`.
 */
export interface SlotShare {
  call: number;
  slot: number;
  items?: number[];
}

/** The one slot of a set of keys. */
function slotOfKeys(keys: readonly string[], slotOf: (key: string) => number, what: () => string): number {
  const slot = slotOf(keys[0] ?? '');
  for (let index = 1; index < keys.length; index++) {
    if (slotOf(keys[index] ?? '') !== slot) throw new TypeError(`${what()}: keys in several hash slots (${keys.join(', ')}); on a Redis Cluster one script call's keys must share a hash tag`);
  }
  return slot;
}

/**
 * Splits calls into script calls for a Redis Cluster: a single call stays whole (its keys share a
 * hash tag); a batch call becomes one call per hash slot of its items, in the order each slot first
 * appears, each keeping its items' order. Items of one key are in one slot, so they run in order,
 * in one call, as they would on one Redis; items of different slots touch different keys.
 * @throws TypeError when one call's (or one item's) keys are in several slots
 */
export function sharesBySlot(calls: readonly StateCall[], slotOf: (key: string) => number = hashSlot): SlotShare[] {
  const shares: SlotShare[] = [];
  calls.forEach((call, index) => {
    if (!('items' in call)) {
      shares.push({ call: index, slot: slotOfKeys(call.keys, slotOf, () => `${call.script} call`) });
      return;
    }
    const bySlot = new Map<number, number[]>();
    call.items.forEach((item, position) => {
      const slot = slotOfKeys(item.keys, slotOf, () => `${call.script} item ${position + 1}`);
      const items = bySlot.get(slot);
      if (items) items.push(position);
      else bySlot.set(slot, [position]);
    });
    for (const [slot, items] of bySlot) shares.push({ call: index, slot, items });
  });
  return shares;
}

/**
 * Puts the replies of a cluster trip's script calls back into one {@link CallReply} per call. A
 * batch call's items get their replies at their own positions. A share refused whole by Redis
 * (a ReplyError) fails its items only, each with that error in its place; when every share of the
 * call was refused, the call fails, as it would on one Redis.
 * @throws StoreUnavailableError when a share failed with anything but a reply from Redis
 */
export function repliesFromShares(operation: string, calls: readonly StateCall[], shares: readonly SlotShare[], replies: readonly [Error | null, unknown][]): CallReply[] {
  const result = new Array<CallReply>(calls.length);
  const items = new Map<number, { values: unknown[]; failed: Error | undefined; answered: boolean }>();
  shares.forEach((share, index) => {
    const reply = callReply(operation, replies[index] ?? [new Error(`no reply for call ${share.call + 1}`), null]);
    if (share.items === undefined) {
      result[share.call] = reply;
      return;
    }
    const call = calls[share.call];
    const count = call !== undefined && 'items' in call ? call.items.length : 0;
    let entry = items.get(share.call);
    if (!entry) {
      entry = { values: new Array<unknown>(count), failed: undefined, answered: false };
      items.set(share.call, entry);
    }
    if (!reply.ok) {
      entry.failed ??= reply.error;
      for (const position of share.items) entry.values[position] = reply.error;
      return;
    }
    entry.answered = true;
    const values = Array.isArray(reply.value) ? (reply.value as unknown[]) : [];
    share.items.forEach((position, offset) => {
      entry.values[position] = offset < values.length ? values[offset] : new Error(`no reply for item ${position + 1} of call ${share.call + 1}`);
    });
  });
  for (const [call, entry] of items) {
    result[call] = !entry.answered && entry.failed !== undefined ? { ok: false, error: entry.failed } : { ok: true, value: entry.values };
  }
  return result;
}

async function clusterTrip(redis: RedisClient, calls: readonly StateCall[], options: RoundTripOptions): Promise<CallReply[]> {
  const shares = sharesBySlot(calls);
  const groups = shares.map((share) => {
    const call = calls[share.call] as StateCall;
    return {
      slot: share.slot,
      queue: (pipeline: Parameters<typeof queueScript>[0]): void => {
        if (!('items' in call)) queueScript(pipeline, call.script, call.keys, call.args);
        else queueBatch(pipeline, call.script, share.items?.length === call.items.length ? call.items : (share.items ?? []).map((position) => call.items[position] as ScriptItem));
      },
    };
  });
  if (options.stats) options.stats.roundTrips++;
  const started = performance.now();
  let reached = false;
  try {
    let replies: [Error | null, unknown][][];
    try {
      replies = await execBySlot(redis, groups);
    } catch (error) {
      throw unavailable(options.operation, error);
    }
    const result = repliesFromShares(
      options.operation,
      calls,
      shares,
      replies.map((pairs, index) => pairs[0] ?? [new Error(`no reply for call ${(shares[index]?.call ?? 0) + 1}`), null]),
    );
    reached = true;
    return result;
  } finally {
    options.events?.emit('state.round_trip', { operation: options.operation, commands: shares.length, durationMs: performance.now() - started, reached });
  }
}

function unavailable(operation: string, cause: unknown): StoreUnavailableError {
  return new StoreUnavailableError('redis', `${operation} unavailable (${errorMessage(cause)})`, cause);
}
