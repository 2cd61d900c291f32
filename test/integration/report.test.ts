import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmitter } from '../../ingest/sdk';
import { alertIndexNames, detectionIndexNames } from '../../schemas';
import { dosEndpoints, emitDosScenario } from '../../scripts/dos-traffic';
import { injectAttacks } from '../../scripts/attack-traffic';
import { writeReport } from '../../scripts/report';
import { cutLists, escapeHtml } from '../../scripts/report-html';
import { installTemplates } from '../../platform';
import type { Vigil } from '../../app';
import { countEvents, isolatedConfig, openStack, testLogger, vigilOn, waitFor, type Stack } from '../support/harness';
import { renderInBrowser } from '../support/report-browser';

/** A user name an attacker chose: it must reach the report as text and never run. */
const HOSTILE_USER = '<script>window.pwned=1</script>';

describe('vigil report: incidents from the real pipeline, rendered in a real browser', () => {
  let stack: Stack;
  let vigil: Vigil;
  const runId = `rpt${Date.now().toString(36)}`;
  const folder = mkdtempSync(join(tmpdir(), 'vigil-report-'));

  beforeAll(async () => {
    stack = openStack(isolatedConfig({ VIGIL_ALERT_RESOLVE_AFTER_MS: '600000' }));
    vigil = vigilOn(stack, { roles: ['ingest', 'alerting'], sweepEveryMs: 500 });
    await vigil.start();
  }, 60_000);

  afterAll(async () => {
    await vigil.stop();
    await stack.cleanup();
    rmSync(folder, { recursive: true, force: true });
  });

  it('shows the DoS incident with its traffic, the impossible travel of a hostile user name as text, and charts with data; no console error, no request', async () => {
    const { config, elasticsearch, kafka } = stack;
    const emitter = createEmitter({ kafka, topics: config.topics, source: { service: 'shop-gateway', kind: 'gateway' }, logger: testLogger, lingerMs: 20, maxBuffer: 20_000 });
    // As the demo does: the DoS scenario first (event time, its burst 8 minutes ago), then the attacks.
    const { history, burst } = emitDosScenario(emitter, runId, Date.now());
    await emitter.flush();
    await waitFor('the history indexed', async () => (await countEvents(stack)) >= history + burst, 120_000);
    injectAttacks(emitter, { runId, labels: { run: runId } });
    // Impossible travel by a user whose name is markup: London, then Sydney three minutes later
    // (addresses geoip places in a city: a country-only answer never enters a travel).
    const now = Date.now();
    for (const [secondsAgo, ip] of [[200, '81.2.69.142'], [20, '1.144.110.23']] as const) {
      emitter.device({
        time: new Date(now - secondsAgo * 1000).toISOString(),
        actor: { userId: HOSTILE_USER },
        client: { ip },
        device: { deviceId: 'dev-hostile', type: 'mobile', os: 'iOS 18.1', action: 'login', ip },
      });
    }
    await emitter.close();

    const dos = dosEndpoints(runId).burst;
    const alerts = alertIndexNames(config.indices.prefix).index;
    const detections = detectionIndexNames(config.indices.prefix).pattern;
    await waitFor(
      "the DoS incident's alert and the hostile user's impossible travel in Elasticsearch",
      async () => {
        await elasticsearch.indices.refresh({ index: [alerts, detections], ignore_unavailable: true, allow_no_indices: true });
        const dosAlerts = await elasticsearch.count({ index: alerts, ignore_unavailable: true, allow_no_indices: true, query: { term: { 'vigil.alert.group_key': `invocation.resource.api=${dos.api},invocation.route=${dos.route}` } } });
        const travel = await elasticsearch.count({ index: alerts, ignore_unavailable: true, allow_no_indices: true, query: { term: { 'vigil.alert.rules': 'impossible-travel' } } });
        return dosAlerts.count >= 1 && travel.count >= 1;
      },
      120_000,
    );

    // The alert fires while the rest of the burst may still be on its way to the index.
    const endpoint = { bool: { filter: [{ term: { 'vigil.api': dos.api } }, { term: { 'vigil.route': dos.route } }] } };
    await waitFor('the whole DoS burst indexed', async () => (await countEvents(stack, endpoint)) >= 12 * 120 + 1200, 60_000);

    const out = join(folder, 'report.html');
    const render = () => writeReport(elasticsearch, config, { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 60_000) }, out);
    // Alerts and their detections reach Elasticsearch by two paths (the alerter, the pipeline):
    // an alert can be searchable a moment before the detections it cites.
    let report = await render();
    await waitFor(
      "every incident's detections searchable",
      async () => {
        await elasticsearch.indices.refresh({ index: [alerts, detections], ignore_unavailable: true, allow_no_indices: true });
        report = await render();
        return report.data.incidents.every((item) => item.evidence.length > 0);
      },
      60_000,
    ).catch(() => undefined); // the assertion below says what is missing
    const { path, data } = report;
    expect(path).toBe(out);

    // The data: the DoS endpoint's burst and baseline per minute, the travel pair, evidence.
    const incident = data.dos.find((item) => item.api === dos.api && item.route === dos.route);
    expect(incident).toBeDefined();
    expect(incident?.requests.reduce((sum, count) => sum + count, 0)).toBeGreaterThanOrEqual(1200);
    expect(incident?.errors.reduce((sum, count) => sum + count, 0)).toBe(600);
    expect(Math.max(...(incident?.p95LatencyMs ?? []).map((value) => value ?? 0))).toBeGreaterThanOrEqual(2000);
    expect(data.travel.map((pair) => pair.entity)).toContain(`actor.userId=${HOSTILE_USER}`);
    const hostile = data.travel.find((pair) => pair.entity.includes(HOSTILE_USER));
    expect(hostile?.from.country).toBe('GB');
    expect(hostile?.to.country).toBe('AU');
    expect(data.incidents.length).toBeGreaterThanOrEqual(2);
    expect(data.incidents.every((item) => item.evidence.length > 0)).toBe(true);
    expect(data.timeline.series.map((series) => series.ruleId)).toEqual(expect.arrayContaining(['impossible-travel', 'credential-stuffing']));

    // The file: the name as escaped text only.
    const html = readFileSync(out, 'utf8');
    expect(html).not.toContain(HOSTILE_USER);
    expect(html).toContain(escapeHtml(HOSTILE_USER));

    // The browser: no error, no request, every chart with data, the name shown as text.
    const screenshot = join(folder, 'report.png');
    const rendered = await renderInBrowser(out, screenshot);
    expect(rendered.errors).toEqual([]);
    expect(rendered.requests).toEqual([]);
    expect(rendered.pwned).toBe(false);
    const ids = rendered.charts.map((chart) => chart.id);
    expect(ids).toEqual(expect.arrayContaining(['timeline', 'entities', `dos-${data.dos.indexOf(incident as (typeof data.dos)[number])}`]));
    for (const chart of rendered.charts) expect({ id: chart.id, hasData: chart.points > 0 && chart.total > 0 }).toEqual({ id: chart.id, hasData: true });
    expect(rendered.text).toContain(HOSTILE_USER);
    expect(rendered.text).toContain('Impossible travel');
    expect(existsSync(screenshot) && statSync(screenshot).size).toBeGreaterThan(20_000);
  }, 300_000);
});

describe('vigil report: which incidents a range holds', () => {
  let stack: Stack;
  const t0 = Date.parse('2026-11-02T08:00:00.000Z');
  const minute = 60_000;

  /** An alert document as the alerter writes it, with the fields the report reads. */
  function alert(id: string, start: number, lastDetected: number, end?: number): Record<string, unknown> {
    const iso = (ms: number): string => new Date(ms).toISOString();
    return {
      '@timestamp': iso(lastDetected),
      kibana: {
        alert: {
          uuid: id,
          status: end === undefined ? 'active' : 'recovered',
          severity: 'medium',
          reason: `${id} happened`,
          start: iso(start),
          ...(end === undefined ? {} : { end: iso(end) }),
          last_detected: iso(lastDetected),
          rule: { uuid: ['brute-force'] },
        },
      },
      vigil: { alert: { title: id, key: { 'actor.userId': id }, count: 1, detections: [], rules: ['brute-force'] } },
    };
  }

  beforeAll(async () => {
    stack = openStack(isolatedConfig());
    await installTemplates(stack.elasticsearch, stack.config);
    const index = alertIndexNames(stack.config.indices.prefix).index;
    // 205 incidents a minute apart, each over in 30 s; one still active, quiet since 50 minutes before the first.
    const documents = Array.from({ length: 205 }, (_, n) => alert(`synthetic-${n}`, t0 + n * minute, t0 + n * minute, t0 + n * minute + 30_000));
    documents.push(alert('quiet-but-active', t0 - 60 * minute, t0 - 50 * minute));
    await stack.elasticsearch.bulk({ refresh: true, operations: documents.flatMap((document) => [{ create: { _index: index, _id: String((document.vigil as { alert: { title: string } }).alert.title) } }, document]) });
  }, 60_000);

  afterAll(async () => {
    await stack.cleanup();
  });

  it('holds an incident still active in the range, though it had no detection in it', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'vigil-report-'));
    try {
      const { data } = await writeReport(stack.elasticsearch, stack.config, { from: new Date(t0 - 10 * minute), to: new Date(t0 - 5 * minute) }, join(folder, 'r.html'));
      expect(data.incidents.map((incident) => incident.id)).toEqual(['quiet-but-active']);
      expect(data.totals.incidents).toBe(1);
      expect(cutLists(data)).toEqual([]);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('lists the newest 200 of more incidents, oldest first, and says what it left out', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'vigil-report-'));
    try {
      const out = join(folder, 'r.html');
      const { data } = await writeReport(stack.elasticsearch, stack.config, { from: new Date(t0), to: new Date(t0 + 300 * minute) }, out);
      // 205 over in the range, and the active one (started before it, not ended).
      expect(data.totals.incidents).toBe(206);
      expect(data.incidents).toHaveLength(200);
      expect(data.incidents[0]?.id).toBe('synthetic-5');
      expect(data.incidents.at(-1)?.id).toBe('synthetic-204');
      expect(cutLists(data)).toEqual(['the report lists the newest 200 of 206 incidents; narrow --from/--to for the rest']);
      expect(readFileSync(out, 'utf8')).toContain('The newest 200 of 206 incidents are shown; narrow the range for the rest.');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
