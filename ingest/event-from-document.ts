import { describeIssues, eventSchema, type EventDocument, type VigilEvent } from '../schemas';
import { contentHash } from './content-hash';

/** What {@link eventOfDocument} made of a stored event document. */
export type StoredEvent =
  | {
      ok: true;
      event: VigilEvent;
      /** `original` (read from `event.original`) or `rebuilt` (from the document's fields). */
      from: 'original' | 'rebuilt';
      /**
       * Whether the event's content hash is the document's `vigil.content_hash`; undefined for a
       * document without one. A rebuilt event that differs lacks something the document didn't
       * hold (a bug to report): replay still uses it.
       */
      hashMatches?: boolean;
    }
  | { ok: false; reason: string };

type Source = Partial<EventDocument> & { vigil?: Partial<EventDocument['vigil']> };

/** Copies `value` under `key` unless it is undefined: optional fields stay absent. */
function put(target: Record<string, unknown>, key: string, value: unknown): void {
  if (value !== undefined) target[key] = value;
}

/**
 * The contract event a document was built from: the inverse of `toEventDocument`, field by field
 * (see docs/events.md, "Elasticsearch fields"). Unchecked: {@link eventOfDocument} validates it.
 */
export function fromEventDocument(document: Source): Record<string, unknown> {
  const vigil: Partial<EventDocument['vigil']> = document.vigil ?? {};
  const family = vigil.family;
  const source: Record<string, unknown> = { service: document.service?.name, kind: document.service?.type };
  put(source, 'instance', document.service?.node?.name);
  put(source, 'environment', document.service?.environment);
  const correlation: Record<string, unknown> = {};
  put(correlation, 'requestId', document.http?.request?.id);
  put(correlation, 'traceId', document.trace?.id);
  put(correlation, 'sessionId', vigil.session_id);
  const actor: Record<string, unknown> = {};
  put(actor, 'userId', document.user?.id);
  put(actor, 'consumerId', vigil.consumer_id);
  put(actor, 'tenantId', document.organization?.id);

  // The ECS fields hold client's value, else (device events) the device's.
  const shown = { ip: document.source?.ip, user_agent: document.user_agent?.original, id: document.device?.id };
  const clientGave = new Set(family === 'device' ? (vigil.device?.client ?? []) : ['ip', 'user_agent', 'id']);
  const ownOfDevice = (name: 'ip' | 'user_agent' | 'id'): string | undefined => (clientGave.has(name) ? vigil.device?.[name] : shown[name]);
  const client: Record<string, unknown> = {};
  if (clientGave.has('ip')) put(client, 'ip', shown.ip);
  if (clientGave.has('user_agent')) put(client, 'userAgent', shown.user_agent);
  if (clientGave.has('id')) put(client, 'deviceId', shown.id);

  const event: Record<string, unknown> = {
    id: document.event?.id,
    schemaVersion: vigil.schema_version,
    family,
    time: vigil.time ?? document['@timestamp'],
    source,
    correlation,
    actor,
    client,
  };
  put(event, 'labels', document.labels);
  const resource = { api: vigil.api, method: document.http?.request?.method, path: document.url?.path };

  if (family === 'policy') {
    const policy: Record<string, unknown> = { kind: vigil.policy?.kind, name: vigil.policy?.name, outcome: vigil.policy?.outcome };
    put(policy, 'reason', document.event?.reason ?? vigil.policy?.reason);
    put(policy, 'authContext', vigil.policy?.auth_context);
    put(policy, 'scopes', vigil.policy?.scopes);
    policy.group = vigil.group;
    policy.resource = resource;
    event.policy = policy;
  } else if (family === 'invocation') {
    const invocation: Record<string, unknown> = { resource, route: vigil.route, status: document.http?.response?.status_code, latencyMs: vigil.latency_ms };
    put(invocation, 'bytesIn', document.http?.request?.body?.bytes);
    put(invocation, 'bytesOut', document.http?.response?.body?.bytes);
    put(invocation, 'upstreamService', vigil.upstream_service);
    put(invocation, 'group', vigil.group);
    event.invocation = invocation;
  } else if (family === 'device') {
    const device: Record<string, unknown> = {};
    put(device, 'deviceId', ownOfDevice('id'));
    put(device, 'fingerprint', vigil.device?.fingerprint);
    device.type = vigil.device?.type;
    put(device, 'os', vigil.device?.os);
    put(device, 'userAgent', ownOfDevice('user_agent'));
    put(device, 'ip', ownOfDevice('ip'));
    device.action = vigil.device?.action;
    // A producer's position is the document's location; a geoip answer is enrichment, not the event.
    const geo = document.source?.geo;
    if (vigil.geo?.source === 'producer' && geo?.location) {
      const given: Record<string, unknown> = { lat: geo.location.lat, lon: geo.location.lon };
      put(given, 'accuracyKm', vigil.geo.accuracy_km);
      put(given, 'country', geo.country_iso_code);
      put(given, 'city', geo.city_name);
      device.geo = given;
    }
    event.device = device;
  }
  return event;
}

/**
 * The validated event of a stored document: `event.original` when the document has it (every
 * document indexed before template version 3, and all with `VIGIL_EVENT_ORIGINAL=on`), else
 * rebuilt from its fields. Checked against the contract; never throws.
 */
export function eventOfDocument(document: unknown): StoredEvent {
  if (typeof document !== 'object' || document === null) return { ok: false, reason: 'no document source' };
  const source = document as Source;
  let raw: unknown;
  let from: 'original' | 'rebuilt';
  if (typeof source.event?.original === 'string') {
    from = 'original';
    try {
      raw = JSON.parse(source.event.original);
    } catch (error) {
      return { ok: false, reason: `event.original is not JSON: ${error instanceof Error ? error.message : String(error)}` };
    }
  } else {
    from = 'rebuilt';
    raw = fromEventDocument(source);
  }
  const parsed = eventSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: `the ${from} event is not valid: ${describeIssues(parsed.error).join('; ')}` };
  const stored = source.vigil?.content_hash;
  return { ok: true, event: parsed.data, from, ...(typeof stored === 'string' ? { hashMatches: contentHash(parsed.data) === stored } : {}) };
}
