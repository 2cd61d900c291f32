/**
 * The accounting of the fault-injection suite (`npm run faults`, scripts/faults.ts): from what was
 * sent and what Elasticsearch, the outbox and the receiver hold after a fault, how many events were
 * lost or indexed twice, how detections compare with the fault-free reference, and which
 * notifications never arrived. Pure, so a unit test can check it.
 */

/** A detection document as the suite reads it back. */
export interface ObservedDetection {
  id: string;
  rule: string;
  /** `vigil.detection.key_text`: the rule's key fields and values. */
  key: string;
}

/** A notification, by the change it tells about: from an outbox record or a received webhook. */
export interface ObservedNotification {
  deliveryId: string;
  alertId: string;
  revision: number;
  kind: string;
}

/** Everything the suite collected for one fault. */
export interface FaultObservation {
  fault: string;
  /** Ids of the events the producers' emitter accepted (and Kafka acknowledged). */
  sentIds: readonly string[];
  /** Events the emitter dropped (its buffer full or closed): lost before Vigil. */
  droppedByProducer: number;
  /** `_id` of every event document found, once per document (a repeat is a duplicate). */
  indexedIds: readonly string[];
  /** Messages on the events dead-letter topic. */
  eventDeadLetters: number;
  detections: readonly ObservedDetection[];
  /** The fault-free run's detections, to compare with; undefined when there is none. */
  reference?: readonly ObservedDetection[];
  /** Alert ids in the alerts index: each owes its destination an `opened`. */
  alertIds: readonly string[];
  /** The fault-free run's alert count, to compare with; undefined when there is none. */
  referenceAlerts?: number;
  /**
   * Detections the alerter still holds (not yet past its watermark) plus alert changes still
   * unsent (not yet in the outbox) when the run was read back: each may still open or change an
   * alert, so the alerts and notifications owed are not all known.
   */
  alerterPending: number;
  /** Records for the webhook destination in the notification outbox topic. */
  outbox: readonly ObservedNotification[];
  /** Webhook deliveries the receiver got (every request, repeats included). */
  received: readonly ObservedNotification[];
  /** Messages on the notification dead-letter topic. */
  notificationDeadLetters: number;
  /** Times a `vigil run` exited by itself and the suite, as a supervisor, started it again. */
  supervisorRestarts: number;
  /** All events indexed and every instance ready again before the deadline. */
  recovered: boolean;
  /** From the end of the fault to the last event indexed, in ms. */
  catchUpMs?: number;
}

/** The counts of one fault's row. */
export interface FaultResult {
  fault: string;
  sent: number;
  eventsLost: number;
  documentsDuplicated: number;
  eventDeadLetters: number;
  detections: number;
  referenceDetections?: number;
  detectionsLost?: number;
  detectionsDoubled?: number;
  alerts: number;
  referenceAlerts?: number;
  alerterPending: number;
  notificationsExpected: number;
  notificationsLost: number;
  deliveriesDuplicated: number;
  notificationDeadLetters: number;
  supervisorRestarts: number;
  recovered: boolean;
  catchUpMs?: number;
}

/** The change a notification tells about: one per alert revision and kind. */
export const changeKeyOf = (item: Pick<ObservedNotification, 'alertId' | 'revision' | 'kind'>): string => `${item.alertId}:${item.revision}:${item.kind}`;

function countBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(keyOf(item), (counts.get(keyOf(item)) ?? 0) + 1);
  return counts;
}

/**
 * Detections compared by rule and key: a (rule, key) found fewer times than in the reference is
 * lost, more times is doubled. Detection ids hash event ids, which differ between runs, so ids
 * can't be compared; a detection id found twice counts as doubled too.
 */
export function compareDetections(detections: readonly ObservedDetection[], reference: readonly ObservedDetection[]): { lost: number; doubled: number } {
  const keyOf = (item: ObservedDetection): string => `${item.rule}|${item.key}`;
  const got = countBy(detections, keyOf);
  const expected = countBy(reference, keyOf);
  let lost = 0;
  let doubled = 0;
  for (const [key, count] of expected) lost += Math.max(0, count - (got.get(key) ?? 0));
  for (const [key, count] of got) doubled += Math.max(0, count - (expected.get(key) ?? 0));
  for (const count of countBy(detections, (item) => item.id).values()) doubled += count - 1;
  return { lost, doubled };
}

/** One fault's row from what was collected. */
export function accountFault(observation: FaultObservation): FaultResult {
  const indexed = countBy(observation.indexedIds, (id) => id);
  const sent = new Set(observation.sentIds);
  const eventsLost = [...sent].filter((id) => !indexed.has(id)).length + observation.droppedByProducer;
  let documentsDuplicated = 0;
  for (const count of indexed.values()) documentsDuplicated += count - 1;

  // Notifications are grouped per destination (docs/alerting.md): changes close together go as
  // one notification carrying the alert's latest state, so a change need not arrive on its own.
  // Owed to the destination, per alert: its opening (every alert in the outbox or Elasticsearch:
  // a change lost before the outbox shows only there), and its latest state in the outbox, which
  // a notification of that revision or a later one brings.
  const latest = new Map<string, { revision: number; kind: string }>();
  for (const item of observation.outbox) {
    const known = latest.get(item.alertId);
    if (known === undefined || item.revision > known.revision) latest.set(item.alertId, { revision: item.revision, kind: item.kind });
  }
  const openedAlerts = new Set(observation.received.filter((item) => item.kind === 'opened').map((item) => item.alertId));
  const newestReceived = new Map<string, number>();
  for (const item of observation.received) newestReceived.set(item.alertId, Math.max(newestReceived.get(item.alertId) ?? 0, item.revision));
  const expected: { alertId: string; met: boolean }[] = [];
  for (const alertId of new Set([...latest.keys(), ...observation.alertIds])) {
    expected.push({ alertId, met: openedAlerts.has(alertId) });
    const last = latest.get(alertId);
    if (last !== undefined && last.kind !== 'opened') expected.push({ alertId, met: (newestReceived.get(alertId) ?? 0) >= last.revision });
  }
  const notificationsLost = expected.filter((owed) => !owed.met).length;
  const deliveriesDuplicated = observation.received.length - new Set(observation.received.map((item) => item.deliveryId)).size;

  const comparison = observation.reference ? compareDetections(observation.detections, observation.reference) : undefined;
  return {
    fault: observation.fault,
    sent: sent.size + observation.droppedByProducer,
    eventsLost,
    documentsDuplicated,
    eventDeadLetters: observation.eventDeadLetters,
    detections: observation.detections.length,
    ...(observation.reference ? { referenceDetections: observation.reference.length } : {}),
    ...(comparison ? { detectionsLost: comparison.lost, detectionsDoubled: comparison.doubled } : {}),
    alerts: observation.alertIds.length,
    ...(observation.referenceAlerts === undefined ? {} : { referenceAlerts: observation.referenceAlerts }),
    alerterPending: observation.alerterPending,
    notificationsExpected: expected.length,
    notificationsLost,
    deliveriesDuplicated,
    notificationDeadLetters: observation.notificationDeadLetters,
    supervisorRestarts: observation.supervisorRestarts,
    recovered: observation.recovered,
    ...(observation.catchUpMs === undefined ? {} : { catchUpMs: observation.catchUpMs }),
  };
}

/**
 * The targets a row misses, as sentences (empty: it passed). The targets: no event lost,
 * no document duplicated, no notification lost, recovered without a manual step; and the same
 * detections as the fault-free run, none lost or doubled. A good event dead-lettered is lost to the
 * index, and a notification dead-lettered never reached on-call. Detections the alerter never
 * folded mean alerts and notifications the accounting cannot see: a miss too, not a pass.
 */
export function missedTargets(result: FaultResult): string[] {
  const missed: string[] = [];
  if (result.eventsLost > 0) missed.push(`${result.eventsLost} events lost`);
  if (result.eventDeadLetters > 0) missed.push(`${result.eventDeadLetters} good events dead-lettered`);
  if (result.documentsDuplicated > 0) missed.push(`${result.documentsDuplicated} duplicated documents`);
  if ((result.detectionsLost ?? 0) > 0) missed.push(`${result.detectionsLost ?? 0} detections lost`);
  if ((result.detectionsDoubled ?? 0) > 0) missed.push(`${result.detectionsDoubled ?? 0} detections doubled`);
  if (result.alerterPending > 0) missed.push(`${result.alerterPending} detections or alert changes never left the alerter`);
  if (result.notificationsLost > 0) missed.push(`${result.notificationsLost} notifications lost`);
  if (result.notificationDeadLetters > 0) missed.push(`${result.notificationDeadLetters} notifications dead-lettered`);
  if (!result.recovered) missed.push('not recovered by itself');
  return missed;
}

const seconds = (ms: number | undefined): string => (ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`);

/** The results as a Markdown table (what the suite prints and docs/faults.md shows). */
export function formatTable(results: readonly FaultResult[]): string {
  const header = [
    'fault',
    'events sent',
    'events lost',
    'docs duplicated',
    'detections (reference)',
    'detections lost / doubled',
    'alerts (reference)',
    'notifications expected',
    'notifications lost',
    'duplicate deliveries',
    'supervisor restarts',
    'caught up after the fault',
    'result',
  ];
  const rows = results.map((result) => {
    const missed = missedTargets(result);
    return [
      result.fault,
      String(result.sent),
      String(result.eventsLost),
      String(result.documentsDuplicated),
      `${result.detections} (${result.referenceDetections ?? '–'})`,
      result.detectionsLost === undefined ? '–' : `${result.detectionsLost} / ${result.detectionsDoubled ?? 0}`,
      `${result.alerts} (${result.referenceAlerts ?? '–'})`,
      String(result.notificationsExpected),
      String(result.notificationsLost),
      String(result.deliveriesDuplicated),
      String(result.supervisorRestarts),
      result.recovered ? seconds(result.catchUpMs) : 'no',
      missed.length === 0 ? 'pass' : `FAIL: ${missed.join(', ')}`,
    ];
  });
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}
