import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import type { Vigil } from '../../app';
import { allMaps, allPanels, mapLayerFeatures, mapLayerQuery, panelQuery, panelRows, viewPatterns, toQueryDsl, type MapFeature, type PanelRow, type PanelSpec } from '../../dashboards';
import { deleteKeysUnder } from '../../detectors';
import type { IngestPipeline } from '../../ingest';
import { createEmitter } from '../../ingest/sdk';
import { createProducer } from '../../platform';
import { SEVERITIES } from '../../schemas';
import { injectAttacks } from '../../scripts/attack-traffic';
import { emitDosScenario } from '../../scripts/dos-traffic';
import { isolatedConfig, openStack, vigilOn, waitFor, type Stack } from '../support/harness';

/** Messages the test writes straight to the policy topic, which the pipeline dead-letters. */
const NOT_JSON = 7;
const SCHEMA_INVALID = 4;

/**
 * On-call's endpoints, one per destination: `/ok` answers 200, `/refuse` 400 (final: the
 * notification fails), `/flaky` 503 the first time and 200 after (retried, then sent).
 */
async function startReceiver(): Promise<{ url: string; requests: Map<string, number>; close(): Promise<void> }> {
  const requests = new Map<string, number>();
  const server: Server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      const path = request.url ?? '/';
      const seen = (requests.get(path) ?? 0) + 1;
      requests.set(path, seen);
      const status = path === '/refuse' ? 400 : path === '/flaky' && seen === 1 ? 503 : 200;
      response.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((done) => server.close(() => done())) };
}

/**
 * The query behind every dashboard panel, run on the real Elasticsearch after the demo's attack
 * traffic (eight attacks, the DoS history, ramp and burst) went through the real pipeline and
 * alerter: each panel whose data that traffic makes must have some, and the key panels the data
 * they are meant to show. The test adds malformed messages (dead letters) and three webhook
 * destinations (sent, failed, retried), and stops Vigil before reading, so the pipeline panels
 * hold every interval, the last one written at stop included.
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
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  /** What the process counted, read once it stopped: the pipeline panels must sum to exactly this. */
  let counted: { ingest: ReturnType<IngestPipeline['stats']>; alerter: { opened: number; escalated: number; resolved: number }; destinations: Record<string, { sent: number; retried: number; failed: number }> };
  let written = { documents: 0, pending: 0, intervals: 0 };

  beforeAll(async () => {
    receiver = await startReceiver();
    const destination = (name: string, path: string): Record<string, unknown> => ({ name, type: 'webhook', url: `${receiver.url}${path}`, secret: 'dashboards-test-secret-0123', groupWaitMs: 0, groupIntervalMs: 0 });
    stack = openStack(
      isolatedConfig({
        VIGIL_REDIS_PREFIX: redisPrefix,
        VIGIL_RULES_WATCH: 'false',
        VIGIL_PIPELINE_STATS_INTERVAL_MS: '1000',
        VIGIL_INSTANCE_NAME: 'dashboards-test',
        VIGIL_ALERT_DESTINATIONS: JSON.stringify([destination('on-call', '/ok'), destination('refusing', '/refuse'), destination('flaky', '/flaky')]),
      }),
    );
    redis = new Redis(stack.config.redis.url);
    vigil = vigilOn(stack, { redis, roles: ['ingest', 'alerting'] });
    await vigil.start();
    const pipeline = vigil.pipeline as IngestPipeline;

    const history = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'shop-gateway', kind: 'gateway' }, lingerMs: 20, maxBuffer: 20_000 });
    // The DoS scenario in event time, its burst 8 minutes ago (judged complete once the lateness passed it).
    const { history: sent, burst } = emitDosScenario(history, runId, Date.now());
    await history.flush();
    await waitFor('the DoS history indexed', () => pipeline.stats().indexed + pipeline.stats().duplicates >= sent + burst, 240_000);
    const attacker = createEmitter({ kafka: stack.kafka, topics: stack.config.topics, source: { service: 'edge-gateway-eu', kind: 'gateway' }, lingerMs: 20 });
    const attacks = injectAttacks(attacker, { runId });
    // One user's sign-in now, then one 20 minutes older in the same partition: past the allowed
    // lateness, so indexed with vigil.late (the late-events panel).
    const signIn = (id: string, time: number): unknown =>
      attacker.policy({
        id: `${id}-${runId}`,
        time: new Date(time).toISOString(),
        actor: { userId: `u-late-${runId}`, consumerId: 'app-mobile-ios' },
        client: { ip: '81.2.69.160' },
        policy: { kind: 'authn', name: 'verify-password', outcome: 'pass', group: 'accounts', resource: { api: 'accounts-v1', method: 'POST', path: '/v1/login' } },
      });
    signIn('evt-on-time', Date.now());
    signIn('evt-late', Date.now() - 20 * 60_000);
    const LATE_TRAFFIC = 2;
    await Promise.all([history.close(), attacker.close()]);
    // Malformed input from a raw producer: the SDK validates, so only these become dead letters.
    const raw = createProducer(stack.kafka);
    await raw.connect();
    await raw.send({
      topic: stack.config.topics.policy,
      messages: [
        ...Array.from({ length: NOT_JSON }, (_, n) => ({ value: `not json {${n}` })),
        ...Array.from({ length: SCHEMA_INVALID }, (_, n) => ({ value: JSON.stringify({ id: `bad-${runId}-${n}`, schemaVersion: 1, family: 'policy' }) })),
      ],
    });
    await raw.disconnect();
    const total = sent + burst + attacks.reduce((sum, attack) => sum + attack.events, 0) + LATE_TRAFFIC + NOT_JSON + SCHEMA_INVALID;
    await waitFor('all events indexed', () => pipeline.stats().indexed + pipeline.stats().duplicates + pipeline.stats().deadLettered >= total, 120_000);
    await waitFor('the alerter folded every detection in', () => (vigil.alerter?.stats().detections ?? 0) >= pipeline.stats().detections && pipeline.stats().detections > 0, 60_000);

    const patterns = viewPatterns(stack.config.indices.prefix);
    await waitFor('alerts indexed', async () => {
      await stack.elasticsearch.indices.refresh({ index: Object.values(patterns).join(','), allow_no_indices: true, ignore_unavailable: true });
      const { count } = await stack.elasticsearch.count({ index: patterns.alerts, allow_no_indices: true, ignore_unavailable: true });
      return count > 0;
    });
    // Every destination got its first notification: the refused one failed, the flaky one was retried and sent.
    await waitFor('notifications sent, failed and retried', () => {
      const stats = vigil.notifier?.destinationStats() ?? {};
      return (stats['on-call']?.sent ?? 0) > 0 && (stats.refusing?.failed ?? 0) > 0 && (stats.flaky?.sent ?? 0) > 0;
    }, 60_000);
    await vigil.notifier?.drain();
    // Stopped before reading: the pipeline metrics' last interval is written at stop.
    await vigil.stop();
    counted = { ingest: pipeline.stats(), alerter: vigil.alerter?.stats() ?? { opened: 0, escalated: 0, resolved: 0 }, destinations: vigil.notifier?.destinationStats() ?? {} };
    const reporter = vigil.pipelineStats?.stats();
    await stack.elasticsearch.indices.refresh({ index: patterns.pipeline, allow_no_indices: true });
    const intervals = await stack.elasticsearch.search({ index: patterns.pipeline, size: 0, aggs: { ends: { cardinality: { field: 'event.end' } } } });
    const documents = typeof intervals.hits.total === 'number' ? intervals.hits.total : (intervals.hits.total?.value ?? 0);
    written = { documents, pending: reporter?.pending ?? -1, intervals: (intervals.aggregations?.ends as { value: number } | undefined)?.value ?? 0 };
    expect(reporter?.written).toBe(documents);
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
    await receiver.close();
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

  it('marks the surge detections the annotation layers query, with the chart\'s own query as Kibana adds it', async () => {
    const annotated = allPanels().filter((candidate) => candidate.annotations !== undefined);
    expect(annotated.length).toBeGreaterThan(0);
    for (const panel of annotated) {
      const where = [...panel.where, ...(panel.annotations?.where ?? [])];
      const { count } = await stack.elasticsearch.count({ index: viewPatterns(stack.config.indices.prefix).detections, query: { bool: { filter: toQueryDsl(where) } } });
      expect([panel.id, count > 0]).toStrictEqual([panel.id, true]);
    }
  });

  it('shows the credential stuffing source, the takeover and the impossible travel pair', () => {
    expect(of('stuffing-sources').some((row) => row.keys[0] === 'Credential stuffing from one IP' && (row.keys[1] ?? '').includes('185.220.101.'))).toBe(true);
    expect(of('takeover-sequences').length).toBeGreaterThan(0);
    const travel = of('impossible-travel-pairs');
    expect(travel.some((row) => (row.metrics[0] ?? 0) > 10_000)).toBe(true);
  });

  /** A pipeline panel's sums per bucket key (`key1/key2`), over its time buckets. */
  const sums = (id: string): Record<string, number> => {
    const buckets = allPanels().find((candidate) => candidate.id === id)?.buckets ?? [];
    const totals: Record<string, number> = {};
    for (const row of of(id)) {
      const key = row.keys.filter((_, index) => buckets[index]?.kind !== 'date_histogram').join('/');
      totals[key] = (totals[key] ?? 0) + (row.metrics[0] ?? 0);
    }
    return totals;
  };
  const nonZero = (entries: [string, number | undefined][]): Record<string, number> => Object.fromEntries(entries.filter((entry): entry is [string, number] => (entry[1] ?? 0) > 0));

  it('writes the pipeline metrics every interval and the last one at stop, all acknowledged', () => {
    expect(written.pending).toBe(0);
    expect(written.documents).toBeGreaterThan(0);
    // Deltas of many intervals, not one total: the interval is 1 s and the traffic takes seconds
    // (how many depends on the machine; an interval in which nothing moved writes nothing).
    expect(written.intervals).toBeGreaterThan(2);
  });

  it('shows the dead letters by reason: exactly the malformed messages the test wrote', () => {
    expect(sums('dead-letters-by-reason')).toStrictEqual({ not_json: NOT_JSON, schema_invalid: SCHEMA_INVALID });
    expect(sums('dead-letters-by-reason')).toStrictEqual(nonZero(Object.entries(counted.ingest.deadLetteredByReason)));
  });

  it('shows events in and indexed per family as the process counted them', () => {
    const expected = nonZero([
      ...Object.entries(counted.ingest.consumedByFamily).map(([family, value]): [string, number | undefined] => [`${family}/events_in`, value]),
      ...Object.entries(counted.ingest.indexedByFamily).map(([family, value]): [string, number | undefined] => [`${family}/events_indexed`, value]),
    ]);
    expect(sums('events-in-and-indexed')).toStrictEqual(expected);
    const policy = sums('events-in-and-indexed');
    // The dead letters came in on the policy topic and were not indexed.
    expect((policy['policy/events_in'] ?? 0) - (policy['policy/events_indexed'] ?? 0)).toBeGreaterThanOrEqual(NOT_JSON + SCHEMA_INVALID);
  });

  it('shows the alerts opened, escalated and resolved as the alerter made them', () => {
    const { opened, escalated, resolved } = counted.alerter;
    expect(opened).toBeGreaterThan(0);
    expect(sums('alert-changes')).toStrictEqual(nonZero([['opened', opened], ['escalated', escalated], ['resolved', resolved]]));
  });

  it('shows notifications by destination and outcome: what on-call answered', () => {
    const shown = sums('notifications-by-outcome');
    const expected = nonZero(Object.entries(counted.destinations).flatMap(([name, stats]): [string, number][] => [[`${name}/sent`, stats.sent], [`${name}/retried`, stats.retried], [`${name}/failed`, stats.failed]]));
    expect(shown).toStrictEqual(expected);
    // Each answer the receiver gave is one outcome: 200 sent, 400 failed (final), 503 retried.
    const requests = (path: string): number => receiver.requests.get(path) ?? 0;
    expect(shown['on-call/sent']).toBe(requests('/ok'));
    expect(shown['refusing/failed']).toBe(requests('/refuse'));
    expect(shown['refusing/sent']).toBeUndefined();
    expect(shown['flaky/retried']).toBe(1);
    expect(shown['flaky/sent']).toBe(requests('/flaky') - 1);
  });
});
