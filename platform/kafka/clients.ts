import { readFileSync } from 'node:fs';
import { Kafka, Partitioners, logLevel as kafkaLogLevel, type Admin, type LogEntry, type Producer, type SASLOptions } from 'kafkajs';
import { StoreUnavailableError } from '../errors';
import { sleep } from '../retry';
import type { Family } from '../../schemas';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { registerCodecs } from './codecs';
import { isSupervisedGroup } from './consumer-supervisor';

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
        log[kafkaLineLevel(level, message, fields)](fields, message);
      },
  });
}

/**
 * The level Vigil logs a kafkajs line at: kafkajs's own, except
 * - an answer expected for a moment and retried ({@link isExpectedRefusal}): debug. A new topic's
 *   partitions answer "not the leader" for a moment, which untilServing waits out on purpose, and
 *   a broker just started has no group coordinator for a moment, which kafkajs waits out itself;
 *   a user would read a failure. One that lasts ends in an error thrown to Vigil, which says so;
 * - a supervised consumer's crash (`Crash: …`, its group made by a consumer supervisor in this
 *   process): warn. kafkajs logs it as an error before anything is decided, yet the supervisor
 *   restarts the consumer (and says so, at warn) and only a consumer given up is a failure (said
 *   once, at fatal, by `vigil run` as it exits). An error line for each crash a restart healed,
 *   after a broker restart say, would page whoever alerts on errors. A consumer nobody supervises
 *   (a command's) keeps its error line: it is the only word of its crash.
 */
export function kafkaLineLevel(level: kafkaLogLevel, message: string, fields: Record<string, unknown>): 'error' | 'warn' | 'debug' {
  if (level <= kafkaLogLevel.ERROR) {
    if (isExpectedRefusal(message, fields)) return 'debug';
    const supervised = typeof fields.groupId === 'string' && isSupervisedGroup(fields.groupId);
    return supervised && message.startsWith('Crash: ') ? 'warn' : 'error';
  }
  return level === kafkaLogLevel.WARN ? 'warn' : 'debug';
}

/** kafkajs 2.2.4's words for REBALANCE_IN_PROGRESS and ILLEGAL_GENERATION. */
const REBALANCE_ANSWERS: ReadonlySet<string> = new Set(['The group is rebalancing, so a rejoin is needed', 'Specified group generation id is not valid']);

/**
 * Whether kafkajs logs, as an error, an answer that is expected for a moment and retried: a
 * ListOffsets "not the leader" (a topic created a moment before), a GroupCoordinator "not
 * available" / "loading" (a broker just started, its offsets topic being created or loaded), or a
 * Heartbeat or OffsetCommit "rebalancing" or "generation not valid" (a member joined or left;
 * kafkajs rejoins).
 */
export function isExpectedRefusal(message: string, fields: Record<string, unknown>): boolean {
  const error = typeof fields.error === 'string' ? fields.error : '';
  if (message.startsWith('Response ListOffsets')) return error.includes('not the leader');
  // Every member's heartbeat (or commit) is answered so while its group rebalances, which an
  // instance started or stopped sets off, or with the generation just ended: kafkajs rejoins, and
  // a refused commit is Vigil's to report (at warn; the partition's next commit covers it). Error
  // lines at each deploy paged on-call.
  if (message.startsWith('Response Heartbeat') || message.startsWith('Response OffsetCommit')) return REBALANCE_ANSWERS.has(error);
  if (message.startsWith('Response GroupCoordinator')) return error === 'The group coordinator is not available' || error.startsWith('The coordinator is loading');
  return false;
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

/** The {@link TopicPlan} of one topic, Vigil's own or another it creates (the intake's raw topic). */
export function topicPlanOf(config: Config, topic: string): TopicPlan {
  const plan = topicPlans(config, [topic]).find((candidate) => candidate.topic === topic);
  // topicPlans lists every topic it is given.
  if (plan === undefined) throw new Error(`no topic plan for ${topic}`);
  return plan;
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
 * What a partition's leader answers while it is not yet serving a partition the metadata already
 * gives it: a KRaft broker publishes a new topic's leaders in its metadata before its replica
 * manager has made itself leader of the partitions (kafkajs 2.2.4 names code 6 NOT_LEADER_FOR_PARTITION).
 */
const PARTITION_STARTING = new Set([...TOPIC_SETTING_UP, 'NOT_LEADER_FOR_PARTITION', 'NOT_LEADER_OR_FOLLOWER']);

/**
 * The broker's error type of a failure, if it is one of `expected`: kafkajs retries some of those
 * itself first, then throws its retries' error (KafkaJSNumberOfRetriesExceeded) with the last
 * answer as its `cause`; others it throws as they came.
 */
function expectedType(error: unknown, expected: ReadonlySet<string> = TOPIC_SETTING_UP): string | undefined {
  const failure = error as { type?: unknown; cause?: { type?: unknown } } | undefined;
  const type = failure?.type ?? failure?.cause?.type;
  return typeof type === 'string' && expected.has(type) ? type : undefined;
}

/**
 * Waits until the broker describes each topic (with at least `numPartitions` partitions) and,
 * unless `leaders` is false, every partition has a leader; returns each topic's partition count.
 * The broker's metadata is asked every `everyMs`; answers that a topic is still being set up are
 * waited out, any other error is thrown. Once `timeoutMs` has passed (a request kafkajs is itself
 * retrying may take longer), a retriable StoreUnavailableError names the topics.
 */
export async function untilLed(
  admin: Pick<Admin, 'fetchTopicMetadata'>,
  topics: readonly { topic: string; numPartitions?: number }[],
  options: { timeoutMs?: number; everyMs?: number; leaders?: boolean } = {},
): Promise<Map<string, number>> {
  const { timeoutMs = 30_000, everyMs = 100, leaders = true } = options;
  const deadline = Date.now() + timeoutMs;
  const wanted = new Map(topics.map((plan) => [plan.topic, plan.numPartitions ?? 1]));
  const partitions = new Map<string, number>();
  let waiting = [...wanted.keys()];
  let last = 'no answer yet';
  for (;;) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics: waiting });
      for (const topic of found) {
        const ready = topic.partitions.length >= (wanted.get(topic.name) ?? 1) && (!leaders || topic.partitions.every((partition) => partition.leader >= 0));
        if (ready) partitions.set(topic.name, topic.partitions.length);
      }
      waiting = waiting.filter((topic) => !partitions.has(topic));
      if (waiting.length === 0) return partitions;
      last = leaders ? 'a partition without a leader' : 'not described yet';
    } catch (error) {
      const type = expectedType(error);
      if (type === undefined) throw error;
      last = type;
    }
    if (Date.now() >= deadline) {
      throw new StoreUnavailableError('kafka', `topics not ready after ${timeoutMs} ms (${last}): ${waiting.join(', ')}`);
    }
    await sleep(everyMs);
  }
}

/**
 * Waits until every partition of each topic serves requests: its leader answers a ListOffsets
 * request (as it will a produce request) for each partition. A leader in the metadata is not
 * enough: a KRaft broker describes a new partition's leader a moment before it serves it, and a
 * produce request sent in that moment is refused for that partition ("not the leader") while the
 * request's other partitions take their messages; kafkajs then sends the whole request again, and
 * those partitions hold the messages twice.
 *
 * Each topic's offsets are asked every `everyMs` until they come: kafkajs retries
 * UNKNOWN_TOPIC_OR_PARTITION itself (then throws its retries' error with that cause), but throws
 * "not the leader" at once; both are waited out, any other error is thrown. Once `timeoutMs` has
 * passed, a retriable StoreUnavailableError names the topics still waited for. kafkajs logs each
 * refused request at error level; createKafka's log routing sends those lines to debug.
 */
export async function untilServing(
  admin: Pick<Admin, 'fetchTopicOffsets'>,
  topics: readonly string[],
  options: { timeoutMs?: number; everyMs?: number } = {},
): Promise<void> {
  const { timeoutMs = 30_000, everyMs = 100 } = options;
  const deadline = Date.now() + timeoutMs;
  let waiting = [...new Set(topics)];
  let last = 'no answer yet';
  for (;;) {
    const answers = await Promise.allSettled(waiting.map((topic) => admin.fetchTopicOffsets(topic)));
    const still: string[] = [];
    for (const [position, answer] of answers.entries()) {
      if (answer.status === 'fulfilled') continue;
      const type = expectedType(answer.reason, PARTITION_STARTING);
      if (type === undefined) throw answer.reason;
      last = type;
      still.push(waiting[position] ?? '');
    }
    waiting = still;
    if (waiting.length === 0) return;
    if (Date.now() >= deadline) {
      throw new StoreUnavailableError('kafka', `topics not serving after ${timeoutMs} ms (${last}): ${waiting.join(', ')}`);
    }
    await sleep(everyMs);
  }
}

/**
 * Waits until topics just created can be written to: {@link untilLed}, then {@link untilServing},
 * both within one `timeoutMs`. A retriable StoreUnavailableError names the topics past it.
 * @param options.timeoutMs @defaultValue 30000
 * @param options.everyMs how often the broker is asked. @defaultValue 100
 */
export async function untilReady(
  admin: Pick<Admin, 'fetchTopicMetadata' | 'fetchTopicOffsets'>,
  topics: readonly { topic: string; numPartitions?: number }[],
  options: { timeoutMs?: number; everyMs?: number } = {},
): Promise<void> {
  const { timeoutMs = 30_000, everyMs = 100 } = options;
  const deadline = Date.now() + timeoutMs;
  await untilLed(admin, topics, { timeoutMs, everyMs });
  // What the leaders' wait left of the time: asked once at least, even if nothing is left.
  await untilServing(admin, topics.map((plan) => plan.topic), { timeoutMs: Math.max(0, deadline - Date.now()), everyMs });
}

/**
 * What to check when the brokers can't be reached. A TLS listener drops a plaintext client's
 * connection without a word ("Closed connection"): that is the likelier mistake then, not the
 * address (a SASL_SSL port reached without KAFKA_TLS said only "check KAFKA_BROKERS").
 */
export function kafkaHint(config: Config, message: string): string {
  if (!config.kafka.tls && config.kafka.caFile === undefined && /closed connection/i.test(message)) {
    return 'the broker closed the connection: if its listener takes TLS (SASL_SSL or SSL), set KAFKA_TLS=on (and KAFKA_TLS_CA_FILE for a private CA); else check KAFKA_BROKERS';
  }
  return 'check KAFKA_BROKERS and that Kafka is up';
}

/** {@link ensureTopics}, reporting every topic: created or existing, and its partitions. */
export async function ensureTopicStates(kafka: Kafka, config: Config, extra: readonly string[] = []): Promise<TopicState[]> {
  const admin = kafka.admin();
  try {
    await admin.connect();
  } catch (error) {
    // After kafkajs's own retries: say which service and setting, as for Elasticsearch, rather
    // than kafkajs's bare "Connection error".
    const message = error instanceof Error ? error.message : String(error);
    throw new StoreUnavailableError('kafka', `unreachable at ${config.kafka.brokers.join(',')}, so Vigil's topics could not be checked (${message}); ${kafkaHint(config, message)}`, error);
  }
  try {
    const plans = topicPlans(config, extra);
    const existing = new Set(await admin.listTopics());
    const missing = plans.filter((plan) => !existing.has(plan.topic));
    if (missing.length > 0) {
      // kafkajs's own wait (`waitForLeaders`) gives up on UNKNOWN_TOPIC_OR_PARTITION, which a
      // KRaft broker answers until the new topic's metadata has reached it (seconds under load).
      await admin.createTopics({ waitForLeaders: false, topics: missing });
      await untilReady(admin, missing);
    }
    const created = new Set(missing.map((plan) => plan.topic));
    const present = plans.filter((plan) => !created.has(plan.topic)).map((plan) => plan.topic);
    // A topic another instance created a moment ago is listed before every broker describes it.
    // Existing topics are not asked whether they serve: a partition offline (a broker down) must
    // not stop Vigil from starting, and the consumer waits out a partition that isn't served yet.
    const partitions = present.length > 0 ? await untilLed(admin, present.map((topic) => ({ topic })), { leaders: false }) : new Map<string, number>();
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

/**
 * The partitions of `topics` holding messages written more than `olderThanMs` before `nowMs` (by
 * their Kafka timestamp) that a consumer group has not committed yet: work it is behind on. A
 * group busy with a live stream commits within seconds and has none; a stalled or catching-up one
 * has some. Undefined when the group has committed nothing on these topics (it does not exist, or
 * runs under another name): then nothing can be said of it.
 * @returns `topic:partition` of each such partition
 */
export async function unreadOlderThan(
  admin: Pick<Admin, 'fetchOffsets' | 'fetchTopicOffsets' | 'fetchTopicOffsetsByTimestamp'>,
  groupId: string,
  topics: readonly string[],
  olderThanMs: number,
  nowMs: number,
): Promise<string[] | undefined> {
  const committed = await admin.fetchOffsets({ groupId, topics: [...topics] });
  const next = new Map<string, bigint>();
  for (const { topic, partitions } of committed) for (const { partition, offset } of partitions) if (BigInt(offset) >= 0n) next.set(`${topic}:${partition}`, BigInt(offset));
  if (next.size === 0) return undefined;
  const behind: string[] = [];
  for (const topic of topics) {
    const [bounds, written] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchTopicOffsetsByTimestamp(topic, nowMs - olderThanMs)]);
    const low = new Map(bounds.map(({ partition, low: first }) => [partition, BigInt(first)]));
    for (const { partition, offset } of written) {
      // The first message written at or after the cut: everything before it is older.
      const from = next.get(`${topic}:${partition}`) ?? low.get(partition) ?? 0n;
      if (BigInt(offset) > from) behind.push(`${topic}:${partition}`);
    }
  }
  return behind;
}
