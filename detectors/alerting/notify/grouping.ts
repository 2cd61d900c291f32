/**
 * Notification grouping per destination, with Alertmanager's semantics: the pure policy. One
 * {@link GroupState} per (destination, alert) says what the destination heard of the incident
 * and what waits to be sent; {@link noteChange} folds an alert change into it, {@link takeDue}
 * hands out what is due at a time, and {@link dueAt} is when to look again. No I/O and no clock:
 * the notifier keeps the state in a {@link GroupStore} (Redis) and passes the time in.
 *
 * - `opened` waits `groupWaitMs`: escalations arriving meanwhile go with it, as one `opened`
 *   carrying the incident's latest state.
 * - Once the destination heard of it, later escalations wait until `groupIntervalMs` after the
 *   last notification, and go as one `escalated` (the newest).
 * - `resolved` always goes, at once, and cancels what waits; an incident resolved before its
 *   `opened` went is sent as `opened` then `resolved`. At a destination that does not take
 *   `resolved`, the resolve is not sent but still ends the incident there (no more repeats).
 *   A `late` resolve (decided after the paging window) goes only where the incident was
 *   announced; elsewhere it ends the incident without a word, cancelling what waits.
 * - `repeatIntervalMs` after the last notification, a still-open incident's latest state is sent
 *   again (a new delivery id per repeat); 0 never repeats.
 * - While a silence matches the incident, nothing but its resolve goes: a change waiting is
 *   dropped, a repeat skipped (the next one a repeat interval later).
 *
 * So an incident's life is at most: opened, one escalated per group interval, resolved, and
 * repeats of a long-open one.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { alertSchema, ALERT_CHANGES, type AlertChange } from '../../../schemas';
import { changeIdOf } from '../alert-store';

/** The grouping settings of one destination (fields of its configuration). */
export interface GroupingSettings {
  /** How long an incident's first notification waits for more changes to go with it. */
  groupWaitMs: number;
  /** Least time between two notifications of one incident, except `resolved`. */
  groupIntervalMs: number;
  /** How long after the last notification a still-open incident is sent again; 0: never. */
  repeatIntervalMs: number;
  /**
   * Whether the first notification of an incident goes as `opened` whatever the latest change
   * was (false for a destination that does not take `opened`). @defaultValue true
   */
  announceAsOpened?: boolean;
  /**
   * Whether the destination takes `resolved` (false when its `events` leave it out). Either way
   * a resolve ends the incident's state there: without it, a destination that pages on `opened`
   * alone would be sent the incident again every repeat interval, for ever. @defaultValue true
   */
  sendsResolved?: boolean;
}

/** Alertmanager's defaults: 30 s, 5 min, 4 h. */
export const DEFAULT_GROUPING: Readonly<GroupingSettings> = Object.freeze({ groupWaitMs: 30_000, groupIntervalMs: 300_000, repeatIntervalMs: 4 * 3600_000 });

const changeSchema = z.strictObject({ kind: z.enum(ALERT_CHANGES), alert: alertSchema, late: z.literal(true).optional() });

/** One notification handed out: the change as sent, and its delivery id (stable across retries and instances). */
const outgoingSchema = z.strictObject({ change: changeSchema, deliveryId: z.string().min(1) });
export type Outgoing = z.infer<typeof outgoingSchema>;

/**
 * What one destination heard of one incident, and what waits. Stored as JSON (parsed with this
 * schema when read back, so a corrupt or foreign value is an error, not a guess).
 */
export const groupStateSchema = z.strictObject({
  alertId: z.string().min(1),
  destination: z.string().min(1),
  /** The highest alert revision noted: a record at or below it is a copy (skipped). */
  revision: z.number().int(),
  /** When the first change was noted (the group wait counts from here). */
  firstNotedAt: z.number(),
  /** Whether an `opened` was handed out: the destination knows the incident. */
  announced: z.boolean(),
  /** When the last notification was handed out. */
  lastSentAt: z.number().nullable(),
  /** The last change handed out, `opened` or `escalated`: what a repeat sends again. */
  lastSent: changeSchema.nullable(),
  /** The newest `opened`/`escalated` not yet sent. */
  pending: changeSchema.nullable(),
  /** A `resolved` not yet sent. */
  resolved: changeSchema.nullable(),
  /** The `resolved` was handed out: nothing more goes. */
  finished: z.boolean(),
  /** Repeats since the last change. */
  repeats: z.number().int().min(0),
  /** Notifications handed out and not yet confirmed sent; past `leaseUntil` anyone may send them again. */
  outgoing: z.strictObject({ notifications: z.array(outgoingSchema).min(1), leaseUntil: z.number() }).nullable(),
});
export type GroupState = z.infer<typeof groupStateSchema>;

/**
 * The delivery id of a notification: a UUID-shaped hash of the change (alert id, revision,
 * kind), the destination and the repeat number. The same notification handed out again (a retry,
 * another instance after a crash) keeps its id, so receivers deduplicate on it.
 */
export function groupedDeliveryId(change: AlertChange, destination: string, repeat = 0): string {
  const hex = createHash('sha256')
    .update(`${changeIdOf(change)}|${destination}${repeat > 0 ? `|repeat:${repeat}` : ''}`)
    .digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The outcome of {@link noteChange}. */
export interface Noted {
  state: GroupState;
  /** The change was a copy (a revision noted before, or after the incident's `resolved` went): nothing changed. */
  duplicate: boolean;
}

/** Folds one alert change into a destination's state of its incident. */
export function noteChange(state: GroupState | undefined, change: AlertChange, destination: string, now: number): Noted {
  const current: GroupState = state ?? {
    alertId: change.alert.id,
    destination,
    revision: Number.NEGATIVE_INFINITY,
    firstNotedAt: now,
    announced: false,
    lastSentAt: null,
    lastSent: null,
    pending: null,
    resolved: null,
    finished: false,
    repeats: 0,
    outgoing: null,
  };
  if (current.finished || change.alert.revision <= current.revision) return { state: current, duplicate: true };
  const next: GroupState = { ...current, revision: change.alert.revision };
  if (change.kind === 'resolved') {
    next.resolved = change;
  } else {
    next.pending = change;
  }
  return { state: next, duplicate: false };
}

/**
 * When the state next has something to hand out (ms), or null when nothing will come without a
 * new change: in-flight notifications at their lease's end, a `resolved` at once, the first
 * notification after the group wait, a later one after the group interval, a repeat after the
 * repeat interval.
 */
export function dueAt(state: GroupState, settings: GroupingSettings): number | null {
  if (state.outgoing !== null) return state.outgoing.leaseUntil;
  if (state.finished) return null;
  if (state.resolved !== null) return state.firstNotedAt;
  if (state.pending !== null) {
    return state.announced && state.lastSentAt !== null ? state.lastSentAt + settings.groupIntervalMs : state.firstNotedAt + settings.groupWaitMs;
  }
  if (state.announced && state.lastSentAt !== null && settings.repeatIntervalMs > 0) return state.lastSentAt + settings.repeatIntervalMs;
  return null;
}

/** The outcome of {@link takeDue}: the state to store (the notifications leased to the caller) and what to send, in order. */
export interface Taken {
  state: GroupState;
  notifications: readonly Outgoing[];
}

/**
 * Hands out what is due at `now`, leased for `leaseMs` (while a silence matches the incident,
 * `silenced`: nothing but its resolve; an announced incident's waiting change is dropped and a
 * repeat skipped, an unannounced one's kept for when the silence ends): the caller stores the returned state
 * (compare-and-set) before sending, and calls {@link completeOutgoing} once sent. Undefined when
 * nothing is due; no notifications, with a finished state to store, when a resolve ends the
 * incident at a destination that does not take resolves. Notifications whose lease ran out (their sender died) are handed out again, as
 * they were: same changes, same delivery ids.
 */
export function takeDue(state: GroupState, settings: GroupingSettings, now: number, leaseMs: number, silenced = false): Taken | undefined {
  const due = dueAt(state, settings);
  if (due === null || due > now) return undefined;
  if (state.outgoing !== null) {
    return { state: { ...state, outgoing: { ...state.outgoing, leaseUntil: now + leaseMs } }, notifications: state.outgoing.notifications };
  }
  if (silenced && state.resolved === null) {
    // A silence matches the incident: nothing is sent. An announced incident's waiting change is
    // dropped and its repeat skipped: the next repeat comes a repeat interval later (looked at
    // again then), with the latest state, so an escalation dropped now is what it repeats. An
    // incident never announced here keeps its change, looked at again a group wait later, and is
    // announced once no silence matches (the silence began during its group wait, after the
    // alerter let it through: dropped, it was never paged). Its resolve still goes, to close a page.
    if (!state.announced) return { state: { ...state, firstNotedAt: now }, notifications: [] };
    return {
      state: { ...state, pending: null, lastSentAt: now, ...(state.pending === null ? {} : { lastSent: state.pending }) },
      notifications: [],
    };
  }
  const { destination } = state;
  const notifications: Outgoing[] = [];
  const next: GroupState = { ...state, lastSentAt: now };
  // The destination hears of an incident first as `opened`, whatever the latest change was.
  const announce = (change: AlertChange): AlertChange =>
    next.announced || settings.announceAsOpened === false ? change : { kind: 'opened', alert: change.alert };
  // A late resolve of an incident this destination never heard of: nothing is announced now.
  const silent = state.resolved?.late === true && !state.announced;
  if (state.pending !== null && !(state.announced && state.resolved !== null) && !silent) {
    // A pending change still goes before a resolved only when the destination never heard of the incident.
    const change = announce(state.pending);
    notifications.push({ change, deliveryId: groupedDeliveryId(change, destination) });
    next.announced = true;
    next.lastSent = change;
    next.repeats = 0;
  }
  next.pending = null;
  if (state.resolved !== null) {
    if (settings.sendsResolved !== false && !silent) notifications.push({ change: state.resolved, deliveryId: groupedDeliveryId(state.resolved, destination) });
    next.resolved = null;
    next.finished = true;
    // Ended without a word (the destination does not take resolves and heard all it will, or
    // never heard of an incident resolved late).
    if (notifications.length === 0) return { state: { ...next, outgoing: null }, notifications };
  } else if (notifications.length === 0 && state.lastSent !== null) {
    next.repeats = state.repeats + 1;
    notifications.push({ change: state.lastSent, deliveryId: groupedDeliveryId(state.lastSent, destination, next.repeats) });
  }
  if (notifications.length === 0) return undefined;
  return { state: { ...next, outgoing: { notifications, leaseUntil: now + leaseMs } }, notifications };
}

/** The state once the leased notifications were sent (or dead-lettered): the lease is dropped. */
export function completeOutgoing(state: GroupState, deliveryIds: readonly string[]): GroupState {
  if (state.outgoing === null) return state;
  const ids = new Set(deliveryIds);
  // Only the lease this sender held; one handed out since is someone else's.
  if (!state.outgoing.notifications.every((notification) => ids.has(notification.deliveryId))) return state;
  return { ...state, outgoing: null };
}

/**
 * The state with the lease on these notifications extended to `until` (their sender is still
 * trying a destination that is away): unchanged if the lease is someone else's or gone.
 */
export function renewOutgoing(state: GroupState, deliveryIds: readonly string[], until: number): GroupState {
  if (state.outgoing === null || state.outgoing.leaseUntil >= until) return state;
  const ids = new Set(deliveryIds);
  if (!state.outgoing.notifications.every((notification) => ids.has(notification.deliveryId))) return state;
  return { ...state, outgoing: { ...state.outgoing, leaseUntil: until } };
}

/** The state after a sender gave up its lease (it is stopping): the notifications are due again at once. */
export function releaseOutgoing(state: GroupState): GroupState {
  if (state.outgoing === null) return state;
  return { ...state, outgoing: { ...state.outgoing, leaseUntil: 0 } };
}
