import { toQueryDsl, type Bucket, type Metric, type PanelSpec } from './model';

/** An Elasticsearch search body: the query and aggregations a Lens panel implies. */
export interface PanelQuery {
  size: 0;
  query: { bool: { filter: Record<string, unknown>[] } };
  aggs: Record<string, Record<string, unknown>>;
}

function metricAggregation(metric: Metric): Record<string, unknown> | undefined {
  switch (metric.kind) {
    case 'count':
      return undefined;
    case 'unique_count':
      return { cardinality: { field: metric.field } };
    case 'percentile':
      return { percentiles: { field: metric.field, percents: [metric.percentile] } };
    case 'max':
      return { max: { field: metric.field } };
  }
}

function bucketAggregation(bucket: Bucket, interval: string, orderBy: string): Record<string, unknown> {
  switch (bucket.kind) {
    case 'date_histogram':
      return { date_histogram: { field: '@timestamp', fixed_interval: interval, min_doc_count: 0 } };
    case 'terms':
      return { terms: { field: bucket.field, size: bucket.size, order: { [orderBy]: 'desc' } } };
    case 'filters':
      return { filters: { filters: Object.fromEntries(bucket.filters.map((filter) => [filter.label, { bool: { filter: toQueryDsl(filter.where) } }])) } };
  }
}

/**
 * The search Kibana's Lens runs for a panel (its KQL as a filter, the time range, the buckets
 * nested outermost first, the metrics inside the innermost bucket), so the validation can run
 * it on the real Elasticsearch. Bucket aggregations are named `bucket_<n>`, metrics `metric_<n>`.
 */
export function panelQuery(panel: PanelSpec, range: { from: string; to: string }, interval = '1m'): PanelQuery {
  const metrics: Record<string, Record<string, unknown>> = {};
  panel.metrics.forEach((metric, index) => {
    const aggregation = metricAggregation(metric);
    if (aggregation) metrics[`metric_${index}`] = aggregation;
  });
  let aggs: Record<string, Record<string, unknown>> = metrics;
  // Lens orders a terms column by the first metric. The innermost terms bucket can do that with
  // the metric below it (count is _count; a percentile keeps _count, its path needs the percent).
  const first = panel.metrics[0];
  const innermostOrder = first && (first.kind === 'max' || first.kind === 'unique_count') ? 'metric_0' : '_count';
  for (let index = panel.buckets.length - 1; index >= 0; index--) {
    const bucket = panel.buckets[index] as Bucket;
    const orderBy = index === panel.buckets.length - 1 ? innermostOrder : '_count';
    aggs = { [`bucket_${index}`]: { ...bucketAggregation(bucket, interval, orderBy), ...(Object.keys(aggs).length > 0 ? { aggs } : {}) } };
  }
  return {
    size: 0,
    query: { bool: { filter: [...toQueryDsl(panel.where), { range: { '@timestamp': { gte: range.from, lte: range.to } } }] } },
    aggs,
  };
}

interface AggregationNode {
  doc_count?: number;
  buckets?: unknown;
  value?: number | null;
  values?: Record<string, number | null>;
  [name: string]: unknown;
}

/** A row of a panel's data: the bucket keys, outermost first, and the metric values. */
export interface PanelRow {
  keys: string[];
  count: number;
  metrics: (number | null)[];
}

/**
 * The rows a panel would draw from an Elasticsearch response to {@link panelQuery}: one per
 * innermost bucket with documents (empty date-histogram buckets are gaps, not data).
 */
export function panelRows(panel: PanelSpec, aggregations: Record<string, unknown> | undefined, total: number): PanelRow[] {
  const rows: PanelRow[] = [];
  const metricValues = (node: AggregationNode): (number | null)[] =>
    panel.metrics.map((metric, index) => {
      if (metric.kind === 'count') return node.doc_count ?? null;
      const value = node[`metric_${index}`] as AggregationNode | undefined;
      if (metric.kind === 'percentile') return Object.values(value?.values ?? {})[0] ?? null;
      return value?.value ?? null;
    });
  const walk = (node: AggregationNode, depth: number, keys: string[]): void => {
    if (depth === panel.buckets.length) {
      const count = node.doc_count ?? 0;
      if (count > 0) rows.push({ keys, count, metrics: metricValues(node) });
      return;
    }
    const child = node[`bucket_${depth}`] as AggregationNode | undefined;
    const buckets = child?.buckets;
    const entries: [string, AggregationNode][] = Array.isArray(buckets)
      ? (buckets as (AggregationNode & { key: unknown; key_as_string?: string })[]).map((bucket) => [bucket.key_as_string ?? String(bucket.key), bucket])
      : Object.entries((buckets ?? {}) as Record<string, AggregationNode>);
    for (const [key, bucket] of entries) walk(bucket, depth + 1, [...keys, key]);
  };
  walk({ ...(aggregations ?? {}), doc_count: total }, 0, []);
  return rows;
}
