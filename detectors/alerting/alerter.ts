import { createHash } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import type { Redis } from 'ioredis';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import {
  SEVERITIES,
  SEVERITY_SCORE,
  alertIndexNames,
  detectionSchema,
  describeIssues,
  type Alert,
  type AlertChange,
  type Detection,
  type Severity,
} from '../../schemas';
import { StoreUnavailableError, backoffDelay, errorMessage, isRetriable, type Config, type Logger } from '../../platform';
import { defineScripts, queueScript } from '../state';
import { keyPhrase } from '../describe';

/** Where alert changes go: the notifier (or anything else that wants them). */
export interface AlertSink {
  notify(change: AlertChange): void;
}

/** Options of {@link createAlerter}. */
export interface AlerterOptions {
  config: Config;
  kafka: Kafka;
  redis: Redis;
  elasticsearch: Client;
  sink: AlertSink;
  logger: Logger;
  /** @defaultValue Date.now */
  now?: () => number;
  /** How often open alerts are checked for quiet. @defaultValue min(resolveAfter / 4, 5s) */
  sweepEveryMs?: number;
}

/** Counters of the alerter. */
export interface AlerterStats {
  detections: number;
  invalid: number;
  /** Detections older than the quiet period when they reached the alerter (a backlog): not paged. */
  stale: number;
  opened: number;
  escalated: number;
  updated: number;
  duplicates: number;
  resolved: number;
}

/** A running alerter. */
export interface Alerter {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves alerts that have been quiet long enough (the timer calls it too). */
  sweep(): Promise<Alert[]>;
  stats(): AlerterStats;
}

const MAX_DETECTIONS = 100;
const RANK: Record<Severity, number> = { low: 0, medium: 1, high: 2, critical: 3 };

/** The group of a detection: its key (the same user, IP or endpoint across rules). */
export function groupKeyOf(detection: Pick<Detection, 'key' | 'ruleId' | 'id'>): string {
  const entries = Object.entries(detection.key).sort(([a], [b]) => a.localeCompare(b));
  return entries.length > 0 ? entries.map(([field, value]) => `${field}=${value}`).join(',') : `rule=${detection.ruleId},detection=${detection.id}`;
}

function list(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

/** An alert from the hash fields the Lua scripts return (HGETALL as a flat JSON array). */
export function alertFromFields(json: string, reason: string): Alert {
  const flat = JSON.parse(json) as string[];
  const fields = new Map<string, string>();
  for (let index = 0; index + 1 < flat.length; index += 2) fields.set(String(flat[index]), String(flat[index + 1]));
  const get = (name: string): string => fields.get(name) ?? '';
  const parse = (name: string): unknown => {
    try {
      return JSON.parse(get(name) || 'null');
    } catch {
      return null;
    }
  };
  const key = parse('key');
  const resolved = fields.get('resolved');
  return {
    id: get('id'),
    status: get('status') === 'resolved' ? 'resolved' : 'open',
    severity: SEVERITIES[Math.min(3, Math.max(0, Number(get('rank'))))] ?? 'low',
    groupKey: get('group'),
    key: typeof key === 'object' && key !== null && !Array.isArray(key) ? (key as Record<string, string>) : {},
    title: get('title'),
    reason,
    rules: list(parse('rules')),
    ruleNames: list(parse('names')),
    tags: list(parse('tags')),
    count: Number(get('count')),
    suppressed: Number(get('suppressed')),
    firstSeen: new Date(Number(get('first'))).toISOString(),
    lastSeen: new Date(Number(get('last'))).toISOString(),
    ...(resolved ? { resolvedAt: new Date(Number(resolved)).toISOString() } : {}),
    detections: list(parse('detections')),
    revision: Number(get('revision')),
  };
}

/** The alerts-index document: Kibana alert-as-data names (`kibana.alert.*`), ECS elsewhere. */
export function toAlertDocument(alert: Alert): Record<string, unknown> {
  const end = alert.resolvedAt ?? alert.lastSeen;
  return {
    '@timestamp': alert.lastSeen,
    message: alert.reason,
    event: { kind: 'signal', module: 'vigil', dataset: 'vigil.alert', severity: SEVERITY_SCORE[alert.severity] },
    tags: alert.tags,
    kibana: {
      alert: {
        uuid: alert.id,
        status: alert.status === 'open' ? 'active' : 'recovered',
        workflow_status: 'open',
        severity: alert.severity,
        reason: alert.reason,
        start: alert.firstSeen,
        ...(alert.resolvedAt ? { end: alert.resolvedAt } : {}),
        last_detected: alert.lastSeen,
        duration: { us: Math.max(0, Date.parse(end) - Date.parse(alert.firstSeen)) * 1000 },
        rule: { uuid: alert.rules, name: alert.ruleNames },
        instance: { id: alert.groupKey },
      },
    },
    vigil: {
      alert: {
        title: alert.title,
        group_key: alert.groupKey,
        key: alert.key,
        count: alert.count,
        suppressed: alert.suppressed,
        detections: alert.detections,
        revision: alert.revision,
      },
    },
  };
}

/**
 * The alerter: a consumer group on the detections topic that turns detections into few, grouped
 * alerts. One detection within the suppression window of its group's open alert joins it (a
 * running count, the rules and detections behind it, severity escalated at 10 and 100); a quiet
 * period resolves it. State is in Redis (one round trip per batch), alert documents are written
 * with external versioning (a stale update never overwrites a newer one), and notifications
 * (opened, escalated, resolved) are handed to the sink, which never blocks the consumer.
 */
export function createAlerter(options: AlerterOptions): Alerter {
  const { config, kafka, redis, elasticsearch, sink } = options;
  const logger = options.logger.child({ component: 'alerter' });
  const now = options.now ?? Date.now;
  const prefix = config.redis.prefix;
  const openKey = `${prefix}:{alerts}:open`;
  const alertKey = (group: string): string => `${prefix}:{alerts}:alert:${group}`;
  const index = alertIndexNames(config.indices.prefix).index;
  const ttl = Math.max(config.alerting.resolveAfterMs * 4, 86_400_000);
  const stats: AlerterStats = { detections: 0, invalid: 0, stale: 0, opened: 0, escalated: 0, updated: 0, duplicates: 0, resolved: 0 };
  let consumer: Consumer | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  defineScripts(redis);

  async function indexAlerts(alerts: readonly Alert[]): Promise<void> {
    if (alerts.length === 0) return;
    const operations = alerts.flatMap((alert) => [
      { index: { _index: index, _id: alert.id, version: alert.revision, version_type: 'external' as const } },
      toAlertDocument(alert),
    ]);
    let response;
    try {
      response = await elasticsearch.bulk({ operations, refresh: false });
    } catch (error) {
      throw new StoreUnavailableError('elasticsearch', `alert indexing failed: ${errorMessage(error)}`, error);
    }
    for (const item of response.items) {
      const outcome = item.index;
      // 409: a newer revision is already there (another instance, a redelivery): nothing to do.
      if (outcome && outcome.status >= 300 && outcome.status !== 409) {
        if (outcome.status === 429 || outcome.status >= 500) throw new StoreUnavailableError('elasticsearch', `alert indexing: ${outcome.status}`);
        logger.error({ alertId: outcome._id, error: outcome.error }, 'Elasticsearch refused an alert document');
      }
    }
  }

  async function handle(detections: readonly Detection[]): Promise<void> {
    if (detections.length === 0) return;
    const pipeline = redis.pipeline();
    const at = now();
    for (const detection of detections) {
      const group = groupKeyOf(detection);
      const title = `${detection.ruleName}: ${keyPhrase(detection.key)}`;
      const newId = `alert-${createHash('sha256').update(`${group}\u0001${detection.id}`).digest('hex').slice(0, 24)}`;
      queueScript(pipeline, 'alertUpsert', [alertKey(group), openKey], [
        detection.id,
        at,
        // An open alert absorbs detections until it is resolved: never a second alert for a
        // group while the first is still open.
        Math.max(config.alerting.suppressMs, config.alerting.resolveAfterMs),
        newId,
        detection.ruleId,
        detection.ruleName,
        RANK[detection.severity],
        JSON.stringify(detection.tags),
        title,
        JSON.stringify(detection.key),
        group,
        ttl,
        MAX_DETECTIONS,
      ]);
    }
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await pipeline.exec();
    } catch (error) {
      throw new StoreUnavailableError('redis', `alert state unavailable: ${errorMessage(error)}`, error);
    }
    const changed: AlertChange[] = [];
    const latest = new Map<string, Alert>();
    detections.forEach((detection, position) => {
      const [error, reply] = replies?.[position] ?? [new Error('no reply'), null];
      if (error) throw new StoreUnavailableError('redis', `alert state: ${error.message}`, error);
      const [kind, fields, replaced] = reply as [string, string, string | null];
      if (typeof replaced === 'string') {
        const old = alertFromFields(replaced, `Quiet for ${Math.round(config.alerting.resolveAfterMs / 1000)}s: resolved.`);
        latest.set(old.id, old);
        stats.resolved++;
        changed.push({ kind: 'resolved', alert: old });
      }
      const alert = alertFromFields(fields, detection.reason);
      latest.set(alert.id, alert);
      if (kind === 'duplicate') stats.duplicates++;
      else if (kind === 'updated') stats.updated++;
      else if (kind === 'opened' || kind === 'escalated') {
        stats[kind]++;
        changed.push({ kind, alert });
      }
    });
    // Notify before indexing: if indexing fails the batch is redone, its detections are then
    // duplicates, and a page queued after indexing would never be sent.
    for (const change of changed) sink.notify(change);
    await indexAlerts([...latest.values()]);
  }

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const detections: Detection[] = [];
    for (const message of batch.messages) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(message.value?.toString('utf8') ?? 'null');
      } catch {
        parsed = undefined;
      }
      const result = detectionSchema.safeParse(parsed);
      // A detection older than the quiet period would open an alert only to resolve it at once:
      // after an outage or for a new alerter group, on-call is paged for what is still current.
      if (result.success && Date.parse(result.data.detectedAt) < now() - config.alerting.resolveAfterMs) stats.stale++;
      else if (result.success) detections.push(result.data);
      else {
        // Our own topic: a bad message is a bug upstream, logged and skipped, never a jam.
        stats.invalid++;
        logger.error({ offset: message.offset, issues: result.error ? describeIssues(result.error) : ['not JSON'] }, 'invalid detection skipped');
      }
    }
    try {
      await handle(detections);
      failures = 0;
    } catch (error) {
      if (!isRetriable(error)) throw error;
      failures++;
      const delayMs = backoffDelay(failures, { initialDelayMs: 500, maxDelayMs: 30_000 });
      logger.warn({ err: error, delayMs }, 'alert stores unavailable, pausing the partition');
      const resume = payload.pause();
      setTimeout(resume, delayMs).unref();
      return;
    }
    stats.detections += detections.length;
    const last = batch.messages[batch.messages.length - 1];
    if (last) payload.resolveOffset(last.offset);
    await payload.commitOffsetsIfNecessary();
  }

  async function sweep(): Promise<Alert[]> {
    const at = now();
    const quiet = await redis.zrangebyscore(openKey, '-inf', at - config.alerting.resolveAfterMs);
    if (quiet.length === 0) return [];
    const pipeline = redis.pipeline();
    for (const group of quiet) queueScript(pipeline, 'alertResolve', [alertKey(group), openKey], [at, config.alerting.resolveAfterMs, group, ttl]);
    const replies = (await pipeline.exec()) ?? [];
    const resolved: Alert[] = [];
    for (const [error, reply] of replies) {
      if (error || typeof reply !== 'string') continue;
      const alert = alertFromFields(reply, `Quiet for ${Math.round(config.alerting.resolveAfterMs / 1000)}s: resolved.`);
      resolved.push(alert);
    }
    stats.resolved += resolved.length;
    for (const alert of resolved) sink.notify({ kind: 'resolved', alert });
    await indexAlerts(resolved);
    return resolved;
  }

  return {
    async start() {
      consumer = kafka.consumer({ groupId: config.alerting.group, allowAutoTopicCreation: false });
      await consumer.connect();
      await consumer.subscribe({ topic: config.topics.detections, fromBeginning: true });
      await consumer.run({ eachBatchAutoResolve: false, autoCommitThreshold: 1, eachBatch });
      const every = options.sweepEveryMs ?? Math.min(config.alerting.resolveAfterMs / 4, 5000);
      timer = setInterval(() => {
        sweep().catch((error: unknown) => logger.warn({ err: error }, 'alert sweep failed; will retry'));
      }, every);
      timer.unref();
      logger.info({ group: config.alerting.group, topic: config.topics.detections }, 'alerter started');
    },
    async stop() {
      if (timer) clearInterval(timer);
      await consumer?.disconnect();
      logger.info({ stats }, 'alerter stopped');
    },
    sweep,
    stats: () => ({ ...stats }),
  };
}
