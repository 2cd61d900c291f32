import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { errorMessage, isRetriable } from '../errors';
import type { Logger } from '../logger';
import { backoffDelay } from '../retry';
import type { Instrumentation } from '../instrumentation';
import { partitionKey, type EventTimeAligner } from './event-time-alignment';

/** How often a chunk in hand asks kafkajs to heartbeat (its own interval, 3 s by default, still applies). */
const HEARTBEAT_EVERY_MS = 1000;

/**
 * The backoff every consumer group uses unless told otherwise: quick enough to resume soon after a
 * short hiccup, capped so a long outage is retried twice a minute rather than hammered.
 */
export const DEFAULT_PARTITION_BACKOFF = { initialDelayMs: 500, maxDelayMs: 30_000 } as const;

/**
 * A store pushed back on a partition's chunk (a retriable error): counts the partition's attempt
 * and the pause, logs it and tells instrumentation. Returns the backoff before the chunk is tried again.
 */
export function notePushBack(
  context: { component: string; logger: Logger; instrumentation: Instrumentation | undefined; attempts: Map<string, number>; backoff: PartitionRunnerOptions['backoff'] },
  chunk: { topic: string; partition: number },
  error: unknown,
): number {
  const { topic, partition } = chunk;
  const key = partitionKey(topic, partition);
  const attempt = (context.attempts.get(key) ?? 0) + 1;
  context.attempts.set(key, attempt);
  const delayMs = backoffDelay(attempt, context.backoff ?? DEFAULT_PARTITION_BACKOFF);
  context.logger.warn({ err: error, topic, partition, attempt, delayMs }, `store unavailable, pausing the partition: ${errorMessage(error)}`);
  context.instrumentation?.emit('runner.pause', { component: context.component, topic, partition, attempt, delayMs, error });
  return delayMs;
}

/** A slice of one partition's batch, handled and committed as a unit. */
export interface Chunk {
  topic: string;
  partition: number;
  messages: KafkaMessage[];
  /**
   * True when the chunk ends at the high watermark kafkajs saw at the fetch: the partition has
   * nothing more to read for now. False while it reads a backlog (more is in Kafka).
   */
  caughtUp: boolean;
}

/**
 * Whether a chunk ends at the high watermark kafkajs saw at the fetch. An unreadable high
 * watermark counts as caught up: claiming a backlog that is not there would hold others back.
 */
export function endsAtHighWatermark(chunk: readonly KafkaMessage[], highWatermark: string | undefined): boolean {
  const end = chunk[chunk.length - 1];
  if (end === undefined || highWatermark === undefined || !/^-?\d+$/.test(highWatermark) || !/^\d+$/.test(end.offset)) return true;
  return BigInt(end.offset) + 1n >= BigInt(highWatermark);
}

/** Options of {@link createPartitionRunner}. */
export interface PartitionRunnerOptions {
  /** Names the runner in logs and instrumentation (`ingest`, `alerter`). */
  component: string;
  /** The most messages handled (and committed) at once. */
  chunkSize: number;
  /**
   * Handles one chunk. Resolving means everything in it is acknowledged downstream, so its
   * offsets are committed; a retriable error pauses the partition and the chunk is fetched again;
   * any other error is the consumer's to crash on. It may resolve with a function, called once
   * the chunk is done with: here, once its offsets are committed (not when the commit fails and
   * the chunk is fetched again); the fetch-ahead runner, which does not wait for its commits,
   * calls it when it queues the commit, unless the partition was assigned again meanwhile.
   */
  handle(chunk: Chunk): Promise<void | (() => void)>;
  /**
   * Backoff of a paused partition, per partition: it grows while the partition keeps failing.
   * Defaults to {@link DEFAULT_PARTITION_BACKOFF}; `random` (the jitter's source, Math.random
   * unless given) lets a test choose each delay.
   */
  backoff?: { initialDelayMs: number; maxDelayMs: number; random?: () => number };
  logger: Logger;
  instrumentation?: Instrumentation;
  /**
   * Aligns the partitions on event time (see event-time-alignment.ts): a chunk is cut where its
   * partition would run ahead of the others, and a partition with nothing to hand on is paused.
   * Without it, each partition goes as fast as it can.
   */
  alignment?: {
    aligner: EventTimeAligner;
    /** A message's event time in ms, or undefined when it has none that can be read. */
    eventTime(message: KafkaMessage): number | undefined;
  };
}

/** The `eachBatch` of a kafkajs consumer, and what it holds. */
export interface PartitionRunner {
  eachBatch(payload: EachBatchPayload): Promise<void>;
  /** How many times a partition was paused. */
  pauses(): number;
  /**
   * Clears the resume timers and handles no further chunk (the one in hand finishes and is
   * committed); call it before disconnecting the consumer.
   */
  stop(): void;
}

/**
 * The one loop both consumer groups run (kafkajs's documented pause/resume pattern): the batch is
 * cut into chunks; each chunk is handled, its last offset resolved and committed, and the group
 * heartbeated. When a downstream store pushes back (a retriable error), only that partition is
 * paused, for a backoff that grows with that partition's consecutive failures, and resumed by a
 * timer that {@link PartitionRunner.stop} clears. The unacknowledged messages are fetched again.
 */
export function createPartitionRunner(options: PartitionRunnerOptions): PartitionRunner {
  const { component, logger, instrumentation } = options;
  const attempts = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  let pauses = 0;
  // Once stopped, a batch still in kafkajs's hands is left alone and no resume timer is set:
  // a timer firing after the consumer and its stores closed would retry against closed clients.
  let stopped = false;

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    try {
      await runBatch(payload);
    } finally {
      // However the batch ended, this partition no longer has it in hand.
      options.alignment?.aligner.left(partitionKey(payload.batch.topic, payload.batch.partition));
    }
  }

  async function runBatch(payload: EachBatchPayload): Promise<void> {
    const { topic, partition, messages } = payload.batch;
    const key = partitionKey(topic, partition);
    const alignment = options.alignment;
    // Event times are read once per batch, only when aligning.
    const times = alignment ? messages.map((message) => alignment.eventTime(message)) : undefined;
    if (alignment && times) {
      alignment.aligner.seen(key, times.find((time) => time !== undefined));
      // kafkajs hands over the batches of one fetch together: let every one of them say where
      // its partition is before any decides to go ahead (one turn of the event loop per batch).
      await new Promise((resolve) => setImmediate(resolve));
    }
    let start = 0;
    while (start < messages.length) {
      if (stopped || !payload.isRunning() || payload.isStale()) return;
      let chunk = messages.slice(start, start + options.chunkSize);
      if (alignment && times) {
        const next = times.slice(start, start + chunk.length);
        let admitted = alignment.aligner.admit(key, next);
        // The partition furthest behind has its batch in hand and will move the watermark without
        // a fetch: wait for it here rather than pause and fetch this batch again.
        while (admitted === 0 && alignment.aligner.canWait(key)) {
          await alignment.aligner.changed();
          if (stopped || !payload.isRunning() || payload.isStale()) return;
          admitted = alignment.aligner.admit(key, next);
        }
        if (admitted === 0) {
          // Ahead of the others: paused, and fetched again from here once they caught up.
          alignment.aligner.hold(key, times[start] ?? 0, () => payload.pause());
          instrumentation?.emit('runner.hold', { component, topic, partition, offset: chunk[0]?.offset ?? '', eventTime: times[start] ?? 0 });
          return;
        }
        chunk = chunk.slice(0, admitted);
      }
      const began = performance.now();
      // kafkajs heartbeats only when asked (and between fetches): a chunk slower than the session
      // timeout (a slow store, a loaded machine, a chunk of large hostile messages) would have the
      // member dropped from its group, its commit refused and the chunk redone. So it is asked
      // while the chunk runs too; kafkajs sends one at most every heartbeat interval and shares a
      // call in flight. A failure here (a rebalance under way) is left to the heartbeat below.
      const beating = setInterval(() => void payload.heartbeat().catch(() => undefined), HEARTBEAT_EVERY_MS);
      let committed: void | (() => void);
      try {
        committed = await options.handle({ topic, partition, messages: chunk, caughtUp: endsAtHighWatermark(chunk, payload.batch.highWatermark) });
      } catch (error) {
        if (!isRetriable(error)) throw error;
        if (stopped) return;
        const delayMs = notePushBack({ component, logger, instrumentation, attempts, backoff: options.backoff }, { topic, partition }, error);
        pauses++;
        const resume = payload.pause();
        const timer = setTimeout(() => {
          timers.delete(timer);
          resume();
        }, delayMs);
        timers.add(timer);
        return;
      } finally {
        clearInterval(beating);
      }
      attempts.delete(key);
      const last = chunk[chunk.length - 1];
      if (last) payload.resolveOffset(last.offset);
      await payload.commitOffsetsIfNecessary();
      committed?.();
      await payload.heartbeat();
      instrumentation?.emit('runner.chunk', { component, topic, partition, messages: chunk.length, durationMs: performance.now() - began });
      start += chunk.length;
      if (alignment && times) {
        const latest = times.slice(start - chunk.length, start).reduce<number | undefined>((most, time) => (time === undefined || (most !== undefined && most >= time) ? most : time), undefined);
        const next = times.slice(start).find((time) => time !== undefined);
        // Read up to the high watermark kafkajs saw: nothing more to wait for from this partition.
        const caughtUp = start >= messages.length && last !== undefined && BigInt(last.offset) + 1n >= BigInt(payload.batch.highWatermark);
        alignment.aligner.advanced(key, { ...(next === undefined ? {} : { next }), ...(latest === undefined ? {} : { last: latest }), caughtUp, end: payload.batch.highWatermark });
      }
    }
  }

  return {
    eachBatch,
    pauses: () => pauses,
    stop() {
      stopped = true;
      options.alignment?.aligner.close();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
