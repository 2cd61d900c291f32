/**
 * `vigil evaluate`: generates labelled traffic, runs it through the real pipeline and alerter
 * (the one composition root, on topics, groups, indices and a Redis prefix of its own), counts
 * what a loopback receiver gets per destination, reads detections and alerts back from
 * Elasticsearch and grades them. See docs/evaluate.md.
 */
import { randomBytes } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import type { Kafka } from 'kafkajs';
import { createVigil } from '../../app';
import { DELIVERY_HEADER, parseDestinations } from '../../detectors';
import { openGeoDatabase, type GeoLookup, type IngestPipeline } from '../../ingest';
import { createEmitter, type Emitter } from '../../ingest/sdk';
import { createElasticsearch, createLogger, loadConfig, secretsOf, sleep, type Config } from '../../platform';
import { SEVERITIES, alertIndexNames, detectionIndexNames, type Severity } from '../../schemas';
import { startAlertReceiver, type Received } from '../alert-receiver';
import { deleteTopics, removeIndicesAndTemplates } from '../cleanup';
import { MIN_USERS, generateTraffic, type EvaluationCase, type GeneratedTraffic, type Locate, type PlannedEvent } from './generate';
import { formatGrade, gradeEvaluation, type Grade, type ObservedAlert, type ObservedDetection, type ObservedNotification } from './grade';

/** Options of {@link runEvaluation}. */
export interface EvaluateOptions {
  seed: number;
  /** Background users. @defaultValue 400 */
  users?: number;
  /** Background requests per user over the hour. @defaultValue 30 */
  requestsPerUser?: number;
  /** Source IPs of the distributed flood. @defaultValue 800 */
  floodSources?: number;
  /** Volume of the ramp, the flash crowd and the office NAT. @defaultValue 1 */
  volume?: number;
  /**
   * How the hour is produced. Undefined: as a backlog, as fast as Kafka takes it. A number:
   * paced, that many times faster than event time (60: the hour in a minute). The alerter groups
   * and resolves on event time, so both give the incidents the hour gives live.
   */
  speed?: number;
  /** The alerts' quiet period, in event time. @defaultValue the configured one (15 minutes unless set) */
  resolveAfterMs?: number;
  /**
   * How long to wait (wall clock) after the last detection reached the alerter, for the last
   * detections to be released (the alerter's lateness, when nothing more arrives) and their
   * notifications to go out (the destinations' group wait). @defaultValue lateness + longest group wait + 5 s
   */
  settleMs?: number;
  /** Give up waiting for the pipeline after this long. @defaultValue 600000 */
  timeoutMs?: number;
  /** The environment the configuration is read from (then isolated). @defaultValue process.env */
  env?: Record<string, string | undefined>;
  /**
   * Put the run on topics, groups, a Redis prefix and indices of its own, named after the run. Off
   * when `env` already isolates it (the integration test's `isolatedEnv()`). @defaultValue true
   */
  isolate?: boolean;
  /** Keep the run's topics and indices (to look at them in Kibana). @defaultValue false */
  keep?: boolean;
  /** Progress lines. @defaultValue none */
  progress?: (line: string) => void;
}

/** What one evaluation run produced. */
export interface EvaluationResult {
  runId: string;
  seed: number;
  mode: string;
  traffic: { events: number; start: string; end: string; backgroundUsers: number; backgroundEvents: number; cases: EvaluationCase[] };
  grade: Grade;
  /**
   * Counters at the end: events indexed, dead-lettered, late (behind the allowed lateness), and
   * detections the alerter folded out of event-time order (behind its watermark).
   */
  pipeline: { indexed: number; deadLettered: number; late: number; detections: number; unpaged: number; foldedLate: number };
  durationMs: number;
  /** The Elasticsearch index prefix of the run (kept only with `keep`). */
  indexPrefix: string;
}

/** The destinations of the run: on-call's webhook (medium and up), security's Slack (high), PagerDuty for DoS (high). */
function destinations(url: string, secret: string): object[] {
  return [
    { name: 'on-call-webhook', type: 'webhook', url: `${url}/webhook`, secret, minSeverity: 'medium' },
    { name: 'security-slack', type: 'slack', url: `${url}/slack`, minSeverity: 'high' },
    { name: 'pagerduty-sre', type: 'pagerduty', url: `${url}/pagerduty`, routingKey: 'evaluate-routing-key-00000000000000', minSeverity: 'high', tags: ['dos'] },
  ];
}
const DESTINATION_OF_PATH: Record<string, string> = { '/webhook': 'on-call-webhook', '/slack': 'security-slack', '/pagerduty': 'pagerduty-sre' };

/** The run's own topics, consumer groups, Redis prefix and indices. */
function isolation(runId: string): Record<string, string> {
  const base = `vigil-${runId}`;
  return {
    VIGIL_TOPIC_POLICY: `${base}.policy`,
    VIGIL_TOPIC_INVOCATION: `${base}.invocation`,
    VIGIL_TOPIC_DEVICE: `${base}.device`,
    VIGIL_TOPIC_DEADLETTER: `${base}.deadletter`,
    VIGIL_TOPIC_DETECTIONS: `${base}.detections`,
    VIGIL_TOPIC_NOTIFICATIONS: `${base}.notifications`,
    VIGIL_TOPIC_NOTIFICATION_DEADLETTER: `${base}.notifications-deadletter`,
    VIGIL_CONSUMER_GROUP: `${base}-ingest`,
    VIGIL_ALERTER_GROUP: `${base}-alerter`,
    VIGIL_NOTIFIER_GROUP: `${base}-notifier`,
    VIGIL_REDIS_PREFIX: base,
    VIGIL_INDEX_PREFIX: base,
    VIGIL_RULES_WATCH: 'false',
    VIGIL_HTTP_PORT: '0',
  };
}

/** The generator's view of the pipeline's geo database. */
function locateWith(lookup: GeoLookup): Locate {
  return (ip) => {
    const answer = lookup(ip);
    const location = answer?.geo.location;
    if (answer === undefined || location === undefined) return undefined;
    return { country: answer.geo.country_iso_code ?? '', city: answer.geo.city_name ?? '', lat: location.lat, lon: location.lon };
  };
}

/** Produces the events in event-time order: all at once, or paced at `speed` times event time. */
async function produce(traffic: GeneratedTraffic, emitters: { gateway: Emitter; service: Emitter }, speed: number | undefined, progress: (line: string) => void): Promise<void> {
  const started = Date.now();
  const emit = (event: PlannedEvent): void => {
    switch (event.family) {
      case 'policy':
        emitters.gateway.policy(event.input);
        break;
      case 'invocation':
        emitters.gateway.invocation(event.input);
        break;
      case 'device':
        emitters.service.device(event.input);
        break;
    }
  };
  const chunk = 4000;
  for (let index = 0; index < traffic.events.length; index++) {
    const event = traffic.events[index] as PlannedEvent;
    if (speed !== undefined) {
      const due = started + (event.at - traffic.start) / speed;
      if (due > Date.now() + 20) await sleep(due - Date.now());
    }
    emit(event);
    // Never more in the emitters' buffers than they hold: flush every chunk.
    if ((index + 1) % chunk === 0) {
      await Promise.all([emitters.gateway.flush(), emitters.service.flush()]);
      if (speed === undefined && (index + 1) % (chunk * 5) === 0) progress(`  produced ${index + 1} of ${traffic.events.length}`);
    }
  }
  await Promise.all([emitters.gateway.flush(), emitters.service.flush()]);
}

/** Every document of an index pattern matching a query (a scroll: the run's detections may be many). */
async function readAll(elasticsearch: Client, index: string): Promise<Record<string, unknown>[]> {
  const documents: Record<string, unknown>[] = [];
  const exists = await elasticsearch.indices.exists({ index, allow_no_indices: false, ignore_unavailable: false }).catch(() => false);
  if (!exists) return documents;
  for await (const document of elasticsearch.helpers.scrollDocuments<Record<string, unknown>>({ index, size: 5000, query: { match_all: {} } })) documents.push(document);
  return documents;
}

const severityOf = (value: unknown): Severity => (SEVERITIES as readonly unknown[]).includes(value) ? (value as Severity) : 'low';
const record = (value: unknown): Record<string, unknown> => (typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {});
const text = (value: unknown): string => (typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '');
const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : typeof value === 'string' ? [value] : []);
/** A key as indexed: dotted field names may come back as nested objects; flatten to field -> value. */
function flatKey(value: unknown, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, inner] of Object.entries(record(value))) {
    const name = prefix === '' ? field : `${prefix}.${field}`;
    if (typeof inner === 'string') out[name] = inner;
    else if (typeof inner === 'number') out[name] = String(inner);
    else Object.assign(out, flatKey(inner, name));
  }
  return out;
}

/** Detections and alerts of the run, as indexed. */
async function readObserved(elasticsearch: Client, config: Config): Promise<{ detections: ObservedDetection[]; alerts: ObservedAlert[] }> {
  const detectionPattern = detectionIndexNames(config.indices.prefix).pattern;
  const alertIndex = alertIndexNames(config.indices.prefix).index;
  await elasticsearch.indices.refresh({ index: [detectionPattern, alertIndex], allow_no_indices: true, ignore_unavailable: true });
  const detections = (await readAll(elasticsearch, detectionPattern)).map((document): ObservedDetection => {
    const vigil = record(record(document.vigil).detection);
    return {
      id: text(record(document.event).id),
      ruleId: text(record(document.rule).id),
      severity: severityOf(vigil.severity),
      key: flatKey(vigil.key),
      time: text(document['@timestamp']),
    };
  });
  const alerts = (await readAll(elasticsearch, alertIndex)).map((document): ObservedAlert => {
    const alert = record(record(document.vigil).alert);
    const kibana = record(record(document.kibana).alert);
    return {
      id: text(kibana.uuid),
      severity: severityOf(kibana.severity),
      key: flatKey(alert.key),
      rules: strings(alert.rules),
      detections: strings(alert.detections),
      count: Number(alert.count ?? 0),
    };
  });
  return { detections, alerts };
}

/** What the receiver got, per destination, with the alerts each notification names. */
export function notificationsOf(received: readonly Received[]): ObservedNotification[] {
  // A delivery retried after a timeout the receiver did answer arrives twice: count it once (the
  // webhook's delivery id; for the others, the same body on the same path).
  const seen = new Set<string>();
  const notifications: ObservedNotification[] = [];
  for (const item of received) {
    const delivery = item.headers[DELIVERY_HEADER.toLowerCase()];
    const identity = `${item.path}\u0001${typeof delivery === 'string' ? delivery : item.body}`;
    if (seen.has(identity)) continue;
    seen.add(identity);
    const ids = [...new Set(item.body.match(/alert-[0-9a-f]{24}/g) ?? [])];
    notifications.push({ destination: DESTINATION_OF_PATH[item.path] ?? item.path, alertIds: ids });
  }
  return notifications;
}

/** Removes the run's indices, templates and topics. */
async function cleanup(elasticsearch: Client, kafka: Kafka, config: Config): Promise<void> {
  await removeIndicesAndTemplates(elasticsearch, config.indices.prefix);
  await deleteTopics(kafka, config);
}

/** Waits until `check` holds or `deadline` passes; returns whether it held. */
async function until(check: () => boolean | Promise<boolean>, deadline: number): Promise<boolean> {
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
}

/** Runs one evaluation (see the file comment) and returns its grade; throws when the pipeline can't take the traffic in time. */
export async function runEvaluation(options: EvaluateOptions): Promise<EvaluationResult> {
  const started = Date.now();
  const progress = options.progress ?? (() => undefined);
  const runId = `eval-${options.seed}-${randomBytes(3).toString('hex')}`;
  const secret = `evaluate-${randomBytes(12).toString('hex')}`;
  const env = options.env ?? process.env;
  const receiver = await startAlertReceiver(secret);
  const own = options.isolate === false ? {} : isolation(runId);
  const configured = loadConfig({ ...env, ...own });
  const speed = options.speed;
  if (speed !== undefined && !(speed > 0)) throw new RangeError(`evaluate: the speed must be a positive number, not ${speed}`);
  const resolveAfterMs = options.resolveAfterMs ?? configured.alerting.resolveAfterMs;
  const config = loadConfig({
    ...env,
    ...own,
    VIGIL_ALERT_DESTINATIONS: JSON.stringify(destinations(receiver.url, secret)),
    VIGIL_ALERT_RESOLVE_AFTER_MS: String(resolveAfterMs),
  });
  const logger = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, secrets: secretsOf(config) });
  const geo = await openGeoDatabase(config.geo.database, { logger });
  const traffic = generateTraffic({
    seed: options.seed,
    end: Date.now(),
    locate: locateWith(geo.lookup),
    runId,
    ...(options.users !== undefined ? { users: options.users } : {}),
    ...(options.requestsPerUser !== undefined ? { requestsPerUser: options.requestsPerUser } : {}),
    ...(options.floodSources !== undefined ? { floodSources: options.floodSources } : {}),
    ...(options.volume !== undefined ? { volume: options.volume } : {}),
  });
  const mode = speed === undefined ? 'backlog' : `paced ${speed}x`;
  progress(`vigil evaluate ${runId}: seed ${options.seed}, ${traffic.events.length} events over an hour of event time (${traffic.background.users} users), ${traffic.cases.length} cases, ${mode}, alerts resolve after ${resolveAfterMs / 1000}s of quiet`);

  const elasticsearch = createElasticsearch(config);
  const vigil = createVigil(config, { logger, elasticsearch, geoLookup: geo.lookup, sweepEveryMs: 1000, http: false });
  const pipeline = (): IngestPipeline => vigil.pipeline as IngestPipeline;
  const timeoutMs = options.timeoutMs ?? 600_000;
  let result: EvaluationResult | undefined;
  try {
    await vigil.start();
    const gateway = createEmitter({ kafka: vigil.kafka, topics: config.topics, source: { service: 'edge-gateway', kind: 'gateway', instance: 'gw-1', environment: 'prod' }, logger, lingerMs: 20, maxBuffer: 20_000 });
    const service = createEmitter({ kafka: vigil.kafka, topics: config.topics, source: { service: 'identity-service', kind: 'service', instance: 'id-1', environment: 'prod' }, logger, lingerMs: 20, maxBuffer: 20_000 });
    await produce(traffic, { gateway, service }, speed, progress);
    const dropped = gateway.stats().dropped + service.stats().dropped;
    await Promise.all([gateway.close(), service.close()]);
    if (dropped > 0) throw new Error(`evaluate: the SDK dropped ${dropped} events (Kafka too slow?); the grade would be wrong`);
    const sent = traffic.events.length;
    progress(`  produced ${sent} events in ${((Date.now() - started) / 1000).toFixed(0)}s; waiting for the pipeline`);
    const deadline = started + timeoutMs;
    let lastPrint = Date.now();
    const consumed = await until(() => {
      const stats = pipeline().stats();
      if (Date.now() - lastPrint > 10_000) {
        progress(`  indexed ${stats.indexed + stats.duplicates} of ${sent}, ${stats.detections} detections`);
        lastPrint = Date.now();
      }
      return stats.indexed + stats.duplicates + stats.deadLettered >= sent;
    }, deadline);
    if (!consumed) throw new Error(`evaluate: the pipeline took ${pipeline().stats().indexed} of ${sent} events within ${timeoutMs / 1000}s`);
    // The alerter has read every detection once it counted each (taken or invalid).
    const alerterRead = (): number => {
      const alerter = vigil.alerter?.stats();
      return alerter === undefined ? 0 : alerter.detections + alerter.invalid;
    };
    const detected = pipeline().stats().detections;
    await until(() => alerterRead() >= detected, deadline);
    const settleMs = options.settleMs ?? config.alerting.latenessMs + Math.max(0, ...parseDestinations(config.alerting.destinations).map((destination) => destination.groupWaitMs)) + 5000;
    progress(`  all ${sent} events in, ${detected} detections; letting the last ones out (${settleMs / 1000}s)`);
    // The held detections released (nothing more arrives), folded, and their notifications sent.
    await sleep(settleMs);
    await until(() => alerterRead() >= pipeline().stats().detections, deadline);
    const unpaged = vigil.alerter?.stats().unpaged ?? 0;
    // Folded behind the alerter's watermark: the grade then hangs on the order partitions were read in.
    const foldedLate = vigil.alerter?.stats().late ?? 0;
    await vigil.notifier?.drain();
    const stats = pipeline().stats();
    await vigil.stop();
    await sleep(500);

    // Read back what was indexed; the alerts index takes each change as it happens.
    let observed = await readObserved(elasticsearch, config);
    for (let attempt = 0; attempt < 20 && observed.detections.length < stats.detections; attempt++) {
      await sleep(500);
      observed = await readObserved(elasticsearch, config);
    }
    const notifications = notificationsOf(receiver.received);
    const grade = gradeEvaluation(traffic.cases, { ...observed, notifications, destinations: Object.values(DESTINATION_OF_PATH) });
    result = {
      runId,
      seed: options.seed,
      mode,
      traffic: { events: sent, start: new Date(traffic.start).toISOString(), end: new Date(traffic.end).toISOString(), backgroundUsers: traffic.background.users, backgroundEvents: traffic.background.events, cases: traffic.cases },
      grade,
      pipeline: { indexed: stats.indexed, deadLettered: stats.deadLettered, late: stats.engine?.late ?? 0, detections: stats.detections, unpaged, foldedLate },
      durationMs: Date.now() - started,
      indexPrefix: config.indices.prefix,
    };
    return result;
  } finally {
    await vigil.stop();
    await receiver.close();
    if (options.keep !== true) await cleanup(elasticsearch, vigil.kafka, config).catch((error: unknown) => logger.warn({ err: error }, 'evaluate: cleanup failed'));
    await elasticsearch.close();
    geo.close();
  }
}

/** The report of a run: the cases, then the grade's table. */
export function formatEvaluation(result: EvaluationResult): string {
  const lines = [
    `Vigil evaluation ${result.runId} (seed ${result.seed}, ${result.mode}): ${result.traffic.events} events over ${result.traffic.start} .. ${result.traffic.end}, ${result.traffic.backgroundUsers} background users; ${result.pipeline.indexed} indexed, ${result.pipeline.late} late, ${result.pipeline.detections} detections (${result.pipeline.foldedLate} folded out of event-time order, ${result.pipeline.unpaged} alert changes too old to page); ${(result.durationMs / 1000).toFixed(0)}s`,
    ...(result.pipeline.foldedLate > 0
      ? [
          `warning: ${result.pipeline.foldedLate} detections reached the alerter behind its watermark and were folded out of event-time order: the grade depends on the order partitions were read in (keep VIGIL_ALERT_LATENESS_MS at or above VIGIL_EVENT_TIME_SKEW_MS; docs/alerting.md)`,
        ]
      : []),
    '',
    'cases',
    ...result.traffic.cases.map((item) => `  ${item.kind === 'attack' ? 'attack' : 'benign'}  ${item.id}: ${item.description}`),
    '',
    formatGrade(result.grade),
  ];
  return lines.join('\n');
}

function option(args: readonly string[], name: string): string | undefined {
  const index = args.indexOf(name);
  return index >= 0 ? args[index + 1] : undefined;
}

/** Parses a whole-number option within bounds; a message naming the option when it is not one. */
function integerOption(args: readonly string[], name: string, low: number, high: number): number | undefined | string {
  const text = option(args, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  return Number.isInteger(value) && value >= low && value <= high ? value : `vigil evaluate: ${name} must be an integer between ${low} and ${high}, not "${text}"`;
}

export const EVALUATE_USAGE = 'usage: vigil evaluate [--seed N] [--json] [--users N] [--speed X] [--resolve-after-ms N] [--settle-ms N] [--keep]';

/** `vigil evaluate` (see {@link EVALUATE_USAGE}): returns the exit code (0 when every target is met). */
export async function runEvaluate(args: readonly string[]): Promise<number> {
  const seed = integerOption(args, '--seed', 0, 2 ** 31 - 1);
  const users = integerOption(args, '--users', MIN_USERS, 5000);
  const resolveAfterMs = integerOption(args, '--resolve-after-ms', 1000, 7 * 86_400_000);
  const settleMs = integerOption(args, '--settle-ms', 0, 3_600_000);
  const speedText = option(args, '--speed');
  const speed = speedText === undefined ? undefined : Number(speedText);
  for (const problem of [seed, users, resolveAfterMs, settleMs]) {
    if (typeof problem === 'string') {
      console.error(`${problem}\n${EVALUATE_USAGE}`);
      return 2;
    }
  }
  if (speed !== undefined && !(Number.isFinite(speed) && speed >= 1 && speed <= 3600)) {
    console.error(`vigil evaluate: --speed must be a number between 1 and 3600 (times event time), not "${speedText ?? ''}"\n${EVALUATE_USAGE}`);
    return 2;
  }
  const json = args.includes('--json');
  const result = await runEvaluation({
    seed: typeof seed === 'number' ? seed : 1,
    ...(typeof users === 'number' ? { users } : {}),
    ...(speed !== undefined ? { speed } : {}),
    ...(typeof resolveAfterMs === 'number' ? { resolveAfterMs } : {}),
    ...(typeof settleMs === 'number' ? { settleMs } : {}),
    keep: args.includes('--keep'),
    progress: json ? () => undefined : (line) => console.log(line),
  });
  console.log(json ? JSON.stringify(result, null, 2) : `\n${formatEvaluation(result)}`);
  return result.grade.targets.every((target) => target.met) ? 0 : 1;
}
