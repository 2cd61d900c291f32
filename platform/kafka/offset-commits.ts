import { errorMessage } from '../errors';
import type { Logger } from '../logger';
import { partitionKey } from './event-time-alignment';

/** A partition's offset to commit: the next message to read. */
export interface PartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

/** One partition's latest offset waiting for a request. */
interface Waiting {
  offset: PartitionOffset;
  /** Asked just before the request: false drops the offset (its partition was assigned again since). */
  current: () => boolean;
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
 *
 * Nobody waits on a commit: a failed or dropped one is covered by the partition's next, and a
 * restart before that redoes the chunk (whose events are then found indexed). Only offsets still
 * waiting are checked against a new assignment: a request already out is kafkajs's, which retries
 * it under the group's new generation, so it may land after a rebalance; it can only move the
 * partition back to an offset this instance handled (a redo), never past one it did not.
 */
export class OffsetCommits {
  private readonly waiting = new Map<string, Waiting>();
  private sending: Promise<void> | undefined;
  private stopping = false;
  /** Stopping, and a request failed: nothing more is sent. */
  private ended = false;

  constructor(
    private readonly send: (offsets: readonly PartitionOffset[]) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  /**
   * Queues a partition's offset, to go in the next request unless a later offset of the partition
   * replaces it first, or `current` says it is no longer current when that request is made.
   */
  commit(offset: PartitionOffset, current: () => boolean): void {
    if (this.ended) return;
    this.waiting.set(partitionKey(offset.topic, offset.partition), { offset, current });
    this.sending ??= this.pump();
  }

  /**
   * The consumer is stopping: what waits still goes, and so does what the chunks in hand queue,
   * but once a request fails nothing more is sent (each could spend kafkajs's retries again on the
   * same coordinator, past the shutdown deadline); the chunks whose commits are dropped are redone
   * at the next start.
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
      while (this.waiting.size > 0 && !this.ended) {
        const offsets: PartitionOffset[] = [];
        for (const waiting of this.waiting.values()) if (isCurrent(waiting)) offsets.push(waiting.offset);
        this.waiting.clear();
        if (offsets.length === 0) break;
        try {
          await this.send(offsets);
        } catch (error) {
          this.logger.warn({ err: error, offsets }, `committing offsets failed; each partition's next commit covers it: ${errorMessage(error)}`);
          if (this.stopping) {
            this.ended = true;
            this.waiting.clear();
          }
        }
      }
    } finally {
      this.sending = undefined;
    }
  }
}
