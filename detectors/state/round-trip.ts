import { performance } from 'node:perf_hooks';
import { ReplyError, type Redis } from 'ioredis';
import { StoreUnavailableError, errorMessage, type Instrumentation } from '../../platform';
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
 * Sends every call in one pipeline: one Redis round trip. Scripts must be registered on the
 * client (`defineScripts`). No calls, no trip.
 * @returns one {@link CallReply} per call, in order
 * @throws StoreUnavailableError when Redis could not be reached (the pipeline failed or was
 *   aborted, or a call failed with anything but a reply from Redis): retriable, with the cause
 */
export async function roundTrip(redis: Redis, calls: readonly StateCall[], options: RoundTripOptions): Promise<CallReply[]> {
  if (calls.length === 0) return [];
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
      const [error, value] = replies[index] ?? [new Error(`no reply for call ${index + 1}`), null];
      // ioredis resolves a pipeline whose connection failed with an error per command. A
      // script's own error is a ReplyError from Redis; anything else means Redis was not reached.
      if (error === null) result[index] = { ok: true, value };
      else if (error instanceof ReplyError) result[index] = { ok: false, error };
      else throw unavailable(options.operation, error);
    }
    reached = true;
    return result;
  } finally {
    options.events?.emit('state.round_trip', { operation: options.operation, commands: calls.length, durationMs: performance.now() - started, reached });
  }
}

function unavailable(operation: string, cause: unknown): StoreUnavailableError {
  return new StoreUnavailableError('redis', `${operation} unavailable (${errorMessage(cause)})`, cause);
}
