import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { errorMessage, isRetriable } from '../errors';
import { partitionKey } from './event-time-alignment';
import { OffsetCommits, type PartitionOffset } from './offset-commits';
import { endsAtHighWatermark, notePushBack, type PartitionRunner, type PartitionRunnerOptions } from './partition-runner';

/** What the fetch-ahead runner asks of its consumer: the group's commits, pauses and seeks. */
export interface FetchAheadControl {
  /** Commits the offsets (one per partition, each the next message to read) in one request. */
  commit(offsets: readonly PartitionOffset[]): Promise<void>;
  /** Stops (resumes) fetching the partition; what was fetched stays in the runner's queue. */
  pause(topic: string, partition: number): void;
  resume(topic: string, partition: number): void;
  /** Reads the partition again from `offset` (kafkajs `seek`). */
  seek(topic: string, partition: number, offset: string): void;
}

/** Options of {@link createFetchAheadRunner}. */
export interface FetchAheadRunnerOptions extends PartitionRunnerOptions {
  control: FetchAheadControl;
  /**
   * Messages a partition may have waiting beyond the chunk in hand before its fetching pauses.
   * A fetch under way may add one more batch. @defaultValue the chunk size
   */
  maxQueued?: number;
}

/** A fetch-ahead runner: a {@link PartitionRunner} that also hears of assignments and drains. */
export interface FetchAheadRunner extends PartitionRunner {
  /** A new assignment (kafkajs `GROUP_JOIN`): what was queued is dropped; kafkajs reads on from the committed offsets. */
  assigned(): void;
  /** Resolves once no chunk is in hand and every commit queued was answered (after {@link PartitionRunner.stop}: before the consumer disconnects). */
  drain(): Promise<void>;
}

/** One partition's messages fetched and not yet handed on, and its worker. */
interface Lane {
  topic: string;
  partition: number;
  key: string;
  /** Bumped each time the queue is dropped (an assignment, a failure): a chunk taken before is not committed. */
  epoch: number;
  /**
   * What waits to be handed on, oldest first (the chunk in hand leads it). Handled messages leave at
   * once: each references its fetch's decoded buffer.
   */
  messages: KafkaMessage[];
  /** The messages' event times, when aligning; index for index. */
  times: (number | undefined)[];
  /** The high watermark kafkajs saw at the fetch of the last batch queued. */
  highWatermark: string | undefined;
  /** How many of the queued messages (from the first) are the chunk in hand. */
  inHand: number;
  /** Fetching paused because the queue is full. */
  paused: boolean;
  /** The worker's loop, while it runs. */
  working: Promise<void> | undefined;
  /** Wakes the worker waiting on a hold or a backoff. */
  wake: (() => void) | undefined;
  /** The aligner knows where the partition's head is (`seen`) since it last left it. */
  announced: boolean;
}

/**
 * A partition runner that lets kafkajs fetch on while chunks are handled (issue 12): each batch is
 * queued and its offsets resolved at once, so kafkajs's next fetch starts without waiting for the
 * chunks of this one; a worker per partition hands the queue on in chunks, in order, and commits
 * each chunk's offset itself once it is acknowledged (kafkajs's auto-commit must be off). The
 * commit is not waited for: the partition's next chunk starts while it is out, and the offsets of
 * the partitions that finish a chunk meanwhile go together in the next request (offset-commits.ts).
 *
 * Compared with {@link createPartitionRunner} (kafkajs fetches again only once every batch of the
 * last fetch is done with):
 * - an event produced while a round of chunks is in hand is fetched at once, and waits only for
 *   its own partition's chunk in hand, not for the slowest partition of the round;
 * - a partition that event-time alignment holds back keeps its fetched messages and is not fetched
 *   again when it goes on; a chunk a store refused is retried from the queue after its backoff;
 * - a chunk can take up to the chunk size from several fetched batches.
 *
 * Memory: each partition holds at most `maxQueued` messages beyond its chunk in hand (plus one batch
 * of a fetch under way) before its fetching pauses.
 *
 * A handler error that is not retriable makes the consumer crash as with the other runner: the
 * failing partition is read again from the failed chunk (`seek`), and that batch's `eachBatch`
 * throws the error to kafkajs, whose supervisor restarts or fails the consumer.
 */
export function createFetchAheadRunner(options: FetchAheadRunnerOptions): FetchAheadRunner {
  const { component, logger, instrumentation, control, chunkSize } = options;
  const maxQueued = Math.max(1, options.maxQueued ?? chunkSize);
  const alignment = options.alignment;
  const lanes = new Map<string, Lane>();
  const attempts = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  let pauses = 0;
  let stopped = false;
  const commits = new OffsetCommits((offsets) => control.commit(offsets), logger);
  /** A handler's non-retriable error, thrown to kafkajs by the next batch until the next assignment. */
  let fatal: { error: unknown } | undefined;

  /**
   * A pause, resume or seek, which kafkajs refuses (it throws "Consumer group was not
   * initialized") between a crash of the consumer and its restart: a worker still draining its
   * queue then resumed its partition, and the rejection took the process down. Nothing is lost by
   * skipping it: the restart's assignment clears the lanes and reads on from the committed offsets.
   */
  function steer(what: string, act: () => void): void {
    try {
      act();
    } catch (error) {
      logger.debug({ err: error }, `could not ${what} a partition: the consumer is not running (restarting); its next assignment reads on from the committed offsets`);
    }
  }

  function laneOf(topic: string, partition: number): Lane {
    const key = partitionKey(topic, partition);
    let lane = lanes.get(key);
    if (lane === undefined) {
      lane = { topic, partition, key, epoch: 0, messages: [], times: [], highWatermark: undefined, inHand: 0, paused: false, working: undefined, wake: undefined, announced: false };
      lanes.set(key, lane);
    }
    return lane;
  }

  const queued = (lane: Lane): number => lane.messages.length;
  /** Resumes fetching a paused partition once what waits beyond its chunk in hand is under the bound. */
  function resumeIfRoom(lane: Lane): void {
    if (lane.paused && queued(lane) - lane.inHand < maxQueued) {
      lane.paused = false;
      steer('resume', () => control.resume(lane.topic, lane.partition));
    }
  }

  /** Empties a lane's queue and resumes its fetching (kafkajs reads on from wherever it is told). */
  function clear(lane: Lane): void {
    lane.messages = [];
    lane.times = [];
    lane.inHand = 0;
    lane.epoch++;
    lane.announced = false;
    // The next failure of what it reads now starts its backoff afresh.
    attempts.delete(lane.key);
    if (lane.paused) {
      lane.paused = false;
      steer('resume', () => control.resume(lane.topic, lane.partition));
    }
    lane.wake?.();
  }

  /**
   * After a failure, every lane's queue is dropped and each partition is read again from its first
   * dropped message: kafkajs has already read past them, and a partition no producer writes to
   * any more would fetch nothing, so no batch would come to throw the failure and restart the
   * consumer, and the dropped messages would wait, unhandled, with the process looking healthy.
   */
  function dropAll(): void {
    for (const lane of lanes.values()) {
      const first = lane.messages[0];
      clear(lane);
      if (first !== undefined) steer('seek', () => control.seek(lane.topic, lane.partition, first.offset));
    }
  }

  function eachBatch(payload: EachBatchPayload): Promise<void> {
    if (fatal) return Promise.reject(fatal.error instanceof Error ? fatal.error : new Error(errorMessage(fatal.error)));
    const { topic, partition, messages, highWatermark } = payload.batch;
    const last = messages[messages.length - 1];
    if (stopped || last === undefined || !payload.isRunning() || payload.isStale()) return Promise.resolve();
    const lane = laneOf(topic, partition);
    // Queued now; kafkajs's next fetch of this partition starts after it.
    payload.resolveOffset(last.offset);
    for (const message of messages) lane.messages.push(message);
    if (alignment) {
      const times = messages.map((message) => alignment.eventTime(message));
      for (const time of times) lane.times.push(time);
      // The partition's head is the first message it has yet to hand on: said now unless the
      // aligner already knows it (a worker at work says where it is when its chunk is done).
      announce(lane);
    }
    lane.highWatermark = highWatermark;
    if (!lane.paused && queued(lane) - lane.inHand >= maxQueued) {
      lane.paused = true;
      steer('pause', () => control.pause(topic, partition));
    }
    start(lane);
    return Promise.resolve();
  }

  /** Starts the lane's worker unless it runs; one that ends with messages queued (a batch came as it finished) starts again. */
  function start(lane: Lane): void {
    lane.working ??= work(lane)
      .catch((error: unknown) => {
        // A worker's own failure, never an unhandled rejection: the consumer's next batch throws
        // it, and its supervisor restarts it.
        logger.error({ err: error, topic: lane.topic, partition: lane.partition }, `a partition's worker failed; the consumer restarts: ${errorMessage(error)}`);
        fatal ??= { error };
        dropAll();
      })
      .finally(() => {
        lane.working = undefined;
        if (!stopped && queued(lane) > 0) start(lane);
      });
  }

  /** Tells the aligner where the partition's head is, if it was not told since it last left it. */
  function announce(lane: Lane): void {
    if (!alignment || lane.announced || queued(lane) === 0) return;
    let head: number | undefined;
    for (let index = 0; index < lane.times.length && head === undefined; index++) head = lane.times[index];
    alignment.aligner.seen(lane.key, head);
    lane.announced = true;
  }

  /** The partition is not in hand (held, backing off, or its worker done): the aligner may count it idle. */
  function leave(lane: Lane): void {
    lane.announced = false;
    alignment?.aligner.left(lane.key);
  }

  /**
   * Waits until `wake` is called (by the aligner's resume, a timer, an assignment or stop). `arm`
   * may return what undoes it (a timer to clear), called however the wait ends. A wake of an
   * earlier wait (a timer or a hold another wake ended) leaves this one's alone: it could
   * otherwise clear `lane.wake` under a later wait, which stop() would then never end.
   */
  const parked = (lane: Lane, arm: (wake: () => void) => (() => void) | void): Promise<void> =>
    new Promise<void>((resolve) => {
      const wait: { woken: boolean; disarm?: (() => void) | void } = { woken: false };
      const wake = (): void => {
        if (wait.woken) return;
        wait.woken = true;
        if (lane.wake === wake) lane.wake = undefined;
        wait.disarm?.();
        resolve();
      };
      lane.wake = wake;
      wait.disarm = arm(wake);
      // Woken while arming: undo what arming set up.
      if (wait.woken) wait.disarm?.();
    });

  async function work(lane: Lane): Promise<void> {
    const { topic, partition, key } = lane;
    try {
      // kafkajs hands over a fetch's batches one after the other: let each say where its
      // partition is before any decides to go ahead.
      if (alignment) await new Promise((resolve) => setImmediate(resolve));
      while (!stopped && queued(lane) > 0) {
        const taken = lane.epoch;
        announce(lane);
        let count = Math.min(chunkSize, queued(lane));
        if (alignment) {
          const next = lane.times.slice(0, count);
          let admitted = alignment.aligner.admit(key, next);
          while (admitted === 0 && alignment.aligner.canWait(key)) {
            await alignment.aligner.changed();
            if (stopped || lane.epoch !== taken) break;
            admitted = alignment.aligner.admit(key, next);
          }
          if (stopped || lane.epoch !== taken) continue;
          if (admitted === 0) {
            // Ahead of the others: the aligner wakes it once they caught up. Its messages stay queued.
            const head = lane.times[0] ?? 0;
            const offset = lane.messages[0]?.offset ?? '';
            lane.announced = false;
            await parked(lane, (wake) => alignment.aligner.hold(key, head, () => wake));
            instrumentation?.emit('runner.hold', { component, topic, partition, offset, eventTime: head });
            continue;
          }
          count = admitted;
        }
        const chunk = lane.messages.slice(0, count);
        const caughtUp = count === queued(lane) && endsAtHighWatermark(chunk, lane.highWatermark);
        const began = performance.now();
        lane.inHand = count;
        resumeIfRoom(lane);
        let committed: void | (() => void);
        try {
          committed = await options.handle({ topic, partition, messages: chunk, caughtUp });
        } catch (error) {
          lane.inHand = 0;
          if (stopped) return;
          if (!isRetriable(error)) {
            fail(lane, chunk, error);
            return;
          }
          const delayMs = notePushBack({ component, logger, instrumentation, attempts, backoff: options.backoff }, { topic, partition }, error);
          pauses++;
          // Not in hand meanwhile: after the idleness bound it holds no other partition back.
          leave(lane);
          await parked(lane, (wake) => {
            const timer = setTimeout(wake, delayMs);
            timers.add(timer);
            return () => {
              clearTimeout(timer);
              timers.delete(timer);
            };
          });
          continue;
        }
        lane.inHand = 0;
        attempts.delete(key);
        // An assignment since: the queue was dropped, and this partition is read again from its
        // committed offset (here or by another member). The redo is harmless; a commit of this
        // chunk could move the new owner's offset, so none is queued.
        if (lane.epoch !== taken) continue;
        // The chunk leaves the queue now: kept (up to 4,096 per partition, as a lazier compaction
        // did), handled messages held their fetches' buffers, 35-50 MB over a backlog.
        const handledTimes = lane.times.splice(0, count);
        lane.messages.splice(0, count);
        resumeIfRoom(lane);
        const last = chunk[chunk.length - 1];
        if (last !== undefined) {
          // Not awaited: the next chunk starts now. Dropped if the partition is assigned again
          // before the request goes (its new owner reads from the committed offset).
          const offset: PartitionOffset = { topic, partition, offset: (BigInt(last.offset) + 1n).toString() };
          commits.commit(offset, () => lane.epoch === taken);
        }
        // Called now, not once the commit is answered: the partition's next chunk is already under
        // way, and must see what this one did (the ingest consumer's memory of indexed ids). The
        // chunk is done with whatever becomes of the commit: a redo of it (a commit dropped or
        // failed, then a rebalance) finds its events acknowledged.
        try {
          committed?.();
        } catch (error) {
          logger.error({ err: error, topic, partition }, `a chunk's completion callback failed: ${errorMessage(error)}`);
        }
        instrumentation?.emit('runner.chunk', { component, topic, partition, messages: chunk.length, durationMs: performance.now() - began });
        if (alignment) {
          let latest: number | undefined;
          for (const time of handledTimes) if (time !== undefined && (latest === undefined || time > latest)) latest = time;
          let next: number | undefined;
          for (let index = 0; index < lane.times.length && next === undefined; index++) next = lane.times[index];
          const ended = queued(lane) === 0 && last !== undefined && lane.highWatermark !== undefined && /^\d+$/.test(lane.highWatermark) && BigInt(last.offset) + 1n >= BigInt(lane.highWatermark);
          alignment.aligner.advanced(key, { ...(next === undefined ? {} : { next }), ...(latest === undefined ? {} : { last: latest }), caughtUp: ended, ...(lane.highWatermark === undefined ? {} : { end: lane.highWatermark }) });
        }
      }
    } finally {
      leave(lane);
    }
  }

  /** A non-retriable error: kafkajs reads the partition again from the chunk, and that batch throws it. */
  function fail(lane: Lane, chunk: readonly KafkaMessage[], error: unknown): void {
    logger.error({ err: error, topic: lane.topic, partition: lane.partition }, `handling a chunk failed; the consumer stops on it: ${errorMessage(error)}`);
    fatal = { error };
    const first = chunk[0];
    const queuedFirst = lane.messages[0];
    dropAll();
    // The failed chunk leads its lane's queue; should it not, read the partition again from it too.
    if (first !== undefined && first !== queuedFirst) steer('seek', () => control.seek(lane.topic, lane.partition, first.offset));
  }

  return {
    eachBatch,
    pauses: () => pauses,
    assigned() {
      fatal = undefined;
      for (const lane of lanes.values()) clear(lane);
    },
    stop() {
      stopped = true;
      commits.stop();
      alignment?.aligner.close();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      // Nothing more is taken; the chunks in hand finish and commit (drain waits for them).
      for (const lane of lanes.values()) lane.wake?.();
    },
    async drain() {
      await Promise.allSettled([...lanes.values()].flatMap((lane) => (lane.working ? [lane.working] : [])));
      await commits.idle();
    },
  };
}
