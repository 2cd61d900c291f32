/**
 * The event-time low watermark of the other instances of a consumer group, shared through Redis.
 *
 * Each instance's {@link EventTimeAligner} aligns the partitions it holds. A rule whose key is not
 * the partition key (the surge rules, per endpoint) is fed by every partition of its topic, which
 * several instances hold: reading a backlog, one instance could run minutes of event time ahead of
 * another, close an endpoint's minute, and find the other's events of it too late. So every
 * instance writes its own low watermark (the event time of the next message its partitions have
 * yet to hand on, over those that count) into one Redis hash, field = member, every `intervalMs`,
 * and reads the others'. The aligner then lets a partition go only within the skew of the lowest
 * of them too: the group moves through a backlog as one consumer would.
 *
 * Liveness: an instance that has read everything (live, caught up) writes `inf` and holds nobody
 * back; a field not written for `ttlMs` (a stopped or crashed instance) no longer counts and is
 * removed, so a dead instance holds the others for at most that long (its partitions move to a
 * live one at the next rebalance anyway). Fields carry the writer's wall clock: the instances'
 * clocks must agree within a fraction of `ttlMs` (NTP). If Redis does not answer, the last value
 * read stands (the rules, on the same Redis, stop the pipeline then anyway).
 */
import type { Logger } from '../logger';

/** What the shared watermark needs of Redis (ioredis's client and cluster client both have it). */
export interface WatermarkStore {
  hset(key: string, field: string, value: string): Promise<unknown>;
  hgetall(key: string): Promise<Record<string, string>>;
  hdel(key: string, ...fields: string[]): Promise<unknown>;
  pexpire(key: string, milliseconds: number): Promise<unknown>;
}

/** Options of {@link SharedWatermark}. */
export interface SharedWatermarkOptions {
  store: WatermarkStore;
  /** The hash, one per consumer group. */
  key: string;
  /** This instance's field: unique per running instance. */
  member: string;
  /** This instance's own low watermark, written at every sync. */
  local: () => number;
  /** Called when the others' low watermark changed. */
  onChange: () => void;
  /** How often to write and read. @defaultValue 100 */
  intervalMs?: number;
  /** A field older than this (wall clock) no longer counts. @defaultValue 10000 */
  ttlMs?: number;
  logger?: Logger;
  /** @defaultValue Date.now */
  now?: () => number;
}

/** How long {@link SharedWatermark.stop} waits for Redis to remove this instance's field. */
const STOP_WAIT_MS = 1000;

/** A watermark as written: a number of ms, or `inf` / `-inf`. */
const encode = (low: number): string => (low === Infinity ? 'inf' : low === -Infinity ? '-inf' : String(Math.floor(low)));

function decode(text: string): { low: number; at: number } | undefined {
  const [lowText, atText] = text.split('|');
  const low = lowText === 'inf' ? Infinity : lowText === '-inf' ? -Infinity : Number(lowText);
  const at = Number(atText);
  return Number.isNaN(low) || !Number.isFinite(at) ? undefined : { low, at };
}

/** See the module comment. */
export class SharedWatermark {
  private othersLow = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private failing = false;
  private readonly intervalMs: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(private readonly options: SharedWatermarkOptions) {
    this.intervalMs = options.intervalMs ?? 100;
    this.ttlMs = options.ttlMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** The lowest watermark of the other live instances; `Infinity` when none holds anything back. */
  low(): number {
    return this.othersLow;
  }

  /** Syncs once (so the first chunk already sees the others), then every `intervalMs`. */
  async start(): Promise<void> {
    await this.sync();
    this.timer ??= setInterval(() => void this.sync(), this.intervalMs);
    this.timer.unref();
  }

  /**
   * Stops syncing and removes this instance's field, so nobody waits for it. Waits at most
   * `STOP_WAIT_MS` for Redis: a Redis that does not answer must not hold up a shutdown (the field
   * then expires after `ttlMs`).
   */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    let timeout: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<void>((resolve) => {
      timeout = setTimeout(resolve, STOP_WAIT_MS);
    });
    const removed = (async (): Promise<void> => {
      await this.syncing;
      await this.options.store.hdel(this.options.key, this.options.member);
    })().catch(() => undefined);
    await Promise.race([removed, gaveUp]);
    clearTimeout(timeout);
  }

  /** Writes this instance's watermark and reads the others'; one at a time. */
  sync(): Promise<void> {
    this.syncing ??= this.syncOnce().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    const { store, key, member } = this.options;
    const now = this.now();
    try {
      // One round trip: the three go out together, and Redis runs them in order on the connection,
      // so the read sees this write. The hash outlives no instance by long: each write renews it.
      const [, , fields] = await Promise.all([
        store.hset(key, member, `${encode(this.options.local())}|${now}`),
        store.pexpire(key, this.ttlMs * 6),
        store.hgetall(key),
      ]);
      let low = Infinity;
      const stale: string[] = [];
      for (const [field, text] of Object.entries(fields)) {
        if (field === member) continue;
        const entry = decode(text);
        if (entry === undefined || now - entry.at > this.ttlMs) stale.push(field);
        else if (entry.low < low) low = entry.low;
      }
      if (stale.length > 0) await store.hdel(key, ...stale);
      this.failing = false;
      if (low !== this.othersLow) {
        this.othersLow = low;
        this.options.onChange();
      }
    } catch (error) {
      if (!this.failing) this.options.logger?.warn({ err: error, key }, 'event-time alignment: the instances\' shared watermark could not be synced; the last one read stands');
      this.failing = true;
    }
  }
}
