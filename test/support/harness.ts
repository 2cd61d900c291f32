import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import type { Client } from '@elastic/elasticsearch';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { createElasticsearch, createKafka, createLogger, loadConfig, sleep, type Config, type Logger } from '../../platform';
import { deleteTopics, removeIndicesAndTemplates } from '../../scripts/cleanup';
import { alertIndexNames, indexNames } from '../../schemas';
import { createVigil, type Vigil, type VigilOverrides } from '../../app';

/**
 * Environment variables whose topics, groups, Redis prefix and indices are new and unique to one
 * test (for a child process, or for {@link isolatedConfig}).
 */
export function isolatedEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const id = randomBytes(4).toString('hex');
  return {
    VIGIL_TOPIC_POLICY: `it-${id}.policy`,
    VIGIL_TOPIC_INVOCATION: `it-${id}.invocation`,
    VIGIL_TOPIC_DEVICE: `it-${id}.device`,
    VIGIL_TOPIC_DEADLETTER: `it-${id}.deadletter`,
    VIGIL_TOPIC_DETECTIONS: `it-${id}.detections`,
    VIGIL_TOPIC_NOTIFICATION_DEADLETTER: `it-${id}.notifications-deadletter`,
    VIGIL_ALERTER_GROUP: `it-${id}-alerter`,
    VIGIL_TOPIC_NOTIFICATIONS: `it-${id}.notifications`,
    VIGIL_NOTIFIER_GROUP: `it-${id}-notifier`,
    VIGIL_REDIS_PREFIX: `it-${id}`,
    VIGIL_RULES_WATCH: 'false',
    VIGIL_TOPIC_PARTITIONS: '2',
    VIGIL_CONSUMER_GROUP: `it-${id}-ingest`,
    VIGIL_INDEX_PREFIX: `it-${id}`,
    // The alerter holds detections for the allowed lateness before grouping them: tests that
    // wait for alerts get them within a second (tests of event-time grouping set their own).
    VIGIL_ALERT_LATENESS_MS: '500',
    // Many tests run Vigil side by side: none serves HTTP unless it asks for a port.
    VIGIL_HTTP_PORT: '0',
    // Nor writes pipeline metrics (a write at every stop), unless it asks for an interval.
    VIGIL_PIPELINE_STATS_INTERVAL_MS: '0',
    ...overrides,
  };
}

/** A configuration whose topics, group and indices are new and unique to one test. */
export function isolatedConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({ ...process.env, ...isolatedEnv(overrides) });
}

/**
 * Both ways the ingest consumer can be driven (docs/pipeline.md#fetching-ahead), for tests that run
 * once per loop: `ahead` is what the configuration must say, so a test can check it runs the loop it names.
 */
export const CONSUMER_LOOPS = [
  { loop: 'fetching ahead (the default)', env: { VIGIL_FETCH_AHEAD: 'on' }, ahead: true },
  { loop: "kafkajs's own loop", env: { VIGIL_FETCH_AHEAD: 'off' }, ahead: false },
];

/** Quiet logs unless LOG_LEVEL asks otherwise. */
export const testLogger: Logger = createLogger({ level: process.env.LOG_LEVEL ?? 'error' });

export interface Stack {
  config: Config;
  kafka: Kafka;
  elasticsearch: Client;
  /** Deletes the test's topics, indices and templates. */
  cleanup(): Promise<void>;
}

export function openStack(config: Config): Stack {
  const kafka = createKafka(config, testLogger, `it-${config.indices.prefix}`);
  const elasticsearch = createElasticsearch(config);
  return {
    config,
    kafka,
    elasticsearch,
    async cleanup() {
      await removeIndicesAndTemplates(elasticsearch, config.indices.prefix);
      await deleteTopics(kafka, config);
    },
  };
}

/**
 * Vigil as `vigil run` builds it (the one composition root), on the test's clients: only the
 * ingest role unless asked, and only what it opened itself is closed by `stop()`.
 */
export function vigilOn(stack: Stack, overrides: VigilOverrides = {}, config: Config = stack.config): Vigil {
  return createVigil(config, { roles: ['ingest'], logger: testLogger, kafka: stack.kafka, elasticsearch: stack.elasticsearch, ...overrides });
}

/**
 * One isolated stack and one Vigil on it (ingest role unless asked) for a whole describe block:
 * started before its tests, stopped and cleaned up after them. Read `.stack` and `.vigil` inside
 * the tests, not at definition time.
 */
export function withVigil(env: Record<string, string> = {}, overrides: VigilOverrides = {}): { readonly stack: Stack; readonly vigil: Vigil } {
  const state: { stack?: Stack; vigil?: Vigil } = {};
  beforeAll(async () => {
    state.stack = openStack(isolatedConfig(env));
    state.vigil = vigilOn(state.stack, overrides);
    await state.vigil.start();
  });
  afterAll(async () => {
    await state.vigil?.stop();
    await state.stack?.cleanup();
  });
  return {
    get stack(): Stack {
      if (!state.stack) throw new Error('withVigil: the stack exists only once its beforeAll ran');
      return state.stack;
    },
    get vigil(): Vigil {
      if (!state.vigil) throw new Error('withVigil: Vigil exists only once its beforeAll ran');
      return state.vigil;
    },
  };
}

/** Polls until `check` returns true, or fails with `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    // A check that throws is "not yet" (a new index whose shard is still starting answers
    // no_shard_available); only at the deadline does its error become the test's.
    try {
      if (await check()) return;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, lastError === undefined ? undefined : { cause: lastError });
    }
    await sleep(200);
  }
}

/** The number of event documents under the config's prefix, after a refresh. */
export async function countEvents(stack: Stack, query?: object): Promise<number> {
  const index = indexNames(stack.config.indices.prefix).eventPattern;
  await stack.elasticsearch.indices.refresh({ index, allow_no_indices: true, ignore_unavailable: true });
  const { count } = await stack.elasticsearch.count({ index, allow_no_indices: true, ignore_unavailable: true, ...(query ? { query } : {}) });
  return count;
}

/**
 * The messages a topic holds (its partitions' end offsets less their start), for topics no
 * transactional producer wrote to: control records take offsets too.
 */
export async function messagesOn(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, partition) => sum + Number(partition.high) - Number(partition.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Reads `expected` messages, each with its partition, from the start of a topic with a throwaway group. */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  expected: number,
  timeoutMs = 30_000,
  distinctBy?: (message: KafkaMessage) => string,
): Promise<Array<KafkaMessage & { partition: number }>> {
  const consumer = kafka.consumer({ groupId: `it-reader-${randomBytes(4).toString('hex')}` });
  const messages: Array<KafkaMessage & { partition: number }> = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: ({ partition, message }) => {
      messages.push({ ...message, partition });
      return Promise.resolve();
    },
  });
  try {
    // With `distinctBy`, `expected` distinct messages (a producer's retried request may have written one twice).
    const count = (): number => (distinctBy ? new Set(messages.map(distinctBy)).size : messages.length);
    await waitFor(`${expected} messages on ${topic}`, () => count() >= expected, timeoutMs);
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

/** The alerts a run indexed (their latest records), as incidents: id, group, rules, count, status; sorted, to compare runs. */
export async function indexedIncidents(stack: Stack): Promise<string[]> {
  const index = alertIndexNames(stack.config.indices.prefix).index;
  await stack.elasticsearch.indices.refresh({ index, allow_no_indices: true, ignore_unavailable: true });
  const page = await stack.elasticsearch.search<Record<string, unknown>>({ index, size: 1000, ignore_unavailable: true, allow_no_indices: true, query: { match_all: {} } });
  return page.hits.hits
    .flatMap((hit) => (hit._source ? [hit._source] : []))
    .map((doc) => {
      const kibana = (doc.kibana as { alert: { uuid: string; status: string } }).alert;
      const vigil = (doc.vigil as { alert: { group_key: string; count: number; rules: string[] } }).alert;
      return `${kibana.uuid} ${vigil.group_key} [${[...vigil.rules].sort().join(',')}] x${vigil.count} ${kibana.status}`;
    })
    .sort();
}

/** A free loopback port with nothing listening on it (yet). */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  const { port } = probe.address() as AddressInfo;
  await new Promise((done) => probe.close(done));
  return port;
}
