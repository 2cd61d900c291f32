import type { Client } from '@elastic/elasticsearch';
import type { Redis } from 'ioredis';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { alertIndexNames, detectionSchema, describeIssues, type Alert, type AlertChange, type Detection } from '../../schemas';
import type { Config, Instrumentation, Logger } from '../../platform';
import { createAlertWriter } from './alert-document';
import { createAlertStore, type AlertUpsert } from './alert-store';
import { createPartitionLoop } from './alerter.consumer';
import {
  MAX_DETECTIONS_KEPT,
  SEVERITY_RANK,
  alertIdFor,
  alertStateTtlMs,
  alertTitleOf,
  defaultSweepEveryMs,
  groupKeyOf,
  isStaleDetection,
  joinWindowMs,
  resolvedReason,
} from './grouping-policy';

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
  /** The alerter names its own child logger (`component: 'alerter'`): pass the parent. */
  logger: Logger;
  /** Receives the consumer loop's `runner.*` events. */
  instrumentation?: Instrumentation;
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

/**
 * The alerter: a consumer group on the detections topic that turns detections into few, grouped
 * alerts. One detection within the join window of its group's open alert joins it (a running
 * count, the rules and detections behind it, severity escalated at 10 and 100); a quiet period
 * resolves it. State is in Redis (one round trip per batch), alert documents are written with
 * external versioning (a stale update never overwrites a newer one), and notifications (opened,
 * escalated, resolved) are handed to the sink, which never blocks the consumer.
 */
export function createAlerter(options: AlerterOptions): Alerter {
  const { config, sink } = options;
  const timings = config.alerting;
  const logger = options.logger.child({ component: 'alerter' });
  const now = options.now ?? Date.now;
  const store = createAlertStore({
    redis: options.redis,
    prefix: config.redis.prefix,
    ttlMs: alertStateTtlMs(timings),
    maxDetections: MAX_DETECTIONS_KEPT,
    resolvedReason: resolvedReason(timings),
    ...(options.instrumentation ? { instrumentation: options.instrumentation } : {}),
  });
  const writeAlerts = createAlertWriter(options.elasticsearch, alertIndexNames(config.indices.prefix).index, logger);
  const stats: AlerterStats = { detections: 0, invalid: 0, stale: 0, opened: 0, escalated: 0, updated: 0, duplicates: 0, resolved: 0 };
  let timer: NodeJS.Timeout | undefined;
  /** The sweep the timer started, awaited by stop so that none runs on after Redis closes. */
  let sweeping: Promise<unknown> | undefined;

  /** The batch's valid, current detections; the others are counted and skipped. */
  function readDetections(messages: readonly KafkaMessage[]): Detection[] {
    const detections: Detection[] = [];
    for (const message of messages) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(message.value?.toString('utf8') ?? 'null');
      } catch {
        parsed = undefined;
      }
      const result = detectionSchema.safeParse(parsed);
      if (result.success && isStaleDetection(result.data.detectedAt, now(), timings)) stats.stale++;
      else if (result.success) detections.push(result.data);
      else {
        // Our own topic: a bad message is a bug upstream, logged and skipped, never a jam.
        stats.invalid++;
        logger.error({ offset: message.offset, issues: result.error ? describeIssues(result.error) : ['not JSON'] }, 'invalid detection skipped');
      }
    }
    return detections;
  }

  function upsertOf(detection: Detection): AlertUpsert {
    const group = groupKeyOf(detection);
    return {
      detectionId: detection.id,
      group,
      newId: alertIdFor(group, detection.id),
      title: alertTitleOf(detection),
      ruleId: detection.ruleId,
      ruleName: detection.ruleName,
      severityRank: SEVERITY_RANK[detection.severity],
      tags: detection.tags,
      key: detection.key,
      reason: detection.reason,
    };
  }

  async function handle(detections: readonly Detection[]): Promise<void> {
    if (detections.length === 0) return;
    const replies = await store.upsert(detections.map(upsertOf), now(), joinWindowMs(timings));
    const changed: AlertChange[] = [];
    const latest = new Map<string, Alert>();
    for (const reply of replies) {
      if (!reply.ok) throw reply.error;
      if (reply.replaced) {
        latest.set(reply.replaced.id, reply.replaced);
        stats.resolved++;
        changed.push({ kind: 'resolved', alert: reply.replaced });
      }
      latest.set(reply.alert.id, reply.alert);
      if (reply.kind === 'duplicate') stats.duplicates++;
      else if (reply.kind === 'updated') stats.updated++;
      else if (reply.kind === 'opened' || reply.kind === 'escalated') {
        stats[reply.kind]++;
        changed.push({ kind: reply.kind, alert: reply.alert });
      }
    }
    // Notify before indexing: if indexing fails the batch is redone, its detections are then
    // duplicates, and a page queued after indexing would never be sent.
    for (const change of changed) sink.notify(change);
    await writeAlerts([...latest.values()]);
  }

  const loop = createPartitionLoop({
    kafka: options.kafka,
    groupId: timings.group,
    topic: config.topics.detections,
    logger,
    ...(options.instrumentation ? { instrumentation: options.instrumentation } : {}),
    handle: async (messages) => {
      const detections = readDetections(messages);
      await handle(detections);
      stats.detections += detections.length;
    },
  });

  async function sweep(): Promise<Alert[]> {
    const resolved = await store.resolveQuiet(now(), timings.resolveAfterMs);
    stats.resolved += resolved.length;
    for (const alert of resolved) sink.notify({ kind: 'resolved', alert });
    await writeAlerts(resolved);
    return resolved;
  }

  return {
    async start() {
      await loop.start();
      timer = setInterval(() => {
        // One sweep at a time: a slow Redis must not pile sweeps up.
        if (sweeping) return;
        sweeping = sweep()
          .catch((error: unknown) => logger.warn({ err: error }, 'alert sweep failed; will retry'))
          .finally(() => {
            sweeping = undefined;
          });
      }, options.sweepEveryMs ?? defaultSweepEveryMs(timings));
      timer.unref();
      logger.info({ group: timings.group, topic: config.topics.detections }, 'alerter started');
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await Promise.all([loop.stop(), sweeping]);
      logger.info({ stats }, 'alerter stopped');
    },
    sweep,
    stats: () => ({ ...stats }),
  };
}
