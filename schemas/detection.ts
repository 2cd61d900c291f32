import { z } from 'zod';
import { managedTemplate, type IndexTemplate } from './elasticsearch';

/** Severity of a rule and of what it detects; `event.severity` carries the number. */
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const SEVERITY_SCORE: Record<Severity, number> = { low: 21, medium: 47, high: 73, critical: 99 };

/** The rule types of the detection engine. */
export const RULE_TYPES = ['match', 'threshold', 'cardinality', 'sequence', 'new_value', 'geo_velocity', 'surge', 'risk'] as const;
export type RuleType = (typeof RULE_TYPES)[number];

const located = z.strictObject({
  lat: z.number(),
  lon: z.number(),
  accuracyKm: z.number().optional(),
  country: z.string().optional(),
  city: z.string().optional(),
  ip: z.string().optional(),
  time: z.string(),
  eventId: z.string(),
});

/**
 * What a rule found, with its evidence: enough for an analyst to answer "why did this fire?"
 * without another query. Published on the detections topic and indexed as is.
 */
export const detectionSchema = z.strictObject({
  /** Derived from rule, key and window: a replay of the same events yields the same id. */
  id: z.string().min(8).max(128),
  ruleId: z.string(),
  ruleVersion: z.number().int(),
  ruleName: z.string(),
  ruleType: z.enum(RULE_TYPES),
  severity: z.enum(SEVERITIES),
  tags: z.array(z.string()),
  /** Stable code of what was found, e.g. `threshold_reached`, `impossible_travel`. */
  reasonCode: z.string(),
  /** One sentence a human can act on. */
  reason: z.string(),
  /** The group-by fields and their values, e.g. `{ "actor.userId": "u-17" }`. */
  key: z.record(z.string(), z.string()),
  observedValue: z.number(),
  threshold: z.number().optional(),
  window: z.strictObject({ start: z.string(), end: z.string(), durationMs: z.number() }),
  distinct: z.strictObject({ field: z.string(), values: z.array(z.string()) }).optional(),
  /** The events behind the detection, oldest first, capped. */
  eventIds: z.array(z.string()),
  geo: z.strictObject({ from: located, to: located, distanceKm: z.number(), speedKmh: z.number() }).optional(),
  /** Event time of the event that completed the detection. */
  time: z.string(),
  /**
   * When the rule could first decide, in event time, when that is later than `time`: a surge
   * bucket judged once complete (ratio, p95, concentration, failures) is decided when the allowed
   * lateness has passed the bucket's end. The alerter folds the detection at this time, when it
   * is on time, not 5–6 minutes behind its watermark. Absent for a detection decided as its
   * completing event arrived.
   */
  judgedAt: z.string().optional(),
  detectedAt: z.string(),
  /** True when the rule ran without its state (Redis unavailable, rule set to skip). */
  degraded: z.boolean().default(false),
  /**
   * The endpoint the completing event hit: its API and route (an invocation's route template, a
   * policy event's path). The alerter matches it against an open endpoint incident (a flood) that
   * explains the detection. Absent when the event names no endpoint (device events).
   */
  scope: z.strictObject({ api: z.string(), route: z.string() }).optional(),
  /**
   * Entities the completing event proves besides the key's, by field: the user who passed
   * authentication on a sequence or match rule keyed on their IP (the takeover's success names
   * its victim). The alerter links them into the detection's incident (docs/alerting.md).
   * Absent when it names none.
   */
  entities: z.record(z.string(), z.string()).optional(),
});

export type Detection = z.infer<typeof detectionSchema>;

const keyword = { type: 'keyword', ignore_above: 1024 } as const;
const locatedMapping = {
  properties: {
    location: { type: 'geo_point' },
    accuracy_km: { type: 'float' },
    country_iso_code: keyword,
    city_name: keyword,
    ip: { type: 'ip' },
    time: { type: 'date' },
    event_id: keyword,
  },
} as const;

const technique = { properties: { id: keyword, name: keyword, reference: keyword } } as const;

/**
 * A detection as the pipeline publishes it on the detections topic: keyed by rule and key (one
 * key's detections of a rule stay in order), the detection as JSON, its rule and severity as
 * headers for consumers that route without parsing.
 */
export function detectionMessage(detection: Detection): { key: string; value: string; headers: Record<string, string> } {
  return {
    key: `${detection.ruleId}|${Object.values(detection.key).join(',') || detection.id}`,
    value: JSON.stringify(detection),
    headers: { 'vigil-rule-id': detection.ruleId, 'vigil-severity': detection.severity },
  };
}

/**
 * Mappings of the detections index: ECS `rule.*`, `event.*`, `threat.*`, `related.*` and the
 * entity fields of the key (`source.ip`, `user.id`, `url.path`), which Elastic's External Alerts
 * rule and the Security app pivot on; evidence under `vigil.detection`.
 */
export const detectionMappings = {
  dynamic: 'strict',
  // Key fields are dotted paths (client.ip), which Elasticsearch expands into objects: map the string leaves.
  dynamic_templates: [{ key_as_keywords: { path_match: 'vigil.detection.key.*', match_mapping_type: 'string', mapping: keyword } }],
  properties: {
    '@timestamp': { type: 'date' },
    ecs: { properties: { version: keyword } },
    message: { type: 'text' },
    event: {
      properties: {
        id: keyword,
        kind: keyword,
        module: keyword,
        dataset: keyword,
        severity: { type: 'long' },
        risk_score: { type: 'float' },
        reason: keyword,
        created: { type: 'date' },
        ingested: { type: 'date' },
      },
    },
    rule: { properties: { id: keyword, name: keyword, version: keyword, category: keyword } },
    threat: {
      properties: {
        framework: keyword,
        technique: { properties: { ...technique.properties, subtechnique: technique } },
      },
    },
    tags: keyword,
    related: { properties: { ip: { type: 'ip' }, user: keyword } },
    source: { properties: { ip: { type: 'ip' } } },
    user: { properties: { id: keyword } },
    url: { properties: { path: keyword } },
    vigil: {
      properties: {
        // The endpoint, named as on events (`vigil.api`, `vigil.route`): one dashboard filter follows an endpoint through both.
        api: keyword,
        route: keyword,
        consumer_id: keyword,
        detection: {
          properties: {
            severity: keyword,
            key: { type: 'object', dynamic: true },
            key_text: keyword,
            observed_value: { type: 'float' },
            threshold: { type: 'float' },
            window: { properties: { start: { type: 'date' }, end: { type: 'date' }, duration_ms: { type: 'long' } } },
            judged_at: { type: 'date' },
            distinct_field: keyword,
            distinct_values: keyword,
            event_ids: keyword,
            degraded: { type: 'boolean' },
            scope: { properties: { api: keyword, route: keyword } },
            geo: {
              properties: {
                from: locatedMapping,
                to: locatedMapping,
                distance_km: { type: 'float' },
                speed_kmh: { type: 'float' },
              },
            },
          },
        },
      },
    },
  },
} as const;

/** Index names of detections under one prefix. */
export function detectionIndexNames(prefix: string): { indexTemplate: string; pattern: string } {
  return { indexTemplate: `${prefix}-detections`, pattern: `${prefix}-detections-*` };
}

/** The daily detections index for an event time (UTC). */
export function detectionIndexName(prefix: string, time: string): string {
  return `${prefix}-detections-${new Date(time).toISOString().slice(0, 10).replaceAll('-', '.')}`;
}

/** The index template of detection indices. */
export function detectionTemplate(prefix: string, settings: { shards: number; replicas: number }): IndexTemplate {
  const names = detectionIndexNames(prefix);
  return managedTemplate(names.indexTemplate, names.pattern, detectionMappings, { ...settings, refreshInterval: '1s' });
}
