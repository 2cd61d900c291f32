import { Client, type estypes } from '@elastic/elasticsearch';
import { Kafka, logLevel as kafkaLogLevel, type LogEntry } from 'kafkajs';
import { alertIndexNames, alertMappings, alertTemplate, detectionIndexNames, detectionMappings, detectionTemplate, eventMappings, eventTemplates, indexNames, type Family } from '../schemas';
import type { Config, Logger } from '../platform';

/** The topic of each event family, from configuration. */
export function topicOf(config: Config, family: Family): string {
  return config.topics[family];
}

/** A kafkajs client whose log lines go through pino. */
export function createKafka(config: Config, logger: Logger, clientId = config.kafka.clientId): Kafka {
  const log = logger.child({ component: 'kafkajs' });
  return new Kafka({
    clientId,
    brokers: [...config.kafka.brokers],
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

/** Every topic Vigil uses: the event families, dead letters, detections, notification dead letters. */
export function vigilTopics(config: Config): string[] {
  const { policy, invocation, device, deadLetter, detections } = config.topics;
  return [policy, invocation, device, deadLetter, detections, config.alerting.notificationDeadLetterTopic];
}

/** Creates the event and dead-letter topics that don't exist yet; leaves existing ones alone. */
export async function ensureTopics(kafka: Kafka, config: Config): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const wanted = vigilTopics(config);
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

/** An Elasticsearch client for the configured node. */
export function createElasticsearch(config: Config): Client {
  return new Client({
    node: config.elasticsearch.url,
    ...(config.elasticsearch.apiKey ? { auth: { apiKey: config.elasticsearch.apiKey } } : {}),
    requestTimeout: 30_000,
    maxRetries: 0, // retries are the bulk indexer's business, with backoff and pause
  });
}

/** Installs (or updates) the composable templates of the event indices. Idempotent. */
export async function installTemplates(client: Client, config: Config): Promise<void> {
  const { componentTemplate, indexTemplate } = eventTemplates(config.indices.prefix, config.indices);
  // The template bodies live in schemas/, which imports nothing but zod: typed at this edge.
  await client.cluster.putComponentTemplate({
    name: componentTemplate.name,
    ...componentTemplate.body,
  } as estypes.ClusterPutComponentTemplateRequest);
  await client.indices.putIndexTemplate({ name: indexTemplate.name, ...indexTemplate.body });
  const detections = detectionTemplate(config.indices.prefix, config.indices);
  await client.indices.putIndexTemplate({ name: detections.name, ...detections.body });
  // Templates shape only indices created after them: today's index gets new fields added in
  // place (adding fields is always allowed), so an upgrade doesn't refuse documents until midnight.
  const alerts = alertTemplate(config.indices.prefix, config.indices);
  await client.indices.putIndexTemplate({ name: alerts.name, ...alerts.body });
  const mappingOf = (mappings: typeof eventMappings | typeof detectionMappings | typeof alertMappings) =>
    ({ dynamic: mappings.dynamic, dynamic_templates: mappings.dynamic_templates, properties: mappings.properties }) as unknown as Omit<
      estypes.IndicesPutMappingRequest,
      'index'
    >;
  await client.indices.putMapping({ index: indexNames(config.indices.prefix).eventPattern, allow_no_indices: true, ...mappingOf(eventMappings) });
  await client.indices.putMapping({ index: detectionIndexNames(config.indices.prefix).pattern, allow_no_indices: true, ...mappingOf(detectionMappings) });
  await client.indices.putMapping({ index: alertIndexNames(config.indices.prefix).index, allow_no_indices: true, ignore_unavailable: true, ...mappingOf(alertMappings) });
}

/**
 * Removes what `installTemplates` and the pipeline created under an index prefix: the indices
 * (by name: a wildcard delete may be refused) and the templates. For tests and benchmarks, which
 * each run under a prefix of their own. Idempotent.
 */
export async function removeIndicesAndTemplates(client: Client, prefix: string): Promise<void> {
  const found = await client.indices.get({ index: `${prefix}-*`, allow_no_indices: true, ignore_unavailable: true, expand_wildcards: 'all' });
  const indices = Object.keys(found);
  if (indices.length > 0) await client.indices.delete({ index: indices });
  const names = indexNames(prefix);
  for (const template of [names.indexTemplate, detectionIndexNames(prefix).indexTemplate, alertIndexNames(prefix).indexTemplate]) {
    await client.indices.deleteIndexTemplate({ name: template }, { ignore: [404] });
  }
  await client.cluster.deleteComponentTemplate({ name: names.componentTemplate }, { ignore: [404] });
}

/** Deletes those of `vigilTopics(config)` that exist (tests, benchmarks); returns their names. */
export async function deleteTopics(kafka: Kafka, config: Config): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const topics = vigilTopics(config).filter((topic) => existing.has(topic));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 10_000 });
    return topics;
  } finally {
    await admin.disconnect();
  }
}
