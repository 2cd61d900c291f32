/**
 * The alerter's Kafka loop, kept apart so that the shared partition runner (planned in
 * `platform/`) can replace it: it owns the kafkajs consumer, hands each batch's messages to a
 * handler, commits after the handler succeeds, and pauses only the failing partition with
 * backoff while a store pushes back.
 */
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { backoffDelay, isRetriable, type Logger } from '../../platform';

/** Options of {@link createPartitionLoop}. */
export interface PartitionLoopOptions {
  kafka: Kafka;
  groupId: string;
  topic: string;
  logger: Logger;
  /**
   * Handles one batch of one partition. Resolving commits the batch; a retriable error pauses the
   * partition and the batch is fetched again after the backoff; any other error goes to kafkajs.
   */
  handle: (messages: readonly KafkaMessage[]) => Promise<void>;
  /** Backoff of a paused partition. @defaultValue 500 ms doubling up to 30 s, with jitter */
  backoff?: { initialDelayMs: number; maxDelayMs: number };
}

/** A running consumer loop. */
export interface PartitionLoop {
  /** Joins the group, subscribes from the beginning, and starts consuming. */
  start(): Promise<void>;
  /** Cancels pending resumes and leaves the group. */
  stop(): Promise<void>;
}

/** Creates the consumer loop of one topic. */
export function createPartitionLoop(options: PartitionLoopOptions): PartitionLoop {
  const { kafka, groupId, topic, logger, handle } = options;
  const backoff = options.backoff ?? { initialDelayMs: 500, maxDelayMs: 30_000 };
  /** Failures in a row, per partition: one partition's outage doesn't lengthen another's pause. */
  const failures = new Map<string, number>();
  /** Pending resumes, cleared by stop() so none fires on a stopped consumer. */
  const resumeTimers = new Set<NodeJS.Timeout>();
  let consumer: Consumer | undefined;

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const partitionKey = `${batch.topic}:${batch.partition}`;
    try {
      await handle(batch.messages);
    } catch (error) {
      if (!isRetriable(error)) throw error;
      const attempt = (failures.get(partitionKey) ?? 0) + 1;
      failures.set(partitionKey, attempt);
      const delayMs = backoffDelay(attempt, backoff);
      logger.warn({ err: error, topic: batch.topic, partition: batch.partition, attempt, delayMs }, 'alert stores unavailable, pausing the partition');
      const resume = payload.pause();
      const timer = setTimeout(() => {
        resumeTimers.delete(timer);
        resume();
      }, delayMs);
      timer.unref();
      resumeTimers.add(timer);
      return;
    }
    failures.delete(partitionKey);
    const last = batch.messages[batch.messages.length - 1];
    if (last) payload.resolveOffset(last.offset);
    await payload.commitOffsetsIfNecessary();
  }

  return {
    async start() {
      consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachBatchAutoResolve: false, autoCommitThreshold: 1, eachBatch });
    },
    async stop() {
      for (const timer of resumeTimers) clearTimeout(timer);
      resumeTimers.clear();
      await consumer?.disconnect();
    },
  };
}
