import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Vigil } from '../../app';
import { allMaps, allPanels, mapLayerFeatures, mapLayerQuery, panelQuery, panelRows, viewPatterns, toQueryDsl, type MapFeature, type PanelRow, type PanelSpec } from '../../dashboards';
import { deleteKeysUnder } from '../../detectors';
import type { IngestPipeline } from '../../ingest';
import { createEmitter } from '../../ingest/sdk';
import { SEVERITIES } from '../../schemas';
import { injectAttacks } from '../../scripts/attack-traffic';
import { emitDosBurst, emitDosHistory } from '../../scripts/dos-traffic';
import { isolatedConfig, openStack, vigilOn, waitFor, type Stack } from '../support/harness';

/**
 * The query behind every dashboard panel, run on the real Elasticsearch after the demo's attack
 * traffic (eight attacks, the DoS history, ramp and burst) went through the real pipeline and
 * alerter: each panel whose data that traffic makes must have some, and the key panels the data
 * they are meant to show.
 */
describe('the dashboards\' panels on the real Elasticsearch, after attack traffic', () => {
  let stack: Stack;
  let vigil: Vigil;
  let redis: Redis;
  const redisPrefix = `it-${randomBytes(4).toString('hex')}`;
  const runId = `dash-${randomBytes(3).toString('hex')}`;
  const rows = new Map<string, PanelRow[]>();
  /** The features each map layer draws, by `<map id>/<layer number>`. */
  const features = new Map<string, MapFeature[]>();
  const range = { from: 'now-2h', to: 'now+1h' };

  beforeAll(async () => {
    stack = openStack(isolatedConfig({ VIGIL_REDIS_PREFIX: redisPrefix, VIGIL_RULES_WATCH: 'false' }));
    redis = new Redis(stack.config.redis.url);
    vigil = vigilOn(stack, { redis, roles: ['ingest', 'alerting'] });
    await vigil.start();
    const pipeline = vigil.pipeline as IngestPipeline;

    const history = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'shop-gateway', kind: 'gateway' }, lingerMs: 20, maxBuffer: 20_000 });
    const sent = emitDosHistory(history, runId, Date.now());
    await history.flush();
    await waitFor('the DoS history indexed', () => pipeline.stats().indexed + pipeline.stats().duplicates >= sent, 240_000);
    const burst = emitDosBurst(history, runId, Date.now());
    const attacker = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'edge-gateway-eu', kind: 'gateway' }, lingerMs: 20 });
    const attacks = injectAttacks(attacker, { runId });
    await Promise.all([history.close(), attacker.close()]);
    const total = sent + burst + attacks.reduce((sum, attack) => sum + attack.events, 0);
    await waitFor('all events indexed', () => pipeline.stats().indexed + pipeline.stats().duplicates + pipeline.stats().deadLettered >= total, 120_000);
    await waitFor('the alerter folded every detection in', () => (vigil.alerter?.stats().detections ?? 0) >= pipeline.stats().detections && pipeline.stats().detections > 0, 60_000);

    const patterns = viewPatterns(stack.config.indices.prefix);
    await waitFor('alerts indexed', async () => {
      await stack.elasticsearch.indices.refresh({ index: Object.values(patterns).join(','), allow_no_indices: true, ignore_unavailable: true });
      const { count } = await stack.elasticsearch.count({ index: patterns.alerts, allow_no_indices: true, ignore_unavailable: true });
      return count > 0;
    });
    for (const panel of allPanels()) {
      const body = panelQuery(panel, range);
      const response = await stack.elasticsearch.search({ index: patterns[panel.view], allow_no_indices: true, ...body });
      const total = typeof response.hits.total === 'number' ? response.hits.total : (response.hits.total?.value ?? 0);
      rows.set(panel.id, panelRows(panel, response.aggregations, total));
    }
    for (const entry of allMaps()) {
      for (const [index, layer] of entry.layers.entries()) {
        const response = await stack.elasticsearch.search({ index: patterns[layer.view], allow_no_indices: true, ...mapLayerQuery(layer, range) });
        features.set(`${entry.id}/${index + 1}`, mapLayerFeatures(layer, response));
      }
    }
  }, 600_000);

  afterAll(async () => {
    await vigil.stop();
    await deleteKeysUnder(redis, redisPrefix);
    await redis.quit();
    await stack.cleanup();
  });

  const expecting = allPanels().filter((panel) => panel.expectData);
  it.each(expecting.map((panel): [string, PanelSpec] => [panel.id, panel]))('panel %s has data', (id) => {
    expect([id, (rows.get(id) ?? []).length > 0]).toStrictEqual([id, true]);
  });

  const layersExpecting = allMaps().flatMap((entry) => entry.layers.flatMap((layer, index) => (layer.expectData ? [`${entry.id}/${index + 1}`] : [])));
  it.each(layersExpecting)('map layer %s draws something', (id) => {
    expect([id, (features.get(id) ?? []).length > 0]).toStrictEqual([id, true]);
  });

  it('draws the impossible travel pair as a line between two distant places, with its speed', () => {
    const lines = features.get('impossible-travel-map/1') ?? [];
    const far = lines.filter(({ coordinates: [from, to] }) => from !== undefined && to !== undefined && Math.hypot(from[0] - to[0], from[1] - to[1]) > 10);
    expect(far.length).toBeGreaterThan(0);
    expect(Math.max(...far.map((line) => line.metrics[0] ?? 0))).toBeGreaterThan(900);
  });

  const of = (id: string): PanelRow[] => rows.get(id) ?? [];

  it('shows open incidents by a severity Vigil uses', () => {
    expect(of('open-incidents-by-severity').every((row) => (SEVERITIES as readonly string[]).includes(row.keys[0] ?? ''))).toBe(true);
  });

  it("shows the burst's 5xx and its latency on the DoS endpoint", () => {
    expect(of('server-error-ratio').some((row) => row.keys[1] === '5xx' && row.count > 0)).toBe(true);
    const checkout = of('p95-latency-per-route').filter((row) => row.keys[1] === '/v1/checkout').map((row) => row.metrics[0] ?? 0);
    expect(Math.max(...checkout)).toBeGreaterThanOrEqual(2500);
    expect(of('surge-detections').map((row) => row.keys[0])).toEqual(expect.arrayContaining([expect.stringMatching(/surge|flood/i)]));
  });

  it('marks the surge detections the annotation layer queries', async () => {
    const panel = allPanels().find((candidate) => candidate.annotations !== undefined)!;
    const { count } = await stack.elasticsearch.count({ index: viewPatterns(stack.config.indices.prefix).detections, query: { bool: { filter: toQueryDsl(panel.annotations!.where) } } });
    expect(count).toBeGreaterThan(0);
  });

  it('shows the credential stuffing source, the takeover and the impossible travel pair', () => {
    expect(of('stuffing-sources').some((row) => row.keys[0] === 'Credential stuffing from one IP' && (row.keys[1] ?? '').includes('185.220.101.'))).toBe(true);
    expect(of('takeover-sequences').length).toBeGreaterThan(0);
    const travel = of('impossible-travel-pairs');
    expect(travel.some((row) => (row.metrics[0] ?? 0) > 10_000)).toBe(true);
  });
});
