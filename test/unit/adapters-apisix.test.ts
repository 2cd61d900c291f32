import { ADAPTERS, groupMap, sha256, type AdapterResult, type AdapterSettings, type GatewayAdapter } from '../../ingest';
import { eventSchema, type VigilEventInput } from '../../schemas';
import { REFUSALS, apisixEntry } from '../../scripts/gateway-records';
import { requestEventId, withoutRecordDigest } from '../support/adapter-events';
import { ORDERS_CALL_TIME, ordersCall } from '../support/gateway-records';

const settings: AdapterSettings = { service: 'edge-apisix', kind: 'gateway', groups: groupMap({ routes: { 'orders-route': 'orders' }, default: 'edge' }) };
const T = ORDERS_CALL_TIME;
const call = ordersCall;

function registered(format: string): GatewayAdapter {
  const adapter = ADAPTERS[format];
  if (adapter === undefined) throw new Error(`the ${format} adapter is not registered`);
  return adapter;
}
const apisix = registered('apisix');

function translate(records: unknown): AdapterResult {
  const result = apisix.translate(Buffer.from(JSON.stringify(records)), settings);
  for (const event of result.events) expect(eventSchema.safeParse(event).success).toBe(true);
  return result;
}
const summary = (event: VigilEventInput): unknown[] =>
  event.family === 'policy'
    ? [withoutRecordDigest(event.id), event.policy.kind, event.policy.name, event.policy.outcome, event.labels?.derived]
    : [withoutRecordDigest(event.id), event.family];

describe('the apisix adapter', () => {
  it('turns a single entry into its invocation, with the hostname as instance and the route id as route', () => {
    const result = translate(apisixEntry(call({ consumer: 'jack' })));
    expect(result.events[0]).toEqual({
      id: requestEventId('apisix', 'e1f2a3b4-0001', 'inv') as string,
      schemaVersion: 1,
      family: 'invocation',
      time: '2026-11-27T10:00:00.812Z',
      source: { service: 'edge-apisix', kind: 'gateway', instance: 'apisix-7d9f-x2' },
      correlation: { requestId: 'e1f2a3b4-0001' },
      actor: { consumerId: 'jack' },
      client: { ip: '198.51.100.23', userAgent: 'curl/8.5.0' },
      labels: { adapter: 'apisix' },
      invocation: {
        resource: { api: 'orders-svc', method: 'GET', path: '/orders/8812' },
        route: '/orders-route',
        status: 200,
        latencyMs: 20.016,
        bytesIn: 94,
        bytesOut: 263,
        upstreamService: '10.0.4.12:8080',
        group: 'orders',
      },
    });
    expect(result.events.slice(1).map(summary)).toEqual([['apisix:e1f2a3b4-0001:authn', 'authn', 'apisix-auth', 'pass', undefined]]);
  });

  it('translates a kafka-logger batch (one JSON array) with each failure kind', () => {
    const batch = [
      apisixEntry(call({ requestId: 'r-401', status: 401, responseHeaders: REFUSALS.apisixKeyAuth })),
      apisixEntry(call({ requestId: 'r-401-jwt', status: 401 })),
      apisixEntry(call({ requestId: 'r-403', status: 403, consumer: 'jack' })),
      apisixEntry(call({ requestId: 'r-403-anon', status: 403 })),
      apisixEntry(call({ requestId: 'r-503-limit', status: 503, consumer: 'jack', responseHeaders: REFUSALS.apisixLimitCount })),
      apisixEntry(call({ requestId: 'r-503', status: 503 })),
      apisixEntry(call({ requestId: 'r-429', status: 429 })),
      apisixEntry(call({ requestId: 'r-trace', method: 'TRACE' })),
    ];
    const result = translate(batch);
    expect(result.events.map(summary)).toEqual([
      ['apisix:r-401:inv', 'invocation'],
      ['apisix:r-401:authn', 'authn', 'apisix-key-auth', 'fail', undefined],
      ['apisix:r-401-jwt:inv', 'invocation'],
      ['apisix:r-401-jwt:authn', 'authn', 'http-401', 'fail', 'status'],
      ['apisix:r-403:inv', 'invocation'],
      ['apisix:r-403:authn', 'authn', 'apisix-auth', 'pass', undefined],
      ['apisix:r-403:authz', 'authz', 'apisix-consumer-restriction', 'fail', 'status'],
      ['apisix:r-403-anon:inv', 'invocation'],
      ['apisix:r-403-anon:custom', 'custom', 'apisix-403', 'fail', 'status'],
      ['apisix:r-503-limit:inv', 'invocation'],
      ['apisix:r-503-limit:authn', 'authn', 'apisix-auth', 'pass', undefined],
      ['apisix:r-503-limit:rate_limit', 'rate_limit', 'apisix-limit-count', 'fail', undefined],
      // A bare 503 (limit-req, limit-conn, or an upstream down) proves nothing.
      ['apisix:r-503:inv', 'invocation'],
      ['apisix:r-429:inv', 'invocation'],
      ['apisix:r-429:rate_limit', 'rate_limit', 'http-429', 'fail', 'status'],
    ]);
    expect(result.skipped).toEqual([{ reason: 'method_unsupported', record: 7 }]);
    const keyAuth = result.events[1];
    expect(keyAuth?.family === 'policy' && keyAuth.policy.authContext).toBe('api_key');
  });

  it('hashes the record for its ids without the request-id plugin, and stores no key', () => {
    const entry = apisixEntry(call({ requestId: null }));
    const result = translate([entry]);
    const hash = sha256(`record:${[T.getTime() + 0.25, '198.51.100.23', 'GET', '/orders/8812?limit=5', 200, 20.016, 'apisix-7d9f-x2'].join('|')}`).slice(0, 40);
    expect(result.events.map((event) => event.id)).toEqual([`apisix:${hash}:inv`]);
    expect(result.events[0]?.correlation).toEqual({});
    expect(JSON.stringify(result)).not.toContain('do-not-store-me');
  });

  it('names the route and service from log_format_extra when present', () => {
    const entry = { ...apisixEntry(call()), route_name: 'orders-route', service_name: 'orders', route_id: '4711', service_id: '99' };
    const [invocation] = translate(entry).events;
    expect(invocation?.family === 'invocation' && [invocation.invocation.route, invocation.invocation.resource.api, invocation.invocation.group]).toEqual(['/orders-route', 'orders', 'orders']);
  });

  it('refuses an entry without a request object, naming the fix', () => {
    expect(translate({ host: 'x', status: 200 }).rejected).toEqual([
      { reason: 'adapter_unparseable', record: 0, message: 'record 0: no "request" object: not an APISIX log entry (a custom log_format must keep the default entry; use log_format_extra)' },
    ]);
  });
});
