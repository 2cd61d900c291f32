/**
 * The Kong log object: what `kong.log.serialize()` returns (kong/pdk/log.lua) and every Kong
 * logging plugin sends: kafka-log (Enterprise) one object per message, http-log (OSS) an array
 * when `max_batch_size` > 1, file-log one object per line. See docs/gateways/kong.md.
 *
 * Kong logs no plugin name, so a policy outcome is read from the status, from who answered
 * (`source`: `kong` or `upstream`, Kong 3.6+; before it, `latencies.proxy` is -1 when nothing
 * was proxied) and from the response headers the plugins set (`WWW-Authenticate`, `RateLimit-*`).
 * Headers prove an outcome; a status alone is a heuristic and is labelled `derived: status`.
 */
import { contractMethod, routeWithoutMatch, splitUri, type ContractMethod } from './common';
import { byteCount, challengeOf, clientIp, headerValue, identifierCut, isoTime, keyPart, latencyOf, numeric, objectOf, present, stringsOf, traceIdOf, userAgentCut } from './fields';
import { translateJsonBatch, type PolicySignal, type RecordRead } from './record-events';
import type { AdapterSettings, GatewayAdapter } from './types';

/** How an authentication plugin's challenge names it: scheme → policy name and auth context. */
const KONG_CHALLENGES: Record<string, Pick<PolicySignal, 'name' | 'authContext'>> = {
  key: { name: 'kong-key-auth', authContext: 'api_key' },
  basic: { name: 'kong-basic-auth', authContext: 'basic' },
  ldap: { name: 'kong-ldap-auth', authContext: 'basic' },
  hmac: { name: 'kong-hmac-auth' },
  // A Bearer challenge does not tell the jwt plugin from oauth2: jwt (kong/plugins/jwt/handler.lua)
  // answers `Bearer error="invalid_token"` to every failure but a missing token, and oauth2
  // (kong/plugins/oauth2/access.lua) answers a missing token `Bearer realm="..."` with no error.
  // So neither plugin nor auth context is claimed.
  bearer: { name: 'kong-bearer-auth' },
};

/** Whether the gateway itself answered (a plugin's exit), rather than the upstream. */
function answeredByGateway(raw: Record<string, unknown>): boolean {
  const source = present(raw.source);
  if (source === 'kong') return true;
  if (source === 'upstream') return false;
  // Before Kong 3.6 there is no `source`: a request never proxied has latencies.proxy -1.
  const proxy = numeric(objectOf(raw.latencies)?.proxy);
  if (proxy !== undefined) return proxy < 0;
  return present(raw.upstream_status) === undefined;
}

/**
 * The rate-limiting headers Kong's and APISIX's plugins set: `RateLimit-*`, `X-RateLimit-*-<window>`,
 * `Retry-After`, and APISIX limit-count's per-rule `X-<prefix>-RateLimit-*` (or names its plugin
 * metadata sets, which keep `RateLimit-Remaining` in them).
 */
export function rateLimitHeaders(headers: unknown): { present: boolean; exhausted: boolean } {
  const table = objectOf(headers) ?? {};
  let found = false;
  let exhausted = false;
  for (const [name, value] of Object.entries(table)) {
    const lower = name.toLowerCase();
    if (lower === 'retry-after' || lower.includes('ratelimit-')) found = true;
    if (lower.includes('ratelimit-remaining')) {
      if (numeric(Array.isArray(value) ? (value[0] as unknown) : value) === 0) exhausted = true;
    }
  }
  return { present: found, exhausted };
}

/** How a Kong-shaped gateway (Kong, APISIX) names the plugins behind its outcomes. */
export interface GatewayPolicyNames {
  /** `kong`: an unknown challenge scheme is `<prefix>-<scheme>-auth`, a bare gateway 403 `<prefix>-403`. */
  prefix: string;
  /** Challenge scheme → policy name and auth context. */
  challenges: Readonly<Record<string, Pick<PolicySignal, 'name' | 'authContext'>>>;
  /**
   * The plugin a Bearer challenge with an `error` (RFC 6750) proves, where only one plugin sends
   * one (APISIX's openid-connect); absent where it proves none (Kong), and the challenge is read
   * through `challenges.bearer` like one without an error.
   */
  bearerError?: Pick<PolicySignal, 'name' | 'authContext'>;
  /** The plugin likely behind a consumer's 403. */
  consumerDenied: string;
  /** The plugin that sets the rate-limit headers. */
  rateLimit: string;
}

/**
 * The policy outcomes a Kong-shaped record proves (or, labelled, suggests), from its status,
 * whether the gateway itself answered, its `WWW-Authenticate` challenge and rate-limit headers:
 * the reading Kong and APISIX share, each with its own plugin names.
 */
export function gatewayPolicies(input: {
  status: number;
  gateway: boolean;
  responseHeaders: unknown;
  /** Whether the record names a consumer (for a 403). */
  consumer: boolean;
  /** The authentication pass the record proves, if any (a consumer an auth plugin identified). */
  pass?: PolicySignal;
  names: GatewayPolicyNames;
}): PolicySignal[] {
  const { status, gateway, names } = input;
  const signals: PolicySignal[] = [];
  if (status === 401) {
    const challenge = gateway ? challengeOf(headerValue(input.responseHeaders, 'www-authenticate')) : undefined;
    if (challenge !== undefined) {
      const known = challenge.scheme === 'bearer' && challenge.error !== undefined && names.bearerError !== undefined ? names.bearerError : names.challenges[challenge.scheme];
      signals.push({
        kind: 'authn',
        outcome: 'fail',
        name: known?.name ?? `${names.prefix}-${challenge.scheme}-auth`,
        reason: challenge.error ?? 'invalid_or_missing_credentials',
        ...(known?.authContext !== undefined ? { authContext: known.authContext } : {}),
      });
    } else {
      signals.push({ kind: 'authn', outcome: 'fail', name: 'http-401', reason: 'unauthorized', derived: 'status' });
    }
  } else if (input.pass !== undefined) {
    signals.push(input.pass);
  }

  if (status === 403) {
    // The body is not logged, and several plugins answer 403 (acl, ip-restriction,
    // bot-detection; consumer-restriction, ua-restriction), so even a consumer's 403 is only
    // likely the consumer plugin's.
    if (!gateway) signals.push({ kind: 'authz', outcome: 'fail', name: 'http-403', reason: 'forbidden', derived: 'status' });
    else if (input.consumer) signals.push({ kind: 'authz', outcome: 'fail', name: names.consumerDenied, reason: 'consumer_not_allowed', derived: 'status' });
    else signals.push({ kind: 'custom', outcome: 'fail', name: `${names.prefix}-403`, reason: 'forbidden', derived: 'status' });
  }

  // A limiter answers its own code (Kong's 429, APISIX limit-count's 503) with the headers, the quota at 0.
  const limits = rateLimitHeaders(input.responseHeaders);
  if (gateway && status >= 400 && (limits.exhausted || (status === 429 && limits.present))) {
    signals.push({ kind: 'rate_limit', outcome: 'fail', name: names.rateLimit, reason: 'limit_exceeded' });
  } else if (status === 429) {
    signals.push({ kind: 'rate_limit', outcome: 'fail', name: 'http-429', reason: 'too_many_requests', derived: 'status' });
  }
  return signals;
}

const KONG_NAMES: GatewayPolicyNames = { prefix: 'kong', challenges: KONG_CHALLENGES, consumerDenied: 'kong-acl', rateLimit: 'kong-rate-limiting' };

/** The policy outcomes one Kong record proves (or, labelled, suggests). */
export function kongPolicies(raw: Record<string, unknown>, status: number): PolicySignal[] {
  const request = objectOf(raw.request) ?? {};
  const consumer = objectOf(raw.consumer) ?? objectOf(raw.authenticated_entity);
  const anonymous = headerValue(request.headers, 'x-anonymous-consumer') === 'true';
  // An authentication plugin identified the consumer; Kong logs which credential, not how.
  const verified = present(objectOf(request.tls)?.client_verify) === 'SUCCESS';
  const pass: PolicySignal | undefined =
    consumer !== undefined && !anonymous ? { kind: 'authn', outcome: 'pass', name: 'kong-auth', reason: 'consumer_authenticated', ...(verified ? { authContext: 'mtls' } : {}) } : undefined;
  return gatewayPolicies({
    status,
    gateway: answeredByGateway(raw),
    responseHeaders: objectOf(raw.response)?.headers,
    consumer: consumer !== undefined,
    ...(pass !== undefined ? { pass } : {}),
    names: KONG_NAMES,
  });
}

/** The route the contract wants: Kong's first plain path (a prefix), else `/<route name>`, else the path (`/{unmatched}` for a 404). */
function kongRoute(route: Record<string, unknown> | undefined, path: string, status: number): string {
  const first = Array.isArray(route?.paths) ? present(route.paths[0]) : undefined;
  // A path starting with `~` is a regex, not something to group by.
  if (first?.startsWith('/') === true) return first;
  const name = present(route?.name);
  return name !== undefined ? `/${name}` : routeWithoutMatch(status, path);
}

/**
 * The method, path and status a Kong-shaped record (Kong's log object, APISIX's entry) must carry,
 * or why it is skipped or refused.
 */
export function requestLine(
  request: Record<string, unknown>,
  responseValue: unknown,
): { methodText: string; method: ContractMethod; uri: { path: string }; response: Record<string, unknown> | undefined; status: number } | Exclude<RecordRead, { record: unknown }> {
  const methodText = present(request.method);
  if (methodText === undefined) return { reject: 'adapter_unmapped', message: 'request.method is missing' };
  const method = contractMethod(methodText);
  if (method === undefined) return { skip: 'method_unsupported' };
  const uri = splitUri(present(request.uri) ?? present(request.url) ?? '');
  if (uri === undefined) return { reject: 'adapter_unmapped', message: `request.uri ${JSON.stringify(request.uri)} is not a path starting with "/"` };
  const response = objectOf(responseValue);
  const status = numeric(response?.status);
  if (status === undefined || !Number.isInteger(status) || status < 100 || status > 599) {
    return { reject: 'adapter_unmapped', message: `response.status ${JSON.stringify(response?.status)} is not an HTTP status` };
  }
  return { methodText, method, uri, response, status };
}

/** Reads one Kong log object; see the module comment. */
export function readKongRecord(raw: Record<string, unknown>, settings: Pick<AdapterSettings, 'kongUserHeader'> = {}): RecordRead {
  const request = objectOf(raw.request);
  if (request === undefined) {
    // The stream subsystem (TCP/TLS routes) logs a `session`, not a request.
    if (objectOf(raw.session) !== undefined) return { skip: 'not_http' };
    return { reject: 'adapter_unparseable', message: 'no "request" object: not a Kong log record' };
  }
  const line = requestLine(request, raw.response);
  if ('skip' in line || 'reject' in line) return line;
  const { methodText, method, uri, response, status } = line;
  const time = isoTime(raw.started_at);
  if (time === undefined) return { reject: 'adapter_unmapped', message: `started_at ${JSON.stringify(raw.started_at)} is not a time in epoch milliseconds` };
  const route = objectOf(raw.route);
  const service = objectOf(raw.service);
  // Groups are configured by name; an unnamed route or service is looked up by its id.
  const routeKey = identifierCut(route?.name) ?? identifierCut(route?.id);
  const serviceKey = identifierCut(service?.name) ?? identifierCut(service?.id);
  const api = serviceKey ?? identifierCut(headerValue(request.headers, 'host'));
  if (api === undefined) return { reject: 'adapter_unmapped', message: 'no service.name, service.id or Host header to name the API' };
  // A route whose auth plugin names an `anonymous` consumer logs that consumer for every request it
  // could not authenticate, and marks the request X-Anonymous-Consumer: true. That consumer is no
  // caller: naming it would put every unauthenticated client under one consumer, and the rules
  // that look for requests with no consumer (enumeration-per-ip) would never see them.
  const anonymous = headerValue(request.headers, 'x-anonymous-consumer') === 'true';
  const consumer = objectOf(raw.consumer);
  const consumerId = anonymous
    ? undefined
    : (identifierCut(consumer?.username) ?? identifierCut(consumer?.custom_id) ?? identifierCut(consumer?.id) ?? identifierCut(objectOf(raw.authenticated_entity)?.consumer_id));
  // oauth2 sets X-Authenticated-Userid on the request it proxies (and clears a client's); on a
  // route without oauth2 the header is whatever the client sent, and the record can't tell which
  // plugin authenticated. So it names the user only where the operator says oauth2 runs
  // (VIGIL_ADAPT_KONG_USER_HEADER), and then only when a credential authenticated the request
  // (`authenticated_entity`, never logged for the anonymous consumer or an open route).
  const credential = objectOf(raw.authenticated_entity);
  const authenticated = settings.kongUserHeader === true && credential !== undefined && !anonymous;
  const userId = authenticated ? identifierCut(headerValue(request.headers, 'x-authenticated-userid')) : undefined;
  const ip = clientIp(raw.client_ip);
  const agent = userAgentCut(headerValue(request.headers, 'user-agent'));
  const traceId = traceIdOf(headerValue(request.headers, 'traceparent'));
  const requestId = identifierCut(request.id);
  const upstreamService = identifierCut(service?.host);
  const workspace = identifierCut(raw.workspace_name);
  const source = present(raw.source);
  const latencies = objectOf(raw.latencies);
  const bytesIn = byteCount(numeric(request.size));
  const bytesOut = byteCount(numeric(response?.size));
  return {
    record: {
      ...(requestId !== undefined ? { requestId } : {}),
      // No request id (Kong before 3.5): the record's own facts, never anything Vigil adds.
      recordKey: [raw.started_at, raw.client_ip, methodText, request.uri, status, latencies?.request, request.size].map(keyPart).join('|'),
      ...(traceId !== undefined ? { traceId } : {}),
      time,
      timeIsStart: true,
      method,
      path: uri.path,
      route: kongRoute(route, uri.path, status),
      status,
      latencyMs: latencyOf(numeric(latencies?.request)),
      ...(bytesIn !== undefined ? { bytesIn } : {}),
      ...(bytesOut !== undefined ? { bytesOut } : {}),
      api,
      ...(upstreamService !== undefined ? { upstreamService } : {}),
      ...(consumerId !== undefined ? { consumerId } : {}),
      ...(userId !== undefined ? { userId } : {}),
      ...(ip !== undefined ? { clientIp: ip } : {}),
      ...(agent !== undefined ? { userAgent: agent } : {}),
      groupKeys: {
        ...(routeKey !== undefined ? { route: routeKey } : {}),
        ...(serviceKey !== undefined ? { service: serviceKey } : {}),
        tags: [...stringsOf(route?.tags), ...stringsOf(service?.tags)],
      },
      labels: {
        ...(workspace !== undefined ? { workspace } : {}),
        ...(source !== undefined && /^[a-z_]{1,32}$/.test(source) ? { response_source: source } : {}),
      },
      policies: kongPolicies(raw, status),
    },
  };
}

/** The `kong` format: Kong's log object, one per message or an array of them. */
export const kongAdapter: GatewayAdapter = {
  format: 'kong',
  description: "Kong's log object (kafka-log, http-log, file-log; one object or a batch array)",
  translate: (value, settings) => translateJsonBatch('kong', value, settings, readKongRecord),
};
