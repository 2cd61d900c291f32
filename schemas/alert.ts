import { z } from 'zod';
import { SEVERITIES } from './detection';
import { managedTemplate, type IndexTemplate } from './elasticsearch';

/** What happened to an alert: each is a notification on-call may receive. */
export const ALERT_CHANGES = ['opened', 'escalated', 'resolved'] as const;
export type AlertChangeKind = (typeof ALERT_CHANGES)[number];

/**
 * What an alert absorbed instead of paging it apart: the detections of rules it explains (a flood
 * absorbs the per-IP detections of its sources), or, for a campaign alert, the detections the
 * storm guard folded into it. Totals, per rule, and the entities that contributed most.
 */
export const alertEvidenceSchema = z.strictObject({
  /** Detections absorbed. */
  total: z.number().int(),
  /** Distinct entities (detection keys, e.g. `client.ip=203.0.113.7`) among them. */
  entities: z.number().int(),
  /** Per rule, most first. */
  rules: z.array(z.strictObject({ rule: z.string(), count: z.number().int() })),
  /** The entities with the most detections, at most 10, most first. */
  top: z.array(z.strictObject({ entity: z.string(), count: z.number().int() })),
  /** One sentence, e.g. `Absorbed 812 detections (credential-stuffing 800, ...) from 800 IPs.` */
  summary: z.string(),
});
export type AlertEvidence = z.infer<typeof alertEvidenceSchema>;

/**
 * An alert: related detections grouped into one incident (same key, or the same endpoint across
 * rules), deduplicated over a suppression window with a running count, escalated with the count,
 * and resolved after a quiet period. Field names follow Kibana's alert schema where it has them
 * (`kibana.alert.*` in the index document).
 */
export const alertSchema = z.strictObject({
  /** Stable for the incident's life: the notification dedup key (PagerDuty dedup_key). */
  id: z.string(),
  status: z.enum(['open', 'resolved']),
  severity: z.enum(SEVERITIES),
  /** What groups detections into this alert, e.g. `invocation.resource.api=accounts-v1,invocation.route=/v1/login`. */
  groupKey: z.string(),
  key: z.record(z.string(), z.string()),
  /** One line: the first rule's name and the key. */
  title: z.string(),
  /** The latest detection's sentence. */
  reason: z.string(),
  /** Rules that contributed, first seen first. */
  rules: z.array(z.string()),
  ruleNames: z.array(z.string()),
  tags: z.array(z.string()),
  /** Detections grouped into the alert, including the first. */
  count: z.number().int(),
  /** Detections after the first that caused no notification of their own. */
  suppressed: z.number().int(),
  /** Event time of its first detection. */
  firstSeen: z.string(),
  /** Event time of its latest detection. */
  lastSeen: z.string(),
  /** Event time it resolved at: its last detection plus the quiet period. */
  resolvedAt: z.string().optional(),
  /** The ids of the detections behind it, newest last, capped. */
  detections: z.array(z.string()),
  /** Incremented on every change: Elasticsearch keeps the newest (external versioning). */
  revision: z.number().int(),
  /** What it absorbed (inhibition) or folded in (a campaign): absent when nothing. */
  evidence: alertEvidenceSchema.optional(),
  /** A campaign alert of the storm guard: one rule opened too many alerts, the rest fold in here. */
  campaign: z.boolean().optional(),
  /**
   * The entities of the incident, as group keys (`client.ip=203.0.113.7`, `actor.userId=u-17`),
   * its own first, when it linked others into it (a takeover's IP and its victim); absent when it
   * is about its own key only.
   */
  entities: z.array(z.string()).optional(),
  /**
   * The silences (`vigil silences`, by id) that held back a notification of it: its opening or an
   * escalation not sent, or its resolve sent only where it was announced. Absent when none did.
   * Indexed as Kibana's `kibana.alert.maintenance_window_ids`, its name for the same thing.
   */
  silencedBy: z.array(z.string()).optional(),
});
export type Alert = z.infer<typeof alertSchema>;

/** A change of an alert, as the notifier receives it. */
export interface AlertChange {
  kind: AlertChangeKind;
  alert: Alert;
  /**
   * A `resolved` decided after its incident left the paging window (`VIGIL_ALERT_PAGE_WITHIN_MS`:
   * the alerter or the pipeline was behind): sent only where the destination heard of the
   * incident, so a page opened before an outage is closed, and a backlog's incident never paged
   * is not announced now.
   */
  late?: true;
}

const keyword = { type: 'keyword', ignore_above: 1024 } as const;

/**
 * Mappings of the alerts index: Kibana alert-as-data names under `kibana.*` with Kibana's types
 * (its alert field map; `match_only_text` as its core-type equal, `text`), ECS elsewhere.
 */
export const alertMappings = {
  dynamic: 'strict',
  dynamic_templates: [{ key_as_keywords: { path_match: 'vigil.alert.key.*', match_mapping_type: 'string', mapping: keyword } }],
  properties: {
    '@timestamp': { type: 'date' },
    ecs: { properties: { version: keyword } },
    message: { type: 'text' },
    event: { properties: { kind: keyword, module: keyword, dataset: keyword, severity: { type: 'long' }, risk_score: { type: 'float' } } },
    tags: keyword,
    // The key's and linked entities' addresses and users (since template version 5).
    related: { properties: { ip: { type: 'ip' }, user: keyword } },
    kibana: {
      properties: {
        space_ids: keyword,
        alert: {
          properties: {
            uuid: keyword,
            status: keyword,
            workflow_status: keyword,
            severity: keyword,
            risk_score: { type: 'float' },
            reason: { ...keyword, fields: { text: { type: 'text' } } },
            start: { type: 'date' },
            end: { type: 'date' },
            last_detected: { type: 'date' },
            duration: { properties: { us: { type: 'long' } } },
            rule: {
              properties: {
                uuid: keyword,
                name: keyword,
                category: keyword,
                consumer: keyword,
                producer: keyword,
                revision: { type: 'long' },
                rule_type_id: keyword,
              },
            },
            instance: { properties: { id: keyword } },
            // The silences that held back a notification of it (since template version 6).
            maintenance_window_ids: keyword,
          },
        },
      },
    },
    vigil: {
      properties: {
        alert: {
          properties: {
            title: keyword,
            group_key: keyword,
            key: { type: 'object', dynamic: true },
            count: { type: 'long' },
            suppressed: { type: 'long' },
            detections: keyword,
            revision: { type: 'long' },
            rules: keyword,
            rule_names: keyword,
            campaign: { type: 'boolean' },
            entities: keyword,
            evidence: {
              properties: {
                total: { type: 'long' },
                entities: { type: 'long' },
                rules: { properties: { rule: keyword, count: { type: 'long' } } },
                top: { properties: { entity: keyword, count: { type: 'long' } } },
                summary: { type: 'text' },
              },
            },
          },
        },
      },
    },
  },
} as const;

/** Fields of the alert mappings whose type changed in the current `TEMPLATE_VERSION`: an existing alerts index keeps theirs. */
export const ALERT_RETYPED_FIELDS = ['kibana.alert.reason'] as const;

/** The alerts index and template names under one prefix (one index: alerts are few and updated in place). */
export function alertIndexNames(prefix: string): { index: string; indexTemplate: string } {
  return { index: `${prefix}-alerts`, indexTemplate: `${prefix}-alerts` };
}

/** The index template of the alerts index. */
export function alertTemplate(prefix: string, settings: { shards: number; replicas: number }): IndexTemplate {
  const names = alertIndexNames(prefix);
  return managedTemplate(names.indexTemplate, names.index, alertMappings, { ...settings, refreshInterval: '1s' });
}
