/**
 * The alerter's Kafka loop: it owns the kafkajs consumer and runs the shared partition runner
 * (platform/), which hands each batch's messages to a handler, commits after the handler
 * succeeds, and pauses only the failing partition with backoff while a store pushes back.
 */
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { VigilError, createPartitionRunner, errorMessage, type Instrumentation, type Logger } from '../../platform';

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
  handle: (messages: readonly KafkaMessage[], source: { topic: string; partition: number; caughtUp: boolean }) => Promise<void>;
  /** Backoff of a paused partition. @defaultValue 500 ms doubling up to 30 s, with jitter */
  backoff?: { initialDelayMs: number; maxDelayMs: number };
  /** Receives the runner's `runner.*` events. */
  instrumentation?: Instrumentation;
  /** Names the runner in logs and instrumentation. @defaultValue 'alerter' */
  component?: string;
  /** Most messages per handled chunk. @defaultValue the whole fetched batch */
  chunkSize?: number;
}

/** A running consumer loop. */
export interface PartitionLoop {
  /** Joins the group, subscribes from the beginning, and starts consuming. */
  start(): Promise<void>;
  /** Cancels pending resumes and leaves the group. */
  stop(): Promise<void>;
}

/** Creates the consumer loop of one topic, on the partition runner the ingest pipeline uses too. */
export function createPartitionLoop(options: PartitionLoopOptions): PartitionLoop {
  const { kafka, groupId, topic, logger, handle } = options;
  const runner = createPartitionRunner({
    component: options.component ?? 'alerter',
    // The alerter's work per message is one script item: a whole fetched batch is one chunk.
    chunkSize: options.chunkSize ?? Number.MAX_SAFE_INTEGER,
    handle: (chunk) => handle(chunk.messages, { topic: chunk.topic, partition: chunk.partition, caughtUp: chunk.caughtUp }),
    ...(options.backoff ? { backoff: options.backoff } : {}),
    logger,
    ...(options.instrumentation ? { instrumentation: options.instrumentation } : {}),
  });
  let consumer: Consumer | undefined;

  return {
    async start() {
      consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
      await consumer.connect();
      try {
        await consumer.subscribe({ topic, fromBeginning: true });
      } catch (error) {
        // kafkajs says only "This server does not host this topic-partition": name the topic.
        if (/does not host this topic-partition/i.test(errorMessage(error))) {
          throw new VigilError(`kafka: the topic ${topic} does not exist (deleted since it was created, or another name configured); \`vigil topics ensure\` creates Vigil's topics`, { code: 'topic_missing', retriable: false, cause: error });
        }
        throw error;
      }
      await consumer.run({ eachBatchAutoResolve: false, autoCommitThreshold: 1, eachBatch: (payload) => runner.eachBatch(payload) });
    },
    async stop() {
      runner.stop();
      await consumer?.disconnect();
    },
  };
}
