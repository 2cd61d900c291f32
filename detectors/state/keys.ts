/** The parts of a rule's state for one key; each is one Redis key. */
export type StatePart = 'window' | 'values' | 'events' | 'others' | 'steps' | 'seen' | 'locations' | 'located' | 'fired' | `fired:${string}` | 'surge' | `surge-hll:${number}`;

/**
 * The one builder of Redis keys. The braces are a hash tag: every key of one (rule, group key)
 * lands on the same cluster slot, so one item of a batch script is in one slot. A batch call
 * spans many tags: on a Redis Cluster the round trip splits it into one call per slot
 * (round-trip.ts). A `}` inside the group key ends the tag early, but at the same place in every
 * part of one (rule, group key), so its parts still share a slot.
 */
export function stateKey(prefix: string, ruleId: string, keyText: string, part: StatePart): string {
  return `${prefix}:rule:{${ruleId}|${keyText}}:${part}`;
}

/** The correlation key of one request's policy decisions (hash tag: the request). */
export function requestKey(prefix: string, requestId: string): string {
  return `${prefix}:corr:{req:${requestId}}`;
}

/**
 * The correlation keys of one request, as noteRequest-2 and readRequest-2 take them: its policy
 * decisions, and the user its authentication pass named (one hash tag: the request).
 */
export function requestKeys(prefix: string, requestId: string): [string, string] {
  const decisions = requestKey(prefix, requestId);
  return [decisions, `${decisions}:authn-user`];
}

/**
 * The correlation keys of a user: last device and place, devices seen, and one session's device.
 * One hash tag (the user) for the three, since noteDevice-3 and readContext-3 take them together.
 */
export function userKeys(prefix: string, userId: string, sessionId: string | undefined): [string, string, string] {
  const base = `${prefix}:corr:{user:${userId}}`;
  return [`${base}:last`, `${base}:devices`, `${base}:session:${sessionId ?? '-'}`];
}

/**
 * The alert keys under a prefix. They share the `{alerts}` hash tag: alerts are few, and one slot
 * keeps the open-alerts index, the changes not yet in the notification outbox (`unsent`) and
 * every alert together, so the alert scripts stay cluster-safe.
 */
export function alertKeys(prefix: string): {
  open: string;
  unsent: string;
  alert(group: string): string;
  /** The alerter's event-time clock: newest detection time held, newest time folded, wall time of the last arrival. */
  clock: string;
  /** Detections held until the watermark passes them (score: their order time). */
  held: string;
  /** Open alerts by the wall-clock time of their last change (the wall-clock fallback). */
  wall: string;
  /** What an alert absorbed: totals, per rule, per entity, and the absorbed detection ids. */
  evidence(group: string): string;
  /** The alerts one rule opened, by event time (the storm guard). */
  storm(ruleId: string): string;
  /** Entity links: an entity's group key -> the alert (group and id) it was linked into. */
  links: string;
  /** Where the pass forgetting dead entity links is (alertLinksPrune-2's HSCAN cursor). */
  linksCursor: string;
  /** Silences: id -> the silence's JSON (see detectors/alerting/silences.ts). */
  silences: string;
  /** Open alerts a silence held a notification of: alert id -> group key, until notified or closed. */
  heldBySilence: string;
  /** Held alerts taken to be notified: alert id -> the claim's end (Redis time, ms). */
  heldClaims: string;
} {
  const base = `${prefix}:{alerts}`;
  return {
    open: `${base}:open`,
    unsent: `${base}:unsent`,
    alert: (group) => `${base}:alert:${group}`,
    clock: `${base}:clock`,
    held: `${base}:held`,
    wall: `${base}:wall`,
    evidence: (group) => `${base}:evidence:${group}`,
    storm: (ruleId) => `${base}:storm:${ruleId}`,
    links: `${base}:links`,
    linksCursor: `${base}:links-cursor`,
    silences: `${base}:silences`,
    heldBySilence: `${base}:held-by-silence`,
    heldClaims: `${base}:held-claims`,
  };
}

/**
 * The marker of a notification delivered (or dead-lettered) by the outbox consumer, so that a
 * delivery id found twice in the outbox is sent once. One key per id, each with its own TTL.
 */
export function deliveredKey(prefix: string, deliveryId: string): string {
  return `${prefix}:notify:delivered:${deliveryId}`;
}

/**
 * The notification grouping keys of one destination (detectors/alerting/notify/grouping.ts): one
 * hash per incident (`state`: version and state JSON) and the index of due work (`due`: a sorted
 * set of alert ids by when each is next due). One hash tag per destination: groupSwap-2 writes a
 * state and the index together.
 */
export function groupKeys(prefix: string, destination: string): { due: string; state(alertId: string): string } {
  const base = `${prefix}:notify:{group:${destination}}`;
  return { due: `${base}:due`, state: (alertId) => `${base}:state:${alertId}` };
}

/**
 * The risk keys of one entity (detectors/alerting/risk.ts), under one hash tag (the entity):
 * `score` (hash: score, at, above) and `contributors` (hash: detection id -> time|points|rule).
 * The value is URI-encoded: it comes from event data.
 */
export function riskKeys(prefix: string, kind: string, value: string): { score: string; contributors: string } {
  const base = `${prefix}:risk:{${kind}:${encodeURIComponent(value)}}`;
  return { score: `${base}:score`, contributors: `${base}:contributors` };
}
