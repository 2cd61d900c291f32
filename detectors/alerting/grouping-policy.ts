/**
 * The grouping policy: pure decisions about which alert a detection belongs to, how long an alert
 * absorbs detections, when it is quiet enough to resolve, and severity as a rank. The decisions
 * that must be atomic with the state (join or open, duplicate, escalate at 10 and 100 detections
 * or when a new rule joins, linking entities into one incident) run in `alertFold-12.lua`, fed
 * with the values computed here.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { SEVERITIES, type AlertEvidence, type Detection, type Severity } from '../../schemas';
import { fieldLabel, keyPhrase } from '../describe';
import { ConfigError } from '../../platform';

/**
 * Severity as a rank, 0 (`low`) to 3 (`critical`), derived from the order of `SEVERITIES`: the
 * Lua scripts compare and escalate ranks, and destinations compare `minSeverity` with it.
 */
export const SEVERITY_RANK: Readonly<Record<Severity, number>> = Object.freeze(
  Object.fromEntries(SEVERITIES.map((severity, rank) => [severity, rank])) as Record<Severity, number>,
);

/** The severity of a rank, clamped to the known ones (the scripts cap escalation at `critical`). */
export function severityOfRank(rank: number): Severity {
  return SEVERITIES[Math.min(SEVERITIES.length - 1, Math.max(0, rank))] ?? 'low';
}

/** Detection ids an alert keeps (the newest): how far back a redelivery is still a duplicate. */
export const MAX_DETECTIONS_KEPT = 100;

/**
 * The bounds of an absorbing or campaign alert's evidence hash, which the alerter reads whole at
 * each change of the alert: the detection ids it keeps (to absorb a redelivery once; past them a
 * redelivered detection may count twice in the evidence totals and in `absorbed`; a campaign alert
 * still knows its newest {@link MAX_DETECTIONS_KEPT} and does not count them again), and
 * the entities it lists (past them, their detections are counted together). Unbounded before
 * 6 December 2026: a campaign of made-up keys grew it by two fields a detection.
 */
export const EVIDENCE_IDS_KEPT = 5000;
export const EVIDENCE_ENTITIES_LISTED = 1000;

/** The group of a detection: its key (the same user, IP or endpoint across rules). */
export function groupKeyOf(detection: Pick<Detection, 'key' | 'ruleId' | 'id'>): string {
  const entries = Object.entries(detection.key).sort(([a], [b]) => a.localeCompare(b));
  return entries.length > 0 ? entries.map(([field, value]) => `${field}=${value}`).join(',') : `rule=${detection.ruleId},detection=${detection.id}`;
}

/**
 * The group keys of the entities a detection names besides its key (its `entities`: the user a
 * takeover's success proves), sorted: the alerts it may join, and what it links into its own.
 */
export function namedGroupsOf(detection: Pick<Detection, 'key' | 'ruleId' | 'id' | 'entities'>): string[] {
  const own = groupKeyOf(detection);
  const groups = Object.entries(detection.entities ?? {}).map(([field, value]) => groupKeyOf({ key: { [field]: value }, ruleId: detection.ruleId, id: detection.id }));
  return [...new Set(groups)].filter((group) => group !== own).sort();
}

/**
 * Most entities one incident lists (its own key included): past it, a detection still joins, but
 * links no more. An attack on one account from a handful of IPs fits; a shared IP can't grow one
 * incident without bound.
 */
export const MAX_INCIDENT_ENTITIES = 20;

/** The group key prefix of a user entity: an incident is about at most one user. */
export const USER_GROUP_PREFIX = 'actor.userId=';

/** The id an alert gets if this detection opens it: stable for the alert's life, PagerDuty's `dedup_key`. */
export function alertIdFor(group: string, detectionId: string): string {
  return `alert-${createHash('sha256').update(`${group}\u0001${detectionId}`).digest('hex').slice(0, 24)}`;
}

/** The title an alert gets if this detection opens it. */
export function alertTitleOf(detection: Pick<Detection, 'ruleName' | 'key'>): string {
  return `${detection.ruleName}: ${keyPhrase(detection.key)}`;
}

/** The alerting settings the policy reads (`config.alerting`). */
export interface AlertTimings {
  resolveAfterMs: number;
  /** How far the watermark runs behind the newest detection time. @defaultValue 0 */
  latenessMs?: number;
}

/** The reason of an alert resolved after its quiet period (in event time). */
export function resolvedReason(timings: Pick<AlertTimings, 'resolveAfterMs'>): string {
  return `Quiet for ${Math.round(timings.resolveAfterMs / 1000)}s of event time: resolved.`;
}

/** How long alert state lives in Redis: four quiet periods, at least a day. */
export function alertStateTtlMs(timings: Pick<AlertTimings, 'resolveAfterMs'>): number {
  return Math.max(timings.resolveAfterMs * 4, 86_400_000);
}

/**
 * How often the sweeper runs when not told: a quarter of the quiet period, at most the allowed
 * lateness (it releases held detections when none arrives), at most 5 s, at least 100 ms.
 */
export function defaultSweepEveryMs(timings: Pick<AlertTimings, 'resolveAfterMs' | 'latenessMs'>): number {
  const lateness = timings.latenessMs && timings.latenessMs > 0 ? timings.latenessMs : Number.POSITIVE_INFINITY;
  return Math.max(100, Math.min(timings.resolveAfterMs / 4, lateness, 5000));
}

/**
 * How far past the time it was made (`detectedAt`) a detection's own time is taken as it is (ms):
 * a producer's clock a little ahead of Vigil's. Past it, the time is cut to `detectedAt` plus this.
 */
export const AHEAD_TOLERANCE_MS = 60_000;

/**
 * The event time of a detection (ms): the time of the event that completed it, but at most
 * {@link AHEAD_TOLERANCE_MS} after the detection was made (`detectedAt`, the engine's clock, which
 * never runs ahead of the wall clock). The pipeline accepts events stamped up to a day ahead (a
 * gateway with a wrong clock); taken as they are, one such detection would move the alerter's
 * watermark, shared by every instance, past every open incident: all resolved at once, and later
 * ones opened and resolved in the same sweep.
 */
export function eventTimeOf(detection: Pick<Detection, 'time' | 'detectedAt'>): number {
  return notAhead(Date.parse(detection.time), detection);
}

/** Whether a detection's own time runs past the time it was made by more than {@link AHEAD_TOLERANCE_MS} (and is cut). */
export function isAheadOfDetection(detection: Pick<Detection, 'time' | 'detectedAt'>): boolean {
  return eventTimeOf(detection) < Date.parse(detection.time);
}

/** A time (ms) cut to the detection's `detectedAt` plus the tolerance. */
function notAhead(time: number, detection: Pick<Detection, 'detectedAt'>): number {
  const detectedAt = Date.parse(detection.detectedAt);
  return Number.isNaN(detectedAt) ? time : Math.min(time, detectedAt + AHEAD_TOLERANCE_MS);
}

/**
 * The time a held detection is folded at (ms): its event time, or, for a rule that explains others
 * (a flood), the start of its window, so that the flood is folded before the per-IP detections of
 * the same minute and absorbs them, whatever order they arrived in. A detection decided after its
 * time (`judgedAt`: a surge bucket judged once complete) is folded when it was decided: it can't
 * arrive sooner, and folded at its time it would be behind the watermark in every run.
 */
export function orderTimeOf(detection: Pick<Detection, 'time' | 'window' | 'judgedAt' | 'detectedAt'>, explains: boolean): number {
  const time = eventTimeOf(detection);
  const judged = judgedTimeOf(detection);
  if (judged !== undefined) return Math.max(time, judged);
  return explains ? Math.min(time, Date.parse(detection.window.start)) : time;
}

/** When a detection decided after its time was decided (`judgedAt`, ms), cut as {@link eventTimeOf} cuts; undefined for the others. */
export function judgedTimeOf(detection: Pick<Detection, 'judgedAt' | 'detectedAt'>): number | undefined {
  return detection.judgedAt === undefined ? undefined : notAhead(Date.parse(detection.judgedAt), detection);
}

/** One inhibition rule: while an alert of a `sources` rule is open on an endpoint, it absorbs the detections of `targets` rules on that endpoint. */
export interface InhibitionRule {
  sources: readonly string[];
  targets: readonly string[];
}

/**
 * The endpoint rules of the default pack that explain what an endpoint's callers do there: a flood
 * or a server error surge. Not `latency-surge-per-endpoint`: a client raises an endpoint's latency
 * cheaply (a few dozen slow uploads a minute), and a latency-only alert that explained the
 * authentication rules would hide a credential stuffing on the same endpoint in an availability
 * incident (until 6 December 2026 it was a source).
 */
const EXPLAINING_ENDPOINT_RULES = ['request-flood-per-endpoint', 'distributed-flood-per-endpoint', 'error-surge-per-endpoint'];

/**
 * `VIGIL_ALERT_INHIBITION=default`: the endpoint flood and server error rules explain the per-IP
 * and per-user authentication and rate-limit rules.
 */
export const DEFAULT_INHIBITION: readonly InhibitionRule[] = Object.freeze([
  {
    sources: EXPLAINING_ENDPOINT_RULES,
    targets: ['credential-stuffing', 'authn-failures-per-ip', 'authn-failures-per-user', 'rate-limit-storm-per-ip'],
  },
]);

const ruleId = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,127}$/, 'a rule id: lower-case letters, digits, ".", "_" and "-"');
const inhibitionSchema = z.array(z.strictObject({ sources: z.array(ruleId).min(1), targets: z.array(ruleId).min(1) }));

/**
 * A refused `VIGIL_ALERT_INHIBITION`: a configuration error like any other (`vigil run` exits with
 * 2, not the 1 that asks a supervisor to restart it), never retried.
 */
export class InhibitionConfigError extends ConfigError {
  constructor(message: string) {
    super([message]);
    this.name = 'InhibitionConfigError';
  }
}

/**
 * Parses `VIGIL_ALERT_INHIBITION`: `default`, `off`, or a JSON array of `{ sources, targets }`.
 * @throws InhibitionConfigError naming what is wrong
 */
export function parseInhibition(text: string): readonly InhibitionRule[] {
  const trimmed = text.trim();
  if (trimmed === 'default') return DEFAULT_INHIBITION;
  if (trimmed === 'off') return [];
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    throw new InhibitionConfigError('VIGIL_ALERT_INHIBITION: expected default, off, or a JSON array of { "sources": [rule ids], "targets": [rule ids] }; it is not JSON');
  }
  const parsed = inhibitionSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(top)'}: ${issue.message}`);
    throw new InhibitionConfigError(`VIGIL_ALERT_INHIBITION: ${problems.join('; ')}`);
  }
  for (const [position, rule] of parsed.data.entries()) {
    const both = rule.sources.filter((source) => rule.targets.includes(source));
    if (both.length > 0) throw new InhibitionConfigError(`VIGIL_ALERT_INHIBITION: ${position}: a rule can't explain itself (${both.join(', ')})`);
  }
  return parsed.data;
}

/** What the inhibition rules say about one rule: whether it explains others, and which rules explain it. */
export interface InhibitionOf {
  explains: boolean;
  explainedBy: readonly string[];
}

/** Looks rules up in the inhibition rules. */
export function inhibitionIndex(rules: readonly InhibitionRule[]): (ruleId: string) => InhibitionOf {
  const sources = new Set(rules.flatMap((rule) => rule.sources));
  const explainers = new Map<string, Set<string>>();
  for (const rule of rules) {
    for (const target of rule.targets) {
      const set = explainers.get(target) ?? new Set<string>();
      for (const source of rule.sources) set.add(source);
      explainers.set(target, set);
    }
  }
  return (id) => ({ explains: sources.has(id), explainedBy: [...(explainers.get(id) ?? [])].sort() });
}

/**
 * The group of the endpoint a detection's events hit: the group key of the endpoint rules' alert
 * (they key on `invocation.resource.api` and `invocation.route`). Undefined without a scope.
 */
export function endpointGroupOf(scope: Detection['scope']): string | undefined {
  return scope === undefined ? undefined : groupKeyOf({ key: { 'invocation.resource.api': scope.api, 'invocation.route': scope.route }, ruleId: '', id: '' });
}

/** The group of a rule's campaign alert (the storm guard). */
export function campaignGroupOf(ruleId: string): string {
  return `campaign:rule=${ruleId}`;
}

/** The title of a rule's campaign alert. */
export function campaignTitleOf(ruleName: string): string {
  return `${ruleName}: a campaign across many keys`;
}

/** How many entities an alert's evidence lists by name. */
export const TOP_ENTITIES = 10;

/**
 * The evidence an alert absorbed, from its evidence hash (`total`, `r:<rule>`, `e:<entity>`;
 * `d:<detection id>` markers are skipped), with the sentence that explains it, e.g.
 * `Absorbed 812 detections (credential-stuffing 800, authn-failures-per-user 12) from 800 IPs and 12 users.`
 * Undefined when it absorbed nothing.
 */
export function evidenceOf(flat: readonly string[], campaign: boolean): AlertEvidence | undefined {
  let total = 0;
  let unlisted = 0;
  const rules = new Map<string, number>();
  const entities = new Map<string, number>();
  for (let index = 0; index + 1 < flat.length; index += 2) {
    const field = String(flat[index]);
    const count = Number(flat[index + 1]);
    if (field === 'total') total = count;
    else if (field.startsWith('r:')) rules.set(field.slice(2), count);
    else if (field.startsWith('e:')) entities.set(field.slice(2), count);
    else if (field === 'e+') unlisted = count;
  }
  if (total === 0) return undefined;
  const byCount = <T extends { count: number }>(a: T & { name: string }, b: T & { name: string }): number => b.count - a.count || a.name.localeCompare(b.name);
  const ruleList = [...rules].map(([name, count]) => ({ name, count })).sort(byCount);
  const top = [...entities].map(([name, count]) => ({ name, count })).sort(byCount).slice(0, TOP_ENTITIES);
  // Entities are key texts (`client.ip=1.2.3.4`): counted by the fields they name.
  const kinds = new Map<string, number>();
  for (const entity of entities.keys()) {
    const fields = entity.split(',').map((part) => part.split('=')[0] ?? part).join(' and ');
    kinds.set(fields, (kinds.get(fields) ?? 0) + 1);
  }
  const from = [...kinds]
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([fields, count]) => `${count} ${fields.split(' and ').map((field) => fieldLabel(field, count !== 1)).join(' and ')}`)
    .join(', ');
  const what = campaign ? 'Folded' : 'Absorbed';
  return {
    total,
    entities: entities.size,
    rules: ruleList.map(({ name, count }) => ({ rule: name, count })),
    top: top.map(({ name, count }) => ({ entity: name, count })),
    summary:
      `${what} ${total} detection${total === 1 ? '' : 's'} (${ruleList.map(({ name, count }) => `${name} ${count}`).join(', ')}) from ${from}` +
      (unlisted > 0 ? `, and ${unlisted} more from keys past the first ${entities.size} listed.` : '.'),
  };
}

/**
 * Whether a change is paged (handed to the notifier): its incident ended, in event time (its last
 * detection, or its resolve), at most `pageWithinMs` before the wall clock. An incident entirely
 * older (a backlog read long after) is grouped and indexed like any other, but pages nobody.
 */
export function isPaged(alert: { lastSeen: string; resolvedAt?: string }, nowMs: number, pageWithinMs: number): boolean {
  return Date.parse(alert.resolvedAt ?? alert.lastSeen) >= nowMs - pageWithinMs;
}
