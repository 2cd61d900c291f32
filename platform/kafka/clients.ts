import { readFileSync } from 'node:fs';
import { Kafka, Partitioners, logLevel as kafkaLogLevel, type LogEntry, type Producer, type SASLOptions } from 'kafkajs';
import type { Family } from '../../schemas';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { registerCodecs } from './codecs';

/** The topic of each event family, from configuration. */
export function topicOf(config: Config, family: Family): string {
  return config.topics[family];
}

/**
 * A kafkajs client whose log lines go through pino, and which reads batches compressed with any
 * of gzip, Snappy, LZ4 and ZSTD (see {@link registerCodecs}).
 */
export function createKafka(config: Config, logger: Logger, clientId = config.kafka.clientId): Kafka {
  registerCodecs();
  const log = logger.child({ component: 'kafkajs' });
  const { sasl, tls, caFile } = config.kafka;
  return new Kafka({
    clientId,
    brokers: [...config.kafka.brokers],
    // A CA file means TLS; the CA is read once, here, and checked readable when the config loaded.
    ...(tls || caFile !== undefined ? { ssl: caFile === undefined ? true : { ca: [readFileSync(caFile, 'utf8')] } } : {}),
    ...(sasl.mechanism !== 'none' && sasl.username !== undefined && sasl.password !== undefined
      ? // kafkajs types each mechanism apart; the three Vigil allows take the same fields.
        { sasl: { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } as SASLOptions }
      : {}),
    logLevel: kafkaLogLevel.WARN,
    retry: { initialRetryTime: 100, retries: 8 },
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...fields } = entry;
        if (level <= kafkaLogLevel.ERROR) log.error(fields, message);
        else if (level === kafkaLogLevel.WARN) log.warn(fields, message);
        else log.debug(fields, message);
      },
  });
}

const DEAD_LETTER_RETENTION_MS = 30 * 24 * 3600 * 1000;

/** Every topic Vigil uses: the event families, dead letters, detections, the notification outbox and its dead letters. */
export function vigilTopics(config: Config): string[] {
  const { policy, invocation, device, deadLetter, detections } = config.topics;
  return [policy, invocation, device, deadLetter, detections, config.alerting.notificationTopic, config.alerting.notificationDeadLetterTopic];
}

/**
 * Creates the event and dead-letter topics that don't exist yet, and `extra` ones (a raw gateway
 * topic `vigil adapt` reads); leaves existing ones alone.
 */
export async function ensureTopics(kafka: Kafka, config: Config, extra: readonly string[] = []): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const wanted = [...new Set([...vigilTopics(config), ...extra])];
    const existing = new Set(await admin.listTopics());
    const missing = wanted.filter((topic) => !existing.has(topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({
          topic,
          numPartitions: config.topics.partitions,
          replicationFactor: 1,
          // Dead letters wait for a human: keep them for weeks, not the broker's default.
          ...(topic === config.topics.deadLetter || topic === config.alerting.notificationDeadLetterTopic ? { configEntries: [{ name: 'retention.ms', value: String(DEAD_LETTER_RETENTION_MS) }] } : {}),
        })),
      });
    }
    return missing;
  } finally {
    await admin.disconnect();
  }
}

/**
 * A producer of Vigil's own topics (dead letters, detections, notification dead letters): no
 * topic auto-creation, Kafka's default partitioner, and one request in flight so a retried send
 * can't reorder a key's messages.
 * @param options.maxInFlightRequests more requests in flight, for messages whose keys never repeat
 *   (dead letters are keyed by their source position), so there is no key order to keep. @defaultValue 1
 */
export function createProducer(kafka: Kafka, options: { maxInFlightRequests?: number } = {}): Producer {
  return kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: options.maxInFlightRequests ?? 1, createPartitioner: Partitioners.DefaultPartitioner });
}
