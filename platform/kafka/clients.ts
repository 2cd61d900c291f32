import { readFileSync } from 'node:fs';
import { Kafka, Partitioners, logLevel as kafkaLogLevel, type Admin, type LogEntry, type Producer, type SASLOptions } from 'kafkajs';
import { StoreUnavailableError } from '../errors';
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

/** A topic Vigil would create, with the settings it would get. */
export interface TopicPlan {
  topic: string;
  numPartitions: number;
  replicationFactor: number;
  configEntries: { name: string; value: string }[];
}

/**
 * The topics Vigil uses (and `extra` ones, such as a raw gateway topic `vigil adapt` reads), with
 * the partitions, replication and retention configuration gives them. Dead letters wait for a
 * human: they keep messages for 30 days at least, whatever the broker's default.
 */
export function topicPlans(config: Config, extra: readonly string[] = []): TopicPlan[] {
  const deadLetters = new Set([config.topics.deadLetter, config.alerting.notificationDeadLetterTopic]);
  const retention = config.topics.retentionMs;
  return [...new Set([...vigilTopics(config), ...extra])].map((topic) => {
    const retentionMs = deadLetters.has(topic) ? Math.max(DEAD_LETTER_RETENTION_MS, retention ?? 0) : retention;
    return {
      topic,
      numPartitions: config.topics.partitions,
      replicationFactor: config.topics.replication,
      configEntries: retentionMs === undefined ? [] : [{ name: 'retention.ms', value: String(retentionMs) }],
    };
  });
}

/** What {@link ensureTopics} found and did, topic by topic. */
export interface TopicState {
  topic: string;
  /** `created` now, or `existing` (left as it is, whatever its settings). */
  state: 'created' | 'existing';
  partitions: number;
  /** The partitions configuration asks for: an existing topic may have fewer (or more). */
  wantedPartitions: number;
}

/**
 * Creates the topics of {@link topicPlans} that don't exist yet; leaves existing ones alone.
 * @returns the topics created
 */
export async function ensureTopics(kafka: Kafka, config: Config, extra: readonly string[] = []): Promise<string[]> {
  const states = await ensureTopicStates(kafka, config, extra);
  return states.filter((state) => state.state === 'created').map((state) => state.topic);
}

/** What the broker answers about a topic that was just created, while it is still being set up. */
const TOPIC_SETTING_UP = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);

/**
 * Waits until every partition of the topics just created has a leader: the broker's metadata
 * is asked every `everyMs`; answers that the topic is still being set up are waited out, any
 * other error is thrown. Past `timeoutMs`, a retriable StoreUnavailableError names the topics.
 */
export async function untilLed(
  admin: Pick<Admin, 'fetchTopicMetadata'>,
  topics: readonly { topic: string; numPartitions?: number }[],
  options: { timeoutMs?: number; everyMs?: number } = {},
): Promise<void> {
  const { timeoutMs = 30_000, everyMs = 100 } = options;
  const deadline = Date.now() + timeoutMs;
  let waiting = topics.map((plan) => plan.topic);
  let last = 'no answer yet';
  for (;;) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics: waiting });
      const led = new Set(
        found
          .filter((topic) => {
            const wanted = topics.find((plan) => plan.topic === topic.name)?.numPartitions ?? 1;
            return topic.partitions.length >= wanted && topic.partitions.every((partition) => partition.leader >= 0);
          })
          .map((topic) => topic.name),
      );
      waiting = waiting.filter((topic) => !led.has(topic));
      if (waiting.length === 0) return;
      last = 'a partition without a leader';
    } catch (error) {
      // kafkajs retries these itself first, then throws its retries' error with the last answer in `originalError`.
      const failure = error as { type?: unknown; originalError?: { type?: unknown } };
      const type = failure.type ?? failure.originalError?.type;
      if (typeof type !== 'string' || !TOPIC_SETTING_UP.has(type)) throw error;
      last = type;
    }
    if (Date.now() >= deadline) {
      throw new StoreUnavailableError('kafka', `topics created but without a leader after ${timeoutMs} ms (${last}): ${waiting.join(', ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** {@link ensureTopics}, reporting every topic: created or existing, and its partitions. */
export async function ensureTopicStates(kafka: Kafka, config: Config, extra: readonly string[] = []): Promise<TopicState[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const plans = topicPlans(config, extra);
    const existing = new Set(await admin.listTopics());
    const missing = plans.filter((plan) => !existing.has(plan.topic));
    if (missing.length > 0) {
      // kafkajs's own wait (`waitForLeaders`) gives up on UNKNOWN_TOPIC_OR_PARTITION, which a
      // KRaft broker answers until the new topic's metadata has reached it (seconds under load).
      await admin.createTopics({ waitForLeaders: false, topics: missing });
      await untilLed(admin, missing);
    }
    const created = new Set(missing.map((plan) => plan.topic));
    const present = plans.filter((plan) => !created.has(plan.topic)).map((plan) => plan.topic);
    const partitions = new Map<string, number>();
    if (present.length > 0) {
      const metadata = await admin.fetchTopicMetadata({ topics: present });
      for (const topic of metadata.topics) partitions.set(topic.name, topic.partitions.length);
    }
    return plans.map((plan) => ({
      topic: plan.topic,
      state: created.has(plan.topic) ? 'created' : 'existing',
      partitions: created.has(plan.topic) ? plan.numPartitions : (partitions.get(plan.topic) ?? 0),
      wantedPartitions: plan.numPartitions,
    }));
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
