import { z } from 'zod';
import { DASHBOARDS, SEARCHES, allMaps } from './definitions';
import { AGGREGATABLE_TYPES, TEMPLATE_MAPPINGS, fieldType, type ViewMappings } from './fields';
import { mapLayerFields, type Bucket, type MapSpec, type Metric, type PanelSpec, type ViewName } from './model';
import { dataViewFields } from './saved-objects';

const reference = z.strictObject({ name: z.string().min(1), type: z.enum(['index-pattern', 'lens', 'map', 'search', 'dashboard']), id: z.string().min(1) });
const envelope = {
  id: z.string().regex(/^[a-z0-9-]+$/),
  references: z.array(reference),
  coreMigrationVersion: z.string().regex(/^\d+\.\d+\.\d+$/),
  typeMigrationVersion: z.string().regex(/^\d+\.\d+\.\d+$/),
};
/** A string attribute that must hold JSON (Kibana stores these serialized). */
const jsonText = (schema: z.ZodType): z.ZodType<string> =>
  z.string().transform((text, context) => {
    try {
      const parsed = schema.safeParse(JSON.parse(text));
      if (!parsed.success) context.addIssue({ code: 'custom', message: `JSON text does not match: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}` });
    } catch {
      context.addIssue({ code: 'custom', message: 'not JSON text' });
    }
    return text;
  });
const kql = z.strictObject({ query: z.string(), language: z.literal('kuery') });
/** Kibana's date math: `now`, `now-30d`, `now-1y/d`, or an ISO time. */
const timeRange = z.strictObject({ from: z.string().regex(/^(now([+-]\d+[smhdwMy])*(\/[smhdwMy])?|\d{4}-\d{2}-\d{2}T[\d:.]+Z)$/), to: z.string().regex(/^(now([+-]\d+[smhdwMy])*(\/[smhdwMy])?|\d{4}-\d{2}-\d{2}T[\d:.]+Z)$/) });

const column = z.looseObject({
  label: z.string().min(1),
  dataType: z.enum(['string', 'number', 'date', 'ip', 'boolean', 'geo_point']),
  operationType: z.enum(['date_histogram', 'terms', 'filters', 'count', 'unique_count', 'percentile', 'max', 'sum']),
  isBucketed: z.boolean(),
  scale: z.enum(['interval', 'ordinal', 'ratio']),
  sourceField: z.string().optional(),
  params: z.record(z.string(), z.unknown()).optional(),
});
const xyLayer = z.discriminatedUnion('layerType', [
  z.looseObject({ layerType: z.literal('data'), layerId: z.string(), seriesType: z.enum(['line', 'bar_stacked', 'bar_percentage_stacked', 'bar_horizontal']), accessors: z.array(z.string()).min(1), xAccessor: z.string().optional(), splitAccessor: z.string().optional() }),
  z.looseObject({
    layerType: z.literal('annotations'),
    layerId: z.string(),
    persistanceType: z.literal('byValue'),
    ignoreGlobalFilters: z.boolean(),
    annotations: z.array(z.looseObject({ type: z.literal('query'), id: z.string(), label: z.string(), timeField: z.string(), key: z.strictObject({ type: z.literal('point_in_time') }), filter: z.strictObject({ type: z.literal('kibana_query'), query: z.string(), language: z.literal('kuery') }) })).min(1),
  }),
]);

const staticOrDynamic = z.union([z.strictObject({ type: z.literal('STATIC'), options: z.record(z.string(), z.unknown()) }), z.strictObject({ type: z.literal('DYNAMIC'), options: z.looseObject({ field: z.looseObject({ name: z.string(), origin: z.literal('source') }) }) })]);
const vectorStyle = z.strictObject({
  type: z.literal('VECTOR'),
  isTimeAware: z.boolean(),
  properties: z.looseObject({ fillColor: staticOrDynamic, lineColor: staticOrDynamic, lineWidth: staticOrDynamic, iconSize: staticOrDynamic }),
});
const esSource = { id: z.string().min(1), indexPatternRefName: z.string().regex(/^layer_\d+_source_index_pattern$/), applyGlobalQuery: z.boolean(), applyGlobalTime: z.boolean(), applyForceRefresh: z.boolean() };
const mapMetric = z.union([z.strictObject({ type: z.literal('count') }), z.strictObject({ type: z.enum(['max', 'min', 'avg', 'sum', 'cardinality']), field: z.string().min(1), label: z.string().optional() })]);
/** A layer of a map's layerListJSON: the basemap, or a vector layer over one of the three Elasticsearch sources Vigil uses. */
const mapLayer = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('EMS_VECTOR_TILE'), id: z.string(), sourceDescriptor: z.looseObject({ type: z.literal('EMS_TMS') }), style: z.strictObject({ type: z.literal('EMS_VECTOR_TILE') }) }),
  z.strictObject({
    type: z.literal('GEOJSON_VECTOR'),
    id: z.string().min(1),
    label: z.string().min(1),
    minZoom: z.number().min(0),
    maxZoom: z.number().max(24),
    alpha: z.number().min(0).max(1),
    visible: z.boolean(),
    includeInFitToBounds: z.boolean(),
    joins: z.array(z.unknown()).length(0),
    query: kql,
    sourceDescriptor: z.discriminatedUnion('type', [
      z.strictObject({ type: z.literal('ES_SEARCH'), ...esSource, geoField: z.string().min(1), scalingType: z.enum(['LIMIT', 'CLUSTERS', 'MVT']), filterByMapBounds: z.boolean(), tooltipProperties: z.array(z.string()), sortField: z.string(), sortOrder: z.enum(['asc', 'desc']), topHitsSplitField: z.string(), topHitsSize: z.number().int().min(1) }),
      z.strictObject({ type: z.literal('ES_GEO_GRID'), ...esSource, geoField: z.string().min(1), requestType: z.enum(['point', 'grid', 'heatmap', 'hexagon']), resolution: z.enum(['COARSE', 'FINE', 'MOST_FINE', 'SUPER_FINE']), metrics: z.array(mapMetric).min(1) }),
      z.strictObject({ type: z.literal('ES_PEW_PEW'), ...esSource, sourceGeoField: z.string().min(1), destGeoField: z.string().min(1), metrics: z.array(mapMetric).min(1) }),
    ]),
    style: vectorStyle,
  }),
]);

/** The attributes of each saved-object type Vigil generates, as Kibana 9.2 stores them. */
export const savedObjectSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('index-pattern'),
    ...envelope,
    attributes: z.strictObject({
      title: z.string().min(1),
      name: z.string().min(1),
      timeFieldName: z.literal('@timestamp'),
      fieldFormatMap: jsonText(z.record(z.string(), z.strictObject({ id: z.string(), params: z.record(z.string(), z.unknown()).optional() }))),
      fieldAttrs: jsonText(z.record(z.string(), z.strictObject({ customLabel: z.string() }))),
      runtimeFieldMap: jsonText(z.record(z.string(), z.unknown())),
      sourceFilters: jsonText(z.array(z.unknown())),
      fields: jsonText(z.array(z.unknown())),
      typeMeta: jsonText(z.record(z.string(), z.unknown())),
      allowNoIndex: z.boolean(),
    }),
  }),
  z.strictObject({
    type: z.literal('search'),
    ...envelope,
    attributes: z.strictObject({
      title: z.string().min(1),
      description: z.string(),
      columns: z.array(z.string()).min(1),
      sort: z.array(z.tuple([z.string(), z.enum(['asc', 'desc'])])),
      // Kibana's search schema (8.x): the time saved with the search, restored on opening.
      timeRestore: z.boolean().optional(),
      timeRange: timeRange.optional(),
      kibanaSavedObjectMeta: z.strictObject({ searchSourceJSON: jsonText(z.strictObject({ query: kql, filter: z.array(z.unknown()), indexRefName: z.string() })) }),
    }),
  }),
  z.strictObject({
    type: z.literal('lens'),
    ...envelope,
    attributes: z.strictObject({
      title: z.string().min(1),
      description: z.string(),
      visualizationType: z.enum(['lnsXY', 'lnsDatatable', 'lnsMetric', 'lnsPie']),
      state: z.strictObject({
        visualization: z.union([
          z.looseObject({ layers: z.array(xyLayer).min(1), preferredSeriesType: z.string(), legend: z.looseObject({ isVisible: z.boolean() }) }),
          z.looseObject({ layerId: z.string(), layerType: z.literal('data'), columns: z.array(z.strictObject({ columnId: z.string() })).min(1) }),
          z.looseObject({ layerId: z.string(), layerType: z.literal('data'), metricAccessor: z.string() }),
          z.looseObject({ shape: z.enum(['donut', 'pie']), layers: z.array(z.looseObject({ layerId: z.string(), layerType: z.literal('data'), primaryGroups: z.array(z.string()).min(1), metrics: z.array(z.string()).min(1) })).length(1) }),
        ]),
        query: kql,
        filters: z.array(z.unknown()),
        datasourceStates: z.strictObject({
          formBased: z.strictObject({ layers: z.record(z.string(), z.strictObject({ columns: z.record(z.string(), column), columnOrder: z.array(z.string()).min(1), incompleteColumns: z.strictObject({}) })) }),
        }),
        internalReferences: z.array(z.unknown()),
        adHocDataViews: z.strictObject({}),
      }),
    }),
  }),
  z.strictObject({
    type: z.literal('map'),
    ...envelope,
    attributes: z.strictObject({
      title: z.string().min(1),
      description: z.string(),
      mapStateJSON: jsonText(
        z.looseObject({
          zoom: z.number(),
          center: z.strictObject({ lon: z.number().min(-180).max(180), lat: z.number().min(-90).max(90) }),
          timeFilters: z.strictObject({ from: z.string(), to: z.string() }),
          refreshConfig: z.strictObject({ isPaused: z.boolean(), interval: z.number() }),
          query: kql,
          filters: z.array(z.unknown()),
        }),
      ),
      layerListJSON: jsonText(z.array(mapLayer).min(2)),
      uiStateJSON: jsonText(z.strictObject({ isLayerTOCOpen: z.boolean(), openTOCDetails: z.array(z.string()) })),
    }),
  }),
  z.strictObject({
    type: z.literal('dashboard'),
    ...envelope,
    attributes: z.strictObject({
      title: z.string().min(1),
      description: z.string(),
      panelsJSON: jsonText(
        z.array(
          z.strictObject({
            type: z.enum(['lens', 'map']),
            gridData: z.strictObject({ x: z.number().int().min(0).max(47), y: z.number().int().min(0), w: z.number().int().min(1).max(48), h: z.number().int().min(1), i: z.string() }),
            panelIndex: z.string(),
            // A custom panel time range is the one thing a panel's config holds.
            embeddableConfig: z.strictObject({ timeRange: timeRange.optional() }),
            panelRefName: z.string(),
          }),
        ).min(1),
      ),
      optionsJSON: jsonText(z.record(z.string(), z.boolean())),
      timeRestore: z.boolean(),
      timeFrom: z.string(),
      timeTo: z.string(),
      refreshInterval: z.strictObject({ pause: z.boolean(), value: z.number().int() }),
      kibanaSavedObjectMeta: z.strictObject({ searchSourceJSON: jsonText(z.strictObject({ query: kql, filter: z.array(z.unknown()) })) }),
    }),
  }),
]);

/** Parses one NDJSON line's object; the problems name the object and the path. */
export function schemaProblems(object: unknown): string[] {
  const parsed = savedObjectSchema.safeParse(object);
  if (parsed.success) return [];
  const label = typeof object === 'object' && object !== null && 'id' in object ? String((object).id) : '(no id)';
  return parsed.error.issues.map((issue) => `${label}: ${issue.path.join('.') || '(object)'}: ${issue.message}`);
}

type Parsed = z.infer<typeof savedObjectSchema>;

/**
 * References that don't resolve: a reference to an object not in the file, a dashboard panel
 * whose panelRefName has no reference, a Lens layer without its data view reference, an accessor
 * or column order naming a column that doesn't exist.
 */
export function referenceProblems(objects: readonly Parsed[]): string[] {
  const problems: string[] = [];
  const known = new Set(objects.map((object) => `${object.type}:${object.id}`));
  const seen = new Set<string>();
  for (const object of objects) {
    const key = `${object.type}:${object.id}`;
    if (seen.has(key)) problems.push(`${object.id}: the id appears twice`);
    seen.add(key);
    for (const ref of object.references) if (!known.has(`${ref.type}:${ref.id}`)) problems.push(`${object.id}: reference ${ref.name} to ${ref.type} ${ref.id}, which is not in the file`);
    const names = new Set(object.references.map((ref) => ref.name));
    if (object.type === 'dashboard') {
      const panels = JSON.parse(object.attributes.panelsJSON) as { panelIndex: string; panelRefName: string }[];
      for (const panel of panels) if (!names.has(`${panel.panelIndex}:${panel.panelRefName}`)) problems.push(`${object.id}: panel ${panel.panelIndex} refers to ${panel.panelRefName}, which has no reference`);
    }
    if (object.type === 'dashboard') {
      const panels = JSON.parse(object.attributes.panelsJSON) as { panelIndex: string; panelRefName: string; type: string }[];
      for (const panel of panels) {
        const target = object.references.find((ref) => ref.name === `${panel.panelIndex}:${panel.panelRefName}`);
        if (target && target.type !== panel.type) problems.push(`${object.id}: panel ${panel.panelIndex} is a ${panel.type} panel but refers to a ${target.type}`);
      }
    }
    if (object.type === 'map') {
      const layers = JSON.parse(object.attributes.layerListJSON) as { id: string; sourceDescriptor: { indexPatternRefName?: string } }[];
      const used = new Set<string>();
      for (const layer of layers) {
        const refName = layer.sourceDescriptor.indexPatternRefName;
        if (refName === undefined) continue;
        used.add(refName);
        const target = object.references.find((ref) => ref.name === refName);
        if (target === undefined) problems.push(`${object.id}: layer ${layer.id} refers to ${refName}, which has no reference`);
        else if (target.type !== 'index-pattern') problems.push(`${object.id}: layer ${layer.id} refers to ${refName}, a ${target.type}, not a data view`);
      }
      for (const ref of object.references) if (!used.has(ref.name)) problems.push(`${object.id}: reference ${ref.name} is used by no layer`);
    }
    if (object.type === 'search') {
      const source = JSON.parse(object.attributes.kibanaSavedObjectMeta.searchSourceJSON) as { indexRefName: string };
      if (!names.has(source.indexRefName)) problems.push(`${object.id}: indexRefName ${source.indexRefName} has no reference`);
    }
    if (object.type === 'lens') {
      const layers = object.attributes.state.datasourceStates.formBased.layers;
      for (const [layerId, layer] of Object.entries(layers)) {
        if (!names.has(`indexpattern-datasource-layer-${layerId}`)) problems.push(`${object.id}: layer ${layerId} has no data view reference`);
        for (const columnId of layer.columnOrder) if (!(columnId in layer.columns)) problems.push(`${object.id}: columnOrder names ${columnId}, which is not a column`);
      }
      const columns = new Set(Object.values(layers).flatMap((layer) => Object.keys(layer.columns)));
      const visualization = object.attributes.state.visualization as Record<string, unknown>;
      const accessors = JSON.stringify(visualization).match(/"(?:xAccessor|splitAccessor|metricAccessor|columnId)":"([^"]+)"/g) ?? [];
      for (const match of accessors) {
        const id = match.slice(match.indexOf(':') + 2, -1);
        if (!columns.has(id)) problems.push(`${object.id}: the visualization uses column ${id}, which is not in a layer`);
      }
      const layersOf = (visualization.layers ?? []) as { layerId: string; layerType: string; accessors?: string[]; primaryGroups?: string[]; metrics?: string[] }[];
      for (const layer of layersOf) {
        if (layer.layerType === 'annotations') {
          if (!names.has(`xy-visualization-layer-${layer.layerId}`)) problems.push(`${object.id}: annotation layer ${layer.layerId} has no data view reference`);
          continue;
        }
        if (!(layer.layerId in layers)) problems.push(`${object.id}: visualization layer ${layer.layerId} is not a datasource layer`);
        for (const id of [...(layer.accessors ?? []), ...(layer.primaryGroups ?? []), ...(layer.metrics ?? [])]) if (!columns.has(id)) problems.push(`${object.id}: the visualization uses column ${id}, which is not in a layer`);
      }
    }
  }
  return problems;
}

/** Where a field is used, for the message that names it. */
interface FieldUse {
  view: ViewName;
  field: string;
  where: string;
  /** Buckets and metrics need doc values; a filter or a Discover column only needs the field. */
  aggregated: boolean;
  /** A map layer's point: must be `geo_point`. */
  geo?: boolean;
}

function bucketFields(bucket: Bucket): { field: string; aggregated: boolean }[] {
  if (bucket.kind === 'date_histogram') return [{ field: '@timestamp', aggregated: true }];
  if (bucket.kind === 'terms') return [{ field: bucket.field, aggregated: true }];
  return bucket.filters.flatMap((filter) => filter.where.map((condition) => ({ field: condition.field, aggregated: false })));
}

function metricFields(metric: Metric): { field: string; aggregated: boolean }[] {
  return metric.kind === 'count' ? [] : [{ field: metric.field, aggregated: true }];
}

/** Every field the panels, saved searches and data views use, with where. */
export function fieldUses(panels: readonly PanelSpec[] = DASHBOARDS.flatMap((dashboard) => dashboard.panels), maps: readonly MapSpec[] = allMaps()): FieldUse[] {
  const uses: FieldUse[] = [];
  for (const entry of maps) {
    entry.layers.forEach((layer, index) => {
      const at = `map ${entry.id} layer ${index + 1}`;
      const fields = mapLayerFields(layer);
      for (const field of fields.geo) uses.push({ view: layer.view, field, where: `${at} (point)`, aggregated: true, geo: true });
      for (const field of fields.filters) uses.push({ view: layer.view, field, where: `${at} (filter)`, aggregated: false });
      for (const field of fields.shown) uses.push({ view: layer.view, field, where: `${at} (tooltip)`, aggregated: false });
      for (const field of fields.measured) uses.push({ view: layer.view, field, where: `${at} (metric)`, aggregated: true });
      if (layer.kind === 'documents') uses.push({ view: layer.view, field: '@timestamp', where: `${at} (sort)`, aggregated: true });
    });
  }
  for (const panel of panels) {
    const at = `panel ${panel.id}`;
    for (const condition of panel.where) uses.push({ view: panel.view, field: condition.field, where: `${at} (filter)`, aggregated: false });
    for (const bucket of panel.buckets) for (const use of bucketFields(bucket)) uses.push({ view: panel.view, ...use, where: `${at} (bucket)` });
    for (const metric of panel.metrics) for (const use of metricFields(metric)) uses.push({ view: panel.view, ...use, where: `${at} (metric)` });
    if (panel.annotations) {
      for (const condition of panel.annotations.where) uses.push({ view: 'detections', field: condition.field, where: `${at} (annotation filter)`, aggregated: false });
      // Kibana runs the chart's own query with the markers' (their layer keeps the global filters,
      // ignoreGlobalFilters false): on the detections view, a field only events have finds none.
      for (const condition of panel.where) uses.push({ view: 'detections', field: condition.field, where: `${at} (chart query, applied to the annotations)`, aggregated: false });
      for (const field of ['@timestamp', 'rule.name', 'vigil.detection.key_text']) uses.push({ view: 'detections', field, where: `${at} (annotation)`, aggregated: true });
    }
  }
  for (const search of SEARCHES) {
    for (const field of search.columns) uses.push({ view: search.view, field, where: `search ${search.id} (column)`, aggregated: false });
    for (const [field] of search.sort) uses.push({ view: search.view, field, where: `search ${search.id} (sort)`, aggregated: true });
    for (const field of search.query.match(/[a-z_@][\w.@]*(?=\s*:)/g) ?? []) uses.push({ view: search.view, field, where: `search ${search.id} (query)`, aggregated: false });
  }
  for (const view of ['events', 'detections', 'alerts', 'pipeline'] as const) {
    uses.push({ view, field: '@timestamp', where: `data view ${view} (time field)`, aggregated: true });
    for (const field of dataViewFields(view)) uses.push({ view, field, where: `data view ${view} (format or label)`, aggregated: false });
  }
  return uses;
}

/**
 * Fields used that the data view's index template doesn't have, or has with a type the use
 * can't take (a bucket or metric on a `text` field). `mappings` defaults to Vigil's templates.
 */
export function fieldProblems(mappings: ViewMappings = TEMPLATE_MAPPINGS, uses: readonly FieldUse[] = fieldUses()): string[] {
  const problems: string[] = [];
  for (const use of uses) {
    const type = fieldType(use.view, use.field, mappings);
    if (type === undefined) problems.push(`${use.where}: field ${use.field} is not in the ${use.view} index template`);
    else if (use.geo === true && type !== 'geo_point') problems.push(`${use.where}: field ${use.field} is ${type} in the ${use.view} index template, not geo_point`);
    else if (use.aggregated && !AGGREGATABLE_TYPES.has(type)) problems.push(`${use.where}: field ${use.field} is ${type} in the ${use.view} index template, which can't be aggregated`);
  }
  return problems;
}
