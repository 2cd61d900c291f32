import { SEVERITY_SCORE, type Detection } from '../schemas';

const TECHNIQUE = /^T\d{4}(\.\d{3})?$/;

/** Whether a string is an IPv4/IPv6 address (for `related.ip`). */
const looksLikeIp = (value: string): boolean => /^[0-9.]+$/.test(value) || value.includes(':');

/**
 * The Elasticsearch document of a detection: ECS `rule.*`, `event.*`, `threat.*`, `related.*`
 * and `message`, with the evidence under `vigil.detection`.
 */
export function toDetectionDocument(detection: Detection): Record<string, unknown> {
  const ips = new Set<string>();
  const users = new Set<string>();
  for (const [field, value] of Object.entries(detection.key)) {
    if (field.endsWith('.ip') && looksLikeIp(value)) ips.add(value);
    if (field === 'actor.userId') users.add(value);
  }
  if (detection.distinct?.field === 'client.ip') for (const value of detection.distinct.values) if (looksLikeIp(value)) ips.add(value);
  if (detection.distinct?.field === 'actor.userId') for (const value of detection.distinct.values) users.add(value);
  for (const side of [detection.geo?.from, detection.geo?.to]) if (side?.ip) ips.add(side.ip);
  const techniques = detection.tags.filter((tag) => TECHNIQUE.test(tag));
  const located = (side: NonNullable<Detection['geo']>['from']): Record<string, unknown> => ({
    location: { lat: side.lat, lon: side.lon },
    ...(side.accuracyKm === undefined ? {} : { accuracy_km: side.accuracyKm }),
    ...(side.country ? { country_iso_code: side.country } : {}),
    ...(side.city ? { city_name: side.city } : {}),
    ...(side.ip ? { ip: side.ip } : {}),
    time: side.time,
    event_id: side.eventId,
  });
  return {
    '@timestamp': detection.time,
    message: detection.reason,
    event: {
      id: detection.id,
      kind: 'alert',
      module: 'vigil',
      dataset: 'vigil.detection',
      severity: SEVERITY_SCORE[detection.severity],
      reason: detection.reasonCode,
      created: detection.detectedAt,
    },
    rule: { id: detection.ruleId, name: detection.ruleName, version: String(detection.ruleVersion), category: detection.ruleType },
    ...(techniques.length > 0 ? { threat: { technique: { id: techniques } } } : {}),
    tags: detection.tags,
    ...(ips.size > 0 || users.size > 0 ? { related: { ...(ips.size > 0 ? { ip: [...ips] } : {}), ...(users.size > 0 ? { user: [...users] } : {}) } } : {}),
    vigil: {
      detection: {
        severity: detection.severity,
        key: detection.key,
        key_text: Object.entries(detection.key).map(([field, value]) => `${field}=${value}`).join(','),
        observed_value: detection.observedValue,
        ...(detection.threshold === undefined ? {} : { threshold: detection.threshold }),
        window: { start: detection.window.start, end: detection.window.end, duration_ms: detection.window.durationMs },
        ...(detection.distinct ? { distinct_field: detection.distinct.field, distinct_values: detection.distinct.values } : {}),
        event_ids: detection.eventIds,
        degraded: detection.degraded,
        ...(detection.geo
          ? { geo: { from: located(detection.geo.from), to: located(detection.geo.to), distance_km: detection.geo.distanceKm, speed_kmh: detection.geo.speedKmh } }
          : {}),
      },
    },
  };
}
