import type { Client } from '@elastic/elasticsearch';
import type { Redis } from 'ioredis';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { alertIndexNames, detectionSchema, describeIssues, type Alert, type AlertChange, type Detection } from '../../schemas';
import { parseOwnMessage, type Config, type Instrumentation, type Logger } from '../../platform';
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
  /**
   * Takes a batch's changes, in order. Resolving means they are durable (in the notification
   * outbox): only then does the alerter forget them in Redis and commit the batch. Rejecting with
   * a retriable error pauses the partition and the batch is redone.
   */
  accept(changes: readonly AlertChange[]): Promise<void>;
}

/**
 * How old a change recorded unsent must be before a sweep writes it to the outbox again: older
 * than any write in flight, so it belongs to an instance that crashed (or whose write failed).
 */
export const UNSENT_GRACE_MS = 30_000;

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
  /** Changes found unsent in Redis (a crash or a failed outbox write) and written to the outbox again. */
  resent: number;
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
 * escalated, resolved) are handed to the sink, which holds them durably (the notification outbox)
 * before the batch is committed; the alert scripts record them unsent in Redis until then.
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
  const stats: AlerterStats = { detections: 0, invalid: 0, stale: 0, opened: 0, escalated: 0, updated: 0, duplicates: 0, resolved: 0, resent: 0 };
  /**
   * Set when changes may wait unsent in Redis (at start: a previous process may have crashed; after
   * a failed outbox write). The next batch writes them all first, so a destination still hears of
   * them before the changes that follow them.
   */
  let behind = true;
  let timer: NodeJS.Timeout | undefined;
  /** The sweep the timer started, awaited by stop so that none runs on after Redis closes. */
  let sweeping: Promise<unknown> | undefined;

  /** The batch's valid, current detections; the others are counted and skipped. */
  function readDetections(messages: readonly KafkaMessage[]): Detection[] {
    const detections: Detection[] = [];
    for (const message of messages) {
      const result = parseOwnMessage(message, detectionSchema);
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
    await deliver(changed);
    await writeAlerts([...latest.values()]);
  }

  /**
   * Hands changes to the sink and, once it holds them, forgets them in Redis. The Lua scripts
   * recorded each change as unsent in the same call that made it, so a crash anywhere before
   * this leaves it there, for {@link resend}.
   */
  async function deliver(changes: readonly AlertChange[]): Promise<void> {
    if (changes.length === 0) return;
    try {
      await sink.accept(changes);
    } catch (error) {
      behind = true;
      throw error;
    }
    try {
      await store.markSent(changes);
    } catch (error) {
      // Harmless: they are written again later with the same delivery ids, and sent once.
      logger.warn({ err: error, changes: changes.length }, 'could not mark notifications as sent; they will be written to the outbox again');
    }
  }

  /** Writes the changes recorded unsent at or before `beforeMs` to the sink again. */
  async function resend(beforeMs: number): Promise<number> {
    const unsent = await store.unsent(beforeMs);
    if (unsent.length > 0) {
      logger.warn({ changes: unsent.length }, 'writing alert changes a previous attempt left unsent to the notification outbox');
      await deliver(unsent.map((entry) => entry.change));
      stats.resent += unsent.length;
    }
    return unsent.length;
  }

  const loop = createPartitionLoop({
    kafka: options.kafka,
    groupId: timings.group,
    topic: config.topics.detections,
    logger,
    ...(options.instrumentation ? { instrumentation: options.instrumentation } : {}),
    handle: async (messages) => {
      if (behind) {
        await resend(Number.POSITIVE_INFINITY);
        behind = false;
      }
      const detections = readDetections(messages);
      await handle(detections);
      stats.detections += detections.length;
    },
  });

  async function sweep(): Promise<Alert[]> {
    // Changes another instance (or this one, before a failed write) left unsent a while ago go
    // first: older than anything this sweep resolves.
    await resend(now() - UNSENT_GRACE_MS);
    const resolved = await store.resolveQuiet(now(), timings.resolveAfterMs);
    stats.resolved += resolved.length;
    await deliver(resolved.map((alert) => ({ kind: 'resolved' as const, alert })));
    await writeAlerts(resolved);
    return resolved;
  }

  return {
    async start() {
      // What a crashed predecessor left unsent goes out before anything newer; if the stores are
      // away, the first batch does it.
      try {
        await resend(Number.POSITIVE_INFINITY);
        behind = false;
      } catch (error) {
        logger.warn({ err: error }, 'could not write unsent alert changes at start; the first batch will');
      }
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
