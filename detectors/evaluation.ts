import { createHash } from 'node:crypto';
import type { Detection } from '../schemas';
import type { ScriptName } from './state';
import type { DetectionInput } from './input';

/** The state one rule needs for one event: a script call, made in the batch's one round trip. */
export interface StateRequest {
  script: ScriptName;
  keys: string[];
  args: (string | number)[];
}

/** What the runner knows when it evaluates: the group key and the clock. */
export interface EvaluationContext {
  /** The group-by values, e.g. `{ "actor.userId": "u-17" }`. */
  key: Record<string, string>;
  keyText: string;
  /** The engine's clock (wall clock, or the event-time watermark in replay), ms. */
  now: number;
  /** When this rule last fired for this key earlier in the same batch, ms. */
  firedEarlierInBatch?: number;
}

/** A detection before the runner adds rule metadata, id and time. */
export type DetectionDraft = Pick<
  Detection,
  'reasonCode' | 'reason' | 'observedValue' | 'eventIds' | 'distinct' | 'geo' | 'threshold'
> & {
  windowStart: number;
  windowEnd: number;
  /** What makes this detection the same one on a replay: hashed into its id. */
  identity: string[];
  /** After firing, stay quiet for this key this long (event time). */
  cooldownMs?: number;
  /**
   * The claim's scope within the key, when the cooldown holds for it alone (a surge claims its
   * bucket: two buckets never refuse each other, whichever is decided first).
   */
  claimScope?: string;
  /**
   * When the detection happened (event time, ms), when that is not the evaluated event's time: a
   * travel found from its earlier side happened at its arrival, as in order.
   */
  time?: number;
  /**
   * When the rule could first decide (event time, ms), when that is later than the detection's
   * time: a surge bucket judged once complete is decided when the allowed lateness has passed its
   * end. The alerter folds the detection at this time (see Detection.judgedAt).
   */
  judgedAt?: number;
};

/** The result of one rule on one event: data, never an exception. */
export type Evaluation =
  | {
      outcome: 'none';
      reasonCode: string;
      /** Events the rule's state could not count: older than the state it still holds open (too late). */
      lateEvents?: number;
    }
  | {
      outcome: 'detected';
      detection: DetectionDraft;
      /**
       * The input the detection was made from, when not the item's own: a surge bucket a failed
       * batch folded, judged again on the redo with the input that judged it then (its claim
       * names that input's event).
       */
      input?: DetectionInput;
    };

const NONE = new Map<string, Evaluation>();

/** A `none` evaluation; one shared, frozen object per reason code (evaluations are per event, per rule). */
export const none = (reasonCode: string): Evaluation => {
  let evaluation = NONE.get(reasonCode);
  if (evaluation === undefined) {
    evaluation = Object.freeze({ outcome: 'none', reasonCode });
    NONE.set(reasonCode, evaluation);
  }
  return evaluation;
};

/** The id of a detection: a digest of what makes it the same detection on a replay. */
export function detectionId(identity: readonly string[]): string {
  return `det-${createHash('sha256').update(identity.join('\u0001')).digest('hex').slice(0, 32)}`;
}

/** The last detection of a key as the state scripts return it: `"<time>|<id>"` (or a bare time). */
export function parseFired(value: unknown): { lastFired?: number; lastFiredId?: string } {
  if (typeof value !== 'string' && typeof value !== 'number') return {};
  const text = String(value);
  const separator = text.indexOf('|');
  if (separator < 0) return { lastFired: Number(text) };
  const id = text.slice(separator + 1);
  return { lastFired: Number(text.slice(0, separator)), ...(id ? { lastFiredId: id } : {}) };
}

/**
 * The event-time period a windowed detection is named by: its rule's window, aligned to the
 * epoch, that the moment it fired (the end of its window) falls in. Named by rule, key and this
 * period, a detection no longer depends on which events its state happened to hold when it fired
 * (the oldest of an IP's events read from several partitions changes with their relative pace).
 * The period is the window, no longer: the claim (claimFiring-1) keeps two detections of one key
 * at least a cooldown, one window, apart, so two firings never share a period and a long attack
 * still raises one detection per window. A burst straddling a boundary stays one detection (the
 * cooldown refuses the second firing); which side names it depends only on when it first reached
 * the rule's bar in event time (docs/detection.md#the-id-rule-key-and-window).
 */
export function windowPeriod(end: number, windowMs: number): string {
  return `period-${Math.floor(end / windowMs)}`;
}

/**
 * Who holds a key's firing claim (claimFiring-1 stores it as the `id` of the `fired` hash): the
 * detection and the event that completed it. A detection named by its window period is the same
 * detection whichever event completes it, so the id alone can't tell a redelivery (the same
 * event again: emitted again, not lost) from a late event completing the same window once more
 * (refused: one detection, emitted once).
 */
export function claimHolder(detection: string, eventId: string): string {
  return `${detection}/${eventId}`;
}

/**
 * Whether a detection must stay quiet because its key fired within the cooldown: earlier in
 * this batch, or before (from Redis), unless the stored claim is this very detection from this
 * very event, which a redelivered batch must be able to emit again rather than lose.
 */
export function suppressed(
  state: { lastFired?: number; lastFiredId?: string },
  context: EvaluationContext,
  end: number,
  cooldownMs: number,
  identity: readonly string[],
  eventId: string,
): boolean {
  if (context.firedEarlierInBatch !== undefined && Math.abs(end - context.firedEarlierInBatch) < cooldownMs) return true;
  if (state.lastFired === undefined || Math.abs(end - state.lastFired) >= cooldownMs) return false;
  // The same detection from the same event at the same moment is a redelivery; another event of the same window is not.
  return !(state.lastFiredId === claimHolder(detectionId(identity), eventId) && state.lastFired === end);
}

/**
 * How often long-lived state (a new_value horizon of days) is written back and its
 * TTL renewed while in steady use: 1% of the horizon, at most an hour. Writing on every event
 * would cost a Redis command per event for nothing the rule can tell apart.
 */
export function renewalMs(horizonMs: number): number {
  return Math.max(1000, Math.min(3_600_000, Math.floor(horizonMs / 100)));
}

/** Event time in ms. */
export function eventTime(time: string): number {
  // Asked for the same event by every rule in turn: remember the last answer.
  if (time !== lastTimeText) {
    lastTimeText = time;
    lastTimeValue = Date.parse(time);
  }
  return lastTimeValue;
}

let lastTimeText = '';
let lastTimeValue = Number.NaN;

/** Event time as `toISOString` writes it (UTC, milliseconds): as given when it already is. */
export function isoTime(time: string): string {
  // A validated time of 24 characters ending in Z can only be YYYY-MM-DDTHH:mm:ss.sssZ.
  return time.length === 24 && time.endsWith('Z') ? time : new Date(eventTime(time)).toISOString();
}
