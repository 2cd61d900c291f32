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

describe('the apisix adapter: a request id the client chose', () => {
  it('records a 404 no route matched as /{unmatched}, as the SDK does, and keeps the path of any other unrouted status', () => {
    const routeOf = (status: number): unknown => {
      const entry: Record<string, unknown> = { ...apisixEntry(call({ status })) };
      delete entry.route_id;
      delete entry.route_name;
      const invocation = translate(entry).events.find((event) => event.family === 'invocation');
      return invocation?.family === 'invocation' ? invocation.invocation.route : undefined;
    };
    expect(routeOf(404)).toBe('/{unmatched}');
    expect(routeOf(401)).not.toBe('/{unmatched}');
  });

  it('drops an X-Request-Id holding a control character and keeps the record\'s events (they were refused as schema_invalid)', () => {
    const entry = apisixEntry(call({ status: 401 }));
    const request = entry.request as { headers: Record<string, string> };
    request.headers['x-request-id'] = 'abc\tdef';
    const result = translate(entry);
    expect(result.rejected).toEqual([]);
    expect(result.events.length).toBeGreaterThanOrEqual(2);
    for (const event of result.events) expect(event.correlation?.requestId).toBeUndefined();
  });
});

describe('the apisix adapter', () => {
  it('turns a single entry into its invocation, with the hostname as instance and the route id as route', () => {
    const result = translate(apisixEntry(call({ consumer: 'jack' })));
    expect(result.events[0]).toEqual({
      id: requestEventId('apisix', 'e1f2a3b4-0001', 'inv') as string,
      schemaVersion: 1,
      family: 'invocation',
      time: '2026-11-27T10:00:00.832Z', // start_time plus latency
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

  it('reads limit-count\'s per-rule headers (X-<prefix>-RateLimit-Remaining) as its rejection', () => {
    const batch = [
      apisixEntry(call({ requestId: 'r-rule', status: 503, responseHeaders: { 'X-1-RateLimit-Limit': '10', 'X-1-RateLimit-Remaining': '0', 'X-1-RateLimit-Reset': '30' } })),
      apisixEntry(call({ requestId: 'r-left', status: 503, responseHeaders: { 'X-1-RateLimit-Limit': '10', 'X-1-RateLimit-Remaining': '3' } })),
    ];
    expect(translate(batch).events.map(summary)).toEqual([
      ['apisix:r-rule:inv', 'invocation'],
      ['apisix:r-rule:rate_limit', 'rate_limit', 'apisix-limit-count', 'fail', undefined],
      ['apisix:r-left:inv', 'invocation'],
    ]);
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

  // key-auth, jwt-auth, basic-auth and hmac-auth with `anonymous_consumer` attach that consumer
  // when the credential is missing or wrong (apisix/plugins/key-auth.lua, _M.rewrite), and the
  // entry logs it like any other: consumer { username } (apisix/utils/log-util.lua get_full_log).
  it('emits no authn pass for the anonymous consumer an auth plugin falls back to (default name "anonymous")', () => {
    const result = translate(apisixEntry(call({ requestId: 'r-anon', consumer: 'anonymous' })));
    expect(result.events.map(summary)).toEqual([['apisix:r-anon:inv', 'invocation']]);
    // No consumer either: every unauthenticated client would be one caller.
    expect(result.events[0]?.actor).toEqual({});
  });

  it('takes the anonymous consumers from the settings, and still proves a pass for any other consumer', () => {
    const named: AdapterSettings = { ...settings, apisixAnonymousConsumers: ['guest', 'public-anon'] };
    const run = (consumer: string): unknown[] => apisix.translate(Buffer.from(JSON.stringify(apisixEntry(call({ requestId: 'r-1', consumer })))), named).events.map(summary);
    expect(run('guest')).toEqual([['apisix:r-1:inv', 'invocation']]);
    expect(run('public-anon')).toEqual([['apisix:r-1:inv', 'invocation']]);
    expect(run('anonymous')).toEqual([['apisix:r-1:inv', 'invocation'], ['apisix:r-1:authn', 'authn', 'apisix-auth', 'pass', undefined]]);
    expect(run('jack')).toEqual([['apisix:r-1:inv', 'invocation'], ['apisix:r-1:authn', 'authn', 'apisix-auth', 'pass', undefined]]);
    const consumerOf = (consumer: string): unknown => apisix.translate(Buffer.from(JSON.stringify(apisixEntry(call({ requestId: 'r-1', consumer })))), named).events[0]?.actor?.consumerId;
    expect([consumerOf('guest'), consumerOf('anonymous'), consumerOf('jack')]).toEqual([undefined, 'anonymous', 'jack']);
  });

  it('still reads a 403 for the anonymous consumer as a consumer restriction, without a pass', () => {
    const result = translate(apisixEntry(call({ requestId: 'r-anon-403', status: 403, consumer: 'anonymous' })));
    expect(result.events.map(summary)).toEqual([
      ['apisix:r-anon-403:inv', 'invocation'],
      ['apisix:r-anon-403:authz', 'authz', 'apisix-consumer-restriction', 'fail', 'status'],
    ]);
  });

  // jwt-auth answers `Bearer realm="..."` (apisix/plugins/jwt-auth.lua), and so does
  // openid-connect with bearer_only and no token (apisix/plugins/openid-connect.lua); only
  // openid-connect adds an `error=`.
  it('names a Bearer challenge without an error neutrally, and one with an error openid-connect', () => {
    const run = (challenge: string): unknown => {
      const result = translate(apisixEntry(call({ requestId: 'r-b', status: 401, responseHeaders: { 'www-authenticate': challenge } })));
      const policy = result.events[1];
      return policy?.family === 'policy' ? policy.policy : undefined;
    };
    expect(run('Bearer realm="jwt"')).toMatchObject({ kind: 'authn', name: 'apisix-bearer-auth', outcome: 'fail', reason: 'invalid_or_missing_credentials' });
    expect(run('Bearer realm="jwt"')).not.toHaveProperty('authContext');
    expect(run('Bearer realm="apisix", error="invalid_token"')).toMatchObject({ name: 'apisix-openid-connect', authContext: 'oauth2', reason: 'invalid_token' });
    expect(run('hmac realm="hmac"')).toMatchObject({ name: 'apisix-hmac-auth', outcome: 'fail' });
  });
});
