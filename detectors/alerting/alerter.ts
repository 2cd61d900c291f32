import type { Client } from '@elastic/elasticsearch';
import type { RedisClient } from '../../platform';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { alertIndexNames, detectionSchema, describeIssues, type Alert, type AlertChange, type Detection } from '../../schemas';
import { parseOwnMessage, unreadOlderThan, type Config, type Instrumentation, type Logger } from '../../platform';
import { createAlertWriter, createDetectionWriter } from './alert-document';
import { MAX_ALERT_SILENCES, RELEASE_LIMIT, createAlertStore, type AlertFold } from './alert-store';
import { createPartitionLoop } from './alerter.consumer';
import { createSilenceStore, silenceMatches, type Silence } from './silences';
import {
  MAX_DETECTIONS_KEPT,
  SEVERITY_RANK,
  alertIdFor,
  alertStateTtlMs,
  alertTitleOf,
  campaignGroupOf,
  campaignTitleOf,
  defaultSweepEveryMs,
  endpointGroupOf,
  eventTimeOf,
  groupKeyOf,
  inhibitionIndex,
  isAheadOfDetection,
  isPaged,
  judgedTimeOf,
  namedGroupsOf,
  orderTimeOf,
  parseInhibition,
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
  redis: RedisClient;
  elasticsearch: Client;
  sink: AlertSink;
  /** The alerter names its own child logger (`component: 'alerter'`): pass the parent. */
  logger: Logger;
  /** Receives the consumer loop's `runner.*` events. */
  instrumentation?: Instrumentation;
  /** @defaultValue Date.now */
  now?: () => number;
  /** How often held detections are released and open alerts checked for quiet. @defaultValue min(resolveAfter / 4, lateness, 5s) */
  sweepEveryMs?: number;
  /**
   * Risk-based triage (issue 9): called on the detections the watermark released, in event-time
   * order, before they are folded, with the alerter's event-time now (the newest detection time
   * released). What it returns is what gets folded: it may drop detections (low severity that should not page on
   * its own) and add synthesized ones (an entity's combined risk). A rejection leaves them held, and the next release redoes them.
   * @defaultValue none: every detection is grouped
   */
  triage?: (detections: readonly Detection[], eventTimeNowMs: number) => Promise<readonly Detection[]>;
  /**
   * Whether the wall-clock fallback waits while the pipeline is behind (unread events or
   * detections older than the allowed lateness). @defaultValue true
   */
  holdWhileBehind?: boolean;
}

/** Counters of the alerter. */
export interface AlerterStats {
  /** Valid detections read (before triage). */
  detections: number;
  /** Detections that could not be read: from the topic, or held in Redis (both dropped, logged). */
  invalid: number;
  /** Detections the triage hook dropped, and those it added. */
  triageDropped: number;
  triageAdded: number;
  /** Detections that arrived behind what was already folded (more than the allowed lateness late): folded out of order. */
  late: number;
  /** Detections folded into alerts (released by the watermark). */
  folded: number;
  opened: number;
  escalated: number;
  updated: number;
  duplicates: number;
  /** Detections absorbed as evidence by an open alert that explains them (inhibition). */
  absorbed: number;
  /** Detections the storm guard folded into a campaign alert (the campaign's opening one included). */
  campaign: number;
  resolved: number;
  /** Changes recorded in the alerts index but not notified: their incident ended longer ago than `VIGIL_ALERT_PAGE_WITHIN_MS` (a resolve is handed over even then, marked `late`, and not counted). */
  unpaged: number;
  /** Openings and escalations of alerts a silence matched: not notified. (Their resolves are handed over marked `late`, so a page opened before the silence is closed, and not counted.) */
  silenced: number;
  /** Changes found unsent in Redis (a crash or a failed outbox write) and written to the outbox again. */
  resent: number;
  /** Sweeps in which the wall-clock fallback held alerts open because the pipeline was behind. */
  heldBehind: number;
  /** Detections whose event time ran more than a minute past the time they were made (a producer's clock running fast): taken a minute after it. */
  aheadOfClock: number;
  /** Entity links forgotten because their alert was gone (expired, or replaced): see `AlertStore.pruneLinks`. */
  linksPruned: number;
}

/**
 * Entity links looked at per sweep (a sweep runs every few seconds, at most 5 s apart): a pass
 * over 100,000 links takes about 500 sweeps, and a call costs Redis about one HGET per link.
 */
export const LINKS_PRUNED_PER_SWEEP = 200;

/** A running alerter. */
export interface Alerter {
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Folds held detections the watermark has passed (all of them once none has arrived for the
   * allowed lateness), then resolves alerts quiet long enough, and returns those (the timer calls it too).
   */
  sweep(): Promise<Alert[]>;
  stats(): AlerterStats;
}

/**
 * The alerter: a consumer group on the detections topic that turns detections into few, grouped
 * alerts, in event time. Each batch's detections are held in Redis until the watermark (the
 * newest detection time held, minus the allowed lateness) passes them; then they are folded in
 * event-time order: a detection within the quiet period of its group's open alert joins it (a
 * running count, the rules and detections behind it, severity escalated at 10 and 100), one that
 * an open endpoint incident explains is absorbed into it as evidence, one past the storm guard
 * folds into its rule's campaign alert, and the rest open alerts. An alert resolves once the
 * folded detections are a quiet period past its last one (or, when no detection arrives at all,
 * after the quiet period plus the lateness of wall-clock time). So an hour replayed in two
 * minutes gives the same alerts as the hour live. State is in Redis, alert documents are written
 * with external versioning, and notifications are handed to the sink, which holds them durably
 * (the notification outbox) before the batch is committed.
 */
export function createAlerter(options: AlerterOptions): Alerter {
  const { config, sink } = options;
  const timings = config.alerting;
  const logger = options.logger.child({ component: 'alerter' });
  const now = options.now ?? Date.now;
  const inhibition = inhibitionIndex(parseInhibition(timings.inhibition));
  // The quiet period in event time: the join window and when an alert resolves. (With the old
  // wall-clock sweeper a longer suppression window, the retired VIGIL_ALERT_SUPPRESS_MS, joined
  // detections only in the seconds before a sweep: in event time there is no such gap.)
  const quietMs = timings.resolveAfterMs;
  const store = createAlertStore({
    redis: options.redis,
    prefix: config.redis.prefix,
    ttlMs: alertStateTtlMs(timings),
    maxDetections: MAX_DETECTIONS_KEPT,
    resolvedReason: resolvedReason(timings),
    quietMs,
    latenessMs: timings.latenessMs,
    stormMax: timings.stormMax,
    stormWindowMs: timings.stormWindowMs,
    ...(timings.stormSpares !== 'none' ? { stormSparesRank: SEVERITY_RANK[timings.stormSpares] } : {}),
    ...(options.instrumentation ? { instrumentation: options.instrumentation } : {}),
  });
  const writeAlerts = createAlertWriter(options.elasticsearch, alertIndexNames(config.indices.prefix).index, logger);
  const writeDetections = createDetectionWriter(options.elasticsearch, config.indices.prefix, logger);
  const stats: AlerterStats = {
    detections: 0,
    invalid: 0,
    triageDropped: 0,
    triageAdded: 0,
    late: 0,
    folded: 0,
    opened: 0,
    escalated: 0,
    updated: 0,
    duplicates: 0,
    absorbed: 0,
    campaign: 0,
    resolved: 0,
    unpaged: 0,
    silenced: 0,
    resent: 0,
    heldBehind: 0,
    aheadOfClock: 0,
    linksPruned: 0,
  };
  /** The newest detection time released so far: the triage hook's event-time now. */
  let newestMs = Number.NEGATIVE_INFINITY;
  /**
   * Set when changes may wait unsent in Redis (at start: a previous process may have crashed; after
   * a failed outbox write). The next batch writes them all first, so a destination still hears of
   * them before the changes that follow them.
   */
  let behind = true;
  /** Outbox writes that failed so far: a resend clears `behind` only if none failed while it ran (a sweep's, say). */
  let failedWrites = 0;
  let timer: NodeJS.Timeout | undefined;
  /** The sweep the timer started, awaited by stop so that none runs on after Redis closes. */
  let sweeping: Promise<unknown> | undefined;
  /** Releases and folds run one at a time in a process, so they fold in order. */
  let folding: Promise<unknown> = Promise.resolve();

  /** The batch's valid detections; the others are counted and skipped. */
  function readDetections(messages: readonly KafkaMessage[]): Detection[] {
    const detections: Detection[] = [];
    for (const message of messages) {
      const result = parseOwnMessage(message, detectionSchema);
      if (result.success) detections.push(result.data);
      else {
        // Our own topic: a bad message is a bug upstream, logged and skipped, never a jam.
        stats.invalid++;
        logger.error({ offset: message.offset, issues: result.error ? describeIssues(result.error) : ['not JSON'] }, 'invalid detection skipped');
      }
    }
    return detections;
  }

  function foldOf(detection: Detection): AlertFold {
    const group = groupKeyOf(detection);
    const { explains, explainedBy } = inhibition(detection.ruleId);
    const explainerGroup = explainedBy.length > 0 ? endpointGroupOf(detection.scope) : undefined;
    const campaignGroup = campaignGroupOf(detection.ruleId);
    return {
      detectionId: detection.id,
      group,
      time: eventTimeOf(detection),
      orderTime: orderTimeOf(detection, explains),
      windowStart: Date.parse(detection.window.start),
      newId: alertIdFor(group, detection.id),
      title: alertTitleOf(detection),
      ruleId: detection.ruleId,
      ruleName: detection.ruleName,
      severityRank: SEVERITY_RANK[detection.severity],
      tags: detection.tags,
      key: detection.key,
      reason: detection.reason,
      explains,
      explainedBy,
      ...(explainerGroup === undefined ? {} : { explainerGroup }),
      campaign: { group: campaignGroup, newId: alertIdFor(campaignGroup, detection.id), title: campaignTitleOf(detection.ruleName), key: { 'rule.id': detection.ruleId } },
      named: namedGroupsOf(detection),
    };
  }

  /**
   * The triage hook over released detections, in event-time order: what it keeps and adds is
   * what gets folded. Run after the release, not on arrival, so what it decides (a risk score
   * crossing its threshold, and at which detection) depends on event time only, not on the
   * order partitions were read in.
   */
  async function triaged(detections: readonly Detection[]): Promise<readonly Detection[]> {
    for (const detection of detections) newestMs = Math.max(newestMs, eventTimeOf(detection));
    if (!options.triage || detections.length === 0) return detections;
    const grouped = await options.triage(detections, newestMs);
    const before = new Set(detections.map((detection) => detection.id));
    const after = new Set(grouped.map((detection) => detection.id));
    stats.triageDropped += [...before].filter((id) => !after.has(id)).length;
    const added = grouped.filter((detection) => !before.has(detection.id));
    // What the hook raised (risk-threshold) is indexed beside the rules' detections before it is
    // folded: the alert cites it, and analysts look for it there. A failure redoes the batch.
    await writeDetections(added);
    stats.triageAdded += added.length;
    return grouped;
  }

  /** Holds a batch's detections until the watermark passes them. */
  async function hold(detections: readonly Detection[], partition: string, behind: boolean): Promise<void> {
    const grouped = detections;
    // Times are taken no later than a minute after the detection was made (eventTimeOf): say so
    // when one was cut.
    const ahead = grouped.filter(isAheadOfDetection);
    if (ahead.length > 0) {
      stats.aheadOfClock += ahead.length;
      const first = ahead[0];
      logger.warn(
        { detections: ahead.length, ruleId: first?.ruleId, time: first?.time, detectedAt: first?.detectedAt },
        'detections stamped more than a minute after the time they were made (an event from a clock running fast): taken a minute after it',
      );
    }
    const { late } = await store.hold(
      grouped.map((detection) => ({
        orderTime: orderTimeOf(detection, inhibition(detection.ruleId).explains),
        // The engine's clock had passed a late-decided detection's judgedAt: its partition has too.
        time: Math.max(eventTimeOf(detection), judgedTimeOf(detection) ?? Number.NEGATIVE_INFINITY),
        json: JSON.stringify(detection),
      })),
      now(),
      partition,
      behind,
    );
    if (late > 0) {
      stats.late += late;
      logger.warn({ late }, 'detections arrived behind the alerter watermark (later than the allowed lateness): folded out of event-time order');
    }
  }

  /** Runs release-and-fold work one at a time in this process, so detections fold in order. */
  function serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = folding.then(work);
    // The next caller waits for this one, failed or not.
    folding = run.catch(() => undefined);
    return run;
  }

  /** Folds what the watermark has passed (everything held, by the wall-clock fallback), in order, until nothing is left. */
  async function drain(): Promise<void> {
    for (;;) {
      const released = await store.release(now());
      if (released.members.length === 0) return;
      const detections = released.members.flatMap((member) => {
        // Held by this code from parsed detections: one that does not parse (a bug, or held by a
        // version whose schema differs) is logged and skipped, never left to fail every release.
        let parsed: ReturnType<typeof detectionSchema.safeParse> | undefined;
        try {
          parsed = detectionSchema.safeParse(JSON.parse(member));
        } catch {
          parsed = undefined;
        }
        if (parsed?.success) return [parsed.data];
        stats.invalid++;
        logger.error({ member: member.slice(0, 500), issues: parsed?.error.issues.slice(0, 5).map((issue) => `${issue.path.join('.')}: ${issue.message}`) ?? ['not JSON'] }, 'a held detection could not be read; it is dropped');
        return [];
      });
      await fold(await triaged(detections));
      await store.forget(released.members);
      if (released.members.length < RELEASE_LIMIT) return;
    }
  }

  async function fold(detections: readonly Detection[]): Promise<void> {
    if (detections.length === 0) return;
    const replies = await store.fold(detections.map(foldOf), now());
    const changed: AlertChange[] = [];
    const latest = new Map<string, Alert>();
    const replaced = new Map<string, Alert>();
    for (const reply of replies) {
      if (!reply.ok) throw reply.error;
      stats.folded++;
      if (reply.replaced) {
        replaced.set(reply.replaced.id, reply.replaced);
        latest.delete(reply.replaced.id);
        stats.resolved++;
        changed.push({ kind: 'resolved', alert: reply.replaced });
      }
      if (reply.kind !== 'late') latest.set(reply.alert.id, reply.alert);
      if (reply.target === 'campaign' && reply.kind !== 'duplicate') stats.campaign++;
      if (reply.kind === 'duplicate') stats.duplicates++;
      else if (reply.kind === 'updated') stats.updated++;
      else if (reply.kind === 'absorbed') stats.absorbed++;
      else if (reply.kind === 'late') {
        stats.late++;
        logger.warn({ alertId: reply.alert.id }, 'a detection older than its group\'s open alert by more than the quiet period: folded nowhere');
      } else {
        stats[reply.kind]++;
        changed.push({ kind: reply.kind, alert: reply.alert });
      }
    }
    // Notify before indexing: if indexing fails the batch is redone, its detections are then
    // duplicates, and a page queued after indexing would never be sent.
    const withEvidence = await store.withEvidence([...latest.values()]);
    const byId = new Map(withEvidence.map((alert) => [alert.id, alert]));
    const silenced = await deliver(changed.map((change) => ({ ...change, alert: evidenceFrom(change.alert, byId) })));
    await writeAlerts(withSilences([...replaced.values(), ...withEvidence], silenced));
  }

  /** The alerts with the silences {@link deliver} just recorded on them (they were read before it). */
  function withSilences(alerts: readonly Alert[], silenced: ReadonlyMap<string, readonly string[]>): Alert[] {
    if (silenced.size === 0) return [...alerts];
    return alerts.map((alert) => {
      const ids = silenced.get(alert.id);
      if (ids === undefined) return alert;
      const merged = [...new Set([...(alert.silencedBy ?? []), ...ids])].slice(0, MAX_ALERT_SILENCES);
      return { ...alert, silencedBy: merged };
    });
  }

  /** A change's alert with the evidence read after the batch, when it is the same revision or older. */
  function evidenceFrom(alert: Alert, byId: ReadonlyMap<string, Alert>): Alert {
    const current = byId.get(alert.id);
    return current?.evidence && alert.evidence === undefined ? { ...alert, evidence: current.evidence } : alert;
  }

  /**
   * Hands the changes whose incident is recent enough to page to the sink, and, once it holds
   * them, forgets all of them in Redis. The Lua scripts recorded each change as unsent in the
   * same call that made it, so a crash anywhere before this leaves it there, for {@link resend}.
   */
  async function deliver(changes: readonly AlertChange[], heldSeqs?: ReadonlyMap<string, string>): Promise<Map<string, string[]>> {
    const marks = new Map<string, { alert: Alert; silences: Set<string>; held?: { kind: 'opened' | 'escalated'; reason: string } }>();
    /** Alerts a silence held a notification of, notified now: no longer held (but for a hold recorded since the one released, `seq`). */
    const notified: { alertId: string; group: string; seq?: string }[] = [];
    if (changes.length === 0) return new Map();
    const wallNow = now();
    // A resolve outside the window still goes, marked late: the notifier sends it only where the
    // incident was announced, so a page opened before the alerter or the pipeline fell behind is
    // closed when it catches up.
    // A silenced alert's changes are held back the same way (on the wall clock: a silence is a
    // maintenance window); its resolve still closes a page opened before the silence began.
    const silences = await activeSilences(wallNow);
    const paged: AlertChange[] = [];
    let heldBack = 0;
    for (const change of changes) {
      const silence = silences.find((item) => silenceMatches(item, change.alert));
      if (silence !== undefined) {
        logger.info({ alertId: change.alert.id, change: change.kind, silence: silence.id }, change.kind === 'resolved' ? 'alert change silenced: sent only where the incident was announced' : 'alert change silenced: not notified');
        const mark = marks.get(change.alert.id) ?? { alert: change.alert, silences: new Set<string>() };
        mark.silences.add(silence.id);
        // Held back, to be notified once no silence matches it (releaseHeld), if still open.
        if (change.kind !== 'resolved') mark.held = { kind: mark.held?.kind === 'opened' || change.kind === 'opened' ? 'opened' : 'escalated', reason: change.alert.reason };
        marks.set(change.alert.id, mark);
        if (change.kind === 'resolved') paged.push({ ...change, late: true });
        else heldBack++;
      } else if (isPaged(change.alert, wallNow, timings.pageWithinMs)) {
        paged.push(change);
        // Its opening went out: nothing held is owed any more. (An escalation alone does not
        // settle a held opening: a destination that takes openings only would never hear of it.)
        if (change.kind === 'opened' && (change.alert.silencedBy?.length ?? 0) > 0) {
          const seq = heldSeqs?.get(change.alert.id);
          notified.push({ alertId: change.alert.id, group: change.alert.groupKey, ...(seq !== undefined ? { seq } : {}) });
        }
      }
      else if (change.kind === 'resolved') paged.push({ ...change, late: true });
      else stats.unpaged++;
    }
    if (paged.length > 0) {
      try {
        await sink.accept(paged);
      } catch (error) {
        behind = true;
        failedWrites++;
        throw error;
      }
    }
    // What held them back is recorded on the alerts (their documents say so: Kibana's
    // maintenance_window_ids), with the hold that releaseHeld notifies once no silence matches.
    // Before the changes are marked sent, and not past a failure: a hold not recorded, with its
    // change forgotten as sent, was an opening never paged, even once the silence ended. Failing
    // here leaves the changes unsent, for the next attempt (the outbox deduplicates what went).
    const silenced = new Map<string, string[]>([...marks].map(([id, { silences: ids }]) => [id, [...ids]]));
    if (marks.size > 0) {
      try {
        await store.markSilenced([...marks.values()].map(({ alert, silences: ids, held }) => ({ alert, silences: [...ids], ...(held ? { held } : {}) })));
      } catch (error) {
        logger.warn({ err: error, alerts: marks.size }, 'could not record the silences that held back these alerts\' notifications; their changes stay unsent and are tried again');
        // The next batch writes what is unsent first (a redone batch finds its detections folded),
        // and a catch-up running meanwhile does not clear that.
        behind = true;
        failedWrites++;
        throw error;
      }
    }
    // Counted once held back for good (a retried hold is counted when it is recorded).
    stats.silenced += heldBack;
    try {
      await store.markSent(changes);
    } catch (error) {
      // Harmless: they are written again later with the same delivery ids, and sent once.
      logger.warn({ err: error, changes: changes.length }, 'could not mark notifications as sent; they will be written to the outbox again');
    }
    if (notified.length > 0) {
      try {
        await store.clearHeld(notified);
      } catch (error) {
        // Harmless: releaseHeld would notify them again at a revision the notifier has seen, or a later one.
        logger.debug({ err: error, alerts: notified.length }, 'could not forget held alerts notified since');
      }
    }
    return silenced;
  }

  /**
   * Notifies the open alerts a silence held back (their opening, or an escalation) once no
   * silence matches them any more, as Alertmanager does when a silence ends on a firing alert;
   * forgets those closed or replaced meanwhile. Runs with every sweep.
   */
  async function releaseHeld(): Promise<void> {
    const held = await store.heldAlerts();
    if (held.length === 0) return;
    // Read strictly: silences that can't be read are no reason to release what they hold (that
    // would end every silence for good); the next sweep looks again.
    let silences: Silence[];
    try {
      silences = await silenceStore.active(now());
    } catch (error) {
      logger.warn({ err: error, held: held.length }, 'could not read the silences: the alerts they hold back stay held until they can be read');
      return;
    }
    const due: { alertId: string; group: string; seq: string; change: AlertChange }[] = [];
    const closed: { alertId: string; group: string }[] = [];
    for (const entry of held) {
      if (entry.held === undefined) {
        closed.push(entry);
        continue;
      }
      const { alert, kind, seq } = entry.held;
      if (silences.some((silence) => silenceMatches(silence, alert))) continue;
      due.push({ alertId: entry.alertId, group: entry.group, seq, change: { kind, alert } });
    }
    // One closed alert that can't be forgotten must not hold the others' release back.
    await store.clearHeld(closed).catch((error: unknown) => logger.warn({ err: error, alerts: closed.length }, 'could not forget held alerts that are closed; the next sweep tries again'));
    if (due.length === 0) return;
    const holdAgain = async (alerts: readonly { alertId: string; group: string }[]): Promise<void> => {
      await store.restoreHeld(alerts).catch((error: unknown) =>
        logger.error({ err: error, alerts: alerts.map(({ alertId }) => alertId) }, 'could not hold these alerts again after a failed notification; they are not notified when their silences end'),
      );
    };
    // Claimed first, one instance alone: two sweeping at once must not both notify. A claim
    // lasts a while and leaves the alert on the index: should this process die before the
    // notification is handed over, a later sweep takes it again once the claim ends. An answer
    // lost on the way may have taken some: those claims end by themselves (giving back every due
    // alert would end other instances' live claims too).
    const claimed = await store.claimHeld(due);
    const mine = due.filter(({ alertId }) => claimed.has(alertId));
    if (mine.length === 0) return;
    let heldAgain: Map<string, string[]>;
    try {
      const withEvidence = new Map((await store.withEvidence(mine.map(({ change }) => change.alert))).map((alert) => [alert.id, alert]));
      const release = mine.map(({ change }) => ({ ...change, alert: withEvidence.get(change.alert.id) ?? change.alert }));
      logger.info({ alerts: release.map((change) => change.alert.id) }, 'no silence holds these open alerts back any more: notifying them');
      // With the hold each release read: a hold recorded since (an escalation under a new
      // silence, another instance's) is not cleared by this notification.
      heldAgain = await deliver(release, new Map(mine.map(({ alertId, seq }) => [alertId, seq])));
    } catch (error) {
      // Not notified: held again, for the next sweep.
      await holdAgain(mine);
      throw error;
    }
    // A silence made meanwhile matched some (deliver held them again): those stay held, on the
    // index even if recording it failed; the others are done, but for a hold recorded since the
    // read (by another instance, say), which the clear keeps.
    const again = mine.filter(({ alertId }) => heldAgain.has(alertId));
    if (again.length > 0) await holdAgain(again);
    await store.clearHeld(mine.filter(({ alertId }) => !heldAgain.has(alertId))).catch((error: unknown) => logger.debug({ err: error }, 'could not clear the held fields of notified alerts; harmless'));
  }

  const silenceStore = createSilenceStore(options.redis, config.redis.prefix);
  /** The silences in force; none when they can't be read (a page too many beats a page lost). */
  async function activeSilences(wallNow: number): Promise<Silence[]> {
    try {
      return await silenceStore.active(wallNow);
    } catch (error) {
      logger.warn({ err: error }, 'could not read the silences: notifying as if there were none');
      return [];
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

  /** Writes everything left unsent; `behind` is cleared only if no outbox write failed meanwhile (a sweep's, say). */
  async function catchUp(): Promise<void> {
    const failedBefore = failedWrites;
    await resend(Number.POSITIVE_INFINITY);
    if (failedWrites === failedBefore) behind = false;
  }

  /** Resolves the alerts whose quiet period passed. */
  /** Whether the last wall-clock check held alerts open: its release is logged once. */
  let holdingFor: string[] | undefined;
  /** The last answer, reused for a few seconds: settle runs for every detection batch, and a backlog's catch-up must not pay Kafka round trips per batch. */
  let lastAsked: { at: number; allowed: boolean } | undefined;
  const ASK_EVERY_MS = 5000;

  /**
   * Whether the wall-clock fallback may resolve `waiting` alerts now. Not while the ingest
   * pipeline (its group on the event topics) or this alerter (on the detections topic) has unread
   * messages written more than the allowed lateness ago: a stalled pipeline (Elasticsearch down,
   * say) produces no detections, and its catch-up would bring the very detections that keep these
   * alerts open; resolved meanwhile, they would open a second alert and page again. Kafka's own
   * timestamps are compared with the real clock. A group that committed nothing (not deployed
   * under this name) is not waited for; Kafka away holds.
   */
  async function mayUseWallClock(waiting: number): Promise<boolean> {
    const cached = lastAsked !== undefined && Date.now() - lastAsked.at < ASK_EVERY_MS ? lastAsked : undefined;
    const allowed = cached?.allowed ?? (await askKafka(waiting));
    if (cached === undefined) lastAsked = { at: Date.now(), allowed };
    if (!allowed) stats.heldBehind++;
    return allowed;
  }

  async function askKafka(waiting: number): Promise<boolean> {
    const admin = options.kafka.admin();
    let behind: string[];
    try {
      await admin.connect();
      const wallNow = Date.now();
      const [ingest, own] = await Promise.all([
        unreadOlderThan(admin, config.consumerGroup, [config.topics.policy, config.topics.invocation, config.topics.device], timings.latenessMs, wallNow),
        unreadOlderThan(admin, timings.group, [config.topics.detections], timings.latenessMs, wallNow),
      ]);
      behind = [...(ingest ?? []), ...(own ?? [])];
    } catch (error) {
      behind = ['kafka unreachable'];
      logger.debug({ err: error }, 'could not ask Kafka how far behind the pipeline is; the wall-clock fallback waits');
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    if (behind.length === 0) {
      if (holdingFor !== undefined) logger.info({ alerts: waiting }, 'the pipeline caught up: the wall-clock fallback resolves again');
      holdingFor = undefined;
      return true;
    }
    if (holdingFor === undefined) {
      logger.warn(
        { alerts: waiting, behind },
        'the wall-clock fallback holds alerts open: the pipeline has unread events or detections older than the allowed lateness (a stall or a backlog); they resolve in event time as it catches up',
      );
    }
    holdingFor = behind;
    return false;
  }

  async function settle(): Promise<Alert[]> {
    const settled = await store.settle(now(), options.holdWhileBehind === false ? undefined : mayUseWallClock);
    if (settled.length === 0) return [];
    const resolved = await store.withEvidence(settled.map(({ alert }) => alert));
    const byWall = settled.filter(({ how }) => how === 'wall').length;
    if (byWall > 0) logger.info({ alerts: byWall }, 'resolved by the wall-clock fallback: no detection arrived for the quiet period and the lateness');
    stats.resolved += resolved.length;
    // Redis holds them resolved already: their documents are written even when the outbox is
    // away (the changes stay recorded unsent, and a later sweep writes them to it); before, an
    // outbox failure here left them `active` in the alerts index for good.
    let silenced = new Map<string, string[]>();
    let failure: Error | undefined;
    try {
      silenced = await deliver(resolved.map((alert) => ({ kind: 'resolved' as const, alert })));
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error));
    }
    await writeAlerts(withSilences(resolved, silenced));
    if (failure !== undefined) throw failure;
    return resolved;
  }

  const loop = createPartitionLoop({
    kafka: options.kafka,
    groupId: timings.group,
    topic: config.topics.detections,
    logger,
    ...(options.instrumentation ? { instrumentation: options.instrumentation } : {}),
    handle: async (messages, source) => {
      if (behind) await catchUp();
      const detections = readDetections(messages);
      await hold(detections, `${source.topic}:${source.partition}`, !source.caughtUp);
      await serialized(async () => {
        await drain();
        await settle();
      });
      stats.detections += detections.length;
    },
  });

  /**
   * Marks every partition of the detections topic active before the first fetch, so that the
   * partition read first does not fold past one not read yet (a backlog at start): one with a
   * backlog for this group (committed offset short of the high watermark) holds the others back
   * until it delivers. Best effort: without it, a partition delivered late is counted `late` and
   * folded out of order.
   */
  async function expectPartitions(): Promise<void> {
    const admin = options.kafka.admin();
    const topic = config.topics.detections;
    try {
      await admin.connect();
      const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: timings.group, topics: [topic] })]);
      const from = new Map((committed[0]?.partitions ?? []).map(({ partition, offset }) => [partition, BigInt(offset)]));
      const partitions = ends.map(({ partition, high, low }) => {
        const next = from.get(partition) ?? -1n;
        return { partition: `${topic}:${partition}`, behind: BigInt(high) > (next >= 0n ? next : BigInt(low)) };
      });
      await store.expect(partitions, now());
    } catch (error) {
      logger.warn({ err: error }, 'could not mark the detections topic partitions active at start; a backlog may fold partly out of order');
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async function sweep(): Promise<Alert[]> {
    // Changes another instance (or this one, before a failed write) left unsent a while ago go
    // first: older than anything this sweep resolves.
    await resend(now() - UNSENT_GRACE_MS);
    return serialized(async () => {
      await drain();
      const resolved = await settle();
      await releaseHeld();
      await pruneLinks();
      return resolved;
    });
  }

  /** A step of the pass forgetting dead entity links: Redis would otherwise keep every entity ever linked. */
  async function pruneLinks(): Promise<void> {
    try {
      stats.linksPruned += (await store.pruneLinks(LINKS_PRUNED_PER_SWEEP)).deleted;
    } catch (error) {
      // Nothing waits on it: the next sweep goes on from the same place.
      logger.warn({ err: error }, 'could not forget dead entity links; the next sweep tries again');
    }
  }

  return {
    async start() {
      // What a crashed predecessor left unsent goes out before anything newer; if the stores are
      // away, the first batch does it.
      try {
        await catchUp();
      } catch (error) {
        logger.warn({ err: error }, 'could not write unsent alert changes at start; the first batch will');
      }
      await expectPartitions();
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
      logger.info({ group: timings.group, topic: config.topics.detections, latenessMs: timings.latenessMs, quietMs }, 'alerter started');
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
