import { createDetectionRuntime, createElasticsearch, createEmitter, createIngestPipeline, createKafka, type Emitter } from '../ingest';
import type { Detection } from '../schemas';
import { injectAttacks } from './attack-traffic';
import { createLogger, loadConfig, sleep } from '../platform';
import { CURRENT_SCHEMA_VERSION, indexNames } from '../schemas';
import { SIMULATED_SOURCES, emitSimulatedTraffic, malformedMessages } from './simulated-traffic';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** How many events the simulated services emit through the SDK. @defaultValue 3000 */
  events: number;
  /** Copies of each kind of malformed message sent beside them. @defaultValue 5 */
  badCopies?: number;
  /** Give up waiting for the pipeline after this long. @defaultValue 180000 */
  timeoutMs?: number;
}

/**
 * The demo: runs the ingest pipeline in this process, emits realistic traffic through the SDK
 * from five simulated gateways and services plus raw malformed messages from a producer that
 * is not the SDK, shows progress, and ends with a summary checked against Elasticsearch.
 * Returns the exit code: 0 only when indexed = sent - dead-lettered, by Elasticsearch's count.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel });
  const runId = `demo-${Date.now().toString(36)}`;
  const kafka = createKafka(config, logger, `${config.kafka.clientId}-demo`);
  const elasticsearch = createElasticsearch(config);
  const detection = config.detection.enabled ? createDetectionRuntime(config, logger) : undefined;
  const detections: Detection[] = [];
  const pipeline = createIngestPipeline({
    config,
    kafka,
    elasticsearch,
    logger,
    ...(detection ? { detection: detection.engine, onDetections: (batch: readonly Detection[]) => detections.push(...batch) } : {}),
  });
  const started = Date.now();
  console.log(`vigil demo ${runId}: starting the ingest pipeline (group ${config.consumerGroup})`);
  await pipeline.start();

  const emitters: Emitter[] = SIMULATED_SOURCES.map((source) =>
    createEmitter({ kafka, topics: config.topics, source, logger, lingerMs: 20 }),
  );
  const traffic = emitSimulatedTraffic(emitters, options.events, { labels: { run: runId }, seed: Date.now() % 100_000 });
  const attackEmitter = emitters[0] as Emitter;
  const attacks = detection ? injectAttacks(attackEmitter, { runId, labels: { run: runId, attack: 'yes' } }) : [];
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
  const raw = kafka.producer({ allowAutoTopicCreation: false });
  await raw.connect();
  for (let copy = 0; copy < badCopies; copy++) {
    for (const message of bad) {
      await raw.send({ topic: config.topics[message.topicFamily], messages: [{ key: `${runId}-${copy}`, value: message.value }], acks: -1 });
    }
  }
  await raw.disconnect();
  const badTotal = bad.length * badCopies;
  await Promise.all(emitters.map((emitter) => emitter.flush()));
  const sent = traffic.total + attackEvents + badTotal;

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
  await Promise.all(emitters.map((emitter) => emitter.close()));
  await pipeline.stop();
  await detection?.close();

  const pattern = indexNames(config.indices.prefix).eventPattern;
  await elasticsearch.indices.refresh({ index: pattern });
  const query = { term: { 'labels.run': runId } };
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
  sent            ${sent}   (${traffic.total} through the SDK from ${SIMULATED_SOURCES.length} gateways and services: policy ${traffic.policy}, invocation ${traffic.invocation}, device ${traffic.device}; ${attackEvents} attack events; ${badTotal} malformed from a raw producer)
  indexed         ${count}   (Elasticsearch count of labels.run:${runId} in ${pattern}: ${buckets('family')}; outcomes: ${buckets('outcome')})
  dead-lettered   ${deadLettered}   (${reasons || 'none'}) in topic ${config.topics.deadLetter}
  dropped by SDK  ${emitterDrops}
  check           indexed ${count} ${consistent ? '=' : '!='} sent ${sent} - dead-lettered ${deadLettered}: ${consistent ? 'OK' : 'MISMATCH'}
  look            curl '${config.elasticsearch.url}/${pattern}/_search?q=labels.run:${runId}&size=1&pretty'
                  kcat -b ${config.kafka.brokers[0] ?? '127.0.0.1:9092'} -C -t ${config.topics.deadLetter} -f '%h\\n' -e`);
  const detectionReport = detection ? reportDetections(attacks, detections) : { ok: true, text: '\n  detection is off (VIGIL_DETECTION=off)' };
  console.log(detectionReport.text);
  return consistent && detectionReport.ok ? 0 : 1;
}

/** The detections next to the attacks injected: every attack caught, and nothing else fired. */
function reportDetections(attacks: ReturnType<typeof injectAttacks>, detections: readonly Detection[]): { ok: boolean; text: string } {
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
    const ok = attack.expectedRules.every((rule) => found(rule).length > 0);
    if (!ok) missed++;
    lines.push(`  ${ok ? 'caught' : 'MISSED'}  ${attack.name.padEnd(34)} ${attack.expectedRules.map((rule) => `${rule} ×${found(rule).length}`).join(', ')}`);
    const example = found(attack.expectedRules[0] ?? '')[0];
    if (example) lines.push(`          "${example.reason}"`);
  }
  lines.push(`  benign traffic: ${unexpected.length === 0 ? 'quiet (no other detections)' : `${unexpected.length} other detections`}`);
  for (const detection of unexpected.slice(0, 5)) lines.push(`          ${detection.ruleId}: "${detection.reason}"`);
  lines.push(`  total: ${detections.length} detections on ${new Set(detections.map((detection) => detection.ruleId)).size} rules, ${missed} attacks missed`);
  return { ok: missed === 0 && unexpected.length === 0, text: lines.join('\n') };
}
