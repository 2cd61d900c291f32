import { isIP } from 'node:net';
import { contractMethod, routeWithoutMatch, splitUri } from './common';
import { clientIp, hasControl, identifierText, isoTime, numeric, present, userAgentCut } from './fields';
import { recordEvents, type PolicySignal } from './record-events';
import type { AdapterResult, AdapterSettings, GatewayAdapter, GroupKeys } from './types';

/**
 * Envoy-family JSON access logs: Istio's default JSON (`EnvoyJSONLogFormatIstio`), Envoy
 * Gateway's default (a JSON-shaped text format with `x-envoy-origin-path`, `:authority` and
 * other header-named keys), and a user's own `json_format`/`typed_json_format` using the key set
 * docs/gateways/envoy.md recommends. Values may be text (`json_format`) or numbers
 * (`typed_json_format`); `"-"` is Envoy's "unset".
 */

/** The roles a record's keys play, each with the key names that fill it, first present wins. */
export interface EnvoyKeys {
  time: readonly string[];
  method: readonly string[];
  path: readonly string[];
  status: readonly string[];
  flags: readonly string[];
  details: readonly string[];
  bytesIn: readonly string[];
  bytesOut: readonly string[];
  duration: readonly string[];
  forwardedFor: readonly string[];
  remoteAddress: readonly string[];
  /** The physical peer (`%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%`): what tells the entry Envoy appended to X-Forwarded-For. */
  directRemoteAddress: readonly string[];
  userAgent: readonly string[];
  requestId: readonly string[];
  traceId: readonly string[];
  authority: readonly string[];
  upstreamCluster: readonly string[];
  routeName: readonly string[];
  /** The verified JWT subject, logged with `%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:<payload_in_metadata>:sub)%`. */
  jwtSubject: readonly string[];
  /** The client the token was issued to (`azp`, or `client_id`), the API consumer. */
  jwtClient: readonly string[];
  /** A consumer named some other way (an API-key header, an ext_authz-set header). */
  consumer: readonly string[];
  instance: readonly string[];
  /** Latency in seconds (NGINX's `$request_time`), when no millisecond duration is logged. */
  durationSeconds: readonly string[];
  /** A gateway's own error category (AWS `$context.error.responseType`, Apigee `fault.name`); see `GATEWAY_ERROR_TYPES`. */
  errorType: readonly string[];
  /** NGINX `$limit_req_status`: PASSED, DELAYED, REJECTED, and their `_DRY_RUN` forms. */
  limitReqStatus: readonly string[];
  /** The policy name a template writes as a literal, for the signals `errorType` and `limitReqStatus` give. */
  policyName: readonly string[];
}

/** Istio's and Envoy Gateway's default keys, and Vigil's recommended additions. */
export const ENVOY_DEFAULT_KEYS: EnvoyKeys = {
  time: ['start_time'],
  method: ['method'],
  path: ['path', 'x-envoy-origin-path'],
  status: ['response_code'],
  flags: ['response_flags'],
  details: ['response_code_details'],
  bytesIn: ['bytes_received'],
  bytesOut: ['bytes_sent'],
  duration: ['duration'],
  forwardedFor: ['x_forwarded_for', 'x-forwarded-for'],
  remoteAddress: ['downstream_remote_address'],
  directRemoteAddress: ['downstream_direct_remote_address'],
  userAgent: ['user_agent', 'user-agent'],
  requestId: ['request_id', 'x-request-id'],
  traceId: ['trace_id'],
  authority: ['authority', ':authority'],
  upstreamCluster: ['upstream_cluster'],
  routeName: ['route_name'],
  jwtSubject: ['jwt_sub'],
  jwtClient: ['jwt_azp', 'jwt_client_id'],
  consumer: ['consumer_id'],
  instance: ['node_name', 'hostname'],
  durationSeconds: ['duration_s'],
  errorType: ['error_type'],
  limitReqStatus: ['limit_req_status'],
  policyName: ['policy_name'],
};

/**
 * Error categories other gateways log, for the templates in docs/gateways/templates.md: AWS API
 * Gateway's gateway response types (`$context.error.responseType`) and Apigee's fault names
 * (`fault.name`, the last part of the fault code). A category absent here proves nothing.
 */
export const GATEWAY_ERROR_TYPES: Readonly<Record<string, 'authn' | 'authz' | 'rate_limit' | 'custom'>> = {
  // AWS API Gateway
  UNAUTHORIZED: 'authn',
  MISSING_AUTHENTICATION_TOKEN: 'authn',
  INVALID_API_KEY: 'authn',
  EXPIRED_TOKEN: 'authn',
  INVALID_SIGNATURE: 'authn',
  ACCESS_DENIED: 'authz',
  THROTTLED: 'rate_limit',
  QUOTA_EXCEEDED: 'rate_limit',
  WAF_FILTERED: 'custom',
  // Apigee
  InvalidApiKey: 'authn',
  FailedToResolveAPIKey: 'authn',
  ApiKeyNotApproved: 'authn',
  invalid_access_token: 'authn',
  InvalidAccessToken: 'authn',
  access_token_expired: 'authn',
  access_token_not_approved: 'authn',
  InvalidApiKeyForGivenResource: 'authz',
  InsufficientScope: 'authz',
  IPDeniedAccess: 'authz',
  SpikeArrestViolation: 'rate_limit',
  QuotaViolation: 'rate_limit',
};

/**
 * Where `client.ip` comes from. `remote` (the default): `downstream_remote_address`, which Envoy
 * already resolved through its own XFF trust settings (`use_remote_address`,
 * `xff_num_trusted_hops`); the first X-Forwarded-For entry only when that is absent. `xff`: the
 * first X-Forwarded-For entry when present, for an Envoy behind a load balancer that does not
 * trust XFF itself; that entry is whatever the client wrote, so per-IP rules can be evaded.
 */
export type ClientIpSource = 'remote' | 'xff';

export interface EnvoyOptions {
  /** Extra or replacement key names per role, merged in front of the defaults. */
  keys?: Partial<Record<keyof EnvoyKeys, readonly string[]>>;
  clientIp?: ClientIpSource;
}

type Json = Record<string, unknown>;

/**
 * One HTTP request as an access-log format tells it (Envoy's JSON, OTLP's attributes), every
 * field still optional: {@link accessRecordEvents} checks what the contract requires, naming the
 * keys it looked up, then hands it to the one builder, `recordEvents`.
 */
export interface AccessRecord {
  /** RFC 3339. */
  time?: string;
  requestId?: string;
  traceId?: string;
  /** As logged; a method outside the contract skips the record. */
  method?: string;
  /** Path, possibly with a query or as an absolute URL; the query is dropped. */
  uri?: string;
  /** A route template (`/accounts/{id}`) or a route name (`orders-v1`). */
  route?: string;
  status?: number;
  latencyMs?: number;
  bytesIn?: number;
  bytesOut?: number;
  clientIp?: string;
  userAgent?: string;
  userId?: string;
  consumerId?: string;
  /** `resource.api`: the API the request addressed (authority, `server.address`). */
  api?: string;
  upstream?: string;
  instance?: string;
  groupKeys: GroupKeys;
  signals: readonly PolicySignal[];
  labels?: Record<string, string>;
  /**
   * What identifies the record, hashed into the event ids as JSON: alone when it has no request
   * id, with `distinct` beside a request id.
   */
  fallback: readonly unknown[];
  /**
   * More of the record's facts, read and hashed beside `fallback` only when it has a request id: two
   * proxies log one request id (Istio's sidecars, outbound and inbound) in the same millisecond
   * from the same client, and differ in the upstream, the duration or the bytes. (Not in the
   * ids without a request id, which stay as they were.)
   */
  distinct?: () => readonly unknown[];
  /** The record's own field names, for messages that say what was looked up. */
  lookedUp: { path: string; status: string; time: string };
}

const count = (value: number | undefined): number | undefined => (value !== undefined && Number.isInteger(value) && value >= 0 ? value : undefined);

/** The route the contract takes: a template as is, a route name under `/`, else the path itself (`/{unmatched}` for a 404). */
function contractRoute(route: string | undefined, path: string, status: number): string {
  if (route === undefined || route === '' || hasControl(route)) return routeWithoutMatch(status, path);
  return route.startsWith('/') ? route : `/${route}`;
}

const quoted = (value: string | undefined): string => (value === undefined ? '(none)' : JSON.stringify(value));

/**
 * Checks one access record against what the contract requires and builds its events with
 * `recordEvents`, or appends one reject or skip to `out`. `index` is the record's position in
 * the message, for the reject's message.
 */
export function accessRecordEvents(format: string, record: AccessRecord, index: number, settings: AdapterSettings, out: AdapterResult): void {
  const method = contractMethod(record.method);
  if (method === undefined) {
    out.skipped.push({ reason: 'method_unsupported', record: index });
    return;
  }
  const target = record.uri === undefined ? undefined : splitUri(record.uri);
  if (target === undefined) {
    out.rejected.push({ reason: 'adapter_unmapped', record: index, message: `record ${index}: no request path starting with "/" (looked up ${record.lookedUp.path}: ${quoted(record.uri)})` });
    return;
  }
  const status = record.status;
  if (status === 0) {
    // Envoy's response_code when none was sent: the client went away (DC) or the stream was reset
    // before an answer. No request outcome to record, and nothing a redrive could ever fix.
    out.skipped.push({ reason: 'no_response', record: index });
    return;
  }
  if (status === undefined || !Number.isInteger(status) || status < 100 || status > 599) {
    out.rejected.push({ reason: 'adapter_unmapped', record: index, message: `record ${index}: no HTTP status 100-599 (looked up ${record.lookedUp.status})` });
    return;
  }
  if (record.time === undefined) {
    out.rejected.push({ reason: 'adapter_unmapped', record: index, message: `record ${index}: no time (looked up ${record.lookedUp.time})` });
    return;
  }
  const requestId = identifierText(record.requestId);
  const traceId = identifierText(record.traceId);
  const userId = identifierText(record.userId);
  const consumerId = identifierText(record.consumerId);
  const ip = record.clientIp !== undefined && isIP(record.clientIp) !== 0 ? record.clientIp : undefined;
  const agent = userAgentCut(record.userAgent);
  const api = identifierText(record.api) ?? identifierText(record.groupKeys.service);
  const upstreamService = identifierText(record.upstream);
  const instance = identifierText(record.instance);
  recordEvents(
    format,
    {
      ...(requestId !== undefined ? { requestId } : {}),
      recordKey: JSON.stringify(requestId === undefined || record.distinct === undefined ? record.fallback : [...record.fallback, ...record.distinct()]),
      ...(traceId !== undefined ? { traceId } : {}),
      time: record.time,
      method,
      path: target.path,
      route: contractRoute(record.route, target.path, status),
      status,
      latencyMs: record.latencyMs ?? 0,
      // Absent when the record has no count: the contract reads absent as unknown, 0 as empty.
      ...(count(record.bytesIn) !== undefined ? { bytesIn: count(record.bytesIn) } : {}),
      ...(count(record.bytesOut) !== undefined ? { bytesOut: count(record.bytesOut) } : {}),
      ...(api !== undefined ? { api } : {}),
      ...(upstreamService !== undefined ? { upstreamService } : {}),
      ...(instance !== undefined ? { instance } : {}),
      ...(userId !== undefined ? { userId } : {}),
      ...(consumerId !== undefined ? { consumerId } : {}),
      ...(ip !== undefined ? { clientIp: ip } : {}),
      ...(agent !== undefined ? { userAgent: agent } : {}),
      groupKeys: record.groupKeys,
      ...(record.labels !== undefined ? { labels: record.labels } : {}),
      policies: record.signals,
    },
    index,
    settings,
    out,
  );
}

/** The policy event a status alone suggests (401, 403, 429), marked as a heuristic. */
export function statusSignal(status: number | undefined, reason?: string): PolicySignal | undefined {
  const kind = status === 401 ? 'authn' : status === 403 ? 'authz' : status === 429 ? 'rate_limit' : undefined;
  if (kind === undefined || status === undefined) return undefined;
  return { kind, name: `http-${status}`, outcome: 'fail', derived: 'status', ...(reason !== undefined ? { reason } : {}) };
}

function pick(record: Json, names: readonly string[]): unknown {
  for (const name of names) {
    const value = record[name];
    if (value !== undefined && value !== null && present(value) !== undefined) return value;
  }
  return undefined;
}

const text = (record: Json, names: readonly string[]): string | undefined => present(pick(record, names));
const number = (record: Json, names: readonly string[]): number | undefined => numeric(pick(record, names));

// Envoy's %START_TIME% default is already what toISOString writes; parsing it again is the single
// largest cost of a record, so that exact shape passes through (the contract still checks it).
const ISO_UTC_MILLIS = /^\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-6]\d\.\d{3}Z$/;
const startTime = (value: unknown): string | undefined => (typeof value === 'string' && ISO_UTC_MILLIS.test(value) ? value : isoTime(value));

const seconds = (value: number | undefined): number | undefined => (value === undefined ? undefined : value * 1000);

const JWT_DENIED = /^jwt_authn_access_denied\{(.*)\}$/;
const RBAC_DENIED = /^rbac_access_denied_matched_policy\[(.*)\]$/;

/**
 * Envoy's own account of a request's policy outcome, from `%RESPONSE_FLAGS%` (comma-separated
 * short flags) and `%RESPONSE_CODE_DETAILS%`; shared by this adapter and the OTLP adapter, which
 * reads the same two values from the attributes docs/gateways/otel.md recommends. With neither
 * proving anything, a 401/403/429 status gives a heuristic signal. A verified JWT subject with
 * no authentication failure proves a `jwt-authn` pass.
 */
/**
 * Envoy's response flags for a failure of Envoy, an upstream or a service it asks, not a decision
 * about the caller: the rate limit service's error (RLSE), no route or cluster, upstream and
 * downstream connection failures, resets, timeouts, overflow, overload, DNS, injected faults.
 */
const OUTAGE_FLAGS: ReadonlySet<string> = new Set(['RLSE', 'NR', 'NC', 'UH', 'UF', 'UO', 'URX', 'UT', 'UC', 'UR', 'LR', 'LH', 'DC', 'DT', 'SI', 'DPE', 'UPE', 'UMSDR', 'OM', 'DF', 'DI', 'FI']);

export function envoyPolicySignals(input: {
  flags?: string;
  details?: string;
  status?: number;
  verifiedSubject?: string;
  statusReason?: string;
  errorType?: string;
  limitReqStatus?: string;
  policyName?: string;
  /** The matched route or resource, when the record names one. */
  routeName?: string;
}): PolicySignal[] {
  const flags = new Set((input.flags ?? '').split(',').map((flag) => flag.trim()).filter((flag) => flag !== '' && flag !== '-'));
  const details = input.details;
  const signals: PolicySignal[] = [];
  const jwt = details !== undefined ? JWT_DENIED.exec(details) : null;
  const rbac = details !== undefined ? RBAC_DENIED.exec(details) : null;
  if (jwt) {
    signals.push({ kind: 'authn', name: 'jwt-authn', outcome: 'fail', reason: jwt[1] || 'jwt_authn_access_denied', authContext: 'jwt' });
  } else if (details === 'ext_authz_denied' || (flags.has('UAEX') && details !== 'ext_authz_error')) {
    // ext_authz answers 403 by default; a 401 is the authorization service saying "who are you".
    // A 3xx is a sign-in redirect (oauth2-proxy, an OIDC filter) on a browser's first visit: no
    // credential was tried, so no outcome is recorded (it read as an authorization failure).
    const redirect = input.status !== undefined && input.status >= 300 && input.status < 400;
    if (!redirect) signals.push({ kind: input.status === 401 ? 'authn' : 'authz', name: 'ext-authz', outcome: 'fail', reason: details ?? 'UAEX' });
  } else if (rbac) {
    signals.push({ kind: 'authz', name: `rbac:${rbac[1] ?? ''}`, outcome: 'fail', reason: 'rbac_access_denied' });
  }
  if (details === 'local_rate_limited') {
    signals.push({ kind: 'rate_limit', name: 'local-ratelimit', outcome: 'fail', reason: details });
  } else if (details === 'request_rate_limited' || flags.has('RL')) {
    signals.push({ kind: 'rate_limit', name: 'envoy-ratelimit', outcome: 'fail', reason: details ?? 'RL' });
  }
  // AWS answers MISSING_AUTHENTICATION_TOKEN (403) for a resource or method the API does not have
  // as well: with no resource matched (`route_name` from `$context.resourcePath` empty) it is a
  // "not found", no verdict on the caller's credentials, and a path scanner must not read as a
  // credential attack.
  const unknownResource = input.errorType === 'MISSING_AUTHENTICATION_TOKEN' && input.routeName === undefined;
  const errorKind = !unknownResource && input.errorType !== undefined && Object.hasOwn(GATEWAY_ERROR_TYPES, input.errorType) ? GATEWAY_ERROR_TYPES[input.errorType] : undefined;
  if (errorKind !== undefined && !signals.some((signal) => signal.kind === errorKind)) {
    signals.push({ kind: errorKind, name: input.policyName ?? 'gateway', outcome: 'fail', reason: input.errorType });
  }
  const limit = input.limitReqStatus;
  if (limit !== undefined && /^(PASSED|DELAYED|REJECTED)(_DRY_RUN)?$/.test(limit) && !signals.some((signal) => signal.kind === 'rate_limit')) {
    // A dry run enforced nothing: what it would have done is the reason of a pass.
    signals.push({ kind: 'rate_limit', name: input.policyName ?? 'nginx-limit-req', outcome: limit === 'REJECTED' ? 'fail' : 'pass', reason: limit });
  }
  // An outage is no verdict on the caller: ext_authz's status_on_error is 403 by default, and a
  // fault filter can inject a 429, so the status of such a request proves nothing either.
  const outage = details === 'ext_authz_error' || [...flags].some((flag) => OUTAGE_FLAGS.has(flag));
  if (signals.length === 0 && !outage && !unknownResource) {
    const heuristic = statusSignal(input.status, input.statusReason);
    if (heuristic) signals.push(heuristic);
  }
  if (input.verifiedSubject !== undefined && !signals.some((signal) => signal.kind === 'authn')) {
    signals.unshift({ kind: 'authn', name: 'jwt-authn', outcome: 'pass', authContext: 'jwt' });
  }
  return signals;
}

function mergeKeys(options: EnvoyOptions | undefined): EnvoyKeys {
  const keys: Record<string, readonly string[]> = { ...ENVOY_DEFAULT_KEYS };
  for (const [role, names] of Object.entries(options?.keys ?? {})) {
    if (names !== undefined) keys[role] = [...names, ...(keys[role] ?? [])];
  }
  return keys as unknown as EnvoyKeys;
}

/**
 * The client a logged X-Forwarded-For names: its rightmost entry, the one the proxy in front of
 * Envoy appended, after dropping a last entry that is Envoy's physical peer
 * (`downstream_direct_remote_address`, when logged: Envoy appends it with `use_remote_address`).
 * Not `downstream_remote_address`: without `use_remote_address` Envoy takes that from the
 * rightmost entry itself, and dropping it would hand back one the client wrote. Entries further
 * left are whatever the client wrote: until 6 December 2026 the first one was taken, and a client
 * rotating it evaded every per-IP rule, or named an address on the trusted-egress list or someone
 * else's. Behind more than one proxy, set Envoy's `xff_num_trusted_hops` and take
 * `downstream_remote_address` instead.
 */
function forwardedClient(value: unknown, peer: string | undefined): string | undefined {
  const text = present(value);
  if (text === undefined) return undefined;
  const entries = text.split(',');
  const last = clientIp(entries[entries.length - 1]);
  return entries.length > 1 && peer !== undefined && last === peer ? clientIp(entries[entries.length - 2]) : last;
}

/**
 * One Envoy JSON record as an `AccessRecord`, or `undefined` when it is not an HTTP request (a TCP
 * proxy's record has no method). Exported for the OTLP adapter, which finds the same object in
 * a log record's body (Envoy Gateway's OpenTelemetry sink, a kvlist body).
 */
export function envoyAccessRecord(record: Json, keys: EnvoyKeys = ENVOY_DEFAULT_KEYS, ipSource: ClientIpSource = 'remote'): AccessRecord | undefined {
  const method = text(record, keys.method);
  if (method === undefined) return undefined;
  const uri = text(record, keys.path);
  const status = number(record, keys.status);
  const time = startTime(pick(record, keys.time));
  const remote = clientIp(pick(record, keys.remoteAddress));
  const forwarded = forwardedClient(pick(record, keys.forwardedFor), clientIp(pick(record, keys.directRemoteAddress)));
  const ip = ipSource === 'xff' ? (forwarded ?? remote) : (remote ?? forwarded);
  const flags = text(record, keys.flags);
  const details = text(record, keys.details);
  const subject = text(record, keys.jwtSubject);
  const routeName = text(record, keys.routeName);
  const cluster = text(record, keys.upstreamCluster);
  const authority = text(record, keys.authority);
  const instance = text(record, keys.instance);
  return {
    time,
    requestId: text(record, keys.requestId),
    traceId: text(record, keys.traceId),
    method,
    uri,
    route: routeName,
    status,
    latencyMs: number(record, keys.duration) ?? seconds(number(record, keys.durationSeconds)),
    bytesIn: number(record, keys.bytesIn),
    bytesOut: number(record, keys.bytesOut),
    clientIp: ip,
    userAgent: text(record, keys.userAgent),
    userId: subject,
    consumerId: text(record, keys.jwtClient) ?? text(record, keys.consumer),
    api: authority,
    upstream: cluster,
    instance,
    groupKeys: { route: routeName, service: cluster, api: authority },
    signals: envoyPolicySignals({
      flags,
      details,
      status,
      verifiedSubject: subject,
      errorType: text(record, keys.errorType),
      limitReqStatus: text(record, keys.limitReqStatus),
      policyName: text(record, keys.policyName),
      routeName,
    }),
    labels: flags !== undefined ? { response_flags: flags } : undefined,
    fallback: [time, ip, method, uri, status, instance, routeName],
    distinct: () => [cluster, pick(record, keys.duration) ?? pick(record, keys.durationSeconds), pick(record, keys.bytesIn), pick(record, keys.bytesOut), authority],
    lookedUp: lookedUp(keys),
  };
}

const LOOKED_UP = new WeakMap<EnvoyKeys, AccessRecord['lookedUp']>();
/** The key names a reject message lists, joined once per key set rather than once per record. */
function lookedUp(keys: EnvoyKeys): AccessRecord['lookedUp'] {
  let names = LOOKED_UP.get(keys);
  if (names === undefined) {
    names = { path: keys.path.join(', '), status: keys.status.join(', '), time: keys.time.join(', ') };
    LOOKED_UP.set(keys, names);
  }
  return names;
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A file shipper may wrap the line: Filebeat's and Vector's JSON put it in `message`, Fluent
 * Bit's tail input in `log`. An object with no method but such a text holding a JSON object is
 * unwrapped once. A wrapped text that opens as an object and does not parse is an access log
 * line broken on the way (Envoy Gateway's default text format does not escape a `"` a client put
 * in a header): it is refused, naming the field, as a bare line would be, not skipped unseen.
 */
function unwrap(record: Json, keys: EnvoyKeys): { record: Json } | { broken: string } {
  if (pick(record, keys.method) !== undefined) return { record };
  for (const field of ['message', 'log']) {
    const inner = record[field];
    if (typeof inner === 'string' && inner.trimStart().startsWith('{')) {
      try {
        const parsed: unknown = JSON.parse(inner);
        if (isObject(parsed)) return { record: parsed };
      } catch (error) {
        return { broken: `the shipper's "${field}" text is not JSON: ${(error as Error).message}` };
      }
    }
  }
  return { record };
}

/** The records of one message: a JSON array, or one JSON object per line (a shipper's batch). */
function records(value: Uint8Array, out: AdapterResult): { index: number; record: Json }[] {
  const body = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8').trim();
  if (body.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(body);
      if (Array.isArray(parsed)) {
        return parsed.flatMap((item, index) => {
          if (isObject(item)) return [{ index, record: item }];
          out.rejected.push({ reason: 'adapter_unparseable', record: index, message: `record ${index}: not a JSON object` });
          return [];
        });
      }
    } catch (error) {
      out.rejected.push({ reason: 'adapter_unparseable', record: 0, message: `record 0: not JSON: ${(error as Error).message}` });
      return [];
    }
  }
  // One object written over several lines (pretty-printed): whole, before it is read line by line.
  if (body.startsWith('{') && body.includes('\n')) {
    try {
      const parsed: unknown = JSON.parse(body);
      if (isObject(parsed)) return [{ index: 0, record: parsed }];
    } catch {
      // Not one object: one per line, below.
    }
  }
  const found: { index: number; record: Json }[] = [];
  let index = 0;
  for (const line of body.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '') continue;
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (isObject(parsed)) found.push({ index, record: parsed });
      else out.rejected.push({ reason: 'adapter_unparseable', record: index, message: `record ${index}: not a JSON object` });
    } catch (error) {
      out.rejected.push({ reason: 'adapter_unparseable', record: index, message: `record ${index}: not JSON: ${(error as Error).message}` });
    }
    index += 1;
  }
  return found;
}

/** An Envoy JSON adapter; `options` adds key names for a user's own format and picks the client IP source. */
export function createEnvoyAdapter(options?: EnvoyOptions): GatewayAdapter {
  const keys = mergeKeys(options);
  const ipSource = options?.clientIp ?? 'remote';
  return {
    format: 'envoy',
    description: 'Envoy, Istio and Envoy Gateway JSON access logs (one per line, or a JSON array), with response flags and details as policy outcomes',
    translate(value: Uint8Array, settings: AdapterSettings): AdapterResult {
      const out: AdapterResult = { events: [], rejected: [], skipped: [], droppedDerived: [] };
      for (const { index, record } of records(value, out)) {
        const inner = unwrap(record, keys);
        if ('broken' in inner) {
          out.rejected.push({ reason: 'adapter_unparseable', record: index, message: `record ${index}: ${inner.broken}` });
          continue;
        }
        const http = envoyAccessRecord(inner.record, keys, ipSource);
        if (http === undefined) out.skipped.push({ reason: 'not_http', record: index });
        else accessRecordEvents('envoy', http, index, settings, out);
      }
      return out;
    },
  };
}

export const envoyAdapter: GatewayAdapter = createEnvoyAdapter();
