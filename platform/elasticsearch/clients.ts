import { readFileSync } from 'node:fs';
import { Client, type estypes } from '@elastic/elasticsearch';
import {
  ALERT_RETYPED_FIELDS,
  EVENT_RETYPED_FIELDS,
  alertIndexNames,
  alertMappings,
  alertTemplate,
  detectionIndexNames,
  detectionMappings,
  detectionTemplate,
  eventMappings,
  eventTemplates,
  indexNames,
  mappingsForExistingIndices,
  pipelineIndexNames,
  pipelineMappings,
  pipelineTemplate,
  TEMPLATE_VERSION,
} from '../../schemas';
import type { Config } from '../config';
import { StoreUnavailableError } from '../errors';

function authOf({ apiKey, username, password }: Config['elasticsearch']): { auth?: { apiKey: string } | { username: string; password: string } } {
  if (apiKey !== undefined) return { auth: { apiKey } };
  if (username !== undefined && password !== undefined) return { auth: { username, password } };
  return {};
}

/** An Elasticsearch client for the configured node. */
export function createElasticsearch(config: Config): Client {
  return new Client({
    node: config.elasticsearch.url,
    ...authOf(config.elasticsearch),
    ...(config.elasticsearch.caFile === undefined ? {} : { tls: { ca: readFileSync(config.elasticsearch.caFile, 'utf8') } }),
    requestTimeout: 30_000,
    maxRetries: 0, // retries are the bulk indexer's business, with backoff and pause
    // The client's default ('replace') clones each failed request's diagnostic key by key to
    // blank credentials, and a bulk body is a Buffer: a 2 MB body took about 2 s of CPU per
    // failure, and with Elasticsearch away during a backlog the event loop stalled for seconds
    // (probes timed out, SIGTERM waited). 'remove' drops the headers and connection instead;
    // Vigil's own logger redacts the secrets it knows.
    redaction: { type: 'remove' },
  });
}

/**
 * Installs (or updates) the template of the pipeline metric indices, and adds its new fields to
 * the existing ones. Idempotent. The pipeline metrics reporter calls it itself, so a process of
 * any role can write them.
 */
export async function installPipelineTemplate(client: Client, config: Config, options: { requestTimeout?: number } = {}): Promise<void> {
  const template = pipelineTemplate(config.indices.prefix, config.indices);
  await client.indices.putIndexTemplate({ name: template.name, ...template.body }, options);
  await client.indices.putMapping(
    {
      index: pipelineIndexNames(config.indices.prefix).pattern,
      allow_no_indices: true,
      ...(mappingsForExistingIndices(pipelineMappings, []) as unknown as Omit<estypes.IndicesPutMappingRequest, 'index'>),
    },
    options,
  );
}

/** What {@link installTemplates} did: `newer` when it left a later build's templates in place. */
export interface TemplatesInstalled {
  /** The installed templates of a later version than this build's, by name: nothing was put. */
  newer?: { name: string; version: number }[];
}

/**
 * The installed index templates among `names` whose version is above this build's: a later Vigil
 * put them (a rolling upgrade, with an instance of the build before restarting).
 */
async function newerTemplates(client: Client, prefix: string, names: readonly string[]): Promise<{ name: string; version: number }[]> {
  let found: estypes.IndicesGetIndexTemplateResponse;
  try {
    // One request: a name may not hold a comma, but a pattern may match them all.
    found = await client.indices.getIndexTemplate({ name: `${prefix}-*` });
  } catch (error) {
    // None of them yet (a first start): Elasticsearch answers 404.
    if ((error as { meta?: { statusCode?: number } }).meta?.statusCode === 404) return [];
    throw error;
  }
  return found.index_templates.flatMap(({ name, index_template: template }) =>
    names.includes(name) && typeof template.version === 'number' && template.version > TEMPLATE_VERSION ? [{ name, version: template.version }] : [],
  );
}

/**
 * Installs (or updates) the templates of every index Vigil writes (events, detections, alerts,
 * pipeline metrics). Idempotent. When Elasticsearch holds a later build's templates, it puts
 * nothing: a rolling upgrade's older instance, restarting, put its own back, and the next day's
 * indices were created without the later build's fields, which then refused its documents.
 */
export async function installTemplates(client: Client, config: Config): Promise<TemplatesInstalled> {
  const { componentTemplate, indexTemplate } = eventTemplates(config.indices.prefix, config.indices);
  const detections = detectionTemplate(config.indices.prefix, config.indices);
  const alerts = alertTemplate(config.indices.prefix, config.indices);
  let newer: { name: string; version: number }[];
  try {
    newer = await newerTemplates(client, config.indices.prefix, [indexTemplate.name, detections.name, alerts.name]);
  } catch (error) {
    throw installError(error);
  }
  if (newer.length > 0) return { newer };
  const mappingOf = (mappings: typeof eventMappings | typeof detectionMappings | typeof alertMappings, retyped: readonly string[]) =>
    mappingsForExistingIndices(mappings, retyped) as unknown as Omit<estypes.IndicesPutMappingRequest, 'index'>;
  // The requests are independent but for the event index template, which composes the component
  // template: they go out together (start-up waits for the slowest, not for nine round trips in
  // a row; Elasticsearch's master applies them one by one either way). Every one settles before
  // a failure is thrown.
  const outcomes = await Promise.allSettled([
    (async () => {
      // The template bodies live in schemas/, which imports nothing but zod: typed at this edge.
      await client.cluster.putComponentTemplate({
        name: componentTemplate.name,
        ...componentTemplate.body,
      } as estypes.ClusterPutComponentTemplateRequest);
      await client.indices.putIndexTemplate({ name: indexTemplate.name, ...indexTemplate.body });
    })(),
    client.indices.putIndexTemplate({ name: detections.name, ...detections.body }),
    client.indices.putIndexTemplate({ name: alerts.name, ...alerts.body }),
    // Templates shape only indices created after them: today's index gets new fields added in
    // place (adding fields is always allowed), so an upgrade doesn't refuse documents until midnight.
    // A field whose type changed is left out: an existing index keeps its type (a string still fits).
    client.indices.putMapping({ index: indexNames(config.indices.prefix).eventPattern, allow_no_indices: true, ...mappingOf(eventMappings, EVENT_RETYPED_FIELDS) }),
    client.indices.putMapping({ index: detectionIndexNames(config.indices.prefix).pattern, allow_no_indices: true, ...mappingOf(detectionMappings, []) }),
    client.indices.putMapping({
      index: alertIndexNames(config.indices.prefix).index,
      allow_no_indices: true,
      ignore_unavailable: true,
      ...mappingOf(alertMappings, ALERT_RETYPED_FIELDS),
    }),
    installPipelineTemplate(client, config),
  ]);
  const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed === undefined) return {};
  throw installError(failed.reason);
}

/**
 * What a failed template request is thrown as. Unreachable: said so, naming the service and the
 * setting (the client's own error carries the whole request, a template body of several kB, into
 * the log line, and is left out); anything else as it came.
 */
function installError(error: unknown): unknown {
  if (error instanceof Error && UNREACHABLE_ERRORS.has(error.name)) {
    return new StoreUnavailableError('elasticsearch', `unreachable, so Vigil's index templates could not be installed (${error.message}); check ELASTICSEARCH_URL and that Elasticsearch is up`);
  }
  return error;
}

/** The Elasticsearch client's errors for a server it could not talk to (as opposed to an answer refusing the request). */
const UNREACHABLE_ERRORS = new Set(['ConnectionError', 'TimeoutError', 'NoLivingConnectionsError']);

