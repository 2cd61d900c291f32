/**
 * Pipeline metrics in Elasticsearch: every interval, a Vigil process indexes what its parts
 * counted since the previous time (the same running totals `/metrics` serves) as ECS
 * `event.kind: metric` documents, one per counter that moved, in one bulk request. The hot path
 * is untouched: the parts keep their counters as they always did, and this reads them off the
 * path, so a flood of dead letters costs one document per reason per interval, not one write per
 * dead letter. See docs/operations.md#pipeline-metrics-in-elasticsearch.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Client } from '@elastic/elasticsearch';
import type { AlerterStats, DestinationStats } from '../detectors';
import type { IngestStats } from '../ingest';
import { errorMessage, installPipelineTemplate, type Config, type Logger } from '../platform';
import { ECS_VERSION, pipelineIndexName, type PipelineLabels, type PipelineMetric, type PipelineMetricDocument } from '../schemas';

/** One running total a part keeps, with its labels. */
export interface PipelineCounter {
  metric: PipelineMetric;
  labels: PipelineLabels;
  total: number;
}

/** Where the running totals come from: the parts this process runs. */
export interface PipelineCounterSources {
  ingest?: () => IngestStats;
  alerter?: () => AlerterStats;
  destinations?: () => Record<string, DestinationStats>;
}

/** Every running total of the parts, read now. */
export function readPipelineCounters(sources: PipelineCounterSources): PipelineCounter[] {
  const counters: PipelineCounter[] = [];
  const add = (metric: PipelineMetric, labels: PipelineLabels, total: number | undefined): void => {
    counters.push({ metric, labels, total: total ?? 0 });
  };
  if (sources.ingest) {
    const stats = sources.ingest();
    for (const [family, total] of Object.entries(stats.consumedByFamily)) add('events_in', { family }, total);
    for (const [family, total] of Object.entries(stats.indexedByFamily)) add('events_indexed', { family }, total);
    for (const [reason, total] of Object.entries(stats.deadLetteredByReason)) add('dead_letters', { reason }, total);
  }
  if (sources.alerter) {
    const stats = sources.alerter();
    add('alerts', { change: 'opened' }, stats.opened);
    add('alerts', { change: 'escalated' }, stats.escalated);
    add('alerts', { change: 'resolved' }, stats.resolved);
  }
  if (sources.destinations) {
    for (const [destination, stats] of Object.entries(sources.destinations())) {
      add('notifications', { destination, outcome: 'sent' }, stats.sent);
      add('notifications', { destination, outcome: 'retried' }, stats.retried);
      add('notifications', { destination, outcome: 'failed' }, stats.failed);
    }
  }
  return counters;
}

/** Who counted: the process a pipeline metric document is about. */
export interface PipelineIdentity {
  instance: string;
  host: string;
  roles: readonly string[];
  runId: string;
}

/** The document of one counter's delta over one interval. */
export function toPipelineMetricDocument(counter: PipelineCounter, delta: number, interval: { start: Date; end: Date }, identity: PipelineIdentity): PipelineMetricDocument {
  const { start, end } = interval;
  return {
    '@timestamp': end.toISOString(),
    ecs: { version: ECS_VERSION },
    event: { kind: 'metric', module: 'vigil', dataset: 'vigil.pipeline', start: start.toISOString(), end: end.toISOString(), duration: Math.max(0, end.getTime() - start.getTime()) * 1_000_000 },
    service: { name: 'vigil', node: { name: identity.instance, roles: [...identity.roles] } },
    host: { name: identity.host },
    vigil: { pipeline: { metric: counter.metric, ...counter.labels, count: delta, run_id: identity.runId } },
  };
}

/** Options of {@link createPipelineStatsReporter}. */
export interface PipelineStatsOptions {
  elasticsearch: Client;
  config: Config;
  logger: Logger;
  /** The roles this process runs (`service.node.roles`). */
  roles: readonly string[];
  /** The running totals, read at each interval. */
  read: () => PipelineCounter[];
  /** @defaultValue VIGIL_PIPELINE_STATS_INTERVAL_MS */
  intervalMs?: number;
  /** @defaultValue () => new Date() */
  clock?: () => Date;
}

/** A started reporter writes every interval; {@link PipelineStatsReporter.stop} writes the last one. */
export interface PipelineStatsReporter {
  start(): void;
  /** Writes what was counted since the previous document, then stops. Resolves even when Elasticsearch is away (it logs). */
  stop(): Promise<void>;
  /** Writes what was counted since the previous document now. */
  flush(): Promise<void>;
  /** Documents written, and documents not yet acknowledged (kept for the next interval). */
  stats(): { written: number; pending: number; dropped: number };
}

/** How many unacknowledged documents are kept for the next interval while Elasticsearch is away. */
const MAX_PENDING = 10_000;
/** The last write at stop may not hold the shutdown longer than this. */
const FINAL_WRITE_TIMEOUT_MS = 5000;

interface Pending {
  id: string;
  index: string;
  document: PipelineMetricDocument;
}

const seriesKey = (counter: PipelineCounter): string =>
  [counter.metric, counter.labels.family, counter.labels.reason, counter.labels.change, counter.labels.destination, counter.labels.outcome].map((part) => part ?? '').join('\u0000');

/**
 * Counts deltas, not totals: each document holds what moved since the same process's previous
 * document, so sums over time are right across restarts (a new process starts from zero and
 * so does its first delta) and across instances (each counts its own). A document keeps its id
 * until Elasticsearch acknowledges it (created, or 409: a retry of one that landed), so a write
 * that timed out but landed is not counted twice.
 */
export function createPipelineStatsReporter(options: PipelineStatsOptions): PipelineStatsReporter {
  const { elasticsearch, config, read } = options;
  const logger = options.logger.child({ component: 'pipeline-stats' });
  const clock = options.clock ?? (() => new Date());
  const intervalMs = options.intervalMs ?? config.pipelineStats.intervalMs;
  const host = hostname();
  const instance = config.pipelineStats.instance ?? host;
  const runId = randomUUID();
  const reported = new Map<string, number>();
  let pending: Pending[] = [];
  let sequence = 0;
  let since = clock();
  let templateInstalled = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const counts = { written: 0, dropped: 0 };

  /** Turns what moved since the previous interval into documents (and moves the baseline). */
  function collect(): void {
    const end = clock();
    const documents: Pending[] = [];
    for (const counter of read()) {
      const key = seriesKey(counter);
      const before = reported.get(key) ?? 0;
      // A total below the baseline was reset (a part rebuilt): all of it is new.
      const delta = counter.total >= before ? counter.total - before : counter.total;
      reported.set(key, counter.total);
      if (delta <= 0) continue;
      const document = toPipelineMetricDocument(counter, delta, { start: since, end }, { instance, host, roles: options.roles, runId });
      documents.push({ id: `${runId}-${sequence}-${documents.length}`, index: pipelineIndexName(config.indices.prefix, document['@timestamp']), document });
    }
    sequence++;
    since = end;
    pending.push(...documents);
    if (pending.length > MAX_PENDING) {
      const dropped = pending.length - MAX_PENDING;
      pending = pending.slice(dropped);
      counts.dropped += dropped;
      logger.warn({ dropped }, 'Elasticsearch has not taken the pipeline metrics for a while: dropped the oldest (the counters on /metrics still have them)');
    }
  }

  /** Writes the pending documents; keeps those Elasticsearch did not acknowledge. */
  async function write(requestTimeout?: number): Promise<void> {
    if (pending.length === 0) return;
    const requestOptions = requestTimeout === undefined ? {} : { requestTimeout };
    if (!templateInstalled) {
      // Without its strict template, the first write would create the index with guessed mappings.
      await installPipelineTemplate(elasticsearch, config, requestOptions);
      templateInstalled = true;
    }
    const batch = pending;
    const response = await elasticsearch.bulk({ operations: batch.flatMap(({ id, index, document }) => [{ create: { _index: index, _id: id } }, document]) }, requestOptions);
    const kept: Pending[] = [];
    response.items.forEach((item, position) => {
      const result = item.create;
      const entry = batch[position];
      if (!entry || !result) return;
      if (result.status === 201 || result.status === 409) {
        if (result.status === 201) counts.written++;
        return;
      }
      // 429 and 5xx pass; anything else (a mapping refused) never will.
      if (result.status === 429 || result.status >= 500) kept.push(entry);
      else {
        counts.dropped++;
        logger.error({ status: result.status, error: result.error, metric: entry.document.vigil.pipeline.metric }, 'Elasticsearch refused a pipeline metric document');
      }
    });
    // Documents collected while this write ran are behind the batch.
    pending = [...kept, ...pending.slice(batch.length)];
  }

  function tick(requestTimeout?: number): Promise<void> {
    const next = running.then(async () => {
      try {
        // Inside the try: a part whose stats() throws must not end the writing for good.
        collect();
        await write(requestTimeout);
      } catch (error) {
        logger.warn({ err: error, pending: pending.length }, `could not write the pipeline metrics (${errorMessage(error)}); kept for the next interval`);
      }
    });
    running = next;
    return next;
  }

  function schedule(): void {
    if (stopped || intervalMs <= 0) return;
    timer = setTimeout(() => {
      void tick().finally(schedule);
    }, intervalMs);
    // Never what keeps a process alive: stop() writes the last interval.
    timer.unref();
  }

  return {
    start() {
      since = clock();
      schedule();
      if (intervalMs > 0) logger.info({ intervalMs, instance, runId }, 'writing pipeline metrics to Elasticsearch');
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      await tick(FINAL_WRITE_TIMEOUT_MS);
      if (pending.length > 0) logger.warn({ pending: pending.length }, 'stopped with pipeline metrics Elasticsearch did not take (the counters on /metrics had them)');
    },
    flush: () => tick(),
    stats: () => ({ written: counts.written, pending: pending.length, dropped: counts.dropped }),
  };
}
