import { isIP } from 'node:net';
import type { Client } from '@elastic/elasticsearch';
import { z } from 'zod';
import { StoreUnavailableError, errorMessage, type Logger } from '../../platform';
import { ECS_VERSION, SEVERITIES, SEVERITY_SCORE, alertEvidenceSchema, alertSchema, detectionIndexName, type Alert, type Detection } from '../../schemas';
import { toDetectionDocument } from '../detection-document';

/**
 * What Kibana's alert field map requires of a rule, for an alert Kibana's alerting framework
 * did not make: Vigil is the rule type's producer and consumer, in the default space.
 */
const KIBANA_RULE = { category: 'Vigil detection', consumer: 'vigil', producer: 'vigil', rule_type_id: 'vigil.detection' } as const;

/**
 * The alerts-index document: Kibana alert-as-data names (`kibana.alert.*`, single-valued where
 * Kibana's field map says so), ECS elsewhere. `event.kind` is `alert`, ECS's value for an alert
 * raised outside the Elastic Stack (`signal` is reserved for Kibana's own alerting).
 */
export function toAlertDocument(alert: Alert): Record<string, unknown> {
  const end = alert.resolvedAt ?? alert.lastSeen;
  const related = relatedOf(alert);
  // Kibana: the rule that created the alert. Every contributing rule stays under vigil.alert.
  const ruleId = alert.rules[0] ?? '';
  const ruleName = alert.ruleNames[0] ?? ruleId;
  return {
    '@timestamp': alert.lastSeen,
    ecs: { version: ECS_VERSION },
    // What it absorbed is part of why it is one alert and not hundreds.
    message: alert.evidence ? `${alert.reason} ${alert.evidence.summary}` : alert.reason,
    event: { kind: 'alert', module: 'vigil', dataset: 'vigil.alert', severity: SEVERITY_SCORE[alert.severity], risk_score: SEVERITY_SCORE[alert.severity] },
    tags: alert.tags,
    ...(related === undefined ? {} : { related }),
    kibana: {
      space_ids: ['default'],
      alert: {
        uuid: alert.id,
        status: alert.status === 'open' ? 'active' : 'recovered',
        workflow_status: 'open',
        severity: alert.severity,
        risk_score: SEVERITY_SCORE[alert.severity],
        // Kibana: why the alert is active. A resolved alert's record carries the resolve line
        // (kept in `message`), so it falls back to the title: the rule and key that opened it.
        reason: alert.status === 'open' ? alert.reason : alert.title,
        start: alert.firstSeen,
        ...(alert.resolvedAt ? { end: alert.resolvedAt } : {}),
        last_detected: alert.lastSeen,
        duration: { us: Math.max(0, Date.parse(end) - Date.parse(alert.firstSeen)) * 1000 },
        // Vigil's rules carry no Kibana revision; 0 is Kibana's first.
        rule: { uuid: ruleId, name: ruleName, revision: 0, ...KIBANA_RULE },
        instance: { id: alert.groupKey },
        // Kibana's record of the maintenance windows that held back an alert's notifications.
        ...(alert.silencedBy && alert.silencedBy.length > 0 ? { maintenance_window_ids: alert.silencedBy } : {}),
      },
    },
    vigil: {
      alert: {
        title: alert.title,
        group_key: alert.groupKey,
        key: alert.key,
        count: alert.count,
        suppressed: alert.suppressed,
        detections: alert.detections,
        revision: alert.revision,
        rules: alert.rules,
        rule_names: alert.ruleNames,
        ...(alert.campaign ? { campaign: true } : {}),
        ...(alert.entities ? { entities: alert.entities } : {}),
        ...(alert.evidence ? { evidence: alert.evidence } : {}),
      },
    },
  };
}

/** The parts of an alerts-index document {@link fromAlertDocument} reads; anything else is ignored. */
const alertDocumentSchema = z.looseObject({
  message: z.string(),
  tags: z.array(z.string()),
  kibana: z.looseObject({
    alert: z.looseObject({
      uuid: z.string(),
      status: z.enum(['active', 'recovered']),
      severity: z.enum(SEVERITIES),
      reason: z.string(),
      start: z.string(),
      end: z.string().optional(),
      last_detected: z.string(),
      maintenance_window_ids: z.array(z.string()).optional(),
    }),
  }),
  vigil: z.looseObject({
    alert: z.looseObject({
      title: z.string(),
      group_key: z.string(),
      key: z.record(z.string(), z.string()),
      count: z.number().int(),
      suppressed: z.number().int(),
      detections: z.array(z.string()),
      revision: z.number().int(),
      rules: z.array(z.string()),
      rule_names: z.array(z.string()),
      campaign: z.boolean().optional(),
      entities: z.array(z.string()).optional(),
      evidence: alertEvidenceSchema.optional(),
    }),
  }),
});

/**
 * The alert an alerts-index document was written from ({@link toAlertDocument} undone): what a
 * notification built from the index says, as the alerter would have sent it at that revision.
 * A resolved alert's reason is its `message` without the evidence sentence appended to it.
 * @returns the alert, or a message naming the first field that is missing or wrong
 */
export function fromAlertDocument(source: unknown): { alert: Alert } | { problem: string } {
  const parsed = alertDocumentSchema.safeParse(source);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { problem: `not an alert document: ${issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : 'unreadable'}` };
  }
  const { message, tags, kibana, vigil } = parsed.data;
  const { alert: k } = kibana;
  const { alert: v } = vigil;
  const open = k.status === 'active';
  const suffix = v.evidence ? ` ${v.evidence.summary}` : '';
  const reason = open ? k.reason : suffix !== '' && message.endsWith(suffix) ? message.slice(0, -suffix.length) : message;
  const alert = alertSchema.safeParse({
    id: k.uuid,
    status: open ? 'open' : 'resolved',
    severity: k.severity,
    groupKey: v.group_key,
    key: v.key,
    title: v.title,
    reason,
    rules: v.rules,
    ruleNames: v.rule_names,
    tags,
    count: v.count,
    suppressed: v.suppressed,
    firstSeen: k.start,
    lastSeen: k.last_detected,
    ...(k.end === undefined ? {} : { resolvedAt: k.end }),
    detections: v.detections,
    revision: v.revision,
    ...(v.evidence ? { evidence: v.evidence } : {}),
    ...(v.campaign ? { campaign: true } : {}),
    ...(v.entities ? { entities: v.entities } : {}),
    ...(k.maintenance_window_ids && k.maintenance_window_ids.length > 0 ? { silencedBy: k.maintenance_window_ids } : {}),
  });
  if (!alert.success) return { problem: `not an alert document: ${alert.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}` };
  return { alert: alert.data };
}

/**
 * ECS `related.ip` and `related.user` of an alert: its key's and the entities it linked (a
 * takeover's IP and its victim), so one search on a user or an address finds the incident beside
 * the events and detections (the key alone is under `vigil.alert.key`, by Vigil's field names).
 */
function relatedOf(alert: Alert): { ip?: string[]; user?: string[] } | undefined {
  const ips = new Set<string>();
  const users = new Set<string>();
  const add = (field: string, value: string): void => {
    if (field.endsWith('.ip') && isIP(value) !== 0) ips.add(value);
    else if (field === 'actor.userId') users.add(value);
  };
  for (const [field, value] of Object.entries(alert.key)) add(field, value);
  for (const entity of alert.entities ?? []) {
    // Entities are group keys, `field=value`.
    const at = entity.indexOf('=');
    if (at > 0) add(entity.slice(0, at), entity.slice(at + 1));
  }
  if (ips.size === 0 && users.size === 0) return undefined;
  return { ...(ips.size > 0 ? { ip: [...ips] } : {}), ...(users.size > 0 ? { user: [...users] } : {}) };
}

/** Writes alert documents. */
export type AlertWriter = (alerts: readonly Alert[]) => Promise<void>;

/**
 * A writer of alert documents to `index`, one bulk request per call, with external versioning on
 * the alert's revision: a stale update (another instance, a redelivery) never overwrites a newer
 * one. Throws {@link StoreUnavailableError} when Elasticsearch can't take them now (the batch is
 * redone); a document refused for good is logged and skipped.
 */
export function createAlertWriter(elasticsearch: Client, index: string, logger: Logger): AlertWriter {
  return async (alerts) => {
    if (alerts.length === 0) return;
    const operations = alerts.flatMap((alert) => [
      { index: { _index: index, _id: alert.id, version: alert.revision, version_type: 'external' as const } },
      toAlertDocument(alert),
    ]);
    // 409: a newer revision is already there (another instance, a redelivery): nothing to do.
    await writeBulk(elasticsearch, operations, 'alert', logger);
  };
}

/**
 * One bulk request of the alerter's own documents. Throws {@link StoreUnavailableError} when
 * Elasticsearch can't take them now (429, 5xx, no answer: the batch is redone); a document
 * refused for good is logged and skipped; a 409 (written already, or a newer revision) is fine.
 */
async function writeBulk(elasticsearch: Client, operations: object[], what: 'alert' | 'detection', logger: Logger): Promise<void> {
  let response;
  try {
    response = await elasticsearch.bulk({ operations, refresh: false });
  } catch (error) {
    throw new StoreUnavailableError('elasticsearch', `${what} indexing failed: ${errorMessage(error)}`, error);
  }
  for (const item of response.items) {
    const outcome = item.index ?? item.create;
    if (outcome && outcome.status >= 300 && outcome.status !== 409) {
      if (outcome.status === 429 || outcome.status >= 500) throw new StoreUnavailableError('elasticsearch', `${what} indexing: ${outcome.status}`);
      logger.error({ [`${what}Id`]: outcome._id, error: outcome.error }, `Elasticsearch refused ${what === 'alert' ? 'an alert' : 'a detection'} document`);
    }
  }
}

/** Writes detection documents. */
export type DetectionWriter = (detections: readonly Detection[]) => Promise<void>;

/**
 * A writer of the detections the alerter raises itself (the risk scorer's `risk-threshold`) into
 * the detections index the pipeline writes the rules' into, so analysts find them there and the
 * alerts that cite them resolve. Created with the detection id: a redone batch writes nothing
 * twice. Throws {@link StoreUnavailableError} when Elasticsearch can't take them now (the batch is
 * redone, and the scorer says the same crossing again); a document refused for good is logged.
 */
export function createDetectionWriter(elasticsearch: Client, prefix: string, logger: Logger, clock: () => Date = () => new Date()): DetectionWriter {
  return async (detections) => {
    if (detections.length === 0) return;
    const indexedAt = clock();
    const operations = detections.flatMap((detection) => [{ create: { _index: detectionIndexName(prefix, detection.time), _id: detection.id } }, toDetectionDocument(detection, indexedAt)]);
    // 409: written already (a redone batch, another instance).
    await writeBulk(elasticsearch, operations, 'detection', logger);
  };
}
