import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DASHBOARDS,
  TEMPLATE_MAPPINGS,
  allMaps,
  allPanels,
  fieldProblems,
  fieldUses,
  mapLayerFeatures,
  mapLayerQuery,
  panelQuery,
  panelRows,
  referenceProblems,
  savedObjectSchema,
  savedObjects,
  schemaProblems,
  toNdjson,
  type MapLayer,
  type ViewMappings,
} from '../../dashboards';

const committed = readFileSync(join(__dirname, '..', '..', 'dashboards', 'vigil.ndjson'), 'utf8');
const lines = committed.trimEnd().split('\n').map((line) => JSON.parse(line) as { type: string; id: string; attributes: Record<string, unknown> });

/** The templates with one field renamed, as a change to schemas/ would. */
function renamed(view: keyof ViewMappings, path: string, to: string): ViewMappings {
  const mappings = structuredClone(TEMPLATE_MAPPINGS);
  const parts = path.split('.');
  let node = mappings[view].properties as Record<string, { properties?: Record<string, unknown> }>;
  for (const part of parts.slice(0, -1)) node = node[part]?.properties as typeof node;
  const last = parts[parts.length - 1] ?? '';
  node[to] = node[last] as { properties?: Record<string, unknown> };
  delete node[last];
  return mappings;
}

describe('the Kibana saved objects', () => {
  it('are committed exactly as the generator writes them (npm run dashboards:build)', () => {
    expect(committed).toBe(toNdjson(savedObjects('vigil')));
  });

  it('hold the data views, saved searches, a Lens object per panel and the five dashboards', () => {
    const byType = (type: string): string[] => lines.filter((object) => object.type === type).map((object) => object.id);
    expect(byType('index-pattern')).toStrictEqual(['vigil-data-view-events', 'vigil-data-view-detections', 'vigil-data-view-alerts', 'vigil-data-view-pipeline']);
    expect(byType('dashboard')).toHaveLength(5);
    expect(byType('search')).toContain('vigil-search-why-did-this-fire');
    expect(byType('lens')).toHaveLength(allPanels().length);
    expect(byType('map')).toStrictEqual(['vigil-map-detection-locations-map', 'vigil-map-impossible-travel-map']);
  });

  it('embeds each map in its dashboard by reference, as a map panel', () => {
    const dashboards = lines.filter((object) => object.type === 'dashboard');
    const mapPanels = dashboards.flatMap((dashboard) => (JSON.parse(String(dashboard.attributes.panelsJSON)) as { type: string; panelIndex: string }[]).filter((panel) => panel.type === 'map').map((panel) => `${dashboard.id}/${panel.panelIndex}`));
    expect(mapPanels).toStrictEqual(['vigil-dashboard-security-overview/detection-locations-map', 'vigil-dashboard-fraud-devices-geography/impossible-travel-map']);
  });

  it("fails when a map layer's point is not a geo_point, or is not in the template", () => {
    const travel = allMaps().find((entry) => entry.id === 'impossible-travel-map')!;
    const broken = { ...travel, layers: [{ ...travel.layers[0]!, kind: 'lines' as const, from: 'vigil.detection.geo.from.country_iso_code', to: 'vigil.detection.geo.to.spot', where: [], metrics: [], color: '#000000', label: 'x', view: 'detections' as const, expectData: false }] };
    expect(fieldProblems(TEMPLATE_MAPPINGS, fieldUses([], [broken]))).toStrictEqual([
      'map impossible-travel-map layer 1 (point): field vigil.detection.geo.from.country_iso_code is keyword in the detections index template, not geo_point',
      'map impossible-travel-map layer 1 (point): field vigil.detection.geo.to.spot is not in the detections index template',
    ]);
    expect(fieldProblems(renamed('detections', 'vigil.detection.geo.to.location', 'vigil.detection.geo.to.point'), fieldUses([], allMaps()))).toContain(
      'map impossible-travel-map layer 2 (point): field vigil.detection.geo.to.location is not in the detections index template',
    );
  });

  it('names the pipeline panels whose field the pipeline metrics template renames', () => {
    const pipelinePanels = allPanels().filter((candidate) => candidate.view === 'pipeline');
    expect(pipelinePanels.map((candidate) => candidate.id)).toStrictEqual(['events-in-and-indexed', 'dead-letters-by-reason', 'alert-changes', 'notifications-by-outcome']);
    expect(fieldProblems(renamed('pipeline', 'vigil.pipeline.reason', 'vigil.pipeline.cause'), fieldUses(pipelinePanels, []))).toStrictEqual([
      'panel dead-letters-by-reason (bucket): field vigil.pipeline.reason is not in the pipeline index template',
      'data view pipeline (format or label): field vigil.pipeline.reason is not in the pipeline index template',
    ]);
    expect(fieldProblems(renamed('pipeline', 'vigil.pipeline.count', 'vigil.pipeline.value'), fieldUses(pipelinePanels, [])).filter((problem) => problem.includes('(metric)'))).toStrictEqual(
      pipelinePanels.map((candidate) => `panel ${candidate.id} (metric): field vigil.pipeline.count is not in the pipeline index template`),
    );
  });

  it("finds a map layer whose data view reference is missing, and a map panel that refers to a Lens object", () => {
    const objects = lines.map((line) => savedObjectSchema.parse(line));
    const mapObject = objects.find((object) => object.type === 'map')!;
    expect(referenceProblems([...objects.filter((object) => object !== mapObject), { ...mapObject, references: mapObject.references.slice(1) }])).toStrictEqual([
      'vigil-map-detection-locations-map: layer detection-locations-map-layer-1 refers to layer_1_source_index_pattern, which has no reference',
    ]);
    const dashboard = objects.find((object) => object.id === 'vigil-dashboard-security-overview')!;
    const references = dashboard.references.map((ref) => (ref.type === 'map' ? { ...ref, type: 'lens' as const, id: 'vigil-lens-open-incidents-by-severity' } : ref));
    expect(referenceProblems([...objects.filter((object) => object !== dashboard), { ...dashboard, references }])).toStrictEqual([
      'vigil-dashboard-security-overview: panel detection-locations-map is a map panel but refers to a lens',
    ]);
  });

  it('refuses a map layer of a type or source Kibana would not read', () => {
    const mapObject = lines.find((object) => object.type === 'map')!;
    const layers = JSON.parse(String(mapObject.attributes.layerListJSON)) as Record<string, unknown>[];
    const wrong = JSON.stringify([layers[0], { ...layers[1], type: 'VECTOR' }]);
    expect(schemaProblems({ ...mapObject, attributes: { ...mapObject.attributes, layerListJSON: wrong } })[0]).toMatch(/^vigil-map-detection-locations-map: attributes\.layerListJSON: JSON text does not match: 1\.type: /);
  });

  // An alert is dated by its last detection: one still open but quiet for more than a day fell
  // out of the dashboard's 24 hours, and out of Discover's 15 minutes.
  it('shows open incidents over a year of their own, whatever the time picker says: the panel, its query and the saved search', () => {
    const range = { from: 'now-24h', to: 'now' };
    const open = allPanels().find((panel) => panel.id === 'open-incidents-by-severity');
    expect(open?.timeRange).toStrictEqual({ from: 'now-1y', to: 'now' });
    const filter = open ? (panelQuery(open, range).query).bool.filter : [];
    expect(filter).toContainEqual({ range: { '@timestamp': { gte: 'now-1y', lte: 'now' } } });
    const overview = lines.find((line) => line.type === 'dashboard' && line.id === 'vigil-dashboard-security-overview');
    const panels = JSON.parse(String(overview?.attributes.panelsJSON)) as { panelIndex: string; embeddableConfig: Record<string, unknown> }[];
    expect(panels.find((panel) => panel.panelIndex === 'open-incidents-by-severity')?.embeddableConfig).toStrictEqual({ timeRange: { from: 'now-1y', to: 'now' } });
    expect(panels.filter((panel) => Object.keys(panel.embeddableConfig).length > 0).map((panel) => panel.panelIndex)).toStrictEqual(['open-incidents-by-severity']);
    const search = lines.find((line) => line.id === 'vigil-search-open-alerts');
    expect(search?.attributes).toMatchObject({ timeRestore: true, timeRange: { from: 'now-1y', to: 'now' } });
    // A detection's events may be days old: the search opens on 30 days, not Discover's 15 minutes.
    expect(lines.find((line) => line.id === 'vigil-search-why-did-this-fire')?.attributes).toMatchObject({ timeRestore: true, timeRange: { from: 'now-30d', to: 'now' } });
    // Any other panel keeps the dashboard's range.
    const other = allPanels().find((panel) => panel.id === 'alerts-by-outcome');
    expect(other ? (panelQuery(other, range).query).bool.filter : []).toContainEqual({ range: { '@timestamp': { gte: 'now-24h', lte: 'now' } } });
  });

  it("draws the surge markers under the dashboard's filters: filtered to one endpoint, its surges only", () => {
    const marked = lines.filter((line) => line.type === 'lens' && JSON.stringify(line.attributes).includes('"layerType":"annotations"'));
    expect(marked.map((line) => line.id).sort()).toStrictEqual(['vigil-lens-p95-latency-per-route', 'vigil-lens-requests-per-route']);
    for (const line of marked) {
      const layers = (line.attributes.state as { visualization: { layers: { layerType: string; ignoreGlobalFilters?: boolean }[] } }).visualization.layers;
      expect(layers.filter((layer) => layer.layerType === 'annotations').map((layer) => layer.ignoreGlobalFilters)).toStrictEqual([false]);
    }
  });

  it('every object parses against the schema of its saved object type', () => {
    expect(lines.flatMap(schemaProblems)).toStrictEqual([]);
  });

  it('every reference resolves, within the file and within each Lens state', () => {
    expect(referenceProblems(lines.map((line) => savedObjectSchema.parse(line)))).toStrictEqual([]);
  });

  it('every field a panel, search or data view uses is in the index templates with a type it can use', () => {
    expect(fieldProblems()).toStrictEqual([]);
  });

  it('fails when a template renames a field a panel uses', () => {
    expect(fieldProblems(renamed('events', 'vigil.route', 'route_template'))).toStrictEqual([
      'panel requests-per-route (bucket): field vigil.route is not in the events index template',
      'panel p95-latency-per-route (bucket): field vigil.route is not in the events index template',
      'data view events (format or label): field vigil.route is not in the events index template',
    ]);
  });

  it('fails when a panel aggregates a text field', () => {
    const panel = { ...allPanels()[0]!, view: 'events' as const, buckets: [{ kind: 'terms' as const, field: 'user_agent.original.text', size: 5 }] };
    const uses = [{ view: 'events' as const, field: 'user_agent.original.text', where: `panel ${panel.id} (bucket)`, aggregated: true }];
    expect(fieldProblems(TEMPLATE_MAPPINGS, uses)).toStrictEqual([`panel ${panel.id} (bucket): field user_agent.original.text is text in the events index template, which can't be aggregated`]);
  });

  it('refuses an object whose shape Kibana would not read, naming the object and the path', () => {
    const lens = lines.find((object) => object.type === 'lens')!;
    expect(schemaProblems({ ...lens, attributes: { ...lens.attributes, visualizationType: 'lnsTagcloud' } })[0]).toMatch(new RegExp(`^${lens.id}: attributes.visualizationType: `));
    const dashboard = lines.find((object) => object.type === 'dashboard')!;
    expect(schemaProblems({ ...dashboard, attributes: { ...dashboard.attributes, panelsJSON: '[{"type":"lens"' } })).toStrictEqual([`${dashboard.id}: attributes.panelsJSON: not JSON text`]);
  });

  it('finds a reference to an object that is not in the file, and a panel without its reference', () => {
    const objects = lines.map((line) => savedObjectSchema.parse(line));
    const withoutFirstLens = objects.filter((object) => object.id !== 'vigil-lens-open-incidents-by-severity');
    expect(referenceProblems(withoutFirstLens)).toStrictEqual(['vigil-dashboard-security-overview: reference open-incidents-by-severity:panel_open-incidents-by-severity to lens vigil-lens-open-incidents-by-severity, which is not in the file']);
    const dashboard = objects.find((object) => object.type === 'dashboard')!;
    expect(referenceProblems([...objects.filter((object) => object !== dashboard), { ...dashboard, references: dashboard.references.slice(1) }])).toStrictEqual([
      'vigil-dashboard-security-overview: panel open-incidents-by-severity refers to panel_open-incidents-by-severity, which has no reference',
    ]);
  });

  it('uses other ids and index patterns under another prefix', () => {
    const objects = savedObjects('acme');
    expect(objects.every((object) => object.id.startsWith('acme-'))).toBe(true);
    expect(objects.filter((object) => object.type === 'index-pattern').map((object) => object.attributes.title)).toStrictEqual(['acme-events-*', 'acme-detections-*', 'acme-alerts', 'acme-pipeline-*']);
  });
});

describe('the query behind a map layer', () => {
  const range = { from: '2026-11-27T09:00:00Z', to: '2026-11-27T10:00:00Z' };
  const travel = (): MapLayer => allMaps().find((entry) => entry.id === 'impossible-travel-map')!.layers[0]!;

  it('nests the source tiles in the destination tiles, with the metrics per pair, as the point-to-point layer does', () => {
    expect(mapLayerQuery(travel(), range)).toStrictEqual({
      size: 0,
      query: {
        bool: {
          filter: [
            { term: { 'rule.id': 'impossible-travel' } },
            { exists: { field: 'vigil.detection.geo.from.location' } },
            { exists: { field: 'vigil.detection.geo.to.location' } },
            { range: { '@timestamp': { gte: range.from, lte: range.to } } },
          ],
        },
      },
      aggs: {
        destination: {
          geotile_grid: { field: 'vigil.detection.geo.to.location', precision: 4 },
          aggs: {
            destination_centroid: { geo_centroid: { field: 'vigil.detection.geo.to.location' } },
            source: { geotile_grid: { field: 'vigil.detection.geo.from.location', precision: 4 }, aggs: { source_centroid: { geo_centroid: { field: 'vigil.detection.geo.from.location' } }, metric_0: { max: { field: 'vigil.detection.geo.speed_kmh' } } } },
          },
        },
      },
    });
  });

  it('reads the lines and points a layer draws from a response', () => {
    const aggregations = {
      destination: {
        buckets: [{ key: '4/1/2', doc_count: 2, destination_centroid: { location: { lat: 35.6, lon: 139.7 } }, source: { buckets: [{ key: '4/3/4', doc_count: 2, source_centroid: { location: { lat: 51.5, lon: -0.1 } }, metric_0: { value: 4204 } }] } }],
      },
    };
    expect(mapLayerFeatures(travel(), { aggregations })).toStrictEqual([{ coordinates: [[-0.1, 51.5], [139.7, 35.6]], count: 2, metrics: [4204] }]);
    const points = allMaps().find((entry) => entry.id === 'detection-locations-map')!.layers[1]!;
    expect(mapLayerFeatures(points, { hits: { hits: [{ fields: { 'vigil.detection.geo.to.location': [{ type: 'Point', coordinates: [2.35, 48.85] }] } }, { fields: {} }] } })).toStrictEqual([{ coordinates: [[2.35, 48.85]], count: 1, metrics: [] }]);
  });
});

describe('the query behind a panel', () => {
  const panel = (id: string): ReturnType<typeof allPanels>[number] => allPanels().find((candidate) => candidate.id === id)!;
  const range = { from: '2026-11-27T09:00:00Z', to: '2026-11-27T10:00:00Z' };

  it('nests buckets outermost first, metrics inside, with the KQL as a filter', () => {
    expect(panelQuery(panel('p95-latency-per-route'), range)).toStrictEqual({
      size: 0,
      // No query of its own (its surge markers run it on the detections view): the range alone.
      query: { bool: { filter: [{ range: { '@timestamp': { gte: range.from, lte: range.to } } }] } },
      aggs: {
        bucket_0: {
          date_histogram: { field: '@timestamp', fixed_interval: '1m', min_doc_count: 0 },
          aggs: { bucket_1: { terms: { field: 'vigil.route', size: 10, order: { _count: 'desc' } }, aggs: { metric_0: { percentiles: { field: 'vigil.latency_ms', percents: [95] } } } } },
        },
      },
    });
    expect(panelQuery(panel('server-error-ratio'), range).aggs.bucket_0?.aggs).toStrictEqual({
      bucket_1: { filters: { filters: { '5xx': { bool: { filter: [{ range: { 'http.response.status_code': { gte: 500 } } }] } }, 'below 500': { bool: { filter: [{ range: { 'http.response.status_code': { lt: 500 } } }] } } } } },
    });
    expect(panelQuery(panel('distinct-sources-per-api'), range).aggs.bucket_0?.aggs).toMatchObject({ bucket_1: { aggs: { metric_0: { cardinality: { field: 'source.ip' } } } } });
    expect(panelQuery(panel('distinct-sources-per-api'), range).query.bool.filter).toContainEqual({ term: { 'vigil.family': 'invocation' } });
    // As Lens: a terms column ordered by the first metric when it is not a count.
    expect(panelQuery(panel('risk-per-user'), range).aggs.bucket_0).toMatchObject({ terms: { field: 'user.id', order: { metric_0: 'desc' } }, aggs: { metric_0: { max: { field: 'event.risk_score' } } } });
    // A pipeline panel sums the intervals' deltas (one document per counter and interval).
    expect(panelQuery(panel('dead-letters-by-reason'), range)).toMatchObject({
      query: { bool: { filter: [{ term: { 'vigil.pipeline.metric': 'dead_letters' } }, { range: { '@timestamp': { gte: range.from, lte: range.to } } }] } },
      aggs: { bucket_0: { aggs: { bucket_1: { terms: { field: 'vigil.pipeline.reason', size: 12, order: { metric_0: 'desc' } }, aggs: { metric_0: { sum: { field: 'vigil.pipeline.count' } } } } } } },
    });
  });

  it('reads the rows a panel draws from a response, skipping empty buckets', () => {
    const aggregations = {
      bucket_0: {
        buckets: [
          { key: 1, key_as_string: 't1', doc_count: 3, bucket_1: { buckets: [{ key: '/v1/checkout', doc_count: 3, metric_0: { values: { '95.0': 812.5 } } }] } },
          { key: 2, key_as_string: 't2', doc_count: 0, bucket_1: { buckets: [] } },
        ],
      },
    };
    expect(panelRows(panel('p95-latency-per-route'), aggregations, 3)).toStrictEqual([{ keys: ['t1', '/v1/checkout'], count: 3, metrics: [812.5] }]);
  });

  it('every dashboard has panels, and panel ids are unique', () => {
    const ids = allPanels().map((candidate) => candidate.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(DASHBOARDS.every((dashboard) => dashboard.panels.length > 0)).toBe(true);
  });
});
