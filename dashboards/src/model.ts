/**
 * The typed source of Vigil's Kibana objects: a panel says what it shows (data view, filter,
 * buckets, metrics) once, and both the Lens saved object and the Elasticsearch query the
 * validation runs are rendered from it, so the two can't drift apart.
 */

/** Vigil's data views: events, detections, alerts, and the pipeline metrics. */
export type ViewName = 'events' | 'detections' | 'alerts' | 'pipeline';

/** A filter term: a field equal to one of some values, at least or below a number, or present. */
export type Condition =
  | { field: string; is: readonly (string | number | boolean)[] }
  | { field: string; atLeast: number }
  | { field: string; below: number }
  | { field: string; exists: true };

/** A bucket column: over time, top values of a field, or named filters. */
export type Bucket =
  | { kind: 'date_histogram' }
  | { kind: 'terms'; field: string; size: number; label?: string }
  | { kind: 'filters'; label: string; filters: readonly { label: string; where: readonly Condition[] }[] };

/** A metric column. */
export type Metric =
  | { kind: 'count'; label?: string }
  | { kind: 'unique_count'; field: string; label?: string }
  | { kind: 'percentile'; field: string; percentile: number; label?: string }
  | { kind: 'max'; field: string; label?: string }
  /** A sum: of the counts of the pipeline metric documents, each a delta over one interval. */
  | { kind: 'sum'; field: string; label?: string };

/** How the panel draws its columns. */
export type Chart = 'line' | 'bar_stacked' | 'bar_percentage_stacked' | 'bar_horizontal' | 'table' | 'metric' | 'donut';

/** One dashboard panel: a Lens visualization saved by reference. */
export interface PanelSpec {
  /** Stable, unique among all panels: the Lens saved object's id ends with it. */
  id: string;
  title: string;
  description: string;
  view: ViewName;
  chart: Chart;
  /** Every condition must hold (the panel's KQL query). */
  where: readonly Condition[];
  /** Outermost first: the x axis or first table column, then a breakdown. */
  buckets: readonly Bucket[];
  metrics: readonly Metric[];
  /** Detections drawn as annotations on a time chart (query-based, from the detections view). */
  annotations?: { label: string; where: readonly Condition[] };
  /** Whether the demo's attack traffic gives this panel data (checked on the real Elasticsearch). */
  expectData: boolean;
  /** Grid width in Kibana's 48 columns. @defaultValue 24 */
  width?: number;
  /**
   * A time range of its own, over the dashboard's (Kibana's custom panel time range): for a
   * panel about a state, not an interval. An alert's time is its last detection's, so an alert
   * still open but last seen before the dashboard's 24 hours would drop out of "open incidents".
   */
  timeRange?: TimeRange;
}

/** A Kibana time range, in its date-math (`now-1y`). */
export interface TimeRange {
  from: string;
  to: string;
}

/**
 * One layer of a Kibana map (Maps app), over Elasticsearch documents of one data view:
 * - `documents`: each document's point (`ES_SEARCH`), with the fields its tooltip shows;
 * - `grid`: documents counted per map cell (`ES_GEO_GRID`, geotile_grid), for dense data;
 * - `lines`: a line from one point field to another (`ES_PEW_PEW`: both grids nested, with a
 *   count and the metrics per pair), e.g. where a traveller was and where they were next.
 */
export type MapLayer =
  | { kind: 'documents'; label: string; view: ViewName; geoField: string; where: readonly Condition[]; tooltip: readonly string[]; color: string; expectData: boolean }
  | { kind: 'grid'; label: string; view: ViewName; geoField: string; where: readonly Condition[]; color: string; expectData: boolean }
  | { kind: 'lines'; label: string; view: ViewName; from: string; to: string; where: readonly Condition[]; metrics: readonly Extract<Metric, { kind: 'max' }>[]; color: string; expectData: boolean };

/** A map panel: a Kibana map saved object on a basemap, embedded in a dashboard by reference. */
export interface MapSpec {
  /** Stable, unique among panels and maps: the map saved object's id ends with it. */
  id: string;
  title: string;
  description: string;
  /** Drawn bottom first, on top of the basemap. */
  layers: readonly MapLayer[];
  /** Grid width in Kibana's 48 columns. @defaultValue 48 */
  width?: number;
}

/** One dashboard. */
export interface DashboardSpec {
  id: string;
  title: string;
  description: string;
  panels: readonly PanelSpec[];
  /** Maps, laid out after the panels. */
  maps?: readonly MapSpec[];
}

/** The fields a map layer reads: the point fields (which must be `geo_point`), the rest. */
export function mapLayerFields(layer: MapLayer): { geo: string[]; filters: string[]; shown: string[]; measured: string[] } {
  const filters = conditionFields(layer.where);
  switch (layer.kind) {
    case 'documents':
      return { geo: [layer.geoField], filters, shown: [...layer.tooltip], measured: [] };
    case 'grid':
      return { geo: [layer.geoField], filters, shown: [], measured: [] };
    case 'lines':
      return { geo: [layer.from, layer.to], filters, shown: [], measured: layer.metrics.map((metric) => metric.field) };
  }
}

/** A saved search: a Discover view an analyst starts from. */
export interface SearchSpec {
  id: string;
  title: string;
  description: string;
  view: ViewName;
  /** KQL, may hold a placeholder the analyst replaces (e.g. a detection id). */
  query: string;
  columns: readonly string[];
  sort: readonly (readonly [string, 'asc' | 'desc'])[];
  /** The time range Discover opens it on (saved with it, `timeRestore`); absent: Discover's own. */
  timeRange?: TimeRange;
}

/** The fields a condition list uses. */
export function conditionFields(where: readonly Condition[]): string[] {
  return where.map((condition) => condition.field);
}

function kqlValue(value: string | number | boolean): string {
  return typeof value === 'string' ? `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"` : String(value);
}

/** The KQL text of conditions, all of which must hold. */
export function toKql(where: readonly Condition[]): string {
  return where
    .map((condition) => {
      if ('is' in condition) {
        const values = condition.is.map(kqlValue);
        return values.length === 1 ? `${condition.field} : ${values[0] ?? ''}` : `${condition.field} : (${values.join(' or ')})`;
      }
      if ('atLeast' in condition) return `${condition.field} >= ${condition.atLeast}`;
      if ('below' in condition) return `${condition.field} < ${condition.below}`;
      return `${condition.field} : *`;
    })
    .join(' and ');
}

/** The Elasticsearch query of conditions (what Kibana compiles the KQL into, in filter context). */
export function toQueryDsl(where: readonly Condition[]): Record<string, unknown>[] {
  return where.map((condition) => {
    if ('is' in condition) return condition.is.length === 1 ? { term: { [condition.field]: condition.is[0] } } : { terms: { [condition.field]: condition.is } };
    if ('atLeast' in condition) return { range: { [condition.field]: { gte: condition.atLeast } } };
    if ('below' in condition) return { range: { [condition.field]: { lt: condition.below } } };
    return { exists: { field: condition.field } };
  });
}
