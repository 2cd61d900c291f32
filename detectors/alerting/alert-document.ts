import type { Client } from '@elastic/elasticsearch';
import { StoreUnavailableError, errorMessage, type Logger } from '../../platform';
import { SEVERITY_SCORE, type Alert } from '../../schemas';

/** The alerts-index document: Kibana alert-as-data names (`kibana.alert.*`), ECS elsewhere. */
export function toAlertDocument(alert: Alert): Record<string, unknown> {
  const end = alert.resolvedAt ?? alert.lastSeen;
  return {
    '@timestamp': alert.lastSeen,
    message: alert.reason,
    event: { kind: 'signal', module: 'vigil', dataset: 'vigil.alert', severity: SEVERITY_SCORE[alert.severity] },
    tags: alert.tags,
    kibana: {
      alert: {
        uuid: alert.id,
        status: alert.status === 'open' ? 'active' : 'recovered',
        workflow_status: 'open',
        severity: alert.severity,
        reason: alert.reason,
        start: alert.firstSeen,
        ...(alert.resolvedAt ? { end: alert.resolvedAt } : {}),
        last_detected: alert.lastSeen,
        duration: { us: Math.max(0, Date.parse(end) - Date.parse(alert.firstSeen)) * 1000 },
        rule: { uuid: alert.rules, name: alert.ruleNames },
        instance: { id: alert.groupKey },
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
      },
    },
  };
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
    let response;
    try {
      response = await elasticsearch.bulk({ operations, refresh: false });
    } catch (error) {
      throw new StoreUnavailableError('elasticsearch', `alert indexing failed: ${errorMessage(error)}`, error);
    }
    for (const item of response.items) {
      const outcome = item.index;
      // 409: a newer revision is already there (another instance, a redelivery): nothing to do.
      if (outcome && outcome.status >= 300 && outcome.status !== 409) {
        if (outcome.status === 429 || outcome.status >= 500) throw new StoreUnavailableError('elasticsearch', `alert indexing: ${outcome.status}`);
        logger.error({ alertId: outcome._id, error: outcome.error }, 'Elasticsearch refused an alert document');
      }
    }
  };
}
