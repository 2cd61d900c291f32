import type { Client } from '@elastic/elasticsearch';
import type { Kafka } from 'kafkajs';
import { vigilTopics, type Config } from '../platform';
import { alertIndexNames, detectionIndexNames, indexNames, pipelineIndexNames } from '../schemas';

/**
 * Removes what `installTemplates` and the pipeline created under an index prefix: the indices
 * (by name: a wildcard delete may be refused) and the templates. For tests, benchmarks and
 * `vigil evaluate`, which each run under a prefix of their own. Idempotent.
 */
export async function removeIndicesAndTemplates(client: Client, prefix: string): Promise<void> {
  const found = await client.indices.get({ index: `${prefix}-*`, allow_no_indices: true, ignore_unavailable: true, expand_wildcards: 'all' });
  const indices = Object.keys(found);
  if (indices.length > 0) await client.indices.delete({ index: indices });
  const names = indexNames(prefix);
  for (const template of [names.indexTemplate, detectionIndexNames(prefix).indexTemplate, alertIndexNames(prefix).indexTemplate, pipelineIndexNames(prefix).indexTemplate]) {
    await client.indices.deleteIndexTemplate({ name: template }, { ignore: [404] });
  }
  await client.cluster.deleteComponentTemplate({ name: names.componentTemplate }, { ignore: [404] });
}

/** Deletes those of `vigilTopics(config)` that exist (tests, benchmarks, `vigil evaluate`); returns their names. */
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
