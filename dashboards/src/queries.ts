import { toQueryDsl, type Bucket, type MapLayer, type Metric, type PanelSpec } from './model';

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
    case 'sum':
      return { sum: { field: metric.field } };
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
  const innermostOrder = first && (first.kind === 'max' || first.kind === 'unique_count' || first.kind === 'sum') ? 'metric_0' : '_count';
  for (let index = panel.buckets.length - 1; index >= 0; index--) {
    const bucket = panel.buckets[index] as Bucket;
    const orderBy = index === panel.buckets.length - 1 ? innermostOrder : '_count';
    aggs = { [`bucket_${index}`]: { ...bucketAggregation(bucket, interval, orderBy), ...(Object.keys(aggs).length > 0 ? { aggs } : {}) } };
  }
  return {
    size: 0,
    // A panel with a range of its own ignores the dashboard's, as Kibana does.
    query: { bool: { filter: [...toQueryDsl(panel.where), { range: { '@timestamp': { gte: (panel.timeRange ?? range).from, lte: (panel.timeRange ?? range).to } } }] } },
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

/** The search a map layer makes: documents with a point, or the point grids it draws. */
export interface MapLayerQuery {
  size: number;
  query: { bool: { filter: Record<string, unknown>[] } };
  aggs?: Record<string, Record<string, unknown>>;
  _source?: false;
  fields?: string[];
  sort?: Record<string, 'asc' | 'desc'>[];
}

/** Tile precision of a world map at Kibana's default zoom, plus Kibana's COARSE resolution. */
const GRID_PRECISION = 4;

/**
 * The search Kibana's Maps app makes for a layer, in the same range, so the validation can run it
 * on the real Elasticsearch: `documents` asks for the newest documents with a point (`ES_SEARCH`),
 * `grid` counts documents per map tile with their centroid (`ES_GEO_GRID`), `lines` nests the
 * destination tiles around the source tiles, with the metrics per pair (`ES_PEW_PEW`).
 */
export function mapLayerQuery(layer: MapLayer, range: { from: string; to: string }): MapLayerQuery {
  const points = layer.kind === 'lines' ? [layer.from, layer.to] : [layer.geoField];
  const filter = [...toQueryDsl(layer.where), ...points.map((field) => ({ exists: { field } })), { range: { '@timestamp': { gte: range.from, lte: range.to } } }];
  const query = { bool: { filter } };
  switch (layer.kind) {
    case 'documents':
      return { size: 100, query, _source: false, fields: [layer.geoField, ...layer.tooltip], sort: [{ '@timestamp': 'desc' }] };
    case 'grid':
      return { size: 0, query, aggs: { grid: { geotile_grid: { field: layer.geoField, precision: GRID_PRECISION }, aggs: { centroid: { geo_centroid: { field: layer.geoField } } } } } };
    case 'lines': {
      const metrics = Object.fromEntries(layer.metrics.map((metric, index) => [`metric_${index}`, { max: { field: metric.field } }]));
      return {
        size: 0,
        query,
        aggs: {
          destination: {
            geotile_grid: { field: layer.to, precision: GRID_PRECISION },
            aggs: { destination_centroid: { geo_centroid: { field: layer.to } }, source: { geotile_grid: { field: layer.from, precision: GRID_PRECISION }, aggs: { source_centroid: { geo_centroid: { field: layer.from } }, ...metrics } } },
          },
        },
      };
    }
  }
}

/** A feature a map layer draws: a point (documents, grid cells) or a line, with its count. */
export interface MapFeature {
  /** [lon, lat] of the point, or of the line's two ends. */
  coordinates: [number, number][];
  count: number;
  metrics: (number | null)[];
}

interface Centroid {
  location?: { lat: number; lon: number };
}

/** The features a map layer would draw from an Elasticsearch response to {@link mapLayerQuery}. */
export function mapLayerFeatures(layer: MapLayer, response: { hits?: { hits?: { fields?: Record<string, unknown> }[] }; aggregations?: Record<string, unknown> }): MapFeature[] {
  const lonLat = (centroid: Centroid | undefined): [number, number] | undefined => (centroid?.location ? [centroid.location.lon, centroid.location.lat] : undefined);
  switch (layer.kind) {
    case 'documents':
      return (response.hits?.hits ?? []).flatMap((hit) => {
        const value = (hit.fields?.[layer.geoField] as unknown[] | undefined)?.[0] as { coordinates?: [number, number] } | undefined;
        return value?.coordinates ? [{ coordinates: [value.coordinates], count: 1, metrics: [] }] : [];
      });
    case 'grid': {
      const buckets = ((response.aggregations?.grid as { buckets?: unknown[] } | undefined)?.buckets ?? []) as ({ doc_count: number; centroid?: Centroid })[];
      return buckets.flatMap((bucket) => {
        const point = lonLat(bucket.centroid);
        return point ? [{ coordinates: [point], count: bucket.doc_count, metrics: [] }] : [];
      });
    }
    case 'lines': {
      const destinations = ((response.aggregations?.destination as { buckets?: unknown[] } | undefined)?.buckets ?? []) as ({ destination_centroid?: Centroid; source?: { buckets?: unknown[] } })[];
      return destinations.flatMap((destination) => {
        const to = lonLat(destination.destination_centroid);
        const sources = (destination.source?.buckets ?? []) as ({ doc_count: number; source_centroid?: Centroid } & Record<string, unknown>)[];
        return sources.flatMap((source) => {
          const from = lonLat(source.source_centroid);
          if (!to || !from) return [];
          return [{ coordinates: [from, to], count: source.doc_count, metrics: layer.metrics.map((_, index) => (source[`metric_${index}`] as { value?: number | null } | undefined)?.value ?? null) }];
        });
      });
    }
  }
}
