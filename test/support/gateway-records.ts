/**
 * Gateway records for the adapter tests and the translate bench, built from each source's
 * documented fields. OTLP messages are made by the OpenTelemetry SDK itself (sdk-logs and
 * sdk-trace-base records, serialised by otlp-transformer's JSON and protobuf serializers), so the
 * bytes are what an OTel exporter writes, not bytes written by hand.
 */
import { SpanKind, type Attributes } from '@opentelemetry/api';
import type { AnyValue } from '@opentelemetry/api-logs';
import { JsonLogsSerializer, JsonTraceSerializer, ProtobufLogsSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { GatewayCall } from '../../scripts/gateway-records';

/** When the APISIX fixtures' request was made. */
export const ORDERS_CALL_TIME = new Date('2026-11-27T10:00:00.812Z');

/** A 200 to `GET /orders/8812?limit=5` through the `orders-route` route, for Kong-shaped records (APISIX's entries). */
export function ordersCall(overrides: Partial<GatewayCall> = {}): GatewayCall {
  return {
    requestId: 'e1f2a3b4-0001',
    time: ORDERS_CALL_TIME,
    clientIp: '198.51.100.23',
    method: 'GET',
    uri: '/orders/8812?limit=5',
    status: 200,
    latencyMs: 20,
    service: 'orders-svc',
    route: { name: 'orders-route' },
    ...overrides,
  };
}

/** One access-log record for the OTLP logs fixtures. */
export interface LogInput {
  /** Milliseconds since the epoch. */
  time: number;
  attributes?: Record<string, AnyValue>;
  body?: AnyValue;
  resource: Attributes;
}

/** OTLP log records as the SDK hands them to an exporter, one logger provider per distinct resource. */
export function logRecords(inputs: readonly LogInput[]): ReadableLogRecord[] {
  const providers = new Map<string, { provider: LoggerProvider; exporter: InMemoryLogRecordExporter }>();
  for (const input of inputs) {
    const key = JSON.stringify(input.resource);
    let entry = providers.get(key);
    if (entry === undefined) {
      const exporter = new InMemoryLogRecordExporter();
      entry = { exporter, provider: new LoggerProvider({ resource: resourceFromAttributes(input.resource), processors: [new SimpleLogRecordProcessor(exporter)] }) };
      providers.set(key, entry);
    }
    // A Date, not a number: the SDK reads a number below its own time origin as relative to it.
    entry.provider.getLogger('envoy.access_loggers.open_telemetry').emit({
      timestamp: new Date(input.time),
      observedTimestamp: new Date(input.time),
      ...(input.body !== undefined ? { body: input.body } : {}),
      ...(input.attributes !== undefined ? { attributes: input.attributes } : {}),
    });
  }
  return [...providers.values()].flatMap(({ exporter }) => exporter.getFinishedLogRecords());
}

export type OtlpEncoding = 'otlp_json' | 'otlp_proto';

function bytes(serialized: Uint8Array | undefined): Buffer {
  if (serialized === undefined) throw new Error('the OTLP serializer returned nothing');
  return Buffer.from(serialized);
}

/** One ExportLogsServiceRequest in the given encoding, as the Collector's kafka exporter writes a message. */
export function otlpLogsMessage(inputs: readonly LogInput[], encoding: OtlpEncoding): Buffer {
  const records = logRecords(inputs);
  return bytes(encoding === 'otlp_json' ? JsonLogsSerializer.serializeRequest(records) : ProtobufLogsSerializer.serializeRequest(records));
}

/** One HTTP span for the OTLP spans fixtures. */
export interface SpanInput {
  traceId: string;
  spanId: string;
  name: string;
  kind?: SpanKind;
  start: number;
  end: number;
  attributes: Attributes;
  resource: Attributes;
}

export function spanRecords(inputs: readonly SpanInput[]): ReadableSpan[] {
  const spans: ReadableSpan[] = [];
  for (const input of inputs) {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes(input.resource),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
      // Fixed ids, so the expected event ids can be written down.
      idGenerator: { generateTraceId: () => input.traceId, generateSpanId: () => input.spanId },
    });
    const span = provider.getTracer('http-server').startSpan(input.name, { kind: input.kind ?? SpanKind.SERVER, startTime: new Date(input.start), attributes: input.attributes });
    span.end(new Date(input.end));
    spans.push(...exporter.getFinishedSpans());
  }
  return spans;
}

export function otlpSpansMessage(inputs: readonly SpanInput[], encoding: OtlpEncoding): Buffer {
  const spans = spanRecords(inputs);
  return bytes(encoding === 'otlp_json' ? JsonTraceSerializer.serializeRequest(spans) : ProtobufTraceSerializer.serializeRequest(spans));
}

/**
 * The Collector writes OTLP/JSON by the protobuf JSON mapping, where an int64 (`intValue`, the
 * nanosecond times) is a string; the JS serializer writes attribute ints as numbers. This turns
 * one into the other, so both spellings are tested from the same SDK output.
 */
export function collectorJson(message: Buffer): Buffer {
  const stringify = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(stringify);
    if (typeof value !== 'object' || value === null) return value;
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [key, key === 'intValue' && typeof inner === 'number' ? String(inner) : stringify(inner)]),
    );
  };
  return Buffer.from(JSON.stringify(stringify(JSON.parse(message.toString('utf8')))));
}

/** Istio's default JSON access log (`EnvoyJSONLogFormatIstio`, every value a string), a 201 through the mesh. */
export function istioRecord(overrides: Record<string, string | number> = {}): Record<string, string | number> {
  return {
    start_time: '2026-03-01T10:00:00.123Z',
    route_name: 'orders-route',
    method: 'POST',
    path: '/orders/42?expand=items',
    protocol: 'HTTP/1.1',
    response_code: '201',
    response_flags: '-',
    response_code_details: 'via_upstream',
    connection_termination_details: '-',
    upstream_transport_failure_reason: '-',
    bytes_received: '154',
    bytes_sent: '87',
    duration: '23',
    upstream_service_time: '20',
    x_forwarded_for: '203.0.113.9',
    user_agent: 'curl/8.5.0',
    request_id: '5f0c3b9e-8a1d-4c1e-9b6a-0e2d7c1a2b3c',
    authority: 'shop.example.com',
    upstream_host: '10.0.0.7:8080',
    upstream_cluster: 'outbound|8080||orders.shop.svc.cluster.local',
    upstream_local_address: '10.0.0.5:40000',
    downstream_local_address: '10.0.0.5:8080',
    downstream_remote_address: '198.51.100.23:51234',
    requested_server_name: '-',
    ...overrides,
  };
}

/**
 * Envoy Gateway's default access log (keys named after headers: `x-envoy-origin-path`,
 * `:authority`), rendered by a `typed_json_format`-style sink where numbers are numbers.
 */
export function envoyGatewayRecord(overrides: Record<string, string | number> = {}): Record<string, string | number> {
  return {
    start_time: '2026-03-01T10:05:00.000Z',
    method: 'GET',
    'x-envoy-origin-path': '/catalog/items?page=2',
    protocol: 'HTTP/2',
    response_code: 200,
    response_flags: '-',
    response_code_details: 'via_upstream',
    connection_termination_details: '-',
    upstream_transport_failure_reason: '-',
    bytes_received: 0,
    bytes_sent: 512,
    duration: 7,
    'x-envoy-upstream-service-time': '5',
    'x-forwarded-for': '192.0.2.44',
    'user-agent': 'Mozilla/5.0',
    'x-request-id': '9b2e6f51-3c7a-4d8e-a1f0-7e5d4c3b2a19',
    ':authority': 'catalog.example.com',
    upstream_host: '10.1.0.9:3000',
    upstream_cluster: 'httproute/shop/catalog/rule/0',
    upstream_local_address: '10.1.0.4:51000',
    downstream_local_address: '10.1.0.4:10080',
    downstream_remote_address: '192.0.2.44:40112',
    requested_server_name: '-',
    route_name: 'httproute/shop/catalog/rule/0/match/0/catalog_example_com',
    ...overrides,
  };
}

/**
 * The attributes docs/gateways/otel.md asks Envoy's OpenTelemetry access logger to write, as
 * Envoy renders them: every value a string (a format string's output), `-` when unset.
 */
export function envoyOtelAttributes(overrides: Record<string, AnyValue> = {}): Record<string, AnyValue> {
  return {
    'http.request.method': 'GET',
    'url.path': '/accounts/7?verbose=1',
    'http.response.status_code': '200',
    'client.address': '203.0.113.50',
    'user_agent.original': 'okhttp/4.12.0',
    'server.address': 'bank.example.com',
    'http.request.header.x-request-id': 'a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
    'http.request.body.size': '0',
    'http.response.body.size': '342',
    'envoy.duration_ms': '12',
    'envoy.route_name': 'accounts',
    'envoy.upstream_cluster': 'accounts-svc',
    'envoy.response_flags': '-',
    'envoy.response_code_details': 'via_upstream',
    'enduser.id': '-',
    'vigil.consumer.id': '-',
    ...overrides,
  };
}

/** The API key Tyk logs in the tyk fixtures (the adapter must never store it). */
export const TYK_KEY = '5e9d9544a1dcd60001d0ed20a6ab77653d5da938f452bb8cc07b4bb1';

/**
 * The record Tyk Pump's kafka pump writes (`pumps/kafka.go`: one JSON object per message), a 200
 * with a keyed caller; the error bodies come from Tyk's gateway (`gateway/handler_error.go`).
 */
export function tykRecord(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    timestamp: '2026-11-27T10:00:00.812345678Z',
    method: 'POST',
    path: '/payments/{id}',
    raw_path: '/payments/123',
    response_code: 200,
    alias: 'mobile-app',
    api_key: TYK_KEY,
    api_version: 'Default',
    api_name: 'Payments API',
    api_id: '727dad853a8a45f64ab981154d1ffdad',
    org_id: '5e9d9544a1dcd60001d0ed20',
    oauth_id: '',
    raw_request: Buffer.from(`POST /payments/123 HTTP/1.1\r\nAuthorization: ${TYK_KEY}\r\n\r\n{"amount":5}`).toString('base64'),
    request_time_ms: 42,
    raw_response: Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"ok":true}').toString('base64'),
    ip_address: '203.0.113.7',
    host: 'payments.internal:8080',
    content_length: 12,
    user_agent: 'okhttp/4.12',
    tags: ['key-mobile-app'],
    ...overrides,
  };
}

/** A raw_response as Tyk writes it for its own refusals, base64 like the pump's field. */
export function tykErrorResponse(status: string, message: string): string {
  return Buffer.from(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nX-Generator: tyk.io\r\n\r\n{\n    "error": "${message}"\n}`).toString('base64');
}

/** The log4j prefix of a line WSO2's ELK reporter writes to apim_metrics.log. */
export const WSO2_PREFIX = '[2026-11-27 10:00:00,812]  INFO {org.wso2.am.analytics.publisher.reporter.elk.ELKCounterMetric} - ';

/** WSO2 API Manager's `apim:response` event, a 200 (ELK reporter fields). */
export function wso2Response(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiName: 'PizzaShackAPI',
    proxyResponseCode: 200,
    destination: 'https://backend.internal:9443/am/sample/pizzashack/v1/api/',
    apiCreatorTenantDomain: 'carbon.super',
    platform: 'Mac OS X',
    apiMethod: 'GET',
    apiVersion: '1.0.0',
    gatewayType: 'SYNAPSE',
    apiCreator: 'admin',
    responseCacheHit: false,
    backendLatency: 24,
    correlationId: 'd5c1ac41-ac9a-4dc4-8b7c-9c5c1a6d4a3b',
    requestMediationLatency: 35,
    keyType: 'PRODUCTION',
    apiId: '6b7b6d3e-1d2a-4c1f-9d6c-2f0a1b2c3d4e',
    applicationName: 'DefaultApplication',
    targetResponseCode: 200,
    requestTimestamp: '2026-11-27T10:00:00.812Z',
    applicationOwner: 'admin',
    userAgent: 'Chrome',
    userName: 'alice@carbon.super',
    apiResourceTemplate: '/order/{orderId}',
    regionId: 'default',
    responseLatency: 69,
    responseMediationLatency: 0,
    userIp: '203.0.113.7',
    applicationId: 'a0b1c2d3-0000-4000-8000-000000000001',
    apiType: 'HTTP',
    apiContext: '/pizzashack/1.0.0',
    properties: { commonName: 'N/A' },
    ...overrides,
  };
}

/**
 * WSO2 API Manager's `apim:faulty` event, an AUTH failure, in the shape the ELK reporter logs it:
 * `ELKMetricEventBuilder.buildEvent` keeps only the keys of `elkFaultEventSchema`
 * (`GenericInputValidator.java`, wso2/apim-analytics-publisher), so the event has no apiMethod,
 * userIp, userAgentHeader, apiContext or apiResourceTemplate at its top level; the gateway's data
 * provider puts apiContext and userName into `properties`, where they survive. `properties` adds
 * to those two, as a custom analytics data provider would (e.g. `{ apiMethod, userIp }`).
 */
export function wso2Fault(overrides: Record<string, unknown> = {}, properties: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    requestTimestamp: '2026-11-27T10:00:01.000Z',
    correlationId: 'f00dfeed-0000-4000-8000-000000000002',
    keyType: 'PRODUCTION',
    errorType: 'AUTH',
    errorCode: 900901,
    errorMessage: 'AUTHENTICATION_FAILURE',
    apiId: '6b7b6d3e-1d2a-4c1f-9d6c-2f0a1b2c3d4e',
    apiType: 'HTTP',
    apiName: 'PizzaShackAPI',
    apiVersion: '1.0.0',
    apiCreation: 'admin',
    apiCreatorTenantDomain: 'carbon.super',
    applicationId: 'anonymous',
    applicationName: 'anonymous',
    applicationOwner: 'anonymous',
    regionId: 'default',
    gatewayType: 'SYNAPSE',
    proxyResponseCode: 401,
    targetResponseCode: 0,
    properties: { apiContext: '/pizzashack/1.0.0', userName: 'anonymous', ...properties },
    ...overrides,
  };
}

/** One apim_metrics.log line: `apimMetrics: <event>, properties :<json>`. */
export function wso2Line(name: string, properties: Record<string, unknown>): string {
  return `${WSO2_PREFIX}apimMetrics: ${name}, properties :${JSON.stringify(properties)}`;
}
