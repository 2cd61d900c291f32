import { createHash } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import { groupMap, type AdapterResult, type AdapterSettings } from '../../ingest/adapters';
import { createOtlpAdapter, otlpAdapter } from '../../ingest/adapters/otlp';
import { detectEncoding } from '../../ingest/adapters/otlp-decode';
import type { VigilEventInput } from '../../schemas';
import { expectContract, requestEventId, requestEvents, withoutRecordDigest } from '../support/adapter-events';
import { collectorJson, envoyGatewayRecord, envoyOtelAttributes, otlpLogsMessage, otlpSpansMessage, type LogInput, type OtlpEncoding, type SpanInput } from '../support/gateway-records';

const settings: AdapterSettings = {
  service: 'edge-otel',
  kind: 'gateway',
  environment: 'test',
  groups: groupMap({ routes: { accounts: 'bank', '/payments/{id}': 'payments' }, services: { 'httproute/shop/catalog/rule/0': 'catalog' } }),
};
const ENCODINGS: OtlpEncoding[] = ['otlp_json', 'otlp_proto'];
const translate = (message: Buffer, adapterSettings: AdapterSettings = settings): AdapterResult => otlpAdapter.translate(message, adapterSettings);

const T0 = Date.parse('2026-03-02T08:30:00.250Z');
const ENVOY_RESOURCE = { 'service.name': 'edge-envoy', 'service.instance.id': 'envoy-7f9c-2' };
const REQUEST = 'a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const source = { service: 'edge-otel', kind: 'gateway', environment: 'test', instance: 'envoy-7f9c-2' } as const;
const accountsResource = { api: 'bank.example.com', method: 'GET', path: '/accounts/7' } as const;

function envoyLog(overrides: Record<string, string> = {}, time = T0): LogInput {
  return { time, resource: ENVOY_RESOURCE, attributes: envoyOtelAttributes(overrides) };
}

const accounts = requestEvents({
  adapter: 'otlp',
  requestId: REQUEST,
  time: '2026-03-02T08:30:00.250Z',
  source,
  client: { ip: '203.0.113.50', userAgent: 'okhttp/4.12.0' },
  resource: accountsResource,
  group: 'bank',
});

function accountsInvocation(status = 200, labels: Record<string, string> = { adapter: 'otlp' }, actor: Record<string, string> = {}): VigilEventInput {
  return accounts.invocation({ route: '/accounts', status, latencyMs: 12, bytesIn: 0, bytesOut: 342, upstreamService: 'accounts-svc' }, labels, actor);
}

const accountsPolicy = accounts.policy;

describe('otlp adapter: Envoy OpenTelemetry access logs with the recommended attributes', () => {
  it('detects the encoding from the first byte', () => {
    expect(detectEncoding(otlpLogsMessage([envoyLog()], 'otlp_json'))).toBe('otlp_json');
    expect(detectEncoding(otlpLogsMessage([envoyLog()], 'otlp_proto'))).toBe('otlp_proto');
  });

  it.each(ENCODINGS)('%s: a 200 is one invocation; "-" attributes are absent; the resource names the instance', (encoding) => {
    const result = translate(otlpLogsMessage([envoyLog()], encoding));
    expect(result).toEqual({ events: [accountsInvocation()], rejected: [], skipped: [], droppedDerived: [] });
    expectContract(result.events);
  });

  const cases: [string, Record<string, string>, number, VigilEventInput[]][] = [
    [
      'UAEX / ext_authz_denied 403',
      { 'http.response.status_code': '403', 'envoy.response_flags': 'UAEX', 'envoy.response_code_details': 'ext_authz_denied' },
      403,
      [accountsPolicy('authz', { name: 'ext-authz', outcome: 'fail', reason: 'ext_authz_denied' }, { adapter: 'otlp', response_flags: 'UAEX' })],
    ],
    [
      'jwt_authn_access_denied{Jwt_is_missing} 401',
      { 'http.response.status_code': '401', 'envoy.response_code_details': 'jwt_authn_access_denied{Jwt_is_missing}' },
      401,
      [accountsPolicy('authn', { name: 'jwt-authn', outcome: 'fail', reason: 'Jwt_is_missing', authContext: 'jwt' })],
    ],
    [
      'RL / request_rate_limited 429',
      { 'http.response.status_code': '429', 'envoy.response_flags': 'RL', 'envoy.response_code_details': 'request_rate_limited' },
      429,
      [accountsPolicy('rate_limit', { name: 'envoy-ratelimit', outcome: 'fail', reason: 'request_rate_limited' }, { adapter: 'otlp', response_flags: 'RL' })],
    ],
  ];
  it.each(cases)('%s becomes the policy outcome Envoy proves, identically in both encodings', (_case, overrides, status, policies) => {
    const events = ENCODINGS.map((encoding) => translate(otlpLogsMessage([envoyLog(overrides)], encoding)));
    const labels = policies[0]?.labels ?? { adapter: 'otlp' };
    const expected = [accountsInvocation(status, labels), ...policies];
    expect(events[0]).toEqual({ events: expected, rejected: [], skipped: [], droppedDerived: [] });
    expect(events[1]).toEqual(events[0]);
    expectContract(events[0]?.events ?? []);
  });

  it('the verified JWT subject (DYNAMIC_METADATA) and client become the actor, with an authn pass', () => {
    const actor = { userId: 'user-1207', consumerId: 'partner-portal' };
    const result = translate(otlpLogsMessage([envoyLog({ 'enduser.id': 'user-1207', 'vigil.consumer.id': 'partner-portal' })], 'otlp_proto'));
    expect(result.events).toEqual([accountsInvocation(200, { adapter: 'otlp' }, actor), accountsPolicy('authn', { name: 'jwt-authn', outcome: 'pass', authContext: 'jwt' }, { adapter: 'otlp' }, actor)]);
    expectContract(result.events);
  });

  it('a batch holds many records across resources; the Collector spelling (int64 as strings) reads the same', () => {
    const inputs: LogInput[] = [
      { time: T0, resource: ENVOY_RESOURCE, attributes: envoyOtelAttributes({ 'http.response.status_code': 200, 'http.response.body.size': 342 }) },
      envoyLog({ 'http.request.header.x-request-id': 'req-2', 'http.response.status_code': '429', 'envoy.response_flags': 'RL', 'envoy.response_code_details': 'local_rate_limited' }, T0 + 5),
      { time: T0 + 9, resource: { 'service.name': 'edge-envoy', 'k8s.pod.name': 'envoy-abc12' }, attributes: envoyOtelAttributes({ 'http.request.header.x-request-id': 'req-3', 'http.request.method': 'PROPFIND' }) },
      { time: T0 + 10, resource: { 'service.name': 'edge-envoy', 'k8s.pod.name': 'envoy-abc12' }, body: 'listener drained' },
    ];
    const json = otlpLogsMessage(inputs, 'otlp_json');
    const results = [translate(json), translate(collectorJson(json)), translate(otlpLogsMessage(inputs, 'otlp_proto'))];
    expect(results[0]?.events.map((event) => withoutRecordDigest(event.id))).toEqual([`otlp:${REQUEST}:inv`, 'otlp:req-2:inv', 'otlp:req-2:rate_limit']);
    expect(results[0]?.events[2]).toMatchObject({ policy: { kind: 'rate_limit', name: 'local-ratelimit', outcome: 'fail' } });
    expect(results[0]?.skipped).toEqual([
      { reason: 'method_unsupported', record: 2 },
      { reason: 'not_http', record: 3 },
    ]);
    expect(collectorJson(json).toString()).toContain('"intValue"');
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    expectContract(results[0]?.events ?? []);
  });

  it('without a request id the id hashes time, client, method, URI, status and instance', () => {
    const input = envoyLog({ 'http.request.header.x-request-id': '-' });
    const [json, proto] = ENCODINGS.map((encoding) => translate(otlpLogsMessage([input], encoding)));
    const nanos = `${T0}000000`;
    const hash = createHash('sha256')
      .update(`record:${JSON.stringify([nanos, '203.0.113.50', 'GET', '/accounts/7?verbose=1', 200, 'envoy-7f9c-2', undefined, undefined])}`)
      .digest('hex')
      .slice(0, 40);
    expect(json?.events.map((event) => event.id)).toEqual([`otlp:${hash}:inv`]);
    expect(proto).toEqual(json);
  });

  it('status alone (401/403/429 from upstream) is a heuristic: http-<code>, derived=status', () => {
    const result = translate(otlpLogsMessage([envoyLog({ 'http.response.status_code': '403' })], 'otlp_json'));
    expect(result.events).toEqual([accountsInvocation(403), accountsPolicy('authz', { name: 'http-403', outcome: 'fail' }, { adapter: 'otlp', derived: 'status' })]);
  });

  it('rejects a record no group maps, naming what it looked up', () => {
    const result = translate(otlpLogsMessage([envoyLog({ 'envoy.route_name': 'loans' })], 'otlp_proto'));
    expect(result).toEqual({
      events: [],
      skipped: [],
      droppedDerived: [],
      rejected: [{ reason: 'adapter_unmapped', record: 0, message: 'record 0: no group for route "loans", service "edge-envoy", api "bank.example.com", tags (none) and no default group: add one of them (or a default) to VIGIL_ADAPT_GROUPS' }],
    });
  });
});

describe('otlp adapter: Envoy Gateway OpenTelemetry sink (the default JSON in the body)', () => {
  it.each(ENCODINGS)('%s: reads the body with the envoy interpretation, the resource giving service and pod', (encoding) => {
    const body = JSON.stringify(envoyGatewayRecord({ response_code: '429', response_flags: 'RL', response_code_details: 'local_rate_limited' }));
    const message = otlpLogsMessage([{ time: T0, resource: { 'service.name': 'envoy-gateway', 'k8s.pod.name': 'envoy-default-eg-5d9c' }, attributes: { 'k8s.namespace.name': 'envoy-gateway-system' }, body }], encoding);
    const result = translate(message);
    expect(result.rejected).toEqual([]);
    expect(result.events.map((event) => withoutRecordDigest(event.id))).toEqual(['otlp:9b2e6f51-3c7a-4d8e-a1f0-7e5d4c3b2a19:inv', 'otlp:9b2e6f51-3c7a-4d8e-a1f0-7e5d4c3b2a19:rate_limit']);
    expect(result.events[1]).toMatchObject({
      source: { instance: 'envoy-default-eg-5d9c' },
      labels: { adapter: 'otlp', response_flags: 'RL' },
      policy: { kind: 'rate_limit', name: 'local-ratelimit', outcome: 'fail', group: 'catalog', resource: { api: 'catalog.example.com', method: 'GET', path: '/catalog/items' } },
    });
    expectContract(result.events);
  });
});

describe('otlp adapter: HTTP server spans', () => {
  const span = (overrides: Partial<SpanInput> = {}, attributes: Record<string, string | number> = {}): SpanInput => ({
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    name: 'POST /payments/{id}',
    start: T0,
    end: T0 + 48,
    resource: { 'service.name': 'payments-api', 'service.instance.id': 'payments-0' },
    attributes: {
      'http.request.method': 'POST',
      'url.path': '/payments/981',
      'url.query': 'dry_run=1',
      'url.scheme': 'https',
      'http.route': '/payments/{id}',
      'http.response.status_code': 401,
      'error.type': 'invalid_token',
      'client.address': '2001:db8::17',
      'user_agent.original': 'payments-sdk/2.1',
      'server.address': 'api.example.com',
      'http.request.body.size': 211,
      'http.response.body.size': 64,
      ...attributes,
    },
    ...overrides,
  });
  const serviceSettings: AdapterSettings = { ...settings, kind: 'service' };
  const spanRequest = '0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331';
  const resource = { api: 'api.example.com', method: 'POST', path: '/payments/981' } as const;
  const envelope = {
    schemaVersion: 1,
    time: '2026-03-02T08:30:00.250Z',
    source: { service: 'edge-otel', kind: 'service', environment: 'test', instance: 'payments-0' },
    correlation: { requestId: spanRequest, traceId: '0af7651916cd43dd8448eb211c80319c' },
    actor: {},
    client: { ip: '2001:db8::17', userAgent: 'payments-sdk/2.1' },
  } as const;

  it.each(ENCODINGS)('%s: a SERVER span is an invocation (latency end-start, route template) plus the status heuristic with error.type as reason', (encoding) => {
    const result = translate(otlpSpansMessage([span()], encoding), serviceSettings);
    const expected: VigilEventInput[] = [
      {
        id: requestEventId('otlp', spanRequest, 'inv') as string,
        ...envelope,
        labels: { adapter: 'otlp' },
        family: 'invocation',
        invocation: { resource, route: '/payments/{id}', status: 401, latencyMs: 48, bytesIn: 211, bytesOut: 64, group: 'payments' },
      },
      {
        id: requestEventId('otlp', spanRequest, 'authn') as string,
        ...envelope,
        labels: { adapter: 'otlp', derived: 'status' },
        family: 'policy',
        policy: { kind: 'authn', name: 'http-401', outcome: 'fail', reason: 'invalid_token', group: 'payments', resource },
      },
    ];
    expect(result).toEqual({ events: expected, rejected: [], skipped: [], droppedDerived: [] });
    expectContract(result.events);
  });

  it('spans of other kinds are skipped (a CLIENT span would count the call twice), as is the _OTHER method', () => {
    const message = otlpSpansMessage(
      [span({ kind: SpanKind.CLIENT }), span({ spanId: 'c7ad6b7169203332' }, { 'http.request.method': '_OTHER' }), span({ spanId: 'd7ad6b7169203333', kind: SpanKind.INTERNAL })],
      'otlp_proto',
    );
    expect(translate(message, serviceSettings)).toEqual({
      events: [],
      rejected: [],
      skipped: [
        { reason: 'not_server_span', record: 0 },
        { reason: 'method_unsupported', record: 1 },
        { reason: 'not_server_span', record: 2 },
      ],
      droppedDerived: [],
    });
  });

  it('a span request id header wins over the trace and span ids', () => {
    const result = translate(otlpSpansMessage([span({}, { 'http.response.status_code': 200, 'http.request.header.x-request-id': 'req-77' })], 'otlp_json'), serviceSettings);
    expect(result.events.map((event) => withoutRecordDigest(event.id))).toEqual(['otlp:req-77:inv']);
  });

  it('a spans topic read with the signal pinned gives the same events', () => {
    const message = otlpSpansMessage([span()], 'otlp_proto');
    expect(createOtlpAdapter('spans').translate(message, serviceSettings)).toEqual(translate(message, serviceSettings));
  });
});

describe('otlp adapter: bad messages', () => {
  it('a record whose body nests thousands deep loses its deep part, not the other records of the request', () => {
    const text = otlpLogsMessage([envoyLog(), { time: T0 + 1, resource: ENVOY_RESOURCE, body: 'placeholder' }], 'otlp_json').toString();
    const placeholder = '{"stringValue":"placeholder"}';
    expect(text).toContain(placeholder);
    // Written as text: the test's own JSON.stringify would overflow on it too.
    const deep = `${'{"arrayValue":{"values":['.repeat(5_000)}{"stringValue":"bottom"}${']}}'.repeat(5_000)}`;
    const result = translate(Buffer.from(text.replace(placeholder, deep)));
    expect(result.rejected).toEqual([]);
    expect(result.events).toEqual([accountsInvocation()]);
    expect(result.skipped).toEqual([{ reason: 'not_http', record: 1 }]);
  });

  it('a body that opens as a JSON object and does not parse (Envoy Gateway\'s default format, a client\'s quote in a header) is skipped as body_not_json, not not_http', () => {
    const broken = JSON.stringify(envoyGatewayRecord({ 'user-agent': 'x" y' })).replace('x\\" y', 'x" y');
    const result = translate(otlpLogsMessage([envoyLog(), { time: T0 + 1, resource: ENVOY_RESOURCE, body: broken }, { time: T0 + 2, resource: ENVOY_RESOURCE, body: 'listener drained' }], 'otlp_json'));
    expect(result.events).toEqual([accountsInvocation()]);
    expect(result.skipped).toEqual([{ reason: 'body_not_json', record: 1 }, { reason: 'not_http', record: 2 }]);
  });

  it('a signal pinned to logs refuses a spans message instead of misreading it', () => {
    const spans = otlpSpansMessage([{ traceId: '1af7651916cd43dd8448eb211c80319c', spanId: 'a7ad6b7169203331', name: 'GET', start: T0, end: T0 + 1, attributes: {}, resource: {} }], 'otlp_json');
    expect(createOtlpAdapter('logs').translate(spans, settings).rejected).toEqual([
      { reason: 'adapter_unparseable', record: 0, message: 'record 0: an OTLP/JSON request has "resourceLogs"; this object has no such array' },
    ]);
  });

  it('refuses a protobuf request whose value nests too deep to decode, saying so, not that it is no OTLP', () => {
    const varint = (value: number): number[] => {
      const out: number[] = [];
      let rest = value;
      while (rest >= 0x80) {
        out.push((rest & 0x7f) | 0x80);
        rest = Math.floor(rest / 0x80);
      }
      out.push(rest);
      return out;
    };
    const field = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag, ...varint(body.length)]), body]);
    // AnyValue { string_value: "bottom" }, then 10,000 times AnyValue { array_value: ArrayValue { values: [it] } }.
    let value = field(0x0a, Buffer.from('bottom'));
    for (let level = 0; level < 10_000; level++) value = field(0x2a, field(0x0a, value));
    // ExportLogsServiceRequest { resource_logs { scope_logs { log_records { body: value } } } }
    const request = field(0x0a, field(0x12, field(0x12, field(0x2a, value))));
    expect(translate(request).rejected).toEqual([{ reason: 'adapter_unparseable', record: 0, message: expect.stringContaining('nests too deep') as string }]);
  });

  it('refuses what is not an OTLP export request, with the reason', () => {
    expect(translate(Buffer.from('{"hello": 1}')).rejected).toEqual([
      { reason: 'adapter_unparseable', record: 0, message: 'record 0: an OTLP/JSON request has "resourceLogs" or "resourceSpans"; this object has no such array' },
    ]);
    expect(translate(Buffer.from('{"resourceLogs": [')).rejected[0]).toMatchObject({ reason: 'adapter_unparseable', message: expect.stringMatching(/^record 0: not JSON/) as string });
    expect(translate(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])).rejected).toEqual([
      { reason: 'adapter_unparseable', record: 0, message: 'record 0: not an OTLP protobuf ExportLogsServiceRequest or ExportTraceServiceRequest' },
    ]);
  });
});
