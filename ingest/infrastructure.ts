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

/** Creates the event and dead-letter topics that don't exist yet; leaves existing ones alone. */
export async function ensureTopics(kafka: Kafka, config: Config): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const wanted = [
      config.topics.policy,
      config.topics.invocation,
      config.topics.device,
      config.topics.deadLetter,
      config.topics.detections,
      config.alerting.notificationDeadLetterTopic,
    ];
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
