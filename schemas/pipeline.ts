import { managedTemplate, type ECS_VERSION, type IndexTemplate } from './elasticsearch';

/**
 * Pipeline metrics in Elasticsearch: what a Vigil process counted in one interval (events in and
 * indexed per family, dead letters by reason, alert changes, notifications by destination and
 * outcome), as ECS `event.kind: metric` documents in `<prefix>-pipeline-<YYYY.MM.DD>`. The
 * counts are deltas since the same process's previous document, so a sum over any time range is
 * what happened in it, across restarts and instances (see docs/operations.md#pipeline-metrics-in-elasticsearch).
 */

/** What a pipeline metric document counts (`vigil.pipeline.metric`). */
export const PIPELINE_METRICS = ['events_in', 'events_indexed', 'dead_letters', 'alerts', 'notifications'] as const;
export type PipelineMetric = (typeof PIPELINE_METRICS)[number];

/** The labels of a counter; which ones a metric has is fixed by the metric. */
export interface PipelineLabels {
  /** events_in, events_indexed: the event family (of the topic for events in). */
  family?: string;
  /** dead_letters: the dead-letter reason code. */
  reason?: string;
  /** alerts: opened, escalated, resolved. */
  change?: string;
  /** notifications: the destination's name. */
  destination?: string;
  /** notifications: sent, retried, failed. */
  outcome?: string;
}

/** One counter's delta over one interval of one process, as indexed. */
export interface PipelineMetricDocument {
  '@timestamp': string;
  ecs: { version: typeof ECS_VERSION };
  event: {
    kind: 'metric';
    module: 'vigil';
    dataset: 'vigil.pipeline';
    /** Where the interval began: the previous document's end, or when the process started counting. */
    start: string;
    end: string;
    /** The interval, in nanoseconds (ECS). */
    duration: number;
  };
  /** The Vigil process that counted: `node.name` the instance, `node.roles` its roles. */
  service: { name: 'vigil'; node: { name: string; roles: string[] } };
  host: { name: string };
  vigil: {
    pipeline: PipelineLabels & {
      metric: PipelineMetric;
      /** How many since the previous document of the same process (never cumulative). */
      count: number;
      /** One value per process start: tells a restart from a gap. */
      run_id: string;
    };
  };
}

const keyword = { type: 'keyword', ignore_above: 1024 } as const;

/** Mappings of the pipeline metric indices: strict, every field named. */
export const pipelineMappings = {
  dynamic: 'strict',
  dynamic_templates: [],
  properties: {
    '@timestamp': { type: 'date' },
    ecs: { properties: { version: keyword } },
    event: {
      properties: {
        kind: keyword,
        module: keyword,
        dataset: keyword,
        start: { type: 'date' },
        end: { type: 'date' },
        duration: { type: 'long' },
      },
    },
    service: { properties: { name: keyword, node: { properties: { name: keyword, roles: keyword } } } },
    host: { properties: { name: keyword } },
    vigil: {
      properties: {
        pipeline: {
          properties: {
            metric: keyword,
            count: { type: 'long' },
            run_id: keyword,
            family: keyword,
            reason: keyword,
            change: keyword,
            destination: keyword,
            outcome: keyword,
          },
        },
      },
    },
  },
} as const;

/** Index and template names of the pipeline metrics under one prefix. */
export function pipelineIndexNames(prefix: string): { indexTemplate: string; pattern: string } {
  return { indexTemplate: `${prefix}-pipeline`, pattern: `${prefix}-pipeline-*` };
}

/** The daily pipeline metrics index for a time (UTC). */
export function pipelineIndexName(prefix: string, time: string): string {
  return `${prefix}-pipeline-${new Date(time).toISOString().slice(0, 10).replaceAll('-', '.')}`;
}

/** The index template of the pipeline metric indices. */
export function pipelineTemplate(prefix: string, settings: { shards: number; replicas: number }): IndexTemplate {
  const names = pipelineIndexNames(prefix);
  // Written once per interval: no need for a fast refresh.
  return managedTemplate(names.indexTemplate, names.pattern, pipelineMappings, { ...settings, refreshInterval: '5s' });
}
