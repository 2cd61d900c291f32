import { join } from 'node:path';
import { createAdapt, createVigil, type Adapt } from '../app';
import type { IngestPipeline } from '../ingest';
import { createEmitter, type Emitter } from '../ingest/sdk';
import type { AlertChange } from '../schemas';
import { startAlertReceiver, type Received } from './alert-receiver';
import { DOS_RULES, dosEndpoints, emitDosScenario } from './dos-traffic';
import type { Detection } from '../schemas';
import type { InjectedAttack } from './attack-traffic';
import { LIVE_SPAN_MS, dosScenarioEnd, emitLiveTraffic, liveSliceMs, untilTaken } from './demo-traffic';
import { writeReport } from './report';
import { deleteKeysUnder } from '../detectors';
import { createElasticsearch, createLogger, createProducer, createRedis, loadConfig, secretsOf, sleep, urlWithoutCredentials } from '../platform';
import { CURRENT_SCHEMA_VERSION, indexNames, pipelineIndexNames } from '../schemas';
import { SIMULATED_SOURCES, malformedMessages } from './simulated-traffic';
import { KONG_CANNOT_CARRY, kongEmitter } from './demo-via';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** How many events the simulated services emit through the SDK. @defaultValue 3000 */
  events: number;
  /** Copies of each kind of malformed message sent beside them. @defaultValue 5 */
  badCopies?: number;
  /** Give up waiting for the pipeline after this long. @defaultValue 180000 */
  timeoutMs?: number;
  /**
   * Run the first simulated gateway (and the attacks injected through it) through a gateway
   * format: its traffic becomes that gateway's log records on a raw topic, translated by an
   * in-process `vigil adapt`. Only `kong` for now.
   */
  via?: 'kong';
}

/**
 * The demo: runs the ingest pipeline in this process, emits realistic traffic through the SDK
 * from five simulated gateways and services plus raw malformed messages from a producer that
 * is not the SDK, shows progress, and ends with a summary checked against Elasticsearch and the
 * incident report of the run (`reports/vigil-report-<run>.html`, see docs/report.md).
 * Returns the exit code: 0 only when every check of the summary holds: indexed = sent -
 * dead-lettered (by Elasticsearch's count), every attack caught and the benign traffic quiet, the
 * DoS burst one incident holding its three rules, no detection folded late, and a report with a
 * DoS incident.
 */
/**
 * Notification grouping for the demo's destinations: a minute of traffic can't wait out
 * production's 30 s group wait and 5 min group interval, so on-call hears of an incident within
 * 2 s and of its escalation within 10 s, still grouped (docs/alerting.md).
 */
const DEMO_GROUPING = { groupWaitMs: 2000, groupIntervalMs: 10_000 } as const;

/**
 * The alerter's timings in the demo (each unless set in the environment): alerts resolve after 8
 * s of quiet so the demo can show a resolution, and the alerter holds detections 5 s before
 * folding them in event-time order (docs/alerting.md): a minute of production's default would
 * outlast the demo's last burst. The demo's traffic is written in event-time order, so no
 * detection arrives later than that (test/integration/demo-order.test.ts). 5 s, not 2 as before
 * 6 December 2026: the watermark also counts a detections partition idle for the lateness (wall
 * time) as caught up, and on a busy machine one detection of a run reached the alerter more than
 * 2 s behind it, which the demo reports as a mismatch.
 */
export const DEMO_ALERT_TIMINGS = { VIGIL_ALERT_RESOLVE_AFTER_MS: '8000', VIGIL_ALERT_LATENESS_MS: '5000' } as const;

export async function runDemo(options: DemoOptions): Promise<number> {
  // On-call for the demo is a loopback receiver, unless destinations are configured; alerts
  // resolve after 8 s of quiet so the demo can show a resolution.
  const secret = 'demo-webhook-secret-0123456789';
  const receiver = await startAlertReceiver(secret);
  const configured = (process.env.VIGIL_ALERT_DESTINATIONS ?? '').trim();
  const runId = `demo-${Date.now().toString(36)}`;
  // The adapter's events carry no labels.run: the run's own service name finds them.
  const viaService = `edge-kong-${runId}`;
  // The run's own Redis state, under `<VIGIL_REDIS_PREFIX>:<run>` and deleted at the end, like its
  // endpoints and attack names: the alerter's event-time clock is in Redis, and a run replays
  // history from 35 minutes back, behind what the run before it folded; on a shared clock every
  // detection of a run started within minutes of another was late (docs/alerting.md).
  const redisPrefix = `${process.env.VIGIL_REDIS_PREFIX ?? 'vigil'}:${runId}`;
  const config = loadConfig({
    ...process.env,
    VIGIL_REDIS_PREFIX: redisPrefix,
    ...(options.via !== undefined
      ? { VIGIL_ADAPT_SERVICE: viaService, VIGIL_ADAPT_ENVIRONMENT: 'prod', VIGIL_ADAPT_GROUPS: JSON.stringify({ default: 'edge' }), VIGIL_ADAPT_CONSUMER_GROUP: `vigil-adapt-${runId}` }
      : {}),
    ...(configured === '' || configured === '[]'
      ? {
          VIGIL_ALERT_DESTINATIONS: JSON.stringify([
            { name: 'on-call-webhook', type: 'webhook', url: `${receiver.url}/webhook`, secret, minSeverity: 'medium', ...DEMO_GROUPING },
            { name: 'security-slack', type: 'slack', url: `${receiver.url}/slack`, minSeverity: 'high', ...DEMO_GROUPING },
            { name: 'pagerduty-sre', type: 'pagerduty', url: `${receiver.url}/pagerduty`, routingKey: 'demo-routing-key-0000000000000000', minSeverity: 'high', tags: ['dos'], ...DEMO_GROUPING },
          ]),
        }
      : {}),
    VIGIL_ALERT_RESOLVE_AFTER_MS: process.env.VIGIL_ALERT_RESOLVE_AFTER_MS ?? DEMO_ALERT_TIMINGS.VIGIL_ALERT_RESOLVE_AFTER_MS,
    VIGIL_ALERT_LATENESS_MS: process.env.VIGIL_ALERT_LATENESS_MS ?? DEMO_ALERT_TIMINGS.VIGIL_ALERT_LATENESS_MS,
    // A minute of traffic in production's 30 s intervals would be two bars on Pipeline health.
    VIGIL_PIPELINE_STATS_INTERVAL_MS: process.env.VIGIL_PIPELINE_STATS_INTERVAL_MS ?? '5000',
  });
  const logger = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, secrets: secretsOf(config) });
  const detections: Detection[] = [];
  const changes: AlertChange[] = [];
  // The demo's own Elasticsearch client: the summary reads it after Vigil has stopped.
  const elasticsearch = createElasticsearch(config);
  // The demo's own Redis client: it deletes the run's keys after Vigil has stopped.
  const redis = createRedis(config, logger.child({ component: 'redis' }));
  // Said before Vigil warns about them (once when it is made, once as alerting starts).
  if (process.env.VIGIL_ALERT_RESOLVE_AFTER_MS === undefined || process.env.VIGIL_ALERT_LATENESS_MS === undefined) {
    console.log(
      `vigil demo: the alerter's timings are shortened to fit the run (quiet period ${config.alerting.resolveAfterMs / 1000} s, lateness ${config.alerting.latenessMs / 1000} s); the warnings about them below are what Vigil would say of such values in production`,
    );
  }
  const vigil = createVigil(config, {
    logger,
    elasticsearch,
    redis,
    onDetections: (batch) => detections.push(...batch),
    onAlertChange: (change) => changes.push(change),
    sweepEveryMs: 1000,
  });
  const { kafka } = vigil;
  const pipeline = vigil.pipeline as IngestPipeline;
  const detecting = config.detection.enabled;
  const started = Date.now();
  console.log(`vigil demo ${runId}: starting the ingest pipeline (group ${config.consumerGroup})`);
  try {
    await vigil.start();
  } catch (error) {
    await receiver.close();
    redis.disconnect();
    throw error;
  }

  const rawTopic = `vigil.raw.kong-${runId}`;
  let adapt: Adapt | undefined;
  const via = options.via !== undefined ? kongEmitter(kafka, rawTopic) : undefined;
  if (via !== undefined) {
    adapt = createAdapt(config, { format: 'kong', topic: rawTopic, kafka, logger });
    await adapt.start();
    console.log(`  ${SIMULATED_SOURCES[0]?.service ?? 'the first gateway'} runs through Kong: its traffic goes as Kong log records to ${rawTopic}, translated by vigil adapt --format kong (source.service ${viaService})`);
  }
  const emitters: Emitter[] = SIMULATED_SOURCES.map((source, n) =>
    n === 0 && via !== undefined ? via : createEmitter({ kafka, topics: config.topics, source, logger, lingerMs: 20 }),
  );
  // History first (event time), so the DoS detectors learn their baselines as they happened. It
  // ends where the live traffic's span begins: the stream goes forward in event time, as live.
  const historyEmitter = createEmitter({ kafka, topics: config.topics, source: { service: 'shop-gateway', kind: 'gateway' }, logger, lingerMs: 20, maxBuffer: 20_000 });
  const { history, burst } = detecting ? emitDosScenario(historyEmitter, runId, dosScenarioEnd(Date.now())) : { history: 0, burst: 0 };
  await historyEmitter.flush();
  if (history > 0) {
    console.log(
      `  replaying ${history + burst} events of history (a 27-minute checkout baseline with a burst 8 minutes before its end, and a 30-minute legitimate ramp), ending ${LIVE_SPAN_MS / 60_000} minutes ago, where the live traffic begins`,
    );
    for (const deadline = Date.now() + 120_000; pipeline.stats().indexed + pipeline.stats().duplicates < history + burst && Date.now() < deadline; ) await sleep(100);
  }
  // The live traffic: the services' last minute and the attacks of the last 4 minutes 30,
  // written as one stream in event-time order, paced as live traffic is: each slice of event time
  // (the alerter's lateness) taken in by the pipeline before the next is written. Through Kong,
  // the first gateway's records count once the adapter has translated them.
  const consumedBefore = pipeline.stats().consumed;
  const written = (): number => {
    const direct = emitters.reduce((total, emitter) => (emitter === via ? total : total + emitter.stats().delivered), 0);
    if (via === undefined || adapt === undefined) return direct;
    return adapt.stats().messages < via.kong().messages ? Number.POSITIVE_INFINITY : direct + adapt.stats().events;
  };
  const sliceMs = liveSliceMs(config.alerting.latenessMs);
  console.log(`  writing the live traffic (the last ${LIVE_SPAN_MS / 60_000} minutes) in event-time order, ${sliceMs / 1000} s of event time at a time, each taken in by the pipeline before the next`);
  const { traffic, attacks } = await emitLiveTraffic(emitters, {
    events: options.events,
    labels: { run: runId },
    seed: Date.now() % 100_000,
    ...(detecting ? { attacks: { runId, labels: { run: runId, attack: 'yes' } } } : {}),
    sliceMs,
    afterSlice: untilTaken(written, () => pipeline.stats().consumed - consumedBefore),
  });
  const attackEvents = attacks.reduce((total, attack) => total + attack.events, 0);

  // A producer that is not the SDK sends what the SDK would have refused.
  const sample = {
    id: `${runId}-sample`,
    schemaVersion: CURRENT_SCHEMA_VERSION,
    family: 'policy',
    time: new Date().toISOString(),
    source: { service: 'legacy-gateway', kind: 'gateway' },
    policy: { kind: 'authn', name: 'basic-auth', outcome: 'fail', group: 'legacy', resource: { api: 'legacy', method: 'GET', path: '/' } },
  };
  const bad = malformedMessages(config.limits.maxMessageBytes, config.limits.maxJsonDepth, sample);
  const badCopies = options.badCopies ?? 5;
  const raw = createProducer(kafka);
  await raw.connect();
  for (let copy = 0; copy < badCopies; copy++) {
    for (const message of bad) {
      await raw.send({ topic: config.topics[message.topicFamily], messages: [{ key: `${runId}-${copy}`, value: message.value }], acks: -1 });
    }
  }
  await raw.disconnect();
  const badTotal = bad.length * badCopies;
  await Promise.all(emitters.map((emitter) => emitter.flush()));
  // Through Kong, the first gateway's SDK calls are not sent as such: the adapter's events are.
  let viaSdk = 0;
  if (via !== undefined && adapt !== undefined) {
    const records = via.kong().messages;
    for (const deadline = Date.now() + 120_000; adapt.stats().messages < records && Date.now() < deadline; ) await sleep(100);
    viaSdk = via.stats().accepted;
  }
  const adapted = adapt?.stats().events ?? 0;
  const sent = traffic.total + attackEvents - viaSdk + adapted + badTotal + history + burst;

  const timeoutMs = options.timeoutMs ?? 180_000;
  const tty = process.stdout.isTTY;
  let lastPrint = 0;
  for (;;) {
    const stats = pipeline.stats();
    const done = stats.indexed + stats.duplicates + stats.deadLettered >= sent && stats.deadLettered >= badTotal;
    const now = Date.now();
    if (done || now - lastPrint >= (tty ? 200 : 2000)) {
      const line = `  sent ${sent}  indexed ${stats.indexed}  dead-lettered ${stats.deadLettered}  (${((now - started) / 1000).toFixed(1)}s)`;
      if (tty) process.stdout.write(`\r${line}`);
      else console.log(line);
      lastPrint = now;
    }
    if (done) break;
    if (now - started > timeoutMs) {
      console.error(`\nvigil demo: the pipeline did not catch up within ${timeoutMs / 1000}s`);
      break;
    }
    await sleep(100);
  }
  if (tty) process.stdout.write('\n');
  const stats = pipeline.stats();
  // Let the alerter fold the detections in, then show a resolution after the quiet period.
  if (detecting) {
    for (const deadline = Date.now() + 30_000; (vigil.alerter?.stats().detections ?? 0) < stats.detections && Date.now() < deadline; ) await sleep(100);
    // The last detections released (the lateness, nothing more arriving), their alerts opened and
    // grouped (2 s), then quiet for the resolve (quiet period plus lateness of wall time).
    await sleep(config.alerting.latenessMs + DEMO_GROUPING.groupWaitMs + config.alerting.resolveAfterMs + config.alerting.latenessMs + 2500);
    await vigil.notifier?.drain();
  }
  await Promise.all([...emitters, historyEmitter].map((emitter) => emitter.close()));
  await adapt?.stop();
  if (adapt !== undefined) {
    // The run's raw topic is the demo's own.
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [rawTopic], timeout: 10_000 }).catch(() => undefined);
    await admin.disconnect();
  }
  await vigil.stop();
  await receiver.close();
  await deleteKeysUnder(redis, redisPrefix).catch((error: unknown) => logger.warn({ err: error, prefix: redisPrefix }, 'could not delete the run\'s Redis keys (they expire on their own)'));
  await redis.quit().catch(() => redis.disconnect());
  const pipelineMetrics = vigil.pipelineStats?.stats();

  const pattern = indexNames(config.indices.prefix).eventPattern;
  await elasticsearch.indices.refresh({ index: pattern });
  // The demo's own events: labelled by the run, or on its per-run DoS endpoints.
  const query = { bool: { should: [{ term: { 'labels.run': runId } }, { term: { 'vigil.api': dosEndpoints(runId).burst.api } }, ...(via !== undefined ? [{ term: { 'service.name': viaService } }] : [])], minimum_should_match: 1 } };
  const { count } = await elasticsearch.count({ index: pattern, query });
  const byFamily = await elasticsearch.search({
    index: pattern,
    size: 0,
    query,
    aggs: { family: { terms: { field: 'vigil.family' } }, outcome: { terms: { field: 'event.outcome' } } },
  });
  const buckets = (name: string): string => {
    const aggregation = byFamily.aggregations?.[name] as { buckets?: { key: string; doc_count: number }[] } | undefined;
    return (aggregation?.buckets ?? []).map((bucket) => `${bucket.key} ${bucket.doc_count}`).join(', ');
  };
  const deadLettered = stats.deadLettered;
  const consistent = count === sent - deadLettered;
  const reasons = Object.entries(stats.deadLetteredByReason).map(([reason, n]) => `${reason} ${n}`).join(', ');
  const emitterDrops = emitters.reduce((total, emitter) => total + emitter.stats().dropped, 0);

  console.log(`
Vigil demo summary (${runId}, ${((Date.now() - started) / 1000).toFixed(1)}s)
  sent            ${sent}   (${traffic.total} through the SDK from ${SIMULATED_SOURCES.length} gateways and services: policy ${traffic.policy}, invocation ${traffic.invocation}, device ${traffic.device}; ${attackEvents} attack events; ${history} history + ${burst} DoS burst; ${badTotal} malformed from a raw producer)
  indexed         ${count}   (Elasticsearch count of this run's events in ${pattern}: ${buckets('family')}; outcomes: ${buckets('outcome')})
  dead-lettered   ${deadLettered}   (${reasons || 'none'}) in topic ${config.topics.deadLetter}
  dropped by SDK  ${emitterDrops}
  pipeline stats  ${pipelineMetrics ? `${pipelineMetrics.written} documents in ${pipelineIndexNames(config.indices.prefix).pattern} (every ${config.pipelineStats.intervalMs / 1000} s and at stop${pipelineMetrics.pending > 0 ? `; ${pipelineMetrics.pending} not taken by Elasticsearch` : ''}): the Pipeline health dashboard` : 'off (VIGIL_PIPELINE_STATS_INTERVAL_MS=0)'}${via !== undefined && adapt !== undefined ? `
  via kong        ${viaSdk} SDK calls of ${SIMULATED_SOURCES[0]?.service ?? ''} (attacks included) as ${via.kong().records} Kong records → ${adapted} events by vigil adapt (${via.kong().notCarried} device events not carried; adapter skipped ${JSON.stringify(adapt.stats().skippedByReason)}, rejected ${JSON.stringify(adapt.stats().rejectedByReason)})` : ''}
  check           indexed ${count} ${consistent ? '=' : '!='} sent ${sent} - dead-lettered ${deadLettered}: ${consistent ? 'OK' : 'MISMATCH'}
  look            curl '${urlWithoutCredentials(config.elasticsearch.url)}/${pattern}/_search?q=labels.run:${runId}&size=1&pretty'
                  kcat -b ${config.kafka.brokers[0] ?? '127.0.0.1:9092'} -C -t ${config.topics.deadLetter} -f '%h\\n' -e`);
  const dos = dosEndpoints(runId);
  const isDos = (detection: Detection): boolean => detection.key['invocation.resource.api'] === dos.burst.api;
  const detectionReport = detecting
    ? reportDetections(attacks, detections.filter((item) => !isDos(item)), via !== undefined ? KONG_CANNOT_CARRY : new Set())
    : { ok: true, text: '\n  detection is off (VIGIL_DETECTION=off)' };
  console.log(detectionReport.text);
  const alertReport = detecting
    ? reportAlerts(changes, receiver.received, detections.filter(isDos), dos, { read: vigil.alerter?.stats().detections ?? 0, late: vigil.alerter?.stats().late ?? 0, latenessMs: config.alerting.latenessMs })
    : { ok: true, text: '' };
  console.log(alertReport.text);

  // The incident report of the run: from the start of the replayed history (35 minutes back) to now.
  const reportFile = join('reports', `vigil-report-${runId}.html`);
  const report = await writeReport(elasticsearch, config, { from: new Date(started - LIVE_SPAN_MS - 31 * 60_000), to: new Date(Date.now() + 60_000) }, reportFile);
  const reportOk = !detecting || (report.data.incidents.length > 0 && report.data.dos.length > 0);
  console.log(
    `\nIncident report: ${report.path}\n  ${report.data.totals.incidents} incidents, ${report.data.totals.detections} detections on ${report.data.totals.rules} rules, ${report.data.dos.length} DoS incidents, ${report.data.travel.length} impossible-travel pairs; open it in a browser (no network needed)${reportOk ? '' : '\n  check: the report shows no incident or no DoS incident: MISMATCH'}`,
  );
  return consistent && detectionReport.ok && alertReport.ok && reportOk ? 0 : 1;
}

/** What on-call got: alerts opened, escalated, resolved, the DoS incident and its payloads. */
function reportAlerts(
  changes: readonly AlertChange[],
  received: readonly Received[],
  dosDetections: readonly Detection[],
  dos: ReturnType<typeof dosEndpoints>,
  alerter: { read: number; late: number; latenessMs: number },
): { ok: boolean; text: string } {
  const opened = changes.filter((change) => change.kind === 'opened');
  const byKind = (kind: string): number => changes.filter((change) => change.kind === kind).length;
  const dosGroup = `invocation.resource.api=${dos.burst.api},invocation.route=${dos.burst.route}`;
  const dosAlerts = new Set(changes.filter((change) => change.alert.groupKey === dosGroup).map((change) => change.alert.id));
  // The flood, the error surge and the latency surge on the burst's minute: one incident holds all three.
  const dosRules = new Set(changes.filter((change) => change.alert.groupKey === dosGroup).flatMap((change) => change.alert.rules));
  const rampDetections = dosDetections.filter((detection) => detection.key['invocation.route'] === dos.ramp.route);
  const lines = [
    '',
    `DoS scenario: ${dosDetections.length - rampDetections.length} detections on ${dos.burst.api} ${dos.burst.route} (${[...new Set(dosDetections.map((detection) => detection.ruleId))].join(', ') || 'none'}); the slow ramp on ${dos.ramp.route}: ${rampDetections.length} detections`,
    `Alerts to on-call: ${opened.length} opened, ${byKind('escalated')} escalated, ${byKind('resolved')} resolved; ${received.length} notifications delivered (${['webhook', 'slack', 'pagerduty'].map((path) => `${path} ${received.filter((item) => item.path === `/${path}`).length}`).join(', ')})`,
  ];
  for (const change of opened) {
    const last = [...changes].reverse().find((candidate) => candidate.alert.id === change.alert.id)?.alert ?? change.alert;
    lines.push(`  ${last.severity.padEnd(8)} ${last.status.padEnd(8)} ×${String(last.count).padEnd(4)} ${last.title}  [${last.rules.join(', ')}]`);
  }
  const webhook = received.find((item) => item.path === '/webhook' && JSON.stringify(item.json).includes(dos.burst.api));
  if (webhook) {
    const payload = JSON.stringify(webhook.json, null, 2).split('\n');
    lines.push('', `The DoS incident's webhook (signature ${webhook.signature ?? 'n/a'}, header ${String(webhook.headers['x-vigil-signature'] ?? '').slice(0, 30)}…):`);
    lines.push(...payload.slice(0, 40).map((line) => `  ${line}`), payload.length > 40 ? '  …' : '');
  }
  const dosKeys = new Set(
    received
      .filter((item) => item.path === '/pagerduty' && JSON.stringify(item.json).includes(dos.burst.api))
      .map((item) => (item.json as { dedup_key?: string }).dedup_key),
  );
  const pagerduty = received.filter((item) => item.path === '/pagerduty' && dosKeys.has((item.json as { dedup_key?: string }).dedup_key));
  if (pagerduty.length > 0) {
    lines.push(`PagerDuty events for it: ${pagerduty.map((item) => (item.json as { event_action?: string }).event_action ?? '?').join(' → ')} (one dedup_key: ${new Set(pagerduty.map((item) => (item.json as { dedup_key?: string }).dedup_key)).size === 1})`);
  }
  const slack = received.find((item) => item.path === '/slack');
  if (slack) lines.push(`Slack: ${(slack.json as { text?: string }).text ?? ''}`);
  const held = DOS_RULES.filter((rule) => dosRules.has(rule)).length;
  const ok = dosAlerts.size === 1 && held === DOS_RULES.length && rampDetections.length === 0 && received.every((item) => item.signature !== 'INVALID');
  lines.push(
    `  check: the DoS burst is ${dosAlerts.size} incident${dosAlerts.size === 1 ? '' : 's'} (want 1) holding ${held} of its ${DOS_RULES.length} rules; the ramp raised ${rampDetections.length} (want 0): ${ok ? 'OK' : 'MISMATCH'}`,
  );
  // The demo writes its traffic in event-time order (scripts/demo-traffic.ts), as live gateways
  // would: every detection should reach the alerter within its lateness (docs/alerting.md).
  const inOrder = alerter.late === 0;
  lines.push(
    `  check: the alerter read ${alerter.read} detections, ${alerter.late} late (behind the alerter's watermark by more than its ${alerter.latenessMs / 1000} s lateness, folded out of event-time order; want 0): ${inOrder ? 'OK' : 'MISMATCH'}`,
  );
  return { ok: ok && inOrder, text: lines.join('\n') };
}

/** The detections next to the attacks injected: every attack caught, and nothing else fired. */
function reportDetections(attacks: readonly InjectedAttack[], detections: readonly Detection[], notCarried: ReadonlySet<string>): { ok: boolean; text: string } {
  const attackOf = (detection: Detection): (typeof attacks)[number] | undefined =>
    attacks.find((attack) => attack.expectedRules.includes(detection.ruleId) && Object.values(detection.key).some((value) => attack.actors.includes(value)));
  const caughtBy = new Map<string, Detection[]>();
  const unexpected: Detection[] = [];
  for (const detection of detections) {
    const attack = attackOf(detection);
    if (attack === undefined) unexpected.push(detection);
    else caughtBy.set(`${attack.name}|${detection.ruleId}`, [...(caughtBy.get(`${attack.name}|${detection.ruleId}`) ?? []), detection]);
  }
  const lines = ['', 'Detections (injected attack → rules that caught it):'];
  let missed = 0;
  for (const attack of attacks) {
    const found = (rule: string): Detection[] => caughtBy.get(`${attack.name}|${rule}`) ?? [];
    const carried = attack.expectedRules.filter((rule) => !notCarried.has(rule));
    const dropped = attack.expectedRules.filter((rule) => notCarried.has(rule));
    const ok = carried.every((rule) => found(rule).length > 0);
    if (!ok) missed++;
    const verdict = carried.length === 0 ? 'n/a   ' : ok ? 'caught' : 'MISSED';
    lines.push(
      `  ${verdict}  ${attack.name.padEnd(34)} ${carried.map((rule) => `${rule} ×${found(rule).length}`).join(', ')}${dropped.length > 0 ? `${carried.length > 0 ? '; ' : ''}not carried by the gateway format: ${dropped.join(', ')}` : ''}`,
    );
    const example = found(carried[0] ?? '')[0];
    if (example) lines.push(`          "${example.reason}"`);
  }
  lines.push(`  benign traffic: ${unexpected.length === 0 ? 'quiet (no other detections)' : `${unexpected.length} other detections`}`);
  for (const detection of unexpected.slice(0, 5)) lines.push(`          ${detection.ruleId}: "${detection.reason}"`);
  lines.push(`  total: ${detections.length} detections on ${new Set(detections.map((detection) => detection.ruleId)).size} rules, ${missed} attacks missed`);
  return { ok: missed === 0 && unexpected.length === 0, text: lines.join('\n') };
}
