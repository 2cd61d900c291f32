/**
 * The grouping policy: pure decisions about which alert a detection belongs to, how long an alert
 * absorbs detections, when it is quiet enough to resolve, and severity as a rank. The decisions
 * that must be atomic with the state (join or open, duplicate, escalate at 10 and 100 detections
 * or when a new rule joins) run in `alertUpsert-3.lua`, fed with the values computed here.
 */
import { createHash } from 'node:crypto';
import { SEVERITIES, type Detection, type Severity } from '../../schemas';
import { keyPhrase } from '../describe';

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

/** The group of a detection: its key (the same user, IP or endpoint across rules). */
export function groupKeyOf(detection: Pick<Detection, 'key' | 'ruleId' | 'id'>): string {
  const entries = Object.entries(detection.key).sort(([a], [b]) => a.localeCompare(b));
  return entries.length > 0 ? entries.map(([field, value]) => `${field}=${value}`).join(',') : `rule=${detection.ruleId},detection=${detection.id}`;
}

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
  suppressMs: number;
  resolveAfterMs: number;
}

/**
 * How long after its last detection an open alert still absorbs a new one:
 * max(`suppressMs`, `resolveAfterMs`). An open alert absorbs detections until it is resolved, so
 * there is never a second alert for a group while the first is still open: a `suppressMs` below
 * the quiet period is raised to it.
 */
export function joinWindowMs(timings: AlertTimings): number {
  return Math.max(timings.suppressMs, timings.resolveAfterMs);
}

/**
 * Whether a detection is too old to page: older than the quiet period when it reaches the
 * alerter, it would open an alert only to resolve it at once (a backlog after an outage, or a new
 * alerter group reading from the beginning).
 */
export function isStaleDetection(detectedAt: string, nowMs: number, timings: Pick<AlertTimings, 'resolveAfterMs'>): boolean {
  return Date.parse(detectedAt) < nowMs - timings.resolveAfterMs;
}

/** The reason of an alert resolved after its quiet period. */
export function resolvedReason(timings: Pick<AlertTimings, 'resolveAfterMs'>): string {
  return `Quiet for ${Math.round(timings.resolveAfterMs / 1000)}s: resolved.`;
}

/** How long alert state lives in Redis: four quiet periods, at least a day. */
export function alertStateTtlMs(timings: Pick<AlertTimings, 'resolveAfterMs'>): number {
  return Math.max(timings.resolveAfterMs * 4, 86_400_000);
}

/** How often the sweeper looks for quiet alerts when not told: a quarter of the quiet period, at most 5 s. */
export function defaultSweepEveryMs(timings: Pick<AlertTimings, 'resolveAfterMs'>): number {
  return Math.min(timings.resolveAfterMs / 4, 5000);
}
