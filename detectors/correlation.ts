import type { RedisClient } from '../platform';
import { Instrumentation, StoreUnavailableError, sleep } from '../platform';
import type { GeoDocument, VigilEvent } from '../schemas';
import { MAX_BATCH_ITEMS, defineScripts, requestKeys, roundTrip, userKeys, type StateCall } from './state';

/** How long a request's policy decisions wait for its invocation, in wall-clock time, while the pipeline runs: 10 minutes. */
export const DEFAULT_REQUEST_MEMORY_MS = 600_000;

/** Correlated context of an event, addressed in filters as `correlated.*`. */
export interface Correlated {
  request?: {
    /** Policy kind -> outcome, for the policies of the same request seen so far. */
    policies: Record<string, 'pass' | 'fail'>;
    failedPolicies: string[];
    /**
     * The user id the request's authentication pass named; absent when no pass named one, or
     * when passes under this request id named different users (a client may send its own
     * X-Request-Id with many requests). The trust model proves a user by it, never by the id alone.
     */
    authnUser?: string;
  };
  device?: {
    /** The device of the session (else the user's last device). */
    deviceId?: string;
    /** How long the user has had that device, at this event's time. */
    deviceAgeMs?: number;
    country?: string;
    /** Devices the user has been seen with. */
    knownDevices: number;
    fromSession: boolean;
  };
}

/**
 * One event to correlate, with the place enrichment found for it (a device event records it).
 * The ingest pipeline's enrichment has this shape; correlation needs nothing else of it.
 */
export interface CorrelationItem {
  event: VigilEvent;
  enrichment: { geo?: Pick<GeoDocument, 'country_iso_code' | 'city_name'> };
}

/** Options of {@link Correlator}. */
export interface CorrelatorOptions {
  redis: RedisClient;
  /** @defaultValue 'vigil' */
  prefix?: string;
  /**
   * How long an invocation may wait for the policy decisions of its request (they travel on
   * another topic). Never longer: an event is held at most this long after its own time. The
   * wait holds the consumer's whole fetch, so it adds to detection latency for every event.
   * @defaultValue 250 here; the pipeline passes VIGIL_CORRELATION_WAIT_MS (default 0)
   */
  waitMs?: number;
  /** How long devices and sessions are remembered. @defaultValue 30 days */
  deviceMemoryMs?: number;
  /** How long a request's decisions are kept for its invocation. @defaultValue {@link DEFAULT_REQUEST_MEMORY_MS} */
  requestMemoryMs?: number;
  /** @defaultValue Date.now */
  now?: () => number;
  /** Where every Redis round trip is reported (`state.round_trip`). @defaultValue a new emitter, {@link Correlator.events} */
  events?: Instrumentation;
}

/**
 * Correlates the three families in Redis, one round trip per chunk: policy decisions are filed
 * under their request id for the invocation of the same request (one request view); device
 * events record the device and place of the user and session for their later requests. State is
 * shared (any instance sees any partition's events), nothing is held in process memory, and an
 * invocation whose request's decisions have not arrived waits at most `waitMs`.
 */
export class Correlator {
  private readonly prefix: string;
  private readonly waitMs: number;
  private readonly deviceMemoryMs: number;
  private readonly requestMemoryMs: number;
  private readonly now: () => number;
  /** Instrumentation: `state.round_trip` after each Redis round trip. */
  readonly events: Instrumentation;
  /** Invocations that waited for their request's decisions, and those that still found none. */
  readonly stats = { waited: 0, unmatched: 0, roundTrips: 0 };

  constructor(private readonly options: CorrelatorOptions) {
    this.prefix = options.prefix ?? 'vigil';
    this.waitMs = options.waitMs ?? 250;
    this.deviceMemoryMs = options.deviceMemoryMs ?? 30 * 86_400_000;
    this.requestMemoryMs = options.requestMemoryMs ?? DEFAULT_REQUEST_MEMORY_MS;
    this.now = options.now ?? Date.now;
    this.events = options.events ?? new Instrumentation();
    defineScripts(options.redis);
  }

  private requestKeys(requestId: string): [string, string] {
    return requestKeys(this.prefix, requestId);
  }

  private userKeys(userId: string, sessionId: string | undefined): [string, string, string] {
    return userKeys(this.prefix, userId, sessionId);
  }

  /** The correlated context of each event (undefined where there is nothing to correlate). */
  async correlate(items: readonly CorrelationItem[]): Promise<(Correlated | undefined)[]> {
    const results: (Correlated | undefined)[] = items.map(() => undefined);
    const reads: { index: number; kind: 'request' | 'context'; time: number }[] = [];
    const calls: CorrelationCall[] = [];
    const queue = (script: CorrelationScript, keys: string[], args: (string | number)[]): number => calls.push({ script, keys, args }) - 1;
    const replyIndex = new Map<number, number>();
    items.forEach(({ event, enrichment }, index) => {
      const time = Date.parse(event.time);
      const requestId = event.correlation.requestId;
      const userId = event.actor.userId;
      const sessionId = event.correlation.sessionId;
      // Every kind: the event schema admits no other.
      if (event.family === 'policy' && requestId) {
        const passer = event.policy.kind === 'authn' && event.policy.outcome === 'pass' ? (userId ?? '') : '';
        queue('noteRequest', this.requestKeys(requestId), [event.policy.kind, event.policy.outcome, this.requestMemoryMs, passer]);
      }
      if (event.family === 'device' && userId) {
        const deviceId = event.device.deviceId ?? event.device.fingerprint ?? '';
        queue('noteDevice', this.userKeys(userId, sessionId), [
          deviceId,
          time,
          enrichment.geo?.country_iso_code ?? '',
          enrichment.geo?.city_name ?? '',
          this.deviceMemoryMs,
          sessionId ?? '',
        ]);
      }
      if (event.family === 'invocation' && requestId) {
        replyIndex.set(reads.length, queue('readRequest', this.requestKeys(requestId), []));
        reads.push({ index, kind: 'request', time });
      }
      // A rate limit or threat decision naming a user proves it only when the request's
      // authentication was seen to pass (detectors/trust.ts): its request is read too, after its
      // own note. Not waited for when missing: such a decision often comes before authentication.
      if (event.family === 'policy' && requestId && userId && event.policy.kind !== 'authn' && event.policy.kind !== 'authz') {
        replyIndex.set(reads.length, queue('readRequest', this.requestKeys(requestId), []));
        reads.push({ index, kind: 'request', time });
      }
      if (event.family !== 'device' && userId) {
        replyIndex.set(reads.length, queue('readContext', this.userKeys(userId, sessionId), [sessionId ? 1 : 0]));
        reads.push({ index, kind: 'context', time });
      }
    });
    if (calls.length === 0) return results;
    const replies = await this.exec(calls);
    const missing: { index: number; requestId: string; time: number }[] = [];
    reads.forEach((read, position) => {
      const reply = replies[replyIndex.get(position) ?? -1];
      const item = items[read.index];
      if (item === undefined) return;
      const current: Correlated = results[read.index] ?? {};
      if (read.kind === 'request') {
        const request = parseRequest(reply);
        if (request) current.request = request;
        else if (item.event.family === 'invocation') missing.push({ index: read.index, requestId: item.event.correlation.requestId ?? '', time: read.time });
      } else {
        const device = parseContext(reply, read.time);
        if (device) current.device = device;
      }
      results[read.index] = Object.keys(current).length > 0 ? current : undefined;
    });

    // Partners on another topic may be a moment behind: wait for them, boundedly, once.
    const now = this.now();
    const waiting = missing.filter((entry) => now - entry.time < this.waitMs);
    this.stats.unmatched += missing.length - waiting.length;
    if (waiting.length > 0) {
      const youngest = Math.max(...waiting.map((entry) => entry.time));
      await sleep(Math.max(0, Math.min(this.waitMs, youngest + this.waitMs - now)));
      const second = await this.exec(waiting.map((entry) => ({ script: 'readRequest', keys: this.requestKeys(entry.requestId), args: [] })));
      waiting.forEach((entry, position) => {
        this.stats.waited++;
        const request = parseRequest(second[position]);
        if (!request) {
          this.stats.unmatched++;
          return;
        }
        results[entry.index] = { ...(results[entry.index] ?? {}), request };
      });
    }
    return results;
  }

  /**
   * One round trip, the calls put in batch calls ({@link batchCorrelationCalls}); the reply of
   * each call, in order. Correlation has no use for a partial answer, so a script error fails
   * the chunk too.
   */
  private async exec(calls: readonly CorrelationCall[]): Promise<unknown[]> {
    const { batches, at } = batchCorrelationCalls(calls);
    const replies = await roundTrip(this.options.redis, batches, { operation: 'correlation state', events: this.events, stats: this.stats });
    const values = replies.map((reply) => {
      if (!reply.ok) throw new StoreUnavailableError('redis', `correlation: ${reply.error.message}`, reply.error);
      return Array.isArray(reply.value) ? (reply.value as unknown[]) : [];
    });
    return at.map(({ batch, item }) => {
      const value = values[batch]?.[item];
      if (value instanceof Error) throw new StoreUnavailableError('redis', `correlation: ${value.message}`, value);
      return value;
    });
  }
}

/** One correlation script call, for one event. */
export interface CorrelationCall {
  script: CorrelationScript;
  keys: readonly string[];
  args: readonly (string | number)[];
}

/** The correlation scripts: batch scripts, one item per event. */
export type CorrelationScript = 'noteRequest' | 'noteDevice' | 'readRequest' | 'readContext';

/** In a group, the writes go before the reads; each write's keys are read by this script only. */
const GROUP_ORDER: readonly CorrelationScript[] = ['noteRequest', 'noteDevice', 'readRequest', 'readContext'];
const READ_OF: Partial<Record<CorrelationScript, CorrelationScript>> = { noteRequest: 'readRequest', noteDevice: 'readContext' };

/**
 * Puts single correlation calls into batch calls (one command per script instead of one per
 * event: each command costs ioredis an object, a promise and its encoding) with the same
 * outcome as running the calls one by one, in order. The calls are cut into groups, each sent as
 * its writes, then its reads, by script; a write starts a new group when the group already reads
 * its keys (noteRequest's request hashes are read by readRequest only, noteDevice's user hashes
 * by readContext only; the two writes touch different keys). A chunk of one topic (one family)
 * is one group. Each batch holds at most {@link MAX_BATCH_ITEMS} items.
 * @returns the batch calls, and where each call's reply is: batch call `batch`, item `item`
 */
export function batchCorrelationCalls(calls: readonly CorrelationCall[]): { batches: StateCall[]; at: { batch: number; item: number }[] } {
  const batches: StateCall[] = [];
  const at = new Array<{ batch: number; item: number }>(calls.length);
  let group = new Map<CorrelationScript, number[]>();
  const close = (): void => {
    for (const script of GROUP_ORDER) {
      const members = group.get(script);
      if (!members) continue;
      for (let start = 0; start < members.length; start += MAX_BATCH_ITEMS) {
        const slice = members.slice(start, start + MAX_BATCH_ITEMS);
        slice.forEach((call, item) => {
          at[call] = { batch: batches.length, item };
        });
        batches.push({ script, items: slice.map((call) => ({ keys: calls[call]?.keys ?? [], args: calls[call]?.args ?? [] })) });
      }
    }
    group = new Map();
  };
  calls.forEach((call, index) => {
    const read = READ_OF[call.script];
    if (read !== undefined && group.has(read)) close();
    const members = group.get(call.script);
    if (members) members.push(index);
    else group.set(call.script, [index]);
  });
  close();
  return { batches, at };
}

/** readRequest-2's reply: the decisions as a flat list, and the user an authentication pass named. */
function parseRequest(reply: unknown): Correlated['request'] | undefined {
  const [decisions, user] = Array.isArray(reply) ? (reply as unknown[]) : [];
  const flat = Array.isArray(decisions) ? decisions.map(String) : [];
  if (flat.length === 0) return undefined;
  const policies: Record<string, 'pass' | 'fail'> = {};
  for (let index = 0; index + 1 < flat.length; index += 2) policies[flat[index] ?? ''] = flat[index + 1] === 'fail' ? 'fail' : 'pass';
  const failedPolicies = Object.entries(policies).filter(([, outcome]) => outcome === 'fail').map(([kind]) => kind).sort();
  return typeof user === 'string' && user !== '' ? { policies, failedPolicies, authnUser: user } : { policies, failedPolicies };
}

function parseContext(reply: unknown, time: number): Correlated['device'] | undefined {
  const [deviceId, firstSeen, country, known, fromSession] = Array.isArray(reply) ? (reply as unknown[]) : [];
  if (typeof deviceId !== 'string') return undefined;
  return {
    deviceId,
    ...(typeof firstSeen === 'string' ? { deviceAgeMs: Math.max(0, time - Number(firstSeen)) } : {}),
    ...(typeof country === 'string' ? { country } : {}),
    knownDevices: Number(known ?? 0),
    fromSession: Number(fromSession) === 1,
  };
}
