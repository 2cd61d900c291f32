import { errorMessage } from '../errors';
import type { Logger } from '../logger';
import { partitionKey } from './event-time-alignment';

/** A partition's offset to commit: the next message to read. */
export interface PartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

/** One partition's latest offset waiting for a request, and who waits on it. */
interface Waiting {
  offset: PartitionOffset;
  /** Asked just before the request: false drops the offset (its partition was assigned again since). */
  current: () => boolean;
  settle: ((committed: boolean) => void)[];
}

/** Whether a waiting offset is still to be committed; a `current` that throws counts as no. */
function isCurrent(waiting: Waiting): boolean {
  try {
    return waiting.current();
  } catch {
    return false;
  }
}

/**
 * Group commit of consumer offsets: while one commit request is out, each partition's newest
 * offset waits, and the offsets of every partition that waited go together in the next request
 * (as the bulk indexer shares its requests). A partition's offsets only grow, so a newer one
 * replaces the one waiting, and requests go one at a time, in order.
 *
 * Each commit is a request the broker writes to its offsets log. With event-time alignment the
 * chunks are small (tens of events): a 30,000-event backlog took 548 commit requests, one per
 * chunk, each waited for before the partition's next chunk; 187 grouped (docs/performance.md).
 */
export class OffsetCommits {
  private readonly waiting = new Map<string, Waiting>();
  private sending: Promise<void> | undefined;
  private stopping = false;

  constructor(
    private readonly send: (offsets: readonly PartitionOffset[]) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  /**
   * Queues a partition's offset. Resolves `true` once it, or a later offset of the partition, is
   * committed; `false` when its request failed (the partition's next commit covers it, and a
   * restart before that redoes the chunk) or `current` said it was no longer current.
   */
  commit(offset: PartitionOffset, current: () => boolean): Promise<boolean> {
    const key = partitionKey(offset.topic, offset.partition);
    return new Promise<boolean>((resolve) => {
      const waiting = this.waiting.get(key);
      if (waiting === undefined) this.waiting.set(key, { offset, current, settle: [resolve] });
      else {
        // An offset of an earlier assignment is not covered by this one: it is answered as dropped.
        if (!isCurrent(waiting)) {
          for (const settle of waiting.settle) settle(false);
          waiting.settle = [];
        }
        waiting.offset = offset;
        waiting.current = current;
        waiting.settle.push(resolve);
      }
      this.sending ??= this.pump();
    });
  }

  /**
   * The consumer is stopping: what waits still goes, but once a request fails nothing more is
   * tried (each could spend kafkajs's retries again on the same coordinator, past the shutdown
   * deadline); the chunks whose commits are dropped are redone at the next start.
   */
  stop(): void {
    this.stopping = true;
  }

  /** Resolves once nothing waits and no request is out. */
  async idle(): Promise<void> {
    while (this.sending !== undefined) await this.sending;
  }

  private async pump(): Promise<void> {
    try {
      // One turn first: the offsets queued in the same turn (a fetch's partitions finishing
      // together) share the first request too.
      await Promise.resolve();
      while (this.waiting.size > 0) {
        const taken = [...this.waiting.values()];
        this.waiting.clear();
        const kept: Waiting[] = [];
        for (const waiting of taken) {
          if (isCurrent(waiting)) kept.push(waiting);
          else for (const settle of waiting.settle) settle(false);
        }
        if (kept.length === 0) continue;
        const offsets = kept.map((waiting) => waiting.offset);
        let committed = true;
        try {
          await this.send(offsets);
        } catch (error) {
          committed = false;
          this.logger.warn({ err: error, offsets }, `committing offsets failed; each partition's next commit covers it: ${errorMessage(error)}`);
        }
        for (const waiting of kept) for (const settle of waiting.settle) settle(committed);
        if (!committed && this.stopping) {
          for (const waiting of this.waiting.values()) for (const settle of waiting.settle) settle(false);
          this.waiting.clear();
        }
      }
    } finally {
      this.sending = undefined;
    }
  }
}
