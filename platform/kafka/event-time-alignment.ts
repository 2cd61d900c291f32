/**
 * Event-time alignment across the partitions one consumer holds (every topic of its group).
 *
 * Without it, each partition is read as fast as it goes: on a backlog, a small topic (device
 * events) is read minutes of event time ahead of a large one (policy decisions), and the rules
 * that combine families see one user's events out of order. With it, a partition may hand on
 * only the messages whose event time is at most `maxSkewMs` past the low watermark of the other
 * partitions (the event time of the next message each of them has yet to hand on). A partition
 * whose next message is further ahead is paused (kafkajs pause/resume: nothing is held in memory,
 * the messages are fetched again on resume) until the others catch up.
 *
 * Liveness, as Flink's `withIdleness`: a partition that has read everything there is (its last
 * batch reached the high watermark, and Kafka confirmed it has nothing more) holds nobody back;
 * neither does one that made no progress for `idleMs` (a partition paused by a store outage, or
 * assigned but never fetched, such as an empty one); a partition whose batch is in hand is not
 * idle, however long it takes.
 *
 * Why "confirmed": a batch reaching the high watermark says only that the partition had nothing
 * more when it was fetched. Partitions are separate logs: one produce request appends to them one
 * after the other, and several producers write at their own pace, so a fetch can find one
 * partition minutes of event time further along than another, whose next events are still being
 * written. Taking "caught up" at its word let the first run ahead, and the other's events then
 * reached the stateful rules after the lateness had closed their buckets (a Kong endpoint flood
 * missed this way, docs/event-time.md). So when a partition would run ahead of one that claims to
 * be caught up, the claim is checked first with Kafka's latest offsets (`confirm`, one request,
 * no fetch): a partition with more to read holds the others back until it has read it.
 *
 * A partition that may not go yet waits with its batch in hand while the partition furthest
 * behind has its batch in hand too (it will move the watermark without a fetch); otherwise it
 * is paused, since kafkajs fetches again only when every batch of its last fetch is done with. A partition the aligner paused is never idle: its next event time is
 * known, and the smallest one is always allowed to go, so every pause ends.
 *
 * With several instances, each aligns the partitions it holds, and with `shared` (the other
 * instances' low watermark, see shared-watermark.ts) none runs more than the skew ahead of the
 * others either.
 */

import type { Admin, Kafka } from 'kafkajs';

/** Options of {@link EventTimeAligner}. */
export interface EventTimeAlignmentOptions {
  /** How far (event time, ms) a partition may run ahead of the slowest partition that has data. */
  maxSkewMs: number;
  /** After this long (wall clock, ms) without progress, a partition holds nobody back. */
  idleMs: number;
  /** @defaultValue Date.now */
  now?: () => number;
  /** The low watermark of the group's other instances; {@link EventTimeAligner.refresh} when it changes. */
  shared?: { low(): number };
  /**
   * Kafka's latest offset (the high watermark) of each partition named by its key: how a
   * partition's claim to be caught up is checked before another runs ahead of it. Without it, the
   * claim is taken at its word (see the module comment for what that risks).
   */
  confirm?: (keys: readonly string[]) => Promise<ReadonlyMap<string, string>>;
}

/** Counters of an aligner, since it was created. */
export interface AlignmentStats {
  /** Times a partition was paused because it ran ahead. */
  holds: number;
  /** Times a batch waited in hand for the others to catch up (no pause, no fetch). */
  waits: number;
  /** Partitions paused right now. */
  held: number;
  /** Partitions known (assigned, or seen in a batch). */
  partitions: number;
  /** Claims to be caught up checked against Kafka's latest offsets, and how many had more to read. */
  checks: number;
  withdrawn: number;
}

/** A partition's claim to be caught up (its last batch reached the high watermark). */
interface CaughtUpClaim {
  /** The offset after the last message it handed on. */
  end: bigint | undefined;
  /**
   * `confirmed`: Kafka's latest offset says it holds (or there is no way to check it); `pending`:
   * being checked; `failed`: the check failed, and idleness alone frees the others.
   */
  status: 'unchecked' | 'pending' | 'confirmed' | 'failed';
}

interface PartitionState {
  /**
   * Event time (ms) of the next message the partition has yet to hand on; after its last batch,
   * the last one handed on. Undefined: assigned but never seen.
   */
  head: number | undefined;
  /** Its last batch was read up to the high watermark: nothing more to wait for, once confirmed. */
  claim: CaughtUpClaim | undefined;
  /** Wall clock (ms) of its last batch or chunk. */
  activeAt: number;
  /** Set while the aligner holds it paused: resumes it. */
  resume: (() => void) | undefined;
  /**
   * Its batch is in the runner's hands (a chunk being handled, or waiting for the others): it
   * can move without a fetch, and it is never idle, however slow the stores are.
   */
  inHand: boolean;
}

/** A topic partition's key, as the runner and the aligner name it. */
export const partitionKey = (topic: string, partition: number): string => `${topic}:${partition}`;

/** See the module comment. One per consumer; the partition runner calls it. */
export class EventTimeAligner {
  private readonly partitions = new Map<string, PartitionState>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private holds = 0;
  private waits = 0;
  /** Woken at every change of a partition's position (see {@link changed}). */
  private waiters: (() => void)[] = [];
  private checks = 0;
  private withdrawn = 0;

  constructor(private readonly options: EventTimeAlignmentOptions) {
    if (!(options.maxSkewMs >= 0)) throw new RangeError(`maxSkewMs must be 0 or more, got ${options.maxSkewMs}`);
    if (!(options.idleMs > 0)) throw new RangeError(`idleMs must be more than 0, got ${options.idleMs}`);
    this.now = options.now ?? Date.now;
  }

  /**
   * A new assignment (after a rebalance): what was known is forgotten, held partitions are
   * resumed (kafkajs fetches them again from their committed offsets), and each assigned
   * partition holds the others back until it is seen or idle.
   */
  assign(assignment: Readonly<Record<string, readonly number[]>>): void {
    this.release();
    const now = this.now();
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) this.partitions.set(partitionKey(topic, partition), this.fresh(now));
    }
  }

  /** A batch arrived: `head` is the event time of its first message, if it has one. */
  seen(key: string, head: number | undefined): void {
    const state = this.state(key);
    state.activeAt = this.now();
    state.claim = undefined;
    state.inHand = true;
    if (head !== undefined) state.head = head;
  }

  /**
   * How many of a partition's next messages (their event times, in partition order) may be
   * handed on now: those up to the first beyond the others' low watermark plus the skew. A
   * message without an event time never waits.
   */
  admit(key: string, times: readonly (number | undefined)[]): number {
    const limit = this.limitOf(key);
    let count = 0;
    for (const time of times) {
      if (time !== undefined && time > limit) break;
      count++;
    }
    // Held back: if a partition claiming to be caught up is what holds it, check the claim.
    if (count < times.length) this.checkClaims();
    return count;
  }

  /**
   * The partition's batch is done with, however it ended (read, held, or failed on a store
   * that pushed back and paused by the runner): it is idle after `idleMs` unless it goes on.
   */
  left(key: string): void {
    const state = this.partitions.get(key);
    if (state === undefined || !state.inHand) return;
    state.inHand = false;
    this.recheck();
  }

  /**
   * Whether a partition that may not go yet can wait for {@link changed} with its batch in hand,
   * rather than be paused and fetched again: yes while the partition furthest behind (the one
   * that can always go) has its batch in hand too, so the watermark will move without a fetch.
   * Otherwise that partition needs a fetch, and kafkajs fetches only once every batch of the
   * last fetch is done with: the waiting one must let go.
   */
  canWait(key: string): boolean {
    const low = this.lowWatermark(key);
    if (!Number.isFinite(low)) return false;
    for (const [other, state] of this.partitions) if (other !== key && state.inHand && state.head === low) return true;
    // A claim to be caught up being checked settles without a fetch too.
    for (const [other, state] of this.partitions) if (other !== key && state.claim?.status === 'pending' && state.head === low) return true;
    return false;
  }

  /** Resolves at the next change of any partition's position (or when the aligner closes). */
  changed(): Promise<void> {
    this.waits++;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * A chunk was handed on. `next` is the event time of the partition's next message when the
   * batch holds one, else `last` (the chunk's latest) stands in for it; `caughtUp` when the
   * batch is done and reached the high watermark.
   */
  advanced(key: string, position: { next?: number; last?: number; caughtUp: boolean; end?: string }): void {
    const state = this.state(key);
    state.activeAt = this.now();
    const head = position.next ?? position.last;
    if (head !== undefined) state.head = state.head === undefined ? head : Math.max(state.head, head);
    state.claim = undefined;
    if (position.caughtUp) {
      const end = position.end !== undefined && /^\d+$/.test(position.end) ? BigInt(position.end) : undefined;
      // Nothing to check it with (no `confirm`, or no offset): taken at its word.
      state.claim = { end, status: this.options.confirm === undefined || end === undefined ? 'confirmed' : 'unchecked' };
    }
    this.recheck();
  }

  /**
   * Checks, in one request, every claim to be caught up not checked yet. A claim Kafka confirms
   * stops holding the others back; a partition with more to read is no longer caught up, and holds
   * them back until its next batch. A failed check leaves the claim to idleness.
   */
  private checkClaims(): void {
    const confirm = this.options.confirm;
    if (confirm === undefined) return;
    const claims: [string, PartitionState, CaughtUpClaim][] = [];
    for (const [key, state] of this.partitions) if (state.claim?.status === 'unchecked' && state.resume === undefined) claims.push([key, state, state.claim]);
    if (claims.length === 0) return;
    for (const [, , claim] of claims) claim.status = 'pending';
    this.checks += claims.length;
    const settle = (latest: ReadonlyMap<string, string> | undefined): void => {
      for (const [key, state, claim] of claims) {
        // Still the same claim (a batch or a new assignment since replaces it).
        if (state.claim !== claim) continue;
        const offset = latest?.get(key);
        if (offset === undefined || !/^\d+$/.test(offset) || claim.end === undefined) {
          claim.status = 'failed';
        } else if (BigInt(offset) <= claim.end) {
          claim.status = 'confirmed';
        } else {
          this.withdrawn++;
          state.claim = undefined;
        }
      }
      this.recheck();
    };
    confirm(claims.map(([key]) => key)).then(settle, () => settle(undefined));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** The other instances' watermark changed: resume the partitions it held, wake the waiting ones. */
  refresh(): void {
    this.recheck();
  }

  /**
   * This instance's own low watermark, for the others: the least next event time of its
   * partitions that count (see {@link lowWatermark}), whatever the other instances hold.
   */
  localLow(): number {
    // Another instance may be held by a claim here: settle it (see checkClaims).
    this.checkClaims();
    return this.lowOfPartitions(undefined);
  }

  /** The partition runs ahead: `pause` pauses it and returns its resume, called once the others caught up. */
  hold(key: string, head: number, pause: () => () => void): void {
    const state = this.state(key);
    state.head = head;
    state.claim = undefined;
    state.inHand = false;
    state.resume = pause();
    this.holds++;
    this.timer ??= setInterval(() => this.recheck(), Math.max(20, Math.min(1000, Math.floor(this.options.idleMs / 4))));
    this.timer.unref();
    this.recheck();
  }

  /** Resumes every held partition, forgets every partition and stops the idleness timer. */
  private release(): void {
    for (const state of this.partitions.values()) {
      const resume = state.resume;
      state.resume = undefined;
      resume?.();
    }
    this.partitions.clear();
    this.stopTimer();
    this.wake();
  }

  /** Stops the idleness timer and holds nothing more (when the consumer stops; no partition is resumed). */
  close(): void {
    for (const state of this.partitions.values()) state.resume = undefined;
    this.stopTimer();
    this.wake();
  }

  stats(): AlignmentStats {
    let held = 0;
    for (const state of this.partitions.values()) if (state.resume) held++;
    return { holds: this.holds, waits: this.waits, held, partitions: this.partitions.size, checks: this.checks, withdrawn: this.withdrawn };
  }

  /**
   * The least next event time among the partitions other than `except` that have data and are
   * not idle: -Infinity while one of them was never seen, +Infinity when none counts.
   */
  lowWatermark(except: string): number {
    const local = this.lowOfPartitions(except);
    const shared = this.options.shared?.low() ?? Infinity;
    return shared < local ? shared : local;
  }

  private lowOfPartitions(except: string | undefined): number {
    const now = this.now();
    let low = Infinity;
    for (const [key, state] of this.partitions) {
      if (key === except) continue;
      if (state.resume === undefined && (state.claim?.status === 'confirmed' || (!state.inHand && now - state.activeAt >= this.options.idleMs))) continue;
      if (state.head === undefined) return -Infinity;
      if (state.head < low) low = state.head;
    }
    return low;
  }

  private fresh(now: number): PartitionState {
    return { head: undefined, claim: undefined, activeAt: now, resume: undefined, inHand: false };
  }

  private state(key: string): PartitionState {
    let state = this.partitions.get(key);
    if (state === undefined) {
      state = this.fresh(this.now());
      this.partitions.set(key, state);
    }
    return state;
  }

  /**
   * The latest event time a partition may hand on: the end of the skew-long period (aligned to
   * multiples of `maxSkewMs`: clock minutes at the default 60 s) that the others' low watermark
   * is in. So a partition is never more than the skew ahead, and none hands on an event of the
   * next period while another still has events of this one: a rule bucketing by that period (the
   * surge rules' one-minute buckets) sees each bucket whole before the next one starts.
   */
  private limitOf(key: string): number {
    const low = this.lowWatermark(key);
    const skew = this.options.maxSkewMs;
    if (skew <= 0 || !Number.isFinite(low)) return low + skew;
    return Math.floor(low / skew) * skew + skew - 1;
  }

  /** Resumes the held partitions that are no longer ahead, and wakes the batches waiting in hand. */
  private recheck(): void {
    this.wake();
    let stillHeld = 0;
    for (const [key, state] of this.partitions) {
      if (state.resume === undefined) continue;
      if ((state.head ?? -Infinity) <= this.limitOf(key)) {
        const resume = state.resume;
        state.resume = undefined;
        state.activeAt = this.now();
        resume();
      } else stillHeld++;
    }
    if (stillHeld === 0) this.stopTimer();
    // A held partition may be held by a claim to be caught up: check it rather than wait for idleness.
    else this.checkClaims();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Kafka's latest offsets of the partitions the aligner names, read with one admin connection. */
export interface LatestOffsets {
  /** The high watermark of each partition (by {@link partitionKey}) Kafka answered for. */
  read(keys: readonly string[]): Promise<ReadonlyMap<string, string>>;
  /** Closes the admin connection, if one was opened. */
  close(): Promise<void>;
}

/**
 * The aligner's `confirm`: an admin client, connected at the first check (a pipeline that never
 * needs one opens none), asking for the latest offsets of each topic named.
 */
export function latestOffsets(kafka: Pick<Kafka, 'admin'>): LatestOffsets {
  let admin: Admin | undefined;
  let connecting: Promise<Admin> | undefined;
  const connected = (): Promise<Admin> =>
    (connecting ??= (async () => {
      const client = kafka.admin();
      admin = client;
      await client.connect();
      return client;
    })().catch((error: unknown) => {
      connecting = undefined;
      throw error;
    }));
  return {
    async read(keys) {
      const byTopic = new Map<string, Set<number>>();
      for (const key of keys) {
        const at = key.lastIndexOf(':');
        const topic = key.slice(0, at);
        const partitions = byTopic.get(topic) ?? new Set<number>();
        partitions.add(Number(key.slice(at + 1)));
        byTopic.set(topic, partitions);
      }
      const client = await connected();
      const latest = new Map<string, string>();
      await Promise.all(
        [...byTopic].map(async ([topic, partitions]) => {
          for (const { partition, high } of await client.fetchTopicOffsets(topic)) if (partitions.has(partition)) latest.set(partitionKey(topic, partition), high);
        }),
      );
      return latest;
    },
    async close() {
      connecting = undefined;
      await admin?.disconnect();
      admin = undefined;
    },
  };
}
