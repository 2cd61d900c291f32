import { alertIndexNames, detectionIndexNames, indexNames, pipelineIndexNames } from '../../schemas';
import { DASHBOARDS, SEARCHES } from './definitions';
import { fieldType, lensDataType } from './fields';
import { toKql, type Bucket, type MapLayer, type MapSpec, type Metric, type PanelSpec, type ViewName } from './model';

/**
 * Kibana's saved-object versions the objects are written for. Kibana 9.2 imports an object whose
 * typeMigrationVersion is older than its own and migrates it forward; these are the versions of
 * the shapes generated here (the attributes each type had from that version on).
 */
export const KIBANA_VERSION = '9.2.8';
const CORE_MIGRATION_VERSION = '8.8.0';
const TYPE_MIGRATION_VERSION = { 'index-pattern': '8.0.0', search: '8.0.0', lens: '8.9.0', map: '8.4.0', dashboard: '8.9.0' } as const;

/** A reference from one saved object to another. */
export interface Reference {
  name: string;
  type: string;
  id: string;
}

/** One line of the NDJSON Kibana's import API takes. */
export interface SavedObject {
  type: 'index-pattern' | 'search' | 'lens' | 'map' | 'dashboard';
  id: string;
  attributes: Record<string, unknown>;
  references: Reference[];
  coreMigrationVersion: string;
  typeMigrationVersion: string;
}

/** The ids of every object under one index prefix (so two prefixes can live in one Kibana space). */
export const ids = {
  view: (prefix: string, view: ViewName): string => `${prefix}-data-view-${view}`,
  lens: (prefix: string, panel: string): string => `${prefix}-lens-${panel}`,
  map: (prefix: string, map: string): string => `${prefix}-map-${map}`,
  dashboard: (prefix: string, dashboard: string): string => `${prefix}-dashboard-${dashboard}`,
  search: (prefix: string, search: string): string => `${prefix}-search-${search}`,
};

/** The index pattern each data view reads, under an index prefix. */
export function viewPatterns(prefix: string): Record<ViewName, string> {
  return { events: indexNames(prefix).eventPattern, detections: detectionIndexNames(prefix).pattern, alerts: alertIndexNames(prefix).index, pipeline: pipelineIndexNames(prefix).pattern };
}

/** Field formats and labels of the data views: what a number means, in words. */
const FIELD_FORMATS: Record<ViewName, Record<string, { id: string; params?: Record<string, unknown> }>> = {
  events: {
    'vigil.latency_ms': { id: 'number', params: { pattern: '0,0.[0] ms' } },
    'event.duration': { id: 'duration', params: { inputFormat: 'nanoseconds', outputFormat: 'asMilliseconds', outputPrecision: 1 } },
    'http.request.body.bytes': { id: 'bytes' },
    'http.response.body.bytes': { id: 'bytes' },
    'vigil.correlation.device_age_ms': { id: 'duration', params: { inputFormat: 'milliseconds', outputFormat: 'humanizePrecise', outputPrecision: 0 } },
  },
  detections: {
    'vigil.detection.window.duration_ms': { id: 'duration', params: { inputFormat: 'milliseconds', outputFormat: 'humanizePrecise', outputPrecision: 0 } },
    'vigil.detection.geo.distance_km': { id: 'number', params: { pattern: '0,0 km' } },
    'vigil.detection.geo.speed_kmh': { id: 'number', params: { pattern: '0,0 km/h' } },
  },
  alerts: {
    'kibana.alert.duration.us': { id: 'duration', params: { inputFormat: 'microseconds', outputFormat: 'humanizePrecise', outputPrecision: 0 } },
  },
  pipeline: {
    'event.duration': { id: 'duration', params: { inputFormat: 'nanoseconds', outputFormat: 'humanizePrecise', outputPrecision: 0 } },
    'vigil.pipeline.count': { id: 'number', params: { pattern: '0,0' } },
  },
};

const FIELD_LABELS: Record<ViewName, Record<string, string>> = {
  events: {
    'vigil.consumer_id': 'API consumer',
    'vigil.api': 'API',
    'vigil.route': 'Route template',
    'vigil.latency_ms': 'Latency (ms)',
    'vigil.policy.kind': 'Policy kind',
    'vigil.policy.auth_context': 'Auth context',
    'vigil.family': 'Event family',
  },
  detections: {
    'vigil.detection.key_text': 'Detection key',
    'vigil.detection.event_ids': 'Events behind it',
    'vigil.detection.severity': 'Severity',
    'vigil.detection.observed_value': 'Observed value',
  },
  alerts: {
    'vigil.alert.title': 'Alert',
    'vigil.alert.count': 'Detections grouped',
    'vigil.alert.suppressed': 'Detections not notified',
  },
  pipeline: {
    'vigil.pipeline.metric': 'Metric',
    'vigil.pipeline.count': 'Count (this interval)',
    'vigil.pipeline.family': 'Event family',
    'vigil.pipeline.reason': 'Dead-letter reason',
    'vigil.pipeline.change': 'Alert change',
    'vigil.pipeline.destination': 'Destination',
    'vigil.pipeline.outcome': 'Outcome',
    'service.node.name': 'Vigil instance',
  },
};

/** The fields each data view's formats and labels name (checked against the templates). */
export function dataViewFields(view: ViewName): string[] {
  return [...new Set([...Object.keys(FIELD_FORMATS[view]), ...Object.keys(FIELD_LABELS[view])])];
}

const VIEW_NAMES: Record<ViewName, string> = { events: 'Vigil events', detections: 'Vigil detections', alerts: 'Vigil alerts', pipeline: 'Vigil pipeline metrics' };

function dataView(prefix: string, view: ViewName): SavedObject {
  return {
    type: 'index-pattern',
    id: ids.view(prefix, view),
    attributes: {
      title: viewPatterns(prefix)[view],
      name: VIEW_NAMES[view],
      timeFieldName: '@timestamp',
      fieldFormatMap: JSON.stringify(FIELD_FORMATS[view]),
      fieldAttrs: JSON.stringify(Object.fromEntries(Object.entries(FIELD_LABELS[view]).map(([field, customLabel]) => [field, { customLabel }]))),
      runtimeFieldMap: '{}',
      sourceFilters: '[]',
      fields: '[]',
      typeMeta: '{}',
      allowNoIndex: true,
    },
    references: [],
    coreMigrationVersion: CORE_MIGRATION_VERSION,
    typeMigrationVersion: TYPE_MIGRATION_VERSION['index-pattern'],
  };
}

/** A bucket's Lens column. */
function bucketColumn(view: ViewName, bucket: Bucket, orderColumn: string): Record<string, unknown> {
  switch (bucket.kind) {
    case 'date_histogram':
      return { label: '@timestamp', dataType: 'date', operationType: 'date_histogram', sourceField: '@timestamp', isBucketed: true, scale: 'interval', params: { interval: 'auto', includeEmptyRows: true, dropPartials: false } };
    case 'terms':
      return {
        label: bucket.label ?? bucket.field,
        ...(bucket.label ? { customLabel: true } : {}),
        dataType: lensDataType(fieldType(view, bucket.field)),
        operationType: 'terms',
        sourceField: bucket.field,
        isBucketed: true,
        scale: 'ordinal',
        params: { size: bucket.size, orderBy: { type: 'column', columnId: orderColumn }, orderDirection: 'desc', otherBucket: false, missingBucket: false, parentFormat: { id: 'terms' } },
      };
    case 'filters':
      return {
        label: bucket.label,
        customLabel: true,
        dataType: 'string',
        operationType: 'filters',
        isBucketed: true,
        scale: 'ordinal',
        params: { filters: bucket.filters.map((filter) => ({ label: filter.label, input: { query: toKql(filter.where), language: 'kuery' } })) },
      };
  }
}

/** A metric's Lens column. */
function metricColumn(metric: Metric): Record<string, unknown> {
  const common = { dataType: 'number', isBucketed: false, scale: 'ratio', ...(metric.label ? { customLabel: true } : {}) };
  switch (metric.kind) {
    case 'count':
      return { label: metric.label ?? 'Count of records', ...common, operationType: 'count', sourceField: '___records___', params: { emptyAsNull: false } };
    case 'unique_count':
      return { label: metric.label ?? `Unique count of ${metric.field}`, ...common, operationType: 'unique_count', sourceField: metric.field, params: { emptyAsNull: true } };
    case 'percentile':
      return { label: metric.label ?? `${metric.percentile}th percentile of ${metric.field}`, ...common, operationType: 'percentile', sourceField: metric.field, params: { percentile: metric.percentile } };
    case 'max':
      return { label: metric.label ?? `Maximum of ${metric.field}`, ...common, operationType: 'max', sourceField: metric.field, params: { emptyAsNull: true } };
    case 'sum':
      return { label: metric.label ?? `Sum of ${metric.field}`, ...common, operationType: 'sum', sourceField: metric.field, params: { emptyAsNull: true } };
  }
}

const SERIES: Record<string, string> = { line: 'line', bar_stacked: 'bar_stacked', bar_percentage_stacked: 'bar_percentage_stacked', bar_horizontal: 'bar_horizontal' };

/** The Lens visualization state of a panel, given its column ids. */
function visualization(panel: PanelSpec, layerId: string, bucketIds: string[], metricIds: string[], annotationLayerId: string): { type: string; state: Record<string, unknown> } {
  switch (panel.chart) {
    case 'table':
      return { type: 'lnsDatatable', state: { layerId, layerType: 'data', columns: [...bucketIds, ...metricIds].map((columnId) => ({ columnId })) } };
    case 'metric':
      return { type: 'lnsMetric', state: { layerId, layerType: 'data', metricAccessor: metricIds[0] } };
    case 'donut':
      return {
        type: 'lnsPie',
        state: { shape: 'donut', layers: [{ layerId, layerType: 'data', primaryGroups: bucketIds, metrics: metricIds, numberDisplay: 'percent', categoryDisplay: 'default', legendDisplay: 'default', nestedLegend: false }] },
      };
    default: {
      const seriesType = SERIES[panel.chart] ?? 'line';
      const [xAccessor, splitAccessor] = bucketIds;
      const layers: Record<string, unknown>[] = [
        { layerId, layerType: 'data', seriesType, ...(xAccessor ? { xAccessor } : {}), ...(splitAccessor ? { splitAccessor } : {}), accessors: metricIds, palette: { type: 'palette', name: 'default' } },
      ];
      if (panel.annotations) {
        layers.push({
          layerId: annotationLayerId,
          layerType: 'annotations',
          // The dashboard's filters hold for the markers too: filtered to one endpoint, the chart
          // shows that endpoint's surges only.
          ignoreGlobalFilters: false,
          persistanceType: 'byValue',
          annotations: [
            {
              type: 'query',
              id: `${panel.id}-annotation`,
              label: panel.annotations.label,
              key: { type: 'point_in_time' },
              timeField: '@timestamp',
              icon: 'alert',
              color: '#BD271E',
              filter: { type: 'kibana_query', query: toKql(panel.annotations.where), language: 'kuery' },
              extraFields: ['rule.name', 'vigil.detection.key_text'],
            },
          ],
        });
      }
      return {
        type: 'lnsXY',
        state: { legend: { isVisible: true, position: 'right' }, valueLabels: 'hide', fittingFunction: 'None', preferredSeriesType: seriesType, layers },
      };
    }
  }
}

/** The Lens saved object of a panel. */
function lens(prefix: string, panel: PanelSpec): SavedObject {
  const layerId = `${panel.id}-layer`;
  const annotationLayerId = `${panel.id}-annotations`;
  const bucketIds = panel.buckets.map((_, index) => `${panel.id}-bucket-${index}`);
  const metricIds = panel.metrics.map((_, index) => `${panel.id}-metric-${index}`);
  const orderColumn = metricIds[0] ?? '';
  const columns: Record<string, Record<string, unknown>> = {};
  panel.buckets.forEach((bucket, index) => (columns[bucketIds[index] ?? ''] = bucketColumn(panel.view, bucket, orderColumn)));
  panel.metrics.forEach((metric, index) => (columns[metricIds[index] ?? ''] = metricColumn(metric)));
  const { type, state } = visualization(panel, layerId, bucketIds, metricIds, annotationLayerId);
  const references: Reference[] = [{ type: 'index-pattern', id: ids.view(prefix, panel.view), name: `indexpattern-datasource-layer-${layerId}` }];
  if (panel.annotations && type === 'lnsXY') references.push({ type: 'index-pattern', id: ids.view(prefix, 'detections'), name: `xy-visualization-layer-${annotationLayerId}` });
  return {
    type: 'lens',
    id: ids.lens(prefix, panel.id),
    attributes: {
      title: panel.title,
      description: panel.description,
      visualizationType: type,
      state: {
        visualization: state,
        query: { query: toKql(panel.where), language: 'kuery' },
        filters: [],
        datasourceStates: { formBased: { layers: { [layerId]: { columns, columnOrder: [...bucketIds, ...metricIds], incompleteColumns: {} } } } },
        internalReferences: [],
        adHocDataViews: {},
      },
    },
    references,
    coreMigrationVersion: CORE_MIGRATION_VERSION,
    typeMigrationVersion: TYPE_MIGRATION_VERSION.lens,
  };
}

const STATIC = (options: Record<string, unknown>): Record<string, unknown> => ({ type: 'STATIC', options });

/** The vector style of a layer: its colour, points as small circles, lines as wide as their pair count. */
function layerStyle(layer: MapLayer): Record<string, unknown> {
  const properties: Record<string, unknown> = {
    fillColor: STATIC({ color: layer.color }),
    lineColor: STATIC({ color: layer.kind === 'lines' ? layer.color : '#FFFFFF' }),
    lineWidth: layer.kind === 'lines' ? { type: 'DYNAMIC', options: { field: { name: 'doc_count', origin: 'source' }, minSize: 1, maxSize: 6, fieldMetaOptions: { isEnabled: true, sigma: 3 } } } : STATIC({ size: 1 }),
    iconSize: layer.kind === 'grid' ? { type: 'DYNAMIC', options: { field: { name: 'doc_count', origin: 'source' }, minSize: 4, maxSize: 24, fieldMetaOptions: { isEnabled: true, sigma: 3 } } } : STATIC({ size: 6 }),
    symbolizeAs: { options: { value: 'circle' } },
    icon: STATIC({ value: 'marker' }),
    iconOrientation: STATIC({ orientation: 0 }),
  };
  return { type: 'VECTOR', properties, isTimeAware: true };
}

/** The source descriptor of a layer; `refName` names the data view reference. */
function layerSource(layer: MapLayer, id: string, refName: string): Record<string, unknown> {
  const common = { id, indexPatternRefName: refName, applyGlobalQuery: true, applyGlobalTime: true, applyForceRefresh: true };
  switch (layer.kind) {
    case 'documents':
      return { type: 'ES_SEARCH', ...common, geoField: layer.geoField, scalingType: 'LIMIT', filterByMapBounds: true, tooltipProperties: [...layer.tooltip], sortField: '@timestamp', sortOrder: 'desc', topHitsSplitField: '', topHitsSize: 1 };
    case 'grid':
      return { type: 'ES_GEO_GRID', ...common, geoField: layer.geoField, requestType: 'point', resolution: 'COARSE', metrics: [{ type: 'count' }] };
    case 'lines':
      return { type: 'ES_PEW_PEW', ...common, sourceGeoField: layer.from, destGeoField: layer.to, metrics: [{ type: 'count' }, ...layer.metrics.map((metric) => ({ type: 'max', field: metric.field, ...(metric.label ? { label: metric.label } : {}) }))] };
  }
}

/**
 * The map saved object of a map panel: a basemap (Elastic Maps Service, as Kibana's own maps
 * use), then one vector layer per {@link MapLayer}, each with its KQL and its data view reference.
 */
function map(prefix: string, spec: MapSpec): SavedObject {
  const references: Reference[] = [];
  const layers: Record<string, unknown>[] = [
    { id: `${spec.id}-basemap`, type: 'EMS_VECTOR_TILE', label: null, minZoom: 0, maxZoom: 24, alpha: 1, visible: true, includeInFitToBounds: true, sourceDescriptor: { type: 'EMS_TMS', isAutoSelect: true, lightModeDefault: 'road_map_desaturated' }, style: { type: 'EMS_VECTOR_TILE' } },
  ];
  spec.layers.forEach((layer, index) => {
    const refName = `layer_${index + 1}_source_index_pattern`;
    references.push({ name: refName, type: 'index-pattern', id: ids.view(prefix, layer.view) });
    const id = `${spec.id}-layer-${index + 1}`;
    layers.push({
      id,
      type: 'GEOJSON_VECTOR',
      label: layer.label,
      minZoom: 0,
      maxZoom: 24,
      alpha: 0.75,
      visible: true,
      includeInFitToBounds: true,
      joins: [],
      query: { query: toKql(layer.where), language: 'kuery' },
      sourceDescriptor: layerSource(layer, `${id}-source`, refName),
      style: layerStyle(layer),
    });
  });
  return {
    type: 'map',
    id: ids.map(prefix, spec.id),
    attributes: {
      title: spec.title,
      description: spec.description,
      mapStateJSON: JSON.stringify({
        zoom: 1.2,
        center: { lon: 0, lat: 25 },
        timeFilters: { from: 'now-24h', to: 'now' },
        refreshConfig: { isPaused: true, interval: 0 },
        query: { query: '', language: 'kuery' },
        filters: [],
        settings: { autoFitToDataBounds: false, showSpatialFilters: true, showTimesliderToggleButton: true },
      }),
      layerListJSON: JSON.stringify(layers),
      uiStateJSON: JSON.stringify({ isLayerTOCOpen: true, openTOCDetails: [] }),
    },
    references,
    coreMigrationVersion: CORE_MIGRATION_VERSION,
    typeMigrationVersion: TYPE_MIGRATION_VERSION.map,
  };
}

/** Panels in rows of Kibana's 48-column grid, each 15 rows high. */
function layout(panels: readonly { width?: number }[]): { x: number; y: number; w: number; h: number }[] {
  const grid: { x: number; y: number; w: number; h: number }[] = [];
  let x = 0;
  let y = 0;
  for (const panel of panels) {
    const w = panel.width ?? 24;
    if (x + w > 48) {
      x = 0;
      y += 15;
    }
    grid.push({ x, y, w, h: 15 });
    x += w;
  }
  return grid;
}

function dashboard(prefix: string, spec: (typeof DASHBOARDS)[number]): SavedObject {
  const maps = spec.maps ?? [];
  const placed = [
    ...spec.panels.map((panel) => ({ id: panel.id, type: 'lens' as const, width: panel.width ?? 24, timeRange: panel.timeRange })),
    ...maps.map((entry) => ({ id: entry.id, type: 'map' as const, width: entry.width ?? 48, timeRange: undefined })),
  ];
  const grid = layout(placed);
  const panels = placed.map((panel, index) => {
    const panelIndex = panel.id;
    const embeddableConfig = panel.timeRange === undefined ? {} : { timeRange: { from: panel.timeRange.from, to: panel.timeRange.to } };
    return { type: panel.type, gridData: { ...grid[index], i: panelIndex }, panelIndex, embeddableConfig, panelRefName: `panel_${panelIndex}` };
  });
  return {
    type: 'dashboard',
    id: ids.dashboard(prefix, spec.id),
    attributes: {
      title: spec.title,
      description: spec.description,
      panelsJSON: JSON.stringify(panels),
      optionsJSON: JSON.stringify({ useMargins: true, syncColors: false, syncCursor: true, syncTooltips: false, hidePanelTitles: false }),
      timeRestore: true,
      timeFrom: 'now-24h',
      timeTo: 'now',
      refreshInterval: { pause: false, value: 60_000 },
      kibanaSavedObjectMeta: { searchSourceJSON: JSON.stringify({ query: { query: '', language: 'kuery' }, filter: [] }) },
    },
    references: placed.map((panel) => ({ name: `${panel.id}:panel_${panel.id}`, type: panel.type, id: panel.type === 'lens' ? ids.lens(prefix, panel.id) : ids.map(prefix, panel.id) })),
    coreMigrationVersion: CORE_MIGRATION_VERSION,
    typeMigrationVersion: TYPE_MIGRATION_VERSION.dashboard,
  };
}

function search(prefix: string, spec: (typeof SEARCHES)[number]): SavedObject {
  return {
    type: 'search',
    id: ids.search(prefix, spec.id),
    attributes: {
      title: spec.title,
      description: spec.description,
      columns: [...spec.columns],
      sort: spec.sort.map(([field, direction]) => [field, direction]),
      ...(spec.timeRange === undefined ? {} : { timeRestore: true, timeRange: { from: spec.timeRange.from, to: spec.timeRange.to } }),
      kibanaSavedObjectMeta: {
        searchSourceJSON: JSON.stringify({ query: { query: spec.query, language: 'kuery' }, filter: [], indexRefName: 'kibanaSavedObjectMeta.searchSourceJSON.index' }),
      },
    },
    references: [{ name: 'kibanaSavedObjectMeta.searchSourceJSON.index', type: 'index-pattern', id: ids.view(prefix, spec.view) }],
    coreMigrationVersion: CORE_MIGRATION_VERSION,
    typeMigrationVersion: TYPE_MIGRATION_VERSION.search,
  };
}

/**
 * Every saved object, data views first, then what refers to them (Kibana resolves references
 * within one import file whatever the order, but a reader of the NDJSON follows it better).
 */
export function savedObjects(prefix = 'vigil'): SavedObject[] {
  const views: ViewName[] = ['events', 'detections', 'alerts', 'pipeline'];
  return [
    ...views.map((view) => dataView(prefix, view)),
    ...SEARCHES.map((spec) => search(prefix, spec)),
    ...DASHBOARDS.flatMap((spec) => spec.panels.map((panel) => lens(prefix, panel))),
    ...DASHBOARDS.flatMap((spec) => (spec.maps ?? []).map((entry) => map(prefix, entry))),
    ...DASHBOARDS.map((spec) => dashboard(prefix, spec)),
  ];
}

/** The NDJSON of {@link savedObjects}: one object a line, with a final newline. */
export function toNdjson(objects: readonly SavedObject[]): string {
  return `${objects.map((object) => JSON.stringify(object)).join('\n')}\n`;
}
