import { ECS_VERSION, type EventDocument, type PolicyKind, type VigilEvent } from '../schemas';
import { contentHash } from './content-hash';
import type { Enrichment } from './enrich';

/** Where a message was read from: kept on the document so an analyst can find the original. */
export interface KafkaPosition {
  topic: string;
  partition: number;
  offset: string;
}


/**
 * ECS categorization of a policy decision, by kind. ECS pairs each category with the types it
 * allows: `authentication` takes `start`/`end`/`info` (the verdict goes in `event.outcome`, which
 * Kibana's Authentications view reads); `api` (ECS 8.9) and `intrusion_detection` take
 * `allowed`/`denied`, a gateway's access decisions. `iam` (user and group administration) and
 * `web` (`access`/`error`/`info`) have no place for a decision.
 */
const POLICY_CATEGORIZATION: Record<PolicyKind, { category: string; type: (pass: boolean) => string }> = {
  authn: { category: 'authentication', type: () => 'start' },
  authz: { category: 'api', type: (pass) => (pass ? 'allowed' : 'denied') },
  rate_limit: { category: 'api', type: (pass) => (pass ? 'allowed' : 'denied') },
  json_threat: { category: 'intrusion_detection', type: (pass) => (pass ? 'allowed' : 'denied') },
  xml_threat: { category: 'intrusion_detection', type: (pass) => (pass ? 'allowed' : 'denied') },
  custom: { category: 'api', type: (pass) => (pass ? 'allowed' : 'denied') },
};

/** Options of {@link toEventDocument}. */
export interface EventDocumentOptions {
  /**
   * Keep the validated event as JSON in `event.original` (`VIGIL_EVENT_ORIGINAL`). Without it,
   * the document still holds every field of the event: {@link fromEventDocument} rebuilds it.
   * @defaultValue false
   */
  original?: boolean;
}

/**
 * Which of the three values a device event may give twice, in `client` and in `device`, the
 * document's ECS field takes from where: see {@link toEventDocument}'s `vigil.device.client`.
 */
const DEVICE_PAIRS = [
  { name: 'ip', client: 'ip', device: 'ip' },
  { name: 'user_agent', client: 'userAgent', device: 'userAgent' },
  { name: 'id', client: 'deviceId', device: 'deviceId' },
] as const;

/**
 * The Elasticsearch document of a validated, enriched event: ECS names where ECS has them
 * (`@timestamp`, `ecs.version`, `event.*`, `observer.*`, `source.*`, `http.*`, `url.path`,
 * `user.*`, `related.*`), `vigil.*` for the API-gateway fields ECS lacks. Pure: the caller
 * passes the ingest time.
 *
 * Every field of the event is in the document, so replay can rebuild the event from it
 * ({@link fromEventDocument}, tested both ways) without `event.original`: optional values are
 * written whenever the event has them, an empty string included, and the few things the ECS
 * fields can't say are kept, unindexed, under `vigil.*` only when they are there to say
 * (`vigil.time`, `vigil.device.client`, `vigil.device.ip|user_agent|id`).
 */
export function toEventDocument(
  event: VigilEvent,
  enrichment: Enrichment,
  position: KafkaPosition,
  ingestedAt: Date,
  options: EventDocumentOptions = {},
): EventDocument {
  // Members are assigned one by one in the order the spread literals wrote them (the JSON, and so
  // `_source`, keeps its bytes): a conditional spread made and copied a throwaway object per field.
  const timestamp = new Date(event.time).toISOString();
  const service: EventDocument['service'] = { name: event.source.service, type: event.source.kind };
  if (event.source.instance) service.node = { name: event.source.instance };
  if (event.source.environment) service.environment = event.source.environment;
  const geo: EventDocument['vigil']['geo'] = { source: enrichment.geoSource };
  if (enrichment.ipScope) geo.ip_scope = enrichment.ipScope;
  if (enrichment.accuracyKm !== undefined) geo.accuracy_km = enrichment.accuracyKm;
  if (enrichment.geoDatabase) {
    geo.database = enrichment.geoDatabase.name;
    if (enrichment.geoDatabase.build) geo.database_build = buildText(enrichment.geoDatabase.build);
  }
  const document: EventDocument = {
    '@timestamp': timestamp,
    ecs: { version: ECS_VERSION },
    event: {
      id: event.id,
      kind: 'event',
      module: 'vigil',
      dataset: `vigil.${event.family}`,
      category: [],
      type: [],
      action: '',
      outcome: 'unknown',
      ingested: ingestedText(ingestedAt),
    },
    service,
    vigil: {
      schema_version: event.schemaVersion,
      family: event.family,
      geo,
      kafka: { topic: position.topic, partition: position.partition, offset: position.offset },
      content_hash: contentHash(event),
    },
  };
  if (options.original === true) document.event.original = JSON.stringify(event);
  // `@timestamp` is UTC to the millisecond; a producer's offset or finer fraction is kept as given.
  if (event.time !== timestamp) document.vigil.time = event.time;
  if (event.source.kind === 'gateway') document.observer = { name: event.source.service, type: 'gateway' };
  if (event.actor.userId) {
    // An authn policy's user is the login name given, whether or not it names an account.
    const loginName = event.family === 'policy' && event.policy.kind === 'authn';
    document.user = { id: event.actor.userId };
    if (loginName) document.user.name = event.actor.userId;
  }
  if (event.actor.tenantId) document.organization = { id: event.actor.tenantId };
  if (event.actor.consumerId) document.vigil.consumer_id = event.actor.consumerId;
  if (event.correlation.sessionId) document.vigil.session_id = event.correlation.sessionId;
  if (event.correlation.traceId) document.trace = { id: event.correlation.traceId };
  if (enrichment.ip !== undefined) {
    document.source = { ip: enrichment.ip };
    if (enrichment.geo) document.source.geo = enrichment.geo;
  } else if (enrichment.geo) {
    document.source = { geo: enrichment.geo };
  }
  const userAgent = event.client.userAgent ?? (event.family === 'device' ? event.device.userAgent : undefined);
  if (userAgent !== undefined) document.user_agent = { original: userAgent };
  const deviceId = event.client.deviceId ?? (event.family === 'device' ? event.device.deviceId : undefined);
  if (deviceId !== undefined) document.device = { id: deviceId };
  if (event.labels) document.labels = { ...event.labels };
  const requestId = event.correlation.requestId;

  switch (event.family) {
    case 'policy': {
      const { policy } = event;
      const categorization = POLICY_CATEGORIZATION[policy.kind];
      document.event.category = [categorization.category];
      document.event.type = [categorization.type(policy.outcome === 'pass')];
      document.event.action = `policy-${policy.kind.replaceAll('_', '-')}`;
      document.event.outcome = policy.outcome === 'pass' ? 'success' : 'failure';
      if (policy.reason !== undefined) document.event.reason = policy.reason;
      document.url = { path: policy.resource.path };
      document.http = { request: { method: policy.resource.method } };
      if (requestId && document.http.request) document.http.request.id = requestId;
      document.vigil.api = policy.resource.api;
      document.vigil.group = policy.group;
      // The reason is `event.reason` alone: `vigil.policy.reason` was the same text twice.
      document.vigil.policy = { kind: policy.kind, name: policy.name, outcome: policy.outcome };
      if (policy.authContext) document.vigil.policy.auth_context = policy.authContext;
      if (policy.scopes) document.vigil.policy.scopes = [...policy.scopes];
      break;
    }
    case 'invocation': {
      const { invocation } = event;
      document.event.category = ['web'];
      document.event.type = ['access'];
      document.event.action = 'api-invocation';
      document.event.outcome = invocation.status >= 400 ? 'failure' : 'success';
      // ECS event.duration is in nanoseconds.
      document.event.duration = Math.round(invocation.latencyMs * 1_000_000);
      document.url = { path: invocation.resource.path };
      const request: NonNullable<NonNullable<EventDocument['http']>['request']> = { method: invocation.resource.method };
      if (requestId) request.id = requestId;
      if (invocation.bytesIn !== undefined) request.body = { bytes: invocation.bytesIn };
      const response: NonNullable<NonNullable<EventDocument['http']>['response']> = { status_code: invocation.status };
      if (invocation.bytesOut !== undefined) response.body = { bytes: invocation.bytesOut };
      document.http = { request, response };
      document.vigil.api = invocation.resource.api;
      document.vigil.route = invocation.route;
      document.vigil.latency_ms = invocation.latencyMs;
      if (invocation.group) document.vigil.group = invocation.group;
      if (invocation.upstreamService) document.vigil.upstream_service = invocation.upstreamService;
      break;
    }
    case 'device': {
      const { device } = event;
      document.event.category = ['session'];
      document.event.type = ['info'];
      document.event.action = `device-${device.action.replaceAll('_', '-')}`;
      document.vigil.device = { type: device.type, action: device.action };
      if (device.os !== undefined) document.vigil.device.os = device.os;
      if (device.fingerprint !== undefined) document.vigil.device.fingerprint = device.fingerprint;
      // source.ip, user_agent.original and device.id take client's value, else the device's.
      // What that loses is kept: which of them client gave, and the device's own value when
      // client gave one too (most producers send the IP in both, the same).
      const fromClient: string[] = [];
      for (const pair of DEVICE_PAIRS) {
        if (event.client[pair.client] === undefined) continue;
        fromClient.push(pair.name);
        const own = device[pair.device];
        if (own !== undefined) document.vigil.device[pair.name] = own;
      }
      if (fromClient.length > 0) document.vigil.device.client = fromClient;
      if (requestId) document.http = { request: { id: requestId } };
      break;
    }
  }
  const ip = document.source?.ip;
  if (ip !== undefined || document.user) {
    document.related = {};
    if (ip !== undefined) document.related.ip = [ip];
    if (document.user) document.related.user = [document.user.id];
  }
  return document;
}

// A chunk's documents share one ingest time, and a geo database one build time: each is
// formatted once, not once per document.
let lastIngested: { time: number; text: string } | undefined;
function ingestedText(ingestedAt: Date): string {
  const time = ingestedAt.getTime();
  if (lastIngested?.time !== time) lastIngested = { time, text: ingestedAt.toISOString() };
  return lastIngested.text;
}
let lastBuild: { time: number; text: string } | undefined;
function buildText(build: Date): string {
  const time = build.getTime();
  if (lastBuild?.time !== time) lastBuild = { time, text: build.toISOString() };
  return lastBuild.text;
}
