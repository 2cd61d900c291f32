/**
 * Kong log objects and APISIX log entries as the gateways write them, built from their
 * documented fields (Kong's `kong.log.serialize()` in kong/pdk/log.lua, 3.6+ with `source`;
 * APISIX's `get_full_log` in apisix/utils/log-util.lua). The unit and integration tests, the
 * adapter benchmark and the demo's `--via kong` all build their gateway traffic here, so each
 * sees the same shapes.
 */

/** One request as a gateway saw it. */
export interface GatewayCall {
  /** Kong's `request.id` / APISIX's X-Request-Id; `null` leaves it out (Kong before 3.5, APISIX without request-id). */
  requestId: string | null;
  time: Date;
  clientIp: string;
  method: string;
  /** As on the wire, query included. */
  uri: string;
  status: number;
  latencyMs?: number;
  /** The authenticated consumer's username, when an auth plugin identified one. */
  consumer?: string;
  service: string;
  route: { name: string; paths?: string[]; tags?: string[] };
  userAgent?: string;
  requestHeaders?: Record<string, string>;
  responseHeaders?: Record<string, string>;
  /** Who answered: a plugin (`kong`) or the upstream. @defaultValue `kong` for 4xx, else `upstream` */
  source?: 'kong' | 'upstream';
}

/** Response headers the gateways' plugins set on a refusal. */
export const REFUSALS = {
  /** key-auth: `401` with `WWW-Authenticate: Key realm="kong"`. */
  kongKeyAuth: { 'www-authenticate': 'Key realm="kong"', 'content-type': 'application/json; charset=utf-8' },
  kongBasicAuth: { 'www-authenticate': 'Basic realm="service"' },
  kongOauth2: { 'www-authenticate': 'Bearer realm="service", error="invalid_token", error_description="The access token is invalid or has expired"' },
  /** rate-limiting: its error_code (429) with the quota headers at 0. */
  kongRateLimited: {
    'ratelimit-limit': '5',
    'ratelimit-remaining': '0',
    'ratelimit-reset': '41',
    'retry-after': '41',
    'x-ratelimit-limit-minute': '5',
    'x-ratelimit-remaining-minute': '0',
  },
  /** APISIX key-auth's challenge. */
  apisixKeyAuth: { 'www-authenticate': 'apikey realm="apisix"' },
  /** APISIX limit-count: its rejected_code (503 by default) with X-RateLimit-Remaining: 0. */
  apisixLimitCount: { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '58' },
} as const;

function queryOf(uri: string): Record<string, string> {
  const mark = uri.indexOf('?');
  return mark < 0 ? {} : Object.fromEntries(new URLSearchParams(uri.slice(mark + 1)));
}

/** A Kong log object, as kafka-log, http-log and file-log send it. */
export function kongRecord(call: GatewayCall): Record<string, unknown> {
  const source = call.source ?? (call.status >= 400 && call.status < 500 ? 'kong' : 'upstream');
  const proxied = source === 'upstream';
  const latency = call.latencyMs ?? 12;
  return {
    request: {
      ...(call.requestId !== null ? { id: call.requestId } : {}),
      uri: call.uri,
      url: `https://api.example.com:443${call.uri}`,
      querystring: queryOf(call.uri),
      method: call.method,
      headers: {
        host: 'api.example.com',
        'user-agent': call.userAgent ?? 'curl/8.5.0',
        accept: '*/*',
        // Kong redacts these itself; a key-auth key in `apikey` is logged as sent.
        authorization: 'REDACTED',
        apikey: 'sk_live_do_not_store_me',
        ...call.requestHeaders,
      },
      size: 138,
      tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', client_verify: 'NONE' },
    },
    upstream_uri: call.uri,
    upstream_status: proxied ? String(call.status) : '',
    response: {
      status: call.status,
      headers: { 'content-type': 'application/json', connection: 'close', 'x-kong-request-id': call.requestId ?? '', ...call.responseHeaders },
      size: 911,
    },
    latencies: { kong: 2, proxy: proxied ? latency - 2 : -1, request: latency, receive: 0 },
    tries: proxied ? [{ ip: '10.0.4.12', port: 8080, balancer_latency: 0 }] : [],
    route: {
      id: `r-${call.route.name}`,
      name: call.route.name,
      paths: call.route.paths ?? [`/${call.route.name}`],
      protocols: ['http', 'https'],
      strip_path: false,
      tags: call.route.tags ?? [],
      ws_id: 'f7c2e4e2-0000-4000-8000-000000000001',
    },
    service: { id: `s-${call.service}`, name: call.service, host: `${call.service}.internal`, port: 8080, protocol: 'http', path: '/', tags: [] },
    ...(call.consumer !== undefined
      ? {
          consumer: { id: `c-${call.consumer}`, username: call.consumer, custom_id: null, created_at: 1_700_000_000 },
          authenticated_entity: { id: `cred-${call.consumer}`, consumer_id: `c-${call.consumer}` },
        }
      : {}),
    client_ip: call.clientIp,
    started_at: call.time.getTime(),
    workspace: 'f7c2e4e2-0000-4000-8000-000000000001',
    workspace_name: 'default',
    source,
  };
}

/** An APISIX log entry (the default `get_full_log` entry), as kafka-logger batches it. */
export function apisixEntry(call: GatewayCall): Record<string, unknown> {
  const proxied = (call.source ?? (call.status >= 400 && call.status < 500 ? 'kong' : 'upstream')) === 'upstream' && call.status !== 503;
  const latency = call.latencyMs ?? 12;
  return {
    request: {
      url: `http://api.example.com:9080${call.uri}`,
      uri: call.uri,
      method: call.method,
      headers: {
        host: 'api.example.com',
        'user-agent': call.userAgent ?? 'curl/8.5.0',
        ...(call.requestId !== null ? { 'x-request-id': call.requestId } : {}),
        apikey: 'do-not-store-me',
        ...call.requestHeaders,
      },
      querystring: queryOf(call.uri),
      size: 94,
    },
    response: { status: call.status, headers: { 'content-type': 'text/plain', server: 'APISIX/3.18.0', ...call.responseHeaders }, size: 263 },
    server: { hostname: 'apisix-7d9f-x2', version: '3.18.0' },
    ...(proxied ? { upstream: '10.0.4.12:8080', upstream_latency: latency - 1 } : {}),
    service_id: call.service,
    route_id: call.route.name,
    ...(call.consumer !== undefined ? { consumer: { username: call.consumer } } : {}),
    client_ip: call.clientIp,
    start_time: call.time.getTime() + 0.25,
    latency: latency + 0.016,
    apisix_latency: 1.016,
  };
}
