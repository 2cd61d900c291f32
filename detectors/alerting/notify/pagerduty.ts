import type { AlertChange, Severity } from '../../../schemas';
import { clip } from './text';

/** PagerDuty's severities. */
export type PagerDutySeverity = 'critical' | 'error' | 'warning' | 'info';

/** Vigil severity to PagerDuty severity. */
export const PAGERDUTY_SEVERITY: Record<Severity, PagerDutySeverity> = { critical: 'critical', high: 'error', medium: 'warning', low: 'info' };

/** A PagerDuty Events API v2 trigger (an alert opened or escalated). */
export interface PagerDutyTrigger {
  routing_key: string;
  event_action: 'trigger';
  dedup_key: string;
  payload: {
    summary: string;
    source: 'vigil';
    severity: PagerDutySeverity;
    timestamp: string;
    component: string;
    group: string;
    class: string;
    custom_details: Record<string, unknown>;
  };
  /** The alert in Kibana, when `VIGIL_KIBANA_URL` is set. */
  links?: { href: string; text: string }[];
}

/** A PagerDuty Events API v2 resolve: nothing but the key of the incident. */
export interface PagerDutyResolve {
  routing_key: string;
  event_action: 'resolve';
  dedup_key: string;
}

/** A PagerDuty Events API v2 event. */
export type PagerDutyEvent = PagerDutyTrigger | PagerDutyResolve;

const PAGERDUTY_SUMMARY_MAX = 1024;

/**
 * The PagerDuty Events API v2 event for a change. `dedup_key` is the alert id, so an escalation
 * updates the incident the opening created and the resolve closes it. `component` is what the
 * alert groups on, `group` its tags, `class` its first rule; `custom_details` carry its entities
 * and evidence (top sources) when it has them, and `links` the alert in Kibana when configured.
 */
export function formatPagerDuty(change: AlertChange, routingKey: string, link?: string): PagerDutyEvent {
  const { alert } = change;
  if (change.kind === 'resolved') return { routing_key: routingKey, event_action: 'resolve', dedup_key: alert.id };
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: alert.id,
    payload: {
      summary: clip(`[${alert.severity.toUpperCase()}] ${alert.title}: ${alert.reason}`, PAGERDUTY_SUMMARY_MAX),
      source: 'vigil',
      severity: PAGERDUTY_SEVERITY[alert.severity],
      timestamp: alert.lastSeen,
      component: alert.groupKey,
      group: alert.tags.length > 0 ? alert.tags.join(',') : 'vigil',
      class: alert.rules[0] ?? 'unknown',
      custom_details: {
        change: change.kind,
        alertId: alert.id,
        title: alert.title,
        reason: alert.reason,
        count: alert.count,
        suppressed: alert.suppressed,
        key: alert.key,
        rules: alert.rules,
        ruleNames: alert.ruleNames,
        tags: alert.tags,
        firstSeen: alert.firstSeen,
        lastSeen: alert.lastSeen,
        detections: alert.detections,
        revision: alert.revision,
        ...(alert.entities === undefined ? {} : { entities: alert.entities }),
        ...(alert.evidence === undefined ? {} : { evidence: alert.evidence }),
      },
    },
    ...(link === undefined ? {} : { links: [{ href: link, text: 'Open in Kibana' }] }),
  };
}
