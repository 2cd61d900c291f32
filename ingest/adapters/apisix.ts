/**
 * Apache APISIX's log entry: what `get_full_log` builds (apisix/utils/log-util.lua) and the
 * kafka-logger, http-logger and file-logger plugins send. The kafka-logger's batch processor
 * puts a whole batch (up to `batch_max_size`, 1000 by default) in one message as a JSON array;
 * with `batch_max_size: 1` a message is one object. See docs/gateways/apisix.md.
 *
 * The entry has the Kong log object's shape with other keys, so it shares Kong's frame
 * (`translateJsonBatch`, `recordEvents`, `gatewayPolicies`). An APISIX plugin
 * that refuses a request does so before proxying, so an entry with no `upstream` address was
 * answered by APISIX itself.
 */
import { byteCount, clientIp, headerValue, identifierCut, isoTime, keyPart, latencyOf, numeric, objectOf, present, traceIdOf, userAgentCut } from './fields';
import { translateJsonBatch, type PolicySignal, type RecordRead } from './record-events';
import { gatewayPolicies, requestLine, type GatewayPolicyNames } from './kong';
import type { AdapterSettings, GatewayAdapter } from './types';
import { routeWithoutMatch } from './common';

const APISIX_NAMES: GatewayPolicyNames = {
  prefix: 'apisix',
  challenges: {
    apikey: { name: 'apisix-key-auth', authContext: 'api_key' },
    key: { name: 'apisix-key-auth', authContext: 'api_key' },
    basic: { name: 'apisix-basic-auth', authContext: 'basic' },
    // jwt-auth answers `Bearer realm="..."` (apisix/plugins/jwt-auth.lua), and so does
    // openid-connect with bearer_only and no token (apisix/plugins/openid-connect.lua): no plugin
    // is claimed. hmac-auth's `hmac realm="..."` falls to the default, apisix-hmac-auth.
    bearer: { name: 'apisix-bearer-auth' },
  },
  // Only openid-connect adds `error="invalid_token"` to its Bearer challenge.
  bearerError: { name: 'apisix-openid-connect', authContext: 'oauth2' },
  consumerDenied: 'apisix-consumer-restriction',
  // limit-count rejects with its `rejected_code` (503 by default) and X-RateLimit-Remaining: 0;
  // limit-req and limit-conn set no header, so their bare 503 stays an unexplained 503.
  rateLimit: 'apisix-limit-count',
};

/** The anonymous consumers when the settings name none: APISIX's docs name theirs `anonymous`. */
export const DEFAULT_APISIX_ANONYMOUS_CONSUMERS: readonly string[] = ['anonymous'];

/**
 * The policy outcomes one APISIX entry proves (or, labelled, suggests). jwt-auth and hmac-auth
 * answer 401 with a `Bearer realm=` / `hmac realm=` challenge, so their failures are read like
 * key-auth's and basic-auth's (see docs/gateways/apisix.md).
 *
 * A consumer in the entry is an authentication pass, except the anonymous consumer: with
 * `anonymous_consumer` set, key-auth, jwt-auth, basic-auth and hmac-auth attach it when the
 * credential is missing or wrong (`_M.rewrite` in apisix/plugins/key-auth.lua and its siblings,
 * `get_anonymous_consumer` in apisix/consumer.lua), and `get_full_log`
 * (apisix/utils/log-util.lua) logs only `consumer.username`, as for any consumer. Nothing else in
 * the entry tells it apart, so the operator names it (`apisixAnonymousConsumers`). It still counts
 * as a consumer for a 403, which consumer-restriction can answer for it too.
 */
export function apisixPolicies(raw: Record<string, unknown>, status: number, anonymousConsumers: readonly string[] = DEFAULT_APISIX_ANONYMOUS_CONSUMERS): PolicySignal[] {
  const username = present(objectOf(raw.consumer)?.username) ?? present(raw.consumer_name);
  const consumer = objectOf(raw.consumer) !== undefined || username !== undefined;
  const anonymous = username !== undefined && anonymousConsumers.includes(username);
  return gatewayPolicies({
    status,
    gateway: present(raw.upstream) === undefined,
    responseHeaders: objectOf(raw.response)?.headers,
    consumer,
    ...(consumer && !anonymous ? { pass: { kind: 'authn', outcome: 'pass', name: 'apisix-auth', reason: 'consumer_authenticated' } } : {}),
    names: APISIX_NAMES,
  });
}

/** Reads one APISIX log entry; see the module comment. */
export function readApisixRecord(raw: Record<string, unknown>, settings: Pick<AdapterSettings, 'apisixAnonymousConsumers'> = {}): RecordRead {
  const request = objectOf(raw.request);
  if (request === undefined) return { reject: 'adapter_unparseable', message: 'no "request" object: not an APISIX log entry (a custom log_format must keep the default entry; use log_format_extra)' };
  const line = requestLine(request, raw.response);
  if ('skip' in line || 'reject' in line) return line;
  const { methodText, method, uri, response, status } = line;
  const time = isoTime(typeof raw.start_time === 'number' ? Math.floor(raw.start_time) : raw.start_time);
  if (time === undefined) return { reject: 'adapter_unmapped', message: `start_time ${JSON.stringify(raw.start_time)} is not a time in epoch milliseconds` };
  // `route_name` and `service_name` come from log_format_extra ($route_name, $service_name).
  const routeKey = identifierCut(raw.route_name) ?? identifierCut(raw.route_id);
  const serviceKey = identifierCut(raw.service_name) ?? identifierCut(raw.service_id);
  const api = serviceKey ?? identifierCut(headerValue(request.headers, 'host'));
  if (api === undefined) return { reject: 'adapter_unmapped', message: 'no service_name, service_id or Host header to name the API' };
  // The anonymous consumer is no caller (as Kong's, kong.ts): naming it would put every
  // unauthenticated client under one consumer, and the rules that look for requests with no
  // consumer (enumeration-per-ip) would never see them.
  const named = identifierCut(objectOf(raw.consumer)?.username) ?? identifierCut(raw.consumer_name);
  const consumerId = named !== undefined && (settings.apisixAnonymousConsumers ?? DEFAULT_APISIX_ANONYMOUS_CONSUMERS).includes(named) ? undefined : named;
  const ip = clientIp(raw.client_ip);
  const agent = userAgentCut(headerValue(request.headers, 'user-agent'));
  const traceId = traceIdOf(headerValue(request.headers, 'traceparent'));
  // log_format_extra can add nginx's own $request_id; the request-id plugin sets X-Request-Id on
  // the request, keeping one the client sent. The gateway's own comes first.
  const requestId = identifierCut(raw.request_id) ?? identifierCut(headerValue(request.headers, 'x-request-id'));
  const instance = identifierCut(objectOf(raw.server)?.hostname);
  const upstreamService = identifierCut(raw.upstream);
  const bytesIn = byteCount(numeric(request.size));
  const bytesOut = byteCount(numeric(response?.size));
  return {
    record: {
      ...(requestId !== undefined ? { requestId } : {}),
      // With a request id, which a client may have chosen, also the route, service and Host.
      recordKey: [raw.start_time, raw.client_ip, methodText, request.uri, status, raw.latency, instance, ...(requestId !== undefined ? [raw.route_id, raw.service_id, headerValue(request.headers, 'host')] : [])]
        .map(keyPart)
        .join('|'),
      ...(traceId !== undefined ? { traceId } : {}),
      time,
      timeIsStart: true,
      method,
      path: uri.path,
      route: routeKey !== undefined ? `/${routeKey}` : routeWithoutMatch(status, uri.path),
      status,
      latencyMs: latencyOf(numeric(raw.latency)),
      ...(bytesIn !== undefined ? { bytesIn } : {}),
      ...(bytesOut !== undefined ? { bytesOut } : {}),
      api,
      ...(upstreamService !== undefined ? { upstreamService } : {}),
      ...(instance !== undefined ? { instance } : {}),
      ...(consumerId !== undefined ? { consumerId } : {}),
      ...(ip !== undefined ? { clientIp: ip } : {}),
      ...(agent !== undefined ? { userAgent: agent } : {}),
      groupKeys: { ...(routeKey !== undefined ? { route: routeKey } : {}), ...(serviceKey !== undefined ? { service: serviceKey } : {}) },
      policies: apisixPolicies(raw, status, settings.apisixAnonymousConsumers),
    },
  };
}

/** The `apisix` format: APISIX's default log entry, one per message or a batch array. */
export const apisixAdapter: GatewayAdapter = {
  format: 'apisix',
  description: "APISIX's log entry (kafka-logger, http-logger; one object or a batch array)",
  translate: (value, settings) => translateJsonBatch('apisix', value, settings, readApisixRecord),
};
