/**
 * The outbox consumer: a consumer group on the notification outbox topic that hands each chunk's
 * records to the notifier's lanes and commits once every one was sent or dead-lettered. What was
 * not committed when the process died is delivered by the next instance (at least once; the
 * delivered log and the receivers' own check on the delivery id keep it to once in practice).
 */
import type { Kafka, KafkaMessage } from 'kafkajs';
import { describeIssues } from '../../../schemas';
import { parseOwnMessage, type Instrumentation, type Logger } from '../../../platform';
import { createPartitionLoop } from '../alerter.consumer';
import { outboxRecordSchema, type Notifier, type OutboxRecord } from './notifier';

/** Records per chunk: a chunk's deliveries are queued at once, far below a lane's limit. */
const OUTBOX_CHUNK = 100;

/** Options of {@link createOutboxConsumer}. */
export interface OutboxConsumerOptions {
  kafka: Kafka;
  /** `config.alerting.notifierGroup`. */
  groupId: string;
  /** `config.alerting.notificationTopic`. */
  topic: string;
  notifier: Notifier;
  /** The consumer names its own child logger (`component: 'notifier'`): pass the parent. */
  logger: Logger;
  /** How long stop() lets the deliveries in hand finish before leaving them to the next instance. */
  drainMs: number;
  instrumentation?: Instrumentation;
}

/** A running outbox consumer. */
export interface OutboxConsumer {
  start(): Promise<void>;
  /** Handles no further chunk, waits up to `drainMs` for the one in hand, then abandons it uncommitted. */
  stop(): Promise<void>;
}

/** Creates the outbox consumer; see the module comment. */
export function createOutboxConsumer(options: OutboxConsumerOptions): OutboxConsumer {
  const logger = options.logger.child({ component: 'notifier' });

  function readRecords(messages: readonly KafkaMessage[]): OutboxRecord[] {
    const records: OutboxRecord[] = [];
    for (const message of messages) {
      const result = parseOwnMessage(message, outboxRecordSchema);
      if (result.success) records.push(result.data);
      // Our own topic: a bad record is a bug upstream, logged and skipped, never a jam.
      else logger.error({ offset: message.offset, issues: describeIssues(result.error) }, 'invalid outbox record skipped');
    }
    return records;
  }

  const loop = createPartitionLoop({
    kafka: options.kafka,
    groupId: options.groupId,
    topic: options.topic,
    logger,
    component: 'notifier',
    chunkSize: OUTBOX_CHUNK,
    ...(options.instrumentation ? { instrumentation: options.instrumentation } : {}),
    handle: (messages) => options.notifier.deliverOutbox(readRecords(messages)),
  });

  return {
    async start() {
      await loop.start();
      logger.info({ group: options.groupId, topic: options.topic }, 'notification outbox consumer started');
    },
    async stop() {
      // The loop's stop waits for the chunk in hand; past the drain time its retries are cut short.
      const timer = setTimeout(() => options.notifier.abandon(), options.drainMs);
      try {
        await loop.stop();
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
