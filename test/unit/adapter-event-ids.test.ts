/**
 * Event ids of gateway records that share a request id. A request id alone does not name one
 * record: a client can choose it (APISIX keeps a client's X-Request-Id; Envoy and OTLP read
 * x-request-id), and Istio's gateway and sidecar log the same one for one request. Each record's
 * events get their own ids (the record's digest beside the request id), while a record read twice
 * (a shipper's redelivery, a redrive) still gets the same ones.
 */
import { ADAPTERS, groupMap, sha256, type AdapterResult, type AdapterSettings, type GatewayAdapter } from '../../ingest';
import { eventSchema } from '../../schemas';
import { apisixEntry, kongRecord, type GatewayCall } from '../../scripts/gateway-records';
import { withoutRecordDigest } from '../support/adapter-events';
import { ORDERS_CALL_TIME, envoyOtelAttributes, istioRecord, ordersCall, otlpLogsMessage } from '../support/gateway-records';

const settings: AdapterSettings = { service: 'edge', kind: 'gateway', groups: groupMap({ default: 'edge' }) };
const T = ORDERS_CALL_TIME;
const call = (overrides: Partial<GatewayCall> = {}): GatewayCall => ordersCall({ requestId: 'client-chosen-1', ...overrides });

function translate(format: string, message: Buffer | string): AdapterResult {
  const adapter: GatewayAdapter | undefined = ADAPTERS[format];
  if (adapter === undefined) throw new Error(`the ${format} adapter is not registered`);
  const result = adapter.translate(typeof message === 'string' ? Buffer.from(message) : message, settings);
  expect(result.rejected).toEqual([]);
  for (const event of result.events) expect(eventSchema.safeParse(event).success).toBe(true);
  return result;
}

const ids = (result: AdapterResult): string[] => result.events.map((event) => event.id);

/** Two records sharing a request id, each read once, and the first read again. */
const cases: [string, string, Buffer | string, Buffer | string, string][] = [
  [
    'APISIX: two clients sending the same X-Request-Id',
    'apisix',
    JSON.stringify([apisixEntry(call())]),
    JSON.stringify([apisixEntry(call({ clientIp: '203.0.113.5', uri: '/orders/1', time: new Date(T.getTime() + 40) }))]),
    'client-chosen-1',
  ],
  [
    "Istio: the ingress gateway's and the sidecar's record of one request",
    'envoy',
    `${JSON.stringify(istioRecord())}\n`,
    `${JSON.stringify(istioRecord({ start_time: '2026-03-01T10:00:00.125Z', route_name: 'default', duration: '20', upstream_cluster: 'inbound|8080||' }))}\n`,
    '5f0c3b9e-8a1d-4c1e-9b6a-0e2d7c1a2b3c',
  ],
  [
    'OTLP: two Envoy instances logging the same x-request-id',
    'otlp',
    otlpLogsMessage([{ time: 1_772_359_200_000, resource: { 'service.instance.id': 'envoy-a' }, attributes: envoyOtelAttributes({ 'http.request.header.x-request-id': 'client-chosen-2' }) }], 'otlp_json'),
    otlpLogsMessage([{ time: 1_772_359_200_007, resource: { 'service.instance.id': 'envoy-b' }, attributes: envoyOtelAttributes({ 'http.request.header.x-request-id': 'client-chosen-2' }) }], 'otlp_json'),
    'client-chosen-2',
  ],
];

describe('event ids of gateway records sharing a request id', () => {
  it.each(cases)('%s: each record keeps its own ids, the same on every read', (_case, format, first, second, requestId) => {
    const one = ids(translate(format, first));
    const other = ids(translate(format, second));
    expect(one.length).toBeGreaterThan(0);
    expect(other.length).toBeGreaterThan(0);
    // Both name the request (an analyst pivots on it), and neither is the other's.
    for (const id of [...one, ...other]) expect(withoutRecordDigest(id).startsWith(`${format}:${requestId}:`)).toBe(true);
    for (const id of one) expect(other).not.toContain(id);
    expect(ids(translate(format, first))).toEqual(one);
  });

  it("Istio: a sidecar's outbound and the next sidecar's inbound record in the same millisecond, apart only in the upstream or the duration", () => {
    const outbound = ids(translate('envoy', `${JSON.stringify(istioRecord({ route_name: 'default' }))}\n`));
    const inbound = ids(translate('envoy', `${JSON.stringify(istioRecord({ route_name: 'default', upstream_cluster: 'inbound|8080||' }))}\n`));
    const slower = ids(translate('envoy', `${JSON.stringify(istioRecord({ route_name: 'default', duration: '24' }))}\n`));
    expect(new Set([...outbound, ...inbound, ...slower]).size).toBe(outbound.length + inbound.length + slower.length);
  });

  it("APISIX: the gateway's own request_id comes before the client's X-Request-Id; records apart only in the Host keep their own ids", () => {
    const both = { ...apisixEntry(call()), request_id: 'nginx-made-1' };
    expect(ids(translate('apisix', JSON.stringify([both]))).map(withoutRecordDigest)).toEqual(['apisix:nginx-made-1:inv']);
    const other = apisixEntry(call());
    (other.request as { headers: Record<string, string> }).headers.host = 'other.example.com';
    const [one] = ids(translate('apisix', JSON.stringify([apisixEntry(call())])));
    expect(ids(translate('apisix', JSON.stringify([other])))).not.toContain(one);
  });

  it('digests what the adapter reads to identify the record (pinned: a change would make replayed records second documents)', () => {
    const apisix = ids(translate('apisix', JSON.stringify([apisixEntry(call({ requestId: 'e1f2a3b4-0001' }))])));
    // With a request id (which a client may have chosen), the route, service and Host too.
    const apisixKey = [T.getTime() + 0.25, '198.51.100.23', 'GET', '/orders/8812?limit=5', 200, 20.016, 'apisix-7d9f-x2', 'orders-route', 'orders-svc', 'api.example.com'].join('|');
    expect(apisix).toEqual([`apisix:e1f2a3b4-0001:${sha256(`record:${apisixKey}`).slice(0, 12)}:inv`]);
    const kong = ids(translate('kong', JSON.stringify(kongRecord(call({ requestId: '7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d' })))));
    const kongKey = [T.getTime(), '198.51.100.23', 'GET', '/orders/8812?limit=5', 200, 20, 138].join('|');
    expect(kong).toEqual([`kong:7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d:${sha256(`record:${kongKey}`).slice(0, 12)}:inv`]);
  });
});
