import { ECS_VERSION, SEVERITY_SCORE, type Detection } from '../schemas';

const TECHNIQUE = /^T\d{4}(\.\d{3})?$/;

/**
 * Names of the MITRE ATT&CK (Enterprise) techniques Vigil's rules are tagged with, for
 * `threat.technique.name`. An id not listed here is still indexed, without a name.
 */
const TECHNIQUE_NAMES: Readonly<Record<string, string>> = {
  T1068: 'Exploitation for Privilege Escalation',
  T1078: 'Valid Accounts',
  T1087: 'Account Discovery',
  T1110: 'Brute Force',
  'T1110.001': 'Password Guessing',
  'T1110.002': 'Password Cracking',
  'T1110.003': 'Password Spraying',
  'T1110.004': 'Credential Stuffing',
  T1190: 'Exploit Public-Facing Application',
  T1498: 'Network Denial of Service',
  T1499: 'Endpoint Denial of Service',
  'T1499.001': 'OS Exhaustion Flood',
  'T1499.002': 'Service Exhaustion Flood',
  'T1499.003': 'Application Exhaustion Flood',
  'T1499.004': 'Application or System Exploitation',
  T1595: 'Active Scanning',
  T1657: 'Financial Theft',
};

/** A technique or sub-technique as ECS `threat.technique.*` holds it. */
function techniqueOf(id: string): Record<string, string> {
  const name = TECHNIQUE_NAMES[id];
  return { id, ...(name ? { name } : {}), reference: `https://attack.mitre.org/techniques/${id.replace('.', '/')}/` };
}

/**
 * ECS `threat.*` of a rule's tags: techniques by id, each with its sub-techniques (a tag
 * `T1110.001` without `T1110` still files under `T1110`). Absent when no tag is a technique.
 */
function threatOf(tags: readonly string[]): Record<string, unknown> | undefined {
  const techniques = new Map<string, string[]>();
  for (const tag of tags.filter((candidate) => TECHNIQUE.test(candidate))) {
    const [parent = tag, sub] = tag.split('.');
    const subs = techniques.get(parent) ?? [];
    if (sub !== undefined && !subs.includes(tag)) subs.push(tag);
    techniques.set(parent, subs);
  }
  if (techniques.size === 0) return undefined;
  return {
    framework: 'MITRE ATT&CK',
    technique: [...techniques].map(([id, subs]) => ({ ...techniqueOf(id), ...(subs.length > 0 ? { subtechnique: subs.map(techniqueOf) } : {}) })),
  };
}

/** Key fields whose value is an ECS entity, by the ECS field it goes to. */
const ENTITY_FIELDS: Readonly<Record<string, readonly string[]>> = {
  'source.ip': ['client.ip', 'device.ip'],
  'user.id': ['actor.userId'],
  'url.path': ['invocation.resource.path', 'policy.resource.path'],
};

/** What the detection's document may say beyond the detection: the events it was evaluated with. */
export interface DetectionContext {
  /** The client address of an evaluated event, by event id (the pipeline's chunk). */
  clientIpOf?: (eventId: string) => string | undefined;
}

/** The rule types whose final event is the one that matters (a sequence's last step, a match). */
const FINAL_EVENT_TYPES: readonly string[] = ['sequence', 'match'];

/**
 * The client address of the event that completed a sequence or match keyed on a user and on no
 * IP, when it is the detection's last event (the engine keeps the last id however long the chain:
 * cappedEvidence) and the caller saw it (the pipeline's chunk).
 */
function completingIpOf(detection: Detection, context: DetectionContext): string | undefined {
  if (context.clientIpOf === undefined || !FINAL_EVENT_TYPES.includes(detection.ruleType)) return undefined;
  const fields = Object.keys(detection.key);
  if (!fields.includes('actor.userId') || fields.some((field) => field.endsWith('.ip'))) return undefined;
  const last = detection.eventIds[detection.eventIds.length - 1];
  const ip = last === undefined ? undefined : context.clientIpOf(last);
  return ip !== undefined && looksLikeIp(ip) ? ip : undefined;
}

/** Whether a string is an IPv4/IPv6 address (for `related.ip`). */
const looksLikeIp = (value: string): boolean => /^[0-9.]+$/.test(value) || value.includes(':');

/**
 * The Elasticsearch document of a detection: ECS `rule.*`, `event.*`, `threat.*`, `related.*`,
 * `message` and the key's entities as ECS fields (`source.ip`, `user.id`, `url.path`), the shape
 * Elastic's External Alerts rule promotes into the Security app; the evidence under
 * `vigil.detection`. `ingestedAt` is when it is indexed (default: when it was detected).
 */
export function toDetectionDocument(detection: Detection, ingestedAt: Date = new Date(detection.detectedAt), context: DetectionContext = {}): Record<string, unknown> {
  const ips = new Set<string>();
  const users = new Set<string>();
  for (const [field, value] of Object.entries(detection.key)) {
    if (field.endsWith('.ip') && looksLikeIp(value)) ips.add(value);
    if (field === 'actor.userId') users.add(value);
  }
  if (detection.distinct?.field === 'client.ip') for (const value of detection.distinct.values) if (looksLikeIp(value)) ips.add(value);
  if (detection.distinct?.field === 'actor.userId') for (const value of detection.distinct.values) users.add(value);
  // The user a proven completing event names (the takeover's victim) is related too.
  for (const [field, value] of Object.entries(detection.entities ?? {})) if (field === 'actor.userId') users.add(value);
  for (const side of [detection.geo?.from, detection.geo?.to]) if (side?.ip) ips.add(side.ip);
  // The address the final step came from, for a sequence or match keyed on a user and not on an
  // IP (the takeover's sign-in): the key names the victim, this the attacker.
  const completingIp = completingIpOf(detection, context);
  if (completingIp !== undefined) ips.add(completingIp);
  const threat = threatOf(detection.tags);
  const entity = (field: string): string | undefined => {
    const value = ENTITY_FIELDS[field]?.map((name) => detection.key[name]).find((candidate) => candidate !== undefined);
    return field === 'source.ip' && value !== undefined && !looksLikeIp(value) ? undefined : value;
  };
  const sourceIp = entity('source.ip') ?? completingIp;
  // The user a detection keyed on an IP proves (the stuffing's cracked account) is its user too:
  // the panels and pivots on `user.id` find it.
  const userId = entity('user.id') ?? detection.entities?.['actor.userId'];
  const consumerId = detection.key['actor.consumerId'];
  const urlPath = entity('url.path');
  // The endpoint under the events' own names, so a filter on vigil.api / vigil.route holds both.
  const api = detection.scope?.api ?? detection.key['invocation.resource.api'];
  const route = detection.scope?.route ?? detection.key['invocation.route'];
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
    ecs: { version: ECS_VERSION },
    message: detection.reason,
    event: {
      id: detection.id,
      kind: 'alert',
      module: 'vigil',
      dataset: 'vigil.detection',
      severity: SEVERITY_SCORE[detection.severity],
      // The External Alerts rule takes its risk score from here (47 for every alert without it).
      risk_score: SEVERITY_SCORE[detection.severity],
      reason: detection.reasonCode,
      created: detection.detectedAt,
      ingested: ingestedAt.toISOString(),
    },
    rule: { id: detection.ruleId, name: detection.ruleName, version: String(detection.ruleVersion), category: detection.ruleType },
    ...(threat ? { threat } : {}),
    tags: detection.tags,
    ...(ips.size > 0 || users.size > 0 ? { related: { ...(ips.size > 0 ? { ip: [...ips] } : {}), ...(users.size > 0 ? { user: [...users] } : {}) } } : {}),
    ...(sourceIp === undefined ? {} : { source: { ip: sourceIp } }),
    ...(userId === undefined ? {} : { user: { id: userId } }),
    ...(urlPath === undefined ? {} : { url: { path: urlPath } }),
    vigil: {
      ...(api === undefined ? {} : { api }),
      ...(route === undefined ? {} : { route }),
      // Named as on events, so a dashboard filter on a consumer follows it into the detections.
      ...(consumerId === undefined ? {} : { consumer_id: consumerId }),
      detection: {
        severity: detection.severity,
        key: detection.key,
        key_text: Object.entries(detection.key).map(([field, value]) => `${field}=${value}`).join(','),
        observed_value: detection.observedValue,
        ...(detection.threshold === undefined ? {} : { threshold: detection.threshold }),
        window: { start: detection.window.start, end: detection.window.end, duration_ms: detection.window.durationMs },
        ...(detection.judgedAt === undefined ? {} : { judged_at: detection.judgedAt }),
        ...(detection.distinct ? { distinct_field: detection.distinct.field, distinct_values: detection.distinct.values } : {}),
        event_ids: detection.eventIds,
        degraded: detection.degraded,
        ...(detection.scope ? { scope: { api: detection.scope.api, route: detection.scope.route } } : {}),
        ...(detection.geo
          ? { geo: { from: located(detection.geo.from), to: located(detection.geo.to), distance_km: detection.geo.distanceKm, speed_kmh: detection.geo.speedKmh } }
          : {}),
      },
    },
  };
}
