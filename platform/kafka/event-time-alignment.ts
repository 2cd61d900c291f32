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
 * Liveness, as Flink's `withIdleness`: a partition that has read everything it was given (its
 * last batch reached the high watermark) holds nobody back; neither does one that made no
 * progress for `idleMs` (a partition paused by a store outage, or assigned but never fetched,
 * such as an empty one); a partition whose batch is in hand is not idle, however long it takes.
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
}

interface PartitionState {
  /**
   * Event time (ms) of the next message the partition has yet to hand on; after its last batch,
   * the last one handed on. Undefined: assigned but never seen.
   */
  head: number | undefined;
  /** Its last batch was read up to the high watermark: nothing more to wait for. */
  caughtUp: boolean;
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
      for (const partition of partitions) this.partitions.set(partitionKey(topic, partition), { head: undefined, caughtUp: false, activeAt: now, resume: undefined, inHand: false });
    }
  }

  /** A batch arrived: `head` is the event time of its first message, if it has one. */
  seen(key: string, head: number | undefined): void {
    const state = this.state(key);
    state.activeAt = this.now();
    state.caughtUp = false;
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
  advanced(key: string, position: { next?: number; last?: number; caughtUp: boolean }): void {
    const state = this.state(key);
    state.activeAt = this.now();
    const head = position.next ?? position.last;
    if (head !== undefined) state.head = state.head === undefined ? head : Math.max(state.head, head);
    state.caughtUp = position.caughtUp;
    this.recheck();
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
    return this.lowOfPartitions(undefined);
  }

  /** The partition runs ahead: `pause` pauses it and returns its resume, called once the others caught up. */
  hold(key: string, head: number, pause: () => () => void): void {
    const state = this.state(key);
    state.head = head;
    state.caughtUp = false;
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
    return { holds: this.holds, waits: this.waits, held, partitions: this.partitions.size };
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
      if (state.resume === undefined && (state.caughtUp || (!state.inHand && now - state.activeAt >= this.options.idleMs))) continue;
      if (state.head === undefined) return -Infinity;
      if (state.head < low) low = state.head;
    }
    return low;
  }

  private state(key: string): PartitionState {
    let state = this.partitions.get(key);
    if (state === undefined) {
      state = { head: undefined, caughtUp: false, activeAt: this.now(), resume: undefined, inHand: false };
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
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
