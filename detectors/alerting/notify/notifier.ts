import { createHash } from 'node:crypto';
import type { Producer } from 'kafkajs';
import { z } from 'zod';
import { ALERT_CHANGES, alertSchema, type Alert, type AlertChange } from '../../../schemas';
import { StoreUnavailableError, VigilError, createLogger, errorMessage, isRetriable, retry, sendBatches, sleep, type Logger } from '../../../platform';
import { changeIdOf } from '../alert-store';
import { groupingRoutesFor, routesFor, type Destination } from '../destinations';
import { silenceMatches, type Silence } from '../silences';
import { toDeadLetter } from './dead-letter';
import { postOnce } from './http';
import type { GroupStore, GroupWrite } from './group-store';
import { completeOutgoing, dueAt, noteChange, releaseOutgoing, renewOutgoing, takeDue, type GroupState, type GroupingSettings, type Outgoing } from './grouping';
import { NotificationError } from './notification-error';
import { requestRenderer, type RenderRequest } from './request';

/** Counters of a notifier. */
export interface NotifierStats {
  /** Deliveries waiting or in flight now (a gauge: 0 after {@link Notifier.drain}). */
  queued: number;
  /** Deliveries the destination accepted (2xx). */
  sent: number;
  /** Retries, over all deliveries (a delivery that succeeded on its 4th attempt adds 3). */
  retried: number;
  /** Deliveries given up: retries exhausted, a status not worth retrying, or a full queue. */
  failed: number;
  /** Dead-letter records written: to the topic, or to the log when there is no producer. */
  deadLettered: number;
}

/** Counters of the notification outbox. */
export interface OutboxStats {
  /** Deliveries written to the outbox (accepted). */
  accepted: number;
  /** Outbox records skipped because their delivery id was delivered before (a copy in the outbox). */
  skipped: number;
  /** With grouping: changes folded into another notification (sent with it, or cancelled by a `resolved`) instead of sent alone. */
  grouped: number;
}

/**
 * One delivery as it waits in the notification outbox topic (keyed by the destination's name, so
 * one destination's deliveries stay in order in one partition).
 */
export const outboxRecordSchema = z.strictObject({
  deliveryId: z.string().min(1),
  /** The destination's name (never its URL). */
  destination: z.string().min(1),
  change: z.strictObject({ kind: z.enum(ALERT_CHANGES), alert: alertSchema, late: z.literal(true).optional() }),
  /** When the notifier accepted it. */
  acceptedAt: z.iso.datetime(),
});
/** One delivery in the outbox. */
export type OutboxRecord = z.infer<typeof outboxRecordSchema>;

/** Which delivery ids were delivered already: the outbox consumer's memory across restarts (Redis). */
export interface DeliveredLog {
  /** The ids among `deliveryIds` delivered (or dead-lettered) before. */
  delivered(deliveryIds: readonly string[]): Promise<Set<string>>;
  /** Remembers one id as delivered. */
  remember(deliveryId: string): Promise<void>;
}

/** Where accepted notifications are written before delivery. */
export interface NotificationOutbox {
  /** The outbox topic, `config.alerting.notificationTopic`. */
  topic: string;
  /** A connected producer; a send resolves once every in-sync replica has the records (acks -1). */
  producer: Producer;
  /** Remembers delivered ids, so that a copy of a record in the outbox is not sent again. */
  delivered?: DeliveredLog;
}

/** A delivery abandoned because the notifier is stopping; the outbox still holds it, so the chunk is not committed. */
export class DeliveryAbandonedError extends VigilError {
  constructor(pending: number) {
    super(`notifier stopping: ${pending} deliveries left for the next instance (still in the outbox)`, { code: 'delivery_abandoned', retriable: true });
  }
}

/** A UUID-shaped delivery id derived from the change and the destination: the same change sent again keeps its id. */
export function deliveryIdOf(change: AlertChange, destination: Pick<Destination, 'name'>): string {
  const hex = createHash('sha256').update(`${changeIdOf(change)}|${destination.name}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** Options of {@link createNotifier}. */
export interface NotifierOptions {
  /** Where notifications go, from {@link parseDestinations}. Only these: never anything from event data. */
  destinations: readonly Destination[];
  /** A connected kafkajs producer for the dead-letter topic; without one, dead letters go to the log. */
  producer?: Producer;
  /** The dead-letter topic, `config.alerting.notificationDeadLetterTopic`. */
  deadLetterTopic: string;
  /** The notifier names its own child logger (`component: 'notifier'`): pass the parent. @defaultValue a silent logger */
  logger?: Logger;
  /** Attempts after the first. @defaultValue 5 */
  retries?: number;
  /**
   * Past `retries`, a retriable failure (network error, timeout, 429, 5xx) is still retried until
   * this long after the first attempt: a destination down for minutes loses nothing, while the
   * outbox holds the delivery. 0 stops at `retries`. @defaultValue 0
   */
  retryForMs?: number;
  /** Delay before the first retry, before jitter. @defaultValue 500 */
  initialDelayMs?: number;
  /** Upper bound of one delay, `Retry-After` included. @defaultValue 30000 */
  maxDelayMs?: number;
  /** Deliveries one destination may hold waiting; beyond that they are dead-lettered at once. @defaultValue 1000 */
  maxQueuedPerDestination?: number;
  /** The clock, in ms since the epoch (`sentAt`, signature timestamps). @defaultValue Date.now */
  now?: () => number;
  /** @defaultValue the global fetch */
  /** The address of an alert for on-call (Kibana, from `VIGIL_KIBANA_URL`), put into Slack and PagerDuty messages. @defaultValue none */
  alertLink?: (alert: Alert) => string;
  fetchImpl?: typeof fetch;
  /**
   * The durable outbox. With it, {@link Notifier.accept} writes deliveries to the outbox topic and
   * only {@link Notifier.deliverOutbox} (the outbox consumer) sends them. @defaultValue none: in-memory lanes only
   */
  outbox?: NotificationOutbox;
  /**
   * Notification grouping per destination (each destination's `groupWaitMs`, `groupIntervalMs`,
   * `repeatIntervalMs`): changes are noted in the store and sent when due, from a timer that
   * every instance runs (docs/alerting.md#notification-grouping). @defaultValue none: every change is sent
   */
  grouping?: NotificationGrouping;
}

/** Options of notification grouping. */
export interface NotificationGrouping {
  /** Where the state lives: `createGroupStore` (Redis) so it survives restarts and is shared by instances. */
  store: GroupStore;
  /** How often due notifications are looked for. @defaultValue 1000 */
  pollEveryMs?: number;
  /**
   * How long notifications handed to one instance are its own; past that (the instance died
   * sending them) another sends them again, with the same delivery ids. @defaultValue 300000
   */
  leaseMs?: number;
  /**
   * The silences in force (`createSilenceStore`): while one matches an incident, nothing of it but
   * its resolve is sent (a change waiting dropped, a repeat skipped). @defaultValue none
   */
  silences?: { active(nowMs: number): Promise<readonly Silence[]> };
}

/** How long a grouping state is kept after its last write (at least twice the repeat interval). */
const GROUP_TTL_MS = 7 * 24 * 3600 * 1000;
/** Compare-and-set attempts before a write gives up as contended (a retriable error: the chunk is redone). */
const SWAP_ATTEMPTS = 10;

/** Sends alert changes to their destinations. */
export interface Notifier {
  /**
   * Accepts a batch of changes: with an outbox, writes one record per (change, destination) to it
   * and resolves once Kafka acknowledged them all (rejects with a retriable error otherwise, and
   * the caller redoes its batch); without one, queues them in memory like {@link notify}.
   */
  accept(changes: readonly AlertChange[]): Promise<void>;
  /** Queues one delivery per destination the change routes to, in memory. Never throws, never waits. */
  notify(change: AlertChange): void;
  /**
   * Delivers a chunk of outbox records through the lanes, skipping delivery ids delivered before,
   * and resolves when each was sent or dead-lettered (then the chunk may be committed).
   * @throws DeliveryAbandonedError when {@link abandon} was called meanwhile: commit nothing
   */
  deliverOutbox(records: readonly OutboxRecord[]): Promise<void>;
  /** Stops retrying: deliveries waiting for a retry are given up without a dead letter (the outbox keeps them). */
  abandon(): void;
  /** Resolves when every queued delivery has been sent or dead-lettered, including ones queued meanwhile. */
  drain(): Promise<void>;
  /**
   * Stops: hands out no more grouped notifications, lets the ones in flight finish for up to
   * `drainMs`, then {@link abandon}s the rest (grouped ones are given back, due at once, for the
   * next instance) and resolves once that is recorded.
   */
  stop(drainMs: number): Promise<void>;
  /** A copy of the counters. */
  stats(): NotifierStats;
  /** A copy of the outbox counters. */
  outboxStats(): OutboxStats;
  /** Outcomes per destination name, for metrics labelled by destination. */
  destinationStats(): Record<string, DestinationStats>;
}

/** Outcomes of one destination's deliveries since the notifier was created. */
export interface DestinationStats {
  sent: number;
  retried: number;
  failed: number;
}

interface Delivery {
  destination: Destination;
  change: AlertChange;
  deliveryId: string;
  /** Rendered per attempt: a webhook is signed (and stamped) at send time. */
  render: RenderRequest;
}

/** What a dead letter names: a destination may be known by its name only (no longer configured). */
type DeadLetterSubject = Pick<Delivery, 'change' | 'deliveryId'> & { destination: Pick<Destination, 'name'> };

/** One destination's queue: deliveries chained one after another. */
interface Lane {
  tail: Promise<void>;
  waiting: number;
}

/**
 * Creates a notifier: it sends each alert change to the destinations it routes to, as a signed
 * webhook, a Slack message or a PagerDuty event.
 *
 * Deliveries to different destinations run concurrently; deliveries to one destination run one
 * at a time, in `notify` order, so a destination never sees a `resolved` before its `opened`
 * (a destination retrying holds back its own queue, no other). An attempt that fails with a
 * network error, a timeout (`timeoutMs` of the destination), 429 or 5xx is retried with the
 * platform's `retry` (exponential backoff with jitter capped at `maxDelayMs`; at least
 * `Retry-After` when the destination sends one, within the time left to retry). Any other answer but 2xx (3xx included: redirects are not
 * followed) is final. A delivery that fails for good is written to the dead-letter topic, keyed by
 * the alert id, as a {@link NotificationDeadLetter}.
 *
 * Every notification carries a delivery id (`X-Vigil-Delivery`) kept across retries: delivery is
 * at-least-once (a timeout may hide a success), so receivers deduplicate on it.
 */
export function createNotifier(options: NotifierOptions): Notifier {
  const log = (options.logger ?? createLogger({ level: 'silent' })).child({ component: 'notifier' });
  const fetchImpl = options.fetchImpl ?? fetch;
  const now = options.now ?? Date.now;
  const retries = options.retries ?? 5;
  const retryForMs = options.retryForMs ?? 0;
  const initialDelayMs = options.initialDelayMs ?? 500;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const maxQueued = options.maxQueuedPerDestination ?? 1000;
  const destinations = [...options.destinations];
  const counters: NotifierStats = { queued: 0, sent: 0, retried: 0, failed: 0, deadLettered: 0 };
  const outboxCounters: OutboxStats = { accepted: 0, skipped: 0, grouped: 0 };
  const stopping = new AbortController();
  const byDestination: Record<string, DestinationStats> = {};
  const countFor = (destination: Pick<Destination, 'name'>): DestinationStats => (byDestination[destination.name] ??= { sent: 0, retried: 0, failed: 0 });
  const lanes = new Map<string, Lane>();
  /** Dead letters written outside a lane (a full queue), awaited by drain. */
  const outside = new Set<Promise<void>>();

  async function deadLetter(delivery: DeadLetterSubject, error: unknown, attempts: number, body: string | undefined): Promise<void> {
    const { destination, change } = delivery;
    counters.failed += 1;
    countFor(destination).failed += 1;
    const record = toDeadLetter(destination, change, error, attempts, body);
    const context = { destination: destination.name, alertId: change.alert.id, kind: change.kind, deliveryId: delivery.deliveryId, attempts };
    if (options.producer === undefined) {
      counters.deadLettered += 1;
      log.error({ ...context, deadLetter: record }, 'notification failed; no dead-letter producer, so the dead letter is this log line');
      return;
    }
    try {
      await options.producer.send({ topic: options.deadLetterTopic, messages: [{ key: change.alert.id, value: JSON.stringify(record) }] });
      counters.deadLettered += 1;
      // A page that will never arrive: an error, whatever the reason.
      log.error({ ...context, err: error, topic: options.deadLetterTopic }, 'notification failed; dead-lettered');
    } catch (sendError) {
      // The last place the notification exists: log all of it.
      log.error({ ...context, err: sendError, deadLetter: record }, 'notification failed and the dead-letter write failed too');
    }
  }

  /** Sends one delivery with retries; false when it was abandoned (the notifier is stopping). */
  async function deliver(delivery: Delivery): Promise<boolean> {
    const { destination, change } = delivery;
    let attempts = 0;
    let body: string | undefined;
    if (stopping.signal.aborted) return false;
    const firstAttemptAt = now();
    try {
      await retry(
        async (number) => {
          attempts = number + 1;
          const request = delivery.render(now());
          body = request.body;
          await postOnce(fetchImpl, destination, request, now);
        },
        {
          // The limit is the count or the time, whichever lasts longer: shouldRetry decides.
          retries: Number.MAX_SAFE_INTEGER,
          shouldRetry: (error) => isRetriable(error) && (attempts <= retries || now() - firstAttemptAt < retryForMs),
          initialDelayMs,
          maxDelayMs,
          signal: stopping.signal,
          onRetry: async (error, retryNumber, delayMs) => {
            counters.retried += 1;
            countFor(destination).retried += 1;
            log.warn({ destination: destination.name, alertId: change.alert.id, kind: change.kind, retry: retryNumber, delayMs, err: error }, 'notification attempt failed; retrying');
            // A receiver's Retry-After is respected for as long as the delivery may still be retried
            // (VIGIL_NOTIFIER_RETRY_FOR_MS), not cut to the backoff's cap: asked for 2 minutes, it
            // would otherwise be sent four more requests it asked not to get.
            const asked = error instanceof NotificationError ? error.retryAfterMs : undefined;
            const window = Math.max(maxDelayMs, retryForMs - (now() - firstAttemptAt));
            if (asked !== undefined && asked > delayMs) await sleep(Math.min(asked, window) - delayMs, stopping.signal);
          },
        },
      );
      counters.sent += 1;
      countFor(destination).sent += 1;
      log.debug({ destination: destination.name, alertId: change.alert.id, kind: change.kind, attempts }, 'notification sent');
    } catch (error) {
      // Stopping: not a failure of the destination. The outbox keeps it for the next instance.
      if (stopping.signal.aborted) return false;
      await deadLetter(delivery, error, attempts, body);
    }
    return true;
  }

  /** Queues one delivery in its destination's lane; resolves with its outcome (false: abandoned). */
  function enqueue(destination: Destination, change: AlertChange, deliveryId = deliveryIdOf(change, destination)): Promise<boolean> {
    const delivery: Delivery = { destination, change, deliveryId, render: requestRenderer(destination, change, deliveryId, options.alertLink?.(change.alert)) };
    let lane = lanes.get(destination.name);
    if (lane === undefined) {
      lane = { tail: Promise.resolve(), waiting: 0 };
      lanes.set(destination.name, lane);
    }
    if (lane.waiting >= maxQueued) {
      const error = new Error(`the queue of destination ${destination.name} is full (${maxQueued} deliveries)`);
      const written = deadLetter(delivery, error, 0, delivery.render(now()).body).finally(() => outside.delete(written));
      outside.add(written);
      return written.then(() => true);
    }
    const current = lane;
    current.waiting += 1;
    counters.queued += 1;
    const outcome = current.tail.then(() => deliver(delivery));
    current.tail = outcome
      .then(() => undefined)
      .catch((error: unknown) => log.error({ err: error, destination: destination.name }, 'notifier lane failed'))
      .finally(() => {
        current.waiting -= 1;
        counters.queued -= 1;
      });
    return outcome.catch(() => true);
  }

  /**
   * The destinations a change goes to. Without grouping nothing says whether a destination heard
   * of an incident, so a late resolve goes nowhere; with it, the grouping state decides.
   */
  function routed(change: AlertChange): Destination[] {
    if (grouping !== undefined) return groupingRoutesFor(destinations, change);
    return change.late === true ? [] : routesFor(destinations, change);
  }

  /** One record per (change, destination) the change routes to. */
  function recordsOf(changes: readonly AlertChange[]): OutboxRecord[] {
    const acceptedAt = new Date(now()).toISOString();
    return changes.flatMap((change) => routed(change).map((destination) => ({ deliveryId: deliveryIdOf(change, destination), destination: destination.name, change, acceptedAt })));
  }

  async function deliverOutbox(records: readonly OutboxRecord[]): Promise<void> {
    if (grouping !== undefined) {
      if (stopping.signal.aborted) throw new DeliveryAbandonedError(records.length);
      await noteRecords(grouping.store, records);
      return;
    }
    const outbox = options.outbox;
    let already = new Set<string>();
    if (outbox?.delivered && records.length > 0) {
      try {
        already = await outbox.delivered.delivered(records.map((record) => record.deliveryId));
      } catch (error) {
        // Declared policy: without the log, send anyway; at least once, and receivers dedupe.
        log.warn({ err: error }, 'cannot read which notifications were delivered; delivering the chunk without that check');
      }
    }
    const byName = new Map(destinations.map((destination) => [destination.name, destination]));
    const outcomes: Promise<boolean>[] = [];
    for (const record of records) {
      if (already.has(record.deliveryId)) {
        outboxCounters.skipped += 1;
        continue;
      }
      // A copy in the same chunk (a change written twice) is sent once too.
      already.add(record.deliveryId);
      const destination = byName.get(record.destination);
      const settled =
        destination === undefined
          ? deadLetterUnknown(record).then(() => true)
          : enqueue(destination, record.change, record.deliveryId);
      outcomes.push(
        settled.then(async (done) => {
          if (done) await rememberDelivered(record.deliveryId);
          return done;
        }),
      );
    }
    const done = await Promise.all(outcomes);
    const abandoned = done.filter((delivered) => !delivered).length;
    if (abandoned > 0 || stopping.signal.aborted) throw new DeliveryAbandonedError(abandoned);
  }

  async function rememberDelivered(deliveryId: string): Promise<void> {
    try {
      await options.outbox?.delivered?.remember(deliveryId);
    } catch (error) {
      log.warn({ err: error, deliveryId }, 'could not remember a delivered notification; a redelivery of it would be sent again');
    }
  }

  /** A record naming a destination that is no longer configured (the list changed across a restart). */
  async function deadLetterUnknown(record: OutboxRecord): Promise<void> {
    const error = new Error(`destination ${record.destination} is no longer configured (VIGIL_ALERT_DESTINATIONS)`);
    await deadLetter({ destination: { name: record.destination }, change: record.change, deliveryId: record.deliveryId }, error, 0, undefined);
  }

  // ---- Grouping: state per (destination, alert) in the store, sent from a timer when due ----
  const grouping = options.grouping;
  const leaseMs = grouping?.leaseMs ?? 300_000;
  /** Sends of leased notifications in flight (with their write-back), awaited by drain. */
  const sending = new Set<Promise<void>>();
  /**
   * This instance's leases in flight, by destination and alert: not taken again when they come
   * due (a delivery retrying longer than the lease would otherwise be queued a second time behind
   * itself), and renewed halfway through, so another instance takes them over only once this one
   * is gone.
   */
  const leased = new Map<string, { destination: Destination; alertId: string; deliveryIds: readonly string[]; renewAt: number }>();
  const leaseKey = (destination: Destination, alertId: string): string => `${destination.name}\u0000${alertId}`;
  let flushing: Promise<void> | undefined;
  let flushAgain = false;
  /** The last flush failed (the store is away): further failures are logged at debug. */
  let failing = false;
  /** The last note of {@link notify}: the next waits for it. */
  let noting: Promise<void> = Promise.resolve();
  /** stop() was called: no more flushes. */
  let closed = false;

  const settingsOf = (destination: Destination): GroupingSettings => ({
    groupWaitMs: destination.groupWaitMs,
    groupIntervalMs: destination.groupIntervalMs,
    repeatIntervalMs: destination.repeatIntervalMs,
    announceAsOpened: destination.events.includes('opened'),
    sendsResolved: destination.events.includes('resolved'),
  });
  const writeOf = (destination: Destination, version: number, state: GroupState): GroupWrite => ({
    version,
    state,
    dueAt: dueAt(state, settingsOf(destination)),
    ttlMs: Math.max(GROUP_TTL_MS, 2 * destination.repeatIntervalMs),
  });

  /**
   * Reads, changes and writes back (compare-and-set) the states of some incidents at one
   * destination, reading again the ones someone else wrote meanwhile. `change` returns the new
   * state, or undefined to leave one as it is.
   */
  async function updateStates(
    store: GroupStore,
    destination: Destination,
    alertIds: readonly string[],
    change: (alertId: string, stored: GroupState | undefined) => GroupState | undefined,
  ): Promise<Map<string, GroupState>> {
    const written = new Map<string, GroupState>();
    let remaining = [...alertIds];
    for (let attempt = 0; remaining.length > 0; attempt += 1) {
      if (attempt >= SWAP_ATTEMPTS) {
        throw new StoreUnavailableError('redis', `notification grouping of ${destination.name}: state kept changing under ${remaining.length} writes`);
      }
      const read = await store.read(destination.name, remaining);
      const writes: { alertId: string; write: GroupWrite }[] = [];
      remaining.forEach((alertId, position) => {
        const stored = read[position];
        const next = change(alertId, stored?.state);
        if (next !== undefined) writes.push({ alertId, write: writeOf(destination, stored?.version ?? 0, next) });
      });
      const stored = await store.swap(writes.map((item) => item.write));
      writes.forEach((item, position) => {
        if (stored[position]) written.set(item.alertId, item.write.state);
      });
      remaining = writes.filter((_, position) => !stored[position]).map((item) => item.alertId);
    }
    return written;
  }

  /** Notes changes for one destination; resolves with how many were copies. */
  async function noteFor(store: GroupStore, destination: Destination, changes: readonly AlertChange[]): Promise<number> {
    const byAlert = new Map<string, AlertChange[]>();
    for (const change of changes) byAlert.set(change.alert.id, [...(byAlert.get(change.alert.id) ?? []), change]);
    let duplicates = 0;
    let folded = 0;
    const counted = new Map<string, { duplicates: number; folded: number }>();
    await updateStates(store, destination, [...byAlert.keys()], (alertId, stored) => {
      let state = stored;
      let changed = false;
      const count = { duplicates: 0, folded: 0 };
      for (const change of byAlert.get(alertId) ?? []) {
        const before = state;
        const noted = noteChange(state, change, destination.name, now());
        state = noted.state;
        if (noted.duplicate) count.duplicates += 1;
        else {
          changed = true;
          // A change replacing one still waiting is folded into the notification that will go.
          if (before?.pending && change.kind !== 'resolved') count.folded += 1;
          if (before?.pending && change.kind === 'resolved' && before.announced) count.folded += 1;
        }
      }
      counted.set(alertId, count);
      return changed ? state : undefined;
    });
    for (const count of counted.values()) {
      duplicates += count.duplicates;
      folded += count.folded;
    }
    outboxCounters.grouped += folded;
    return duplicates;
  }

  /** Hands out, and sends, what is due at each destination now. */
  async function flushOnce(store: GroupStore): Promise<void> {
    // Read once per flush, and only when something is due somewhere.
    let silencesRead: Promise<readonly Silence[]> | undefined;
    await Promise.all(
      destinations.map(async (destination) => {
        if (stopping.signal.aborted) return;
        await renewLeases(store, destination);
        const alertIds = (await store.due(destination.name, now(), 100)).filter((alertId) => !leased.has(leaseKey(destination, alertId)));
        if (alertIds.length === 0 || stopping.signal.aborted) return;
        silencesRead ??= silencesNow();
        const silences = await silencesRead;
        const claims = new Map<string, readonly Outgoing[]>();
        const absent: string[] = [];
        await updateStates(store, destination, alertIds, (alertId, stored) => {
          claims.delete(alertId);
          if (stored === undefined) {
            absent.push(alertId);
            return undefined;
          }
          const about = stored.resolved?.alert ?? stored.pending?.alert ?? stored.lastSent?.alert;
          const silence = about === undefined ? undefined : silences.find((item) => silenceMatches(item, about));
          const taken = takeDue(stored, settingsOf(destination), now(), leaseMs, silence !== undefined);
          if (silence !== undefined && taken !== undefined && taken.notifications.length === 0 && stored.outgoing === null) {
            if (taken.state.pending === null) log.info({ alertId, destination: destination.name, silence: silence.id }, 'notification silenced: a waiting change dropped or a repeat skipped');
            else log.debug({ alertId, destination: destination.name, silence: silence.id }, 'notification silenced: an incident not yet announced here waits for the silence to end');
          }
          if (taken === undefined) return undefined;
          if (taken.notifications.length > 0) claims.set(alertId, taken.notifications);
          return taken.state;
        });
        // An expired state leaves its id in the index: drop it.
        for (const alertId of absent) await store.forget(destination.name, alertId);
        for (const [alertId, notifications] of claims) {
          const key = leaseKey(destination, alertId);
          leased.set(key, { destination, alertId, deliveryIds: notifications.map((notification) => notification.deliveryId), renewAt: now() + leaseMs / 2 });
          const sent = sendLeased(store, destination, alertId, notifications).finally(() => {
            sending.delete(sent);
            leased.delete(key);
          });
          sending.add(sent);
        }
      }),
    );
  }

  /** The silences in force; none when there are none configured or they can't be read (a page too many beats a page lost). */
  async function silencesNow(): Promise<readonly Silence[]> {
    if (grouping?.silences === undefined) return [];
    try {
      return await grouping.silences.active(now());
    } catch (error) {
      log.warn({ err: error }, 'could not read the silences: sending as if there were none');
      return [];
    }
  }

  /** Extends this instance's leases at `destination` that are halfway through. */
  async function renewLeases(store: GroupStore, destination: Destination): Promise<void> {
    const at = now();
    const halfway = [...leased.values()].filter((lease) => lease.destination === destination && lease.renewAt <= at);
    if (halfway.length === 0) return;
    const byAlert = new Map(halfway.map((lease) => [lease.alertId, lease]));
    await updateStates(store, destination, [...byAlert.keys()], (alertId, stored) => {
      const lease = byAlert.get(alertId);
      if (stored === undefined || lease === undefined) return undefined;
      const next = renewOutgoing(stored, lease.deliveryIds, at + leaseMs);
      return next === stored ? undefined : next;
    });
    for (const lease of halfway) lease.renewAt = at + leaseMs / 2;
  }

  /** Sends leased notifications in order through the lane, then drops the lease (or gives it back when stopping). */
  async function sendLeased(store: GroupStore, destination: Destination, alertId: string, notifications: readonly Outgoing[]): Promise<void> {
    const outcomes = await Promise.all(notifications.map((notification) => enqueue(destination, notification.change, notification.deliveryId)));
    const done = outcomes.every(Boolean);
    const ids = notifications.map((notification) => notification.deliveryId);
    try {
      await updateStates(store, destination, [alertId], (_, stored) => {
        if (stored === undefined) return undefined;
        const next = done ? completeOutgoing(stored, ids) : releaseOutgoing(stored);
        return next === stored ? undefined : next;
      });
    } catch (error) {
      // The lease runs out on its own: the notifications are sent again then, with the same ids.
      log.warn({ err: error, destination: destination.name, alertId }, 'could not record sent notifications; they will be sent again when their lease ends');
    }
  }

  /** Runs a flush now, or once more after the one running. */
  function kick(): void {
    const store = grouping?.store;
    if (store === undefined || closed || stopping.signal.aborted) return;
    if (flushing !== undefined) {
      flushAgain = true;
      return;
    }
    flushing = (async () => {
      do {
        flushAgain = false;
        await flushOnce(store);
      } while (flushAgain && !stopping.signal.aborted);
      failing = false;
    })()
      .catch((error: unknown) => {
        // Once per outage at warn, not once a second.
        if (failing) log.debug({ err: error }, 'notification grouping: still cannot look for due notifications');
        else log.warn({ err: error }, 'notification grouping: could not look for due notifications; trying again at every tick');
        failing = true;
      })
      .finally(() => {
        flushing = undefined;
      });
  }

  const ticker = grouping === undefined ? undefined : setInterval(kick, grouping.pollEveryMs ?? 1000);
  ticker?.unref();

  /** With grouping: notes the records' changes per destination (no sending); resolves with the copies skipped. */
  async function noteRecords(store: GroupStore, records: readonly OutboxRecord[]): Promise<void> {
    const byName = new Map(destinations.map((destination) => [destination.name, destination]));
    const perDestination = new Map<Destination, AlertChange[]>();
    const unknown: OutboxRecord[] = [];
    for (const record of records) {
      const destination = byName.get(record.destination);
      if (destination === undefined) unknown.push(record);
      else perDestination.set(destination, [...(perDestination.get(destination) ?? []), record.change]);
    }
    await Promise.all(unknown.map((record) => deadLetterUnknown(record)));
    const copies = await Promise.all([...perDestination].map(([destination, changes]) => noteFor(store, destination, changes)));
    outboxCounters.skipped += copies.reduce((sum, count) => sum + count, 0);
    kick();
  }

  function notify(change: AlertChange): void {
    try {
      // A snapshot: the alerter may go on updating its alert object while this one waits.
      const snapshot = structuredClone(change);
      const store = grouping?.store;
      if (store !== undefined) {
        // Noted one change after another, in notify order, as outbox records are.
        const noted = noting
          .then(() => Promise.all(groupingRoutesFor(destinations, snapshot).map((destination) => noteFor(store, destination, [snapshot]))))
          .then(() => kick())
          .catch((error: unknown) => log.error({ err: error, alertId: snapshot.alert.id }, 'could not note a notification for grouping'))
          .finally(() => outside.delete(noted));
        outside.add(noted);
        noting = noted;
        return;
      }
      for (const destination of routed(snapshot)) void enqueue(destination, snapshot);
    } catch (error) {
      log.error({ err: error, alertId: change?.alert?.id }, 'could not queue a notification');
    }
  }

  async function drain(): Promise<void> {
    while (counters.queued > 0 || outside.size > 0 || sending.size > 0 || flushing !== undefined) {
      await Promise.all([...[...lanes.values()].map((lane) => lane.tail), ...outside, ...sending, flushing]);
    }
  }

  return {
    async accept(changes) {
      const outbox = options.outbox;
      if (outbox === undefined) {
        for (const change of changes) notify(change);
        return;
      }
      const records = recordsOf(changes);
      if (records.length === 0) return;
      try {
        // In sends the broker takes: one destination's records share a partition, and a catch-up
        // resending hundreds of changes in one send passed its message size limit, refused on
        // every retry, and every partition of the alerter waited on it. In order: a destination's
        // records keep theirs.
        for (const messages of sendBatches(records.map((record) => ({ key: record.destination, value: JSON.stringify(record) })))) {
          await outbox.producer.send({ topic: outbox.topic, acks: -1, messages });
        }
      } catch (error) {
        throw new StoreUnavailableError('kafka', `notification outbox ${outbox.topic}: ${errorMessage(error)}`, error);
      }
      outboxCounters.accepted += records.length;
    },
    notify,
    deliverOutbox,
    abandon() {
      if (ticker !== undefined) clearInterval(ticker);
      stopping.abort(new DeliveryAbandonedError(counters.queued));
    },
    drain,
    async stop(drainMs) {
      closed = true;
      if (ticker !== undefined) clearInterval(ticker);
      let timer: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        drain().then(() => true),
        new Promise<boolean>((done) => {
          timer = setTimeout(() => done(false), drainMs);
        }),
      ]);
      clearTimeout(timer);
      if (drained) return;
      this.abandon();
      await drain();
    },
    stats() {
      return { ...counters };
    },
    outboxStats() {
      return { ...outboxCounters };
    },
    destinationStats() {
      return structuredClone(byDestination);
    },
  };
}
