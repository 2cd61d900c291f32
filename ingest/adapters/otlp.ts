import { clientIp, numeric, objectOf, parseJson, present } from './fields';
import { accessRecordEvents, envoyAccessRecord, envoyPolicySignals, type AccessRecord } from './envoy';
import { decodeOtlp, OtlpDecodeError, type OtlpItem, type OtlpSignal, type OtlpValue } from './otlp-decode';
import type { AdapterResult, AdapterSettings, GatewayAdapter } from './types';

/**
 * OTLP logs and HTTP server spans as the OpenTelemetry Collector's kafka exporter writes them
 * (`otlp_json` or `otlp_proto`, one export request per message, many records in it). A record
 * is an HTTP request when it carries the stable HTTP semantic conventions (or their older names),
 * or, for a log, when its body is an Envoy JSON access-log object (Envoy Gateway's OpenTelemetry
 * sink puts its default JSON there). Envoy's response flags and details, logged as the
 * attributes docs/gateways/otel.md recommends, are read by the Envoy adapter's interpretation.
 */

/** Attribute names, first present wins: the stable semconv name, then the pre-1.0 one. */
const ATTR = {
  method: ['http.request.method', 'http.method'],
  path: ['url.path', 'http.target'],
  query: ['url.query'],
  fullUrl: ['url.full', 'http.url'],
  route: ['http.route'],
  status: ['http.response.status_code', 'http.status_code'],
  client: ['client.address', 'http.client_ip', 'network.peer.address', 'net.sock.peer.addr'],
  userAgent: ['user_agent.original', 'http.user_agent'],
  server: ['server.address', 'http.host', 'net.host.name'],
  userId: ['enduser.id', 'user.id'],
  consumer: ['vigil.consumer.id'],
  requestId: ['http.request.header.x-request-id', 'vigil.request.id'],
  errorType: ['error.type'],
  bytesIn: ['http.request.body.size', 'http.request_content_length'],
  bytesOut: ['http.response.body.size', 'http.response_content_length'],
  flags: ['envoy.response_flags'],
  details: ['envoy.response_code_details'],
  routeName: ['envoy.route_name'],
  upstream: ['envoy.upstream_cluster'],
  duration: ['envoy.duration_ms'],
} as const;

const RESOURCE = {
  service: ['service.name'],
  instance: ['service.instance.id', 'k8s.pod.name', 'host.name'],
} as const;

const LOG_LOOKED_UP = {
  path: `attributes ${[...ATTR.path, ...ATTR.fullUrl].join(', ')}`,
  status: `attribute ${ATTR.status.join(', ')}`,
  time: 'timeUnixNano, observedTimeUnixNano',
};
const SPAN_LOOKED_UP = { ...LOG_LOOKED_UP, time: 'startTimeUnixNano' };

/** Text of the first attribute present; a header attribute is a string array, whose first entry counts. */
function text(attributes: ReadonlyMap<string, OtlpValue>, names: readonly string[]): string | undefined {
  for (const name of names) {
    let value = attributes.get(name);
    if (Array.isArray(value)) value = value[0];
    const found = present(value);
    if (found !== undefined) return found;
  }
  return undefined;
}

const number = (attributes: ReadonlyMap<string, OtlpValue>, names: readonly string[]): number | undefined => numeric(text(attributes, names));

/** Nanoseconds since the epoch (decimal text) as RFC 3339, to the millisecond. */
function nanosToIso(nanos: string | undefined): string | undefined {
  if (nanos === undefined || nanos === '0') return undefined;
  const millis = Number(BigInt(nanos) / 1_000_000n);
  const date = new Date(millis);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function spanMillis(start: string | undefined, end: string | undefined): number | undefined {
  if (start === undefined || end === undefined) return undefined;
  return Number(BigInt(end) - BigInt(start)) / 1e6;
}

/** A record described by the HTTP semantic conventions, from a span or a log record's attributes. */
function semconvRecord(item: OtlpItem, method: string): AccessRecord {
  const attrs = item.attributes;
  const path = text(attrs, ATTR.path);
  const query = text(attrs, ATTR.query);
  const uri = path !== undefined ? (query !== undefined && !path.includes('?') ? `${path}?${query}` : path) : text(attrs, ATTR.fullUrl);
  const status = number(attrs, ATTR.status);
  const time = nanosToIso(item.time);
  const ip = clientIp(text(attrs, ATTR.client));
  const route = text(attrs, ATTR.route) ?? text(attrs, ATTR.routeName);
  const server = text(attrs, ATTR.server);
  const service = text(item.resource, RESOURCE.service);
  const instance = text(item.resource, RESOURCE.instance);
  const flags = text(attrs, ATTR.flags);
  const details = text(attrs, ATTR.details);
  const userId = text(attrs, ATTR.userId);
  const errorType = text(attrs, ATTR.errorType);
  // Only Envoy's own record, with its details attribute, vouches that the subject was verified by
  // jwt_authn; an instrumented service's enduser.id proves no authentication by itself.
  const verifiedSubject = details !== undefined ? userId : undefined;
  const latency = item.signal === 'span' ? spanMillis(item.time, item.end) : number(attrs, ATTR.duration);
  const spanRequest = item.signal === 'span' && item.traceId !== undefined && item.spanId !== undefined ? `${item.traceId}-${item.spanId}` : undefined;
  return {
    time,
    // A span is one request: its trace and span ids name it when no request id was recorded.
    requestId: text(attrs, ATTR.requestId) ?? spanRequest,
    traceId: item.traceId,
    method,
    uri,
    route,
    status,
    latencyMs: latency,
    bytesIn: number(attrs, ATTR.bytesIn),
    bytesOut: number(attrs, ATTR.bytesOut),
    clientIp: ip,
    userAgent: text(attrs, ATTR.userAgent),
    userId,
    consumerId: text(attrs, ATTR.consumer),
    api: server,
    upstream: text(attrs, ATTR.upstream),
    instance,
    groupKeys: { route, service, api: server },
    signals: envoyPolicySignals({ flags, details, status, verifiedSubject, statusReason: errorType !== undefined && errorType !== String(status) ? errorType : undefined }),
    labels: flags !== undefined ? { response_flags: flags } : undefined,
    fallback: [item.time, ip, method, uri, status, instance, item.traceId, item.spanId],
    lookedUp: item.signal === 'span' ? SPAN_LOOKED_UP : LOG_LOOKED_UP,
  };
}

/** An Envoy JSON access-log object in a log record's body (a JSON text, or a kvlist). */
function envoyBody(body: OtlpValue): Record<string, unknown> | undefined {
  if (typeof body === 'string') {
    const trimmed = body.trim();
    return trimmed.startsWith('{') ? objectOf(parseJson(trimmed)?.value) : undefined;
  }
  return objectOf(body);
}

/** The HTTP record an item holds, or the reason it is skipped. */
function httpRecord(item: OtlpItem): AccessRecord | string {
  if (item.signal === 'span' && item.kind !== 2) return 'not_server_span';
  const method = text(item.attributes, ATTR.method);
  if (method !== undefined) return semconvRecord(item, method);
  if (item.signal === 'log') {
    // A body that opens as a JSON object and does not parse: most likely Envoy Gateway's default
    // text format broken by a `"` a client sent in a header. Other services' logs share the
    // topic, so it is skipped, but under a reason of its own, counted apart from `not_http`.
    if (typeof item.body === 'string' && item.body.trimStart().startsWith('{') && parseJson(item.body.trim()) === undefined) return 'body_not_json';
    const object = envoyBody(item.body);
    const record = object !== undefined ? envoyAccessRecord(object) : undefined;
    if (record !== undefined) {
      // The body names no instance or service: the record's resource does.
      const service = text(item.resource, RESOURCE.service);
      const instance = record.instance ?? text(item.resource, RESOURCE.instance) ?? text(item.attributes, RESOURCE.instance);
      return {
        ...record,
        time: record.time ?? nanosToIso(item.time),
        traceId: record.traceId ?? item.traceId,
        instance,
        groupKeys: { ...record.groupKeys, service: record.groupKeys.service ?? service },
        fallback: [record.fallback, item.time, instance, item.traceId, item.spanId],
      };
    }
  }
  return 'not_http';
}

/** An OTLP adapter; `signal` pins logs or spans for a topic that carries only one. */
export function createOtlpAdapter(signal: OtlpSignal = 'auto'): GatewayAdapter {
  return {
    format: 'otlp',
    description: 'OTLP logs and HTTP server spans from the OpenTelemetry Collector kafka exporter (otlp_json or otlp_proto, detected per message)',
    translate(value: Uint8Array, settings: AdapterSettings): AdapterResult {
      const out: AdapterResult = { events: [], rejected: [], skipped: [], droppedDerived: [] };
      let items: OtlpItem[];
      try {
        items = decodeOtlp(value, signal).items;
      } catch (error) {
        if (!(error instanceof OtlpDecodeError)) throw error;
        out.rejected.push({ reason: 'adapter_unparseable', record: 0, message: `record 0: ${error.message}` });
        return out;
      }
      items.forEach((item, index) => {
        const record = httpRecord(item);
        if (typeof record === 'string') out.skipped.push({ reason: record, record: index });
        else accessRecordEvents('otlp', record, index, settings, out);
      });
      return out;
    },
  };
}

export const otlpAdapter: GatewayAdapter = createOtlpAdapter();
