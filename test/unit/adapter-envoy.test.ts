import { createHash } from 'node:crypto';
import { createEnvoyAdapter, envoyAdapter, envoyPolicySignals } from '../../ingest/adapters/envoy';
import { groupMap, type AdapterResult, type AdapterSettings } from '../../ingest/adapters';
import type { VigilEventInput } from '../../schemas';
import { expectContract, requestEventId, requestEvents, withoutRecordDigest } from '../support/adapter-events';
import { envoyGatewayRecord, istioRecord } from '../support/gateway-records';

const settings: AdapterSettings = {
  service: 'edge-envoy',
  kind: 'gateway',
  environment: 'test',
  groups: groupMap({
    routes: { 'orders-route': 'orders' },
    services: { 'httproute/shop/catalog/rule/0': 'catalog' },
    apis: { 'bank.example.com': 'bank' },
  }),
};

const line = (record: object): Buffer => Buffer.from(`${JSON.stringify(record)}\n`);
const translate = (value: Buffer | string, adapterSettings: AdapterSettings = settings): AdapterResult =>
  envoyAdapter.translate(typeof value === 'string' ? Buffer.from(value) : value, adapterSettings);

const ISTIO_ID = '5f0c3b9e-8a1d-4c1e-9b6a-0e2d7c1a2b3c';
const source = { service: 'edge-envoy', kind: 'gateway', environment: 'test' } as const;
const ordersResource = { api: 'shop.example.com', method: 'POST', path: '/orders/42' } as const;

const orders = requestEvents({
  adapter: 'envoy',
  requestId: ISTIO_ID,
  time: '2026-03-01T10:00:00.123Z',
  source,
  client: { ip: '198.51.100.23', userAgent: 'curl/8.5.0' },
  resource: ordersResource,
  group: 'orders',
});

/** The invocation Istio's 201 record becomes; policy cases change what they change. */
function ordersInvocation(overrides: { status?: number; labels?: Record<string, string>; actor?: Record<string, string> } = {}): VigilEventInput {
  const invocation = { route: '/orders-route', status: overrides.status ?? 201, latencyMs: 23, bytesIn: 154, bytesOut: 87, upstreamService: 'outbound|8080||orders.shop.svc.cluster.local' };
  return orders.invocation(invocation, overrides.labels, overrides.actor);
}

const ordersPolicy = orders.policy;

describe('envoy adapter: Istio default JSON', () => {
  it('reads one record written over several lines (pretty-printed) whole, as the other formats do', () => {
    const result = translate(`${JSON.stringify(istioRecord(), null, 2)}\n`);
    expect(result).toEqual({ events: [ordersInvocation()], rejected: [], skipped: [], droppedDerived: [] });
  });

  it('records a 404 no route matched (NR) as /{unmatched}, as the SDK does, and keeps the path of any other unrouted status', () => {
    const withDefault = { ...settings, groups: groupMap({ default: 'edge' }) };
    const routeOf = (overrides: Record<string, unknown>): unknown => {
      const invocation = translate(line(istioRecord({ route_name: '-', ...overrides })), withDefault).events.find((event) => event.family === 'invocation');
      return invocation?.family === 'invocation' ? invocation.invocation.route : undefined;
    };
    expect(routeOf({ response_code: '404', response_flags: 'NR', path: '/.env' })).toBe('/{unmatched}');
    expect(routeOf({ response_code: '404', response_flags: 'NR', path: '/wp-login.php' })).toBe('/{unmatched}');
    expect(routeOf({ response_code: '401', path: '/orders/42' })).toBe('/orders/42');
  });

  it('turns a 201 into one invocation: query dropped from the path, "-" values absent, client from downstream_remote_address', () => {
    const result = translate(line(istioRecord()));
    expect(result).toEqual({ events: [ordersInvocation()], rejected: [], skipped: [], droppedDerived: [] });
    expectContract(result.events);
  });

  it.each([
    [
      'UAEX with ext_authz_denied, 403: authz denial by ext-authz',
      { response_code: '403', response_flags: 'UAEX', response_code_details: 'ext_authz_denied' },
      403,
      ['authz', { name: 'ext-authz', outcome: 'fail', reason: 'ext_authz_denied' }],
    ],
    [
      'UAEX with a 401 from the authorization service: authentication failure',
      { response_code: '401', response_flags: 'UAEX', response_code_details: 'ext_authz_denied' },
      401,
      ['authn', { name: 'ext-authz', outcome: 'fail', reason: 'ext_authz_denied' }],
    ],
    [
      'jwt_authn_access_denied{Jwt_is_expired}: jwt-authn failure with the reason in braces',
      { response_code: '401', response_code_details: 'jwt_authn_access_denied{Jwt_is_expired}' },
      401,
      ['authn', { name: 'jwt-authn', outcome: 'fail', reason: 'Jwt_is_expired', authContext: 'jwt' }],
    ],
    [
      'rbac_access_denied_matched_policy[...]: authz denial named after the policy',
      { response_code: '403', response_code_details: 'rbac_access_denied_matched_policy[ns[shop]-policy[deny-guests]-rule[0]]' },
      403,
      ['authz', { name: 'rbac:ns[shop]-policy[deny-guests]-rule[0]', outcome: 'fail', reason: 'rbac_access_denied' }],
    ],
    [
      'RL with request_rate_limited: the global rate limit service',
      { response_code: '429', response_flags: 'RL', response_code_details: 'request_rate_limited' },
      429,
      ['rate_limit', { name: 'envoy-ratelimit', outcome: 'fail', reason: 'request_rate_limited' }],
    ],
    [
      'RL with local_rate_limited: the local rate limit filter',
      { response_code: '429', response_flags: 'RL', response_code_details: 'local_rate_limited' },
      429,
      ['rate_limit', { name: 'local-ratelimit', outcome: 'fail', reason: 'local_rate_limited' }],
    ],
  ] as const)('%s', (_case, overrides, status, [kind, policy]) => {
    const flags = 'response_flags' in overrides ? overrides.response_flags : undefined;
    const labels: Record<string, string> = flags !== undefined ? { adapter: 'envoy', response_flags: flags } : { adapter: 'envoy' };
    const result = translate(line(istioRecord(overrides)));
    expect(result).toEqual({
      events: [ordersInvocation({ status, labels }), ordersPolicy(kind, { ...policy }, labels)],
      rejected: [],
      skipped: [],
      droppedDerived: [],
    });
    expectContract(result.events);
  });

  it('a 401 the upstream answered (via_upstream) is a heuristic: http-401, labelled derived=status', () => {
    const result = translate(line(istioRecord({ response_code: '401' })));
    expect(result.events).toEqual([
      ordersInvocation({ status: 401 }),
      ordersPolicy('authn', { name: 'http-401', outcome: 'fail' }, { adapter: 'envoy', derived: 'status' }),
    ]);
    expectContract(result.events);
  });

  it('a verified JWT subject proves an authn pass; the token client is the consumer', () => {
    const actor = { userId: 'user-8841', consumerId: 'mobile-app' };
    const result = translate(line(istioRecord({ jwt_sub: 'user-8841', jwt_azp: 'mobile-app' })));
    expect(result.events).toEqual([
      ordersInvocation({ actor }),
      ordersPolicy('authn', { name: 'jwt-authn', outcome: 'pass', authContext: 'jwt' }, { adapter: 'envoy' }, actor),
    ]);
    expectContract(result.events);
  });

  it('RLSE, NR and the other non-security flags give no policy event', () => {
    for (const flags of ['RLSE', 'NR', 'UH', 'UF,URX']) {
      const result = translate(line(istioRecord({ response_code: '503', response_flags: flags, response_code_details: 'no_healthy_upstream' })));
      expect(result.events.map((event) => event.family)).toEqual(['invocation']);
    }
  });
});

describe('envoy adapter: Envoy Gateway default keys, typed values', () => {
  it('reads header-named keys and numbers', () => {
    const result = translate(line(envoyGatewayRecord()));
    expect(result).toEqual({
      events: [
        {
          id: requestEventId('envoy', '9b2e6f51-3c7a-4d8e-a1f0-7e5d4c3b2a19', 'inv') as string,
          schemaVersion: 1,
          time: '2026-03-01T10:05:00.000Z',
          source,
          correlation: { requestId: '9b2e6f51-3c7a-4d8e-a1f0-7e5d4c3b2a19' },
          actor: {},
          client: { ip: '192.0.2.44', userAgent: 'Mozilla/5.0' },
          labels: { adapter: 'envoy' },
          family: 'invocation',
          invocation: {
            resource: { api: 'catalog.example.com', method: 'GET', path: '/catalog/items' },
            route: '/httproute/shop/catalog/rule/0/match/0/catalog_example_com',
            status: 200,
            latencyMs: 7,
            bytesIn: 0,
            bytesOut: 512,
            upstreamService: 'httproute/shop/catalog/rule/0',
            group: 'catalog',
          },
        },
      ],
      rejected: [],
      skipped: [],
      droppedDerived: [],
    });
    expectContract(result.events);
  });

  it('without a request id ("-"), the id is the SHA-256 of what identifies the record, and stable', () => {
    const record = envoyGatewayRecord({ 'x-request-id': '-', 'user-agent': '-' });
    const first = translate(line(record));
    const again = translate(line(record));
    const fallback = JSON.stringify(['2026-03-01T10:05:00.000Z', '192.0.2.44', 'GET', '/catalog/items?page=2', 200, undefined, 'httproute/shop/catalog/rule/0/match/0/catalog_example_com']);
    const hash = createHash('sha256').update(`record:${fallback}`).digest('hex').slice(0, 40);
    expect(first.events.map((event) => event.id)).toEqual([`envoy:${hash}:inv`]);
    expect(first.events[0]).toMatchObject({ correlation: {}, client: { ip: '192.0.2.44' } });
    expect(first.events[0]?.client).not.toHaveProperty('userAgent');
    expect(again.events).toEqual(first.events);
    const later = translate(line({ ...record, start_time: '2026-03-01T10:05:00.001Z' }));
    expect(later.events[0]?.id).not.toEqual(first.events[0]?.id);
    expectContract(first.events);
  });
});

describe('envoy adapter: messages and strictness', () => {
  it('takes newline-delimited records (a shipper batch): blank lines ignored, a broken line rejected alone', () => {
    const batch = [
      JSON.stringify(istioRecord()),
      '',
      '{"start_time": "2026-03-01T10:00:01Z", "method": ',
      JSON.stringify(istioRecord({ request_id: 'req-2', response_code: '429', response_flags: 'RL', response_code_details: 'local_rate_limited' })),
    ].join('\n');
    const result = translate(batch);
    expect(result.events.map((event) => withoutRecordDigest(event.id))).toEqual([`envoy:${ISTIO_ID}:inv`, 'envoy:req-2:inv', 'envoy:req-2:rate_limit']);
    expect(result.rejected).toEqual([{ reason: 'adapter_unparseable', record: 1, message: expect.stringMatching(/^record 1: not JSON: /) as string }]);
    expect(result.skipped).toEqual([]);
    expectContract(result.events);
  });

  it('takes a JSON array of records, and a record a shipper wrapped in "message" (Filebeat, Vector) or "log" (Fluent Bit)', () => {
    const array = translate(JSON.stringify([istioRecord(), istioRecord({ request_id: 'req-2' })]));
    expect(array.events.map((event) => withoutRecordDigest(event.id))).toEqual([`envoy:${ISTIO_ID}:inv`, 'envoy:req-2:inv']);
    const wrapped = translate(line({ '@timestamp': '2026-03-01T10:00:02Z', message: JSON.stringify(istioRecord()) }));
    expect(wrapped.events).toEqual([ordersInvocation()]);
    const fluent = translate(line({ log: JSON.stringify(istioRecord()), stream: 'stdout' }));
    expect(fluent.events).toEqual([ordersInvocation()]);
    // Envoy Gateway's default text format does not escape a client's quote: the wrapped line breaks.
    const broken = JSON.stringify(istioRecord({ user_agent: 'x" y' })).replace('x\\" y', 'x" y');
    const refused = translate([line({ log: broken, stream: 'stdout' }), line({ message: JSON.stringify(istioRecord({ request_id: 'req-2' })) })].join(''));
    expect(refused.rejected).toEqual([{ reason: 'adapter_unparseable', record: 0, message: expect.stringMatching(/^record 0: the shipper's "log" text is not JSON: /) as string }]);
    expect(refused.skipped).toEqual([]);
    expect(refused.events.map((event) => withoutRecordDigest(event.id))).toEqual(['envoy:req-2:inv']);
  });

  it('skips methods outside the contract and records that are not HTTP (a TCP proxy record has no method)', () => {
    const result = translate([JSON.stringify(istioRecord({ method: 'PROPFIND' })), JSON.stringify(istioRecord({ method: 'CONNECT' })), JSON.stringify({ start_time: '2026-03-01T10:00:00Z', method: '-', bytes_sent: '10' })].join('\n'));
    expect(result).toEqual({
      events: [],
      rejected: [],
      skipped: [
        { reason: 'method_unsupported', record: 0 },
        { reason: 'method_unsupported', record: 1 },
        { reason: 'not_http', record: 2 },
      ],
      droppedDerived: [],
    });
  });

  it('rejects a record no group maps, naming the route, service and API it looked up', () => {
    const result = translate(line(istioRecord({ route_name: 'payments', upstream_cluster: 'outbound|80||payments', authority: 'pay.example.com' })));
    expect(result).toEqual({
      events: [],
      skipped: [],
      droppedDerived: [],
      rejected: [
        {
          reason: 'adapter_unmapped',
          record: 0,
          message: 'record 0: no group for route "payments", service "outbound|80||payments", api "pay.example.com", tags (none) and no default group: add one of them (or a default) to VIGIL_ADAPT_GROUPS',
        },
      ],
    });
  });

  it('skips a record with response code 0 (no response sent: the client went away), keeping the rest of the message', () => {
    const result = translate([JSON.stringify(istioRecord({ response_code: '0', response_flags: 'DC', response_code_details: 'downstream_remote_disconnect' })), JSON.stringify(istioRecord())].join('\n'));
    expect(result.rejected).toEqual([]);
    expect(result.skipped).toEqual([{ reason: 'no_response', record: 0 }]);
    expect(result.events).toEqual([ordersInvocation()]);
  });

  it('rejects a record with no path or no status, naming the keys it looked up', () => {
    const result = translate([JSON.stringify(istioRecord({ path: '-' })), JSON.stringify(istioRecord({ response_code: '999' }))].join('\n'));
    expect(result.rejected).toEqual([
      { reason: 'adapter_unmapped', record: 0, message: 'record 0: no request path starting with "/" (looked up path, x-envoy-origin-path: (none))' },
      { reason: 'adapter_unmapped', record: 1, message: 'record 1: no HTTP status 100-599 (looked up response_code)' },
    ]);
    expect(result.events).toEqual([]);
  });

  it('leaves out an optional field the contract would refuse, and makes a path it would refuse one it takes', () => {
    const odd = translate(line(istioRecord({ downstream_remote_address: '999.1.1.1:80', x_forwarded_for: '-', user_agent: 'bad\r\nagent' })));
    expect(odd.events).toHaveLength(1);
    expect(odd.events[0]?.client).toEqual({});
    expectContract(odd.events);
    // No byte counts logged ("-"): absent, which the contract reads as unknown, not 0 (empty).
    const uncounted = translate(line(istioRecord({ bytes_received: '-', bytes_sent: '-' })));
    const invocation = uncounted.events[0]?.family === 'invocation' ? uncounted.events[0].invocation : undefined;
    expect(invocation).toBeDefined();
    expect(invocation && 'bytesIn' in invocation).toBe(false);
    expect(invocation && 'bytesOut' in invocation).toBe(false);
    // A refused credential is refused whatever the path: a padded or odd one must not hide it.
    const controlled = translate(line(istioRecord({ path: '/orders/\u0000x\u0085', response_code: '401', response_code_details: 'jwt_authn_access_denied{Jwt_is_missing}' })));
    expect(controlled.rejected).toEqual([]);
    expect(controlled.events.map((event) => event.family)).toEqual(['invocation', 'policy']);
    expect(controlled.events[0]).toMatchObject({ invocation: { resource: { path: '/orders/%00x%C2%85' } } });
    const padded = translate(line(istioRecord({ path: `/orders/${'A'.repeat(2_100)}?apikey=guess`, response_code: '401', response_code_details: 'jwt_authn_access_denied{Jwt_is_missing}' })));
    expect(padded.rejected).toEqual([]);
    expect(padded.events.map((event) => event.family)).toEqual(['invocation', 'policy']);
    const path = padded.events[0]?.family === 'invocation' ? padded.events[0].invocation.resource.path : '';
    expect(path).toBe(`/orders/${'A'.repeat(2_040)}`);
    expectContract([...controlled.events, ...padded.events]);
  });

  it('refuses a message that is not JSON with the parser message', () => {
    expect(translate('<html>').rejected).toEqual([{ reason: 'adapter_unparseable', record: 0, message: expect.stringMatching(/^record 0: not JSON/) as string }]);
  });
});

describe('envoy adapter options', () => {
  it('maps a user-defined json_format with other key names, and can take the client from X-Forwarded-For', () => {
    const adapter = createEnvoyAdapter({ keys: { method: ['verb'], path: ['uri'], status: ['code'], routeName: ['route'] }, clientIp: 'xff' });
    const record = { start_time: '2026-03-01T10:00:00Z', verb: 'DELETE', uri: '/orders/9', code: 204, route: 'orders-route', x_forwarded_for: '203.0.113.7, 10.0.0.1', downstream_remote_address: '10.0.0.1:5000', downstream_direct_remote_address: '10.0.0.1:5000', request_id: 'req-9' };
    const result = adapter.translate(line(record), settings);
    expect(result.events).toHaveLength(1);
    expect(result.events[0]).toMatchObject({ id: requestEventId('envoy', 'req-9', 'inv') as string, client: { ip: '203.0.113.7' }, invocation: { resource: { method: 'DELETE', path: '/orders/9' }, status: 204, group: 'orders' } });
    const byDefault = envoyAdapter.translate(line({ ...istioRecord(), x_forwarded_for: '203.0.113.7, 10.0.0.1' }), settings);
    expect(byDefault.events[0]?.client).toEqual({ ip: '198.51.100.23', userAgent: 'curl/8.5.0' });
  });

  // Entries left of what the load balancer appended are the client's own: rotating the first one
  // evaded every per-IP rule, and naming a trusted-egress address raised the stuffing bar.
  it('takes from X-Forwarded-For the entry the proxy in front appended, never one the client wrote', () => {
    const adapter = createEnvoyAdapter({ clientIp: 'xff' });
    const ipOf = (xff: string, remote: string, direct?: string): unknown => {
      const record = { ...istioRecord(), x_forwarded_for: xff, downstream_remote_address: remote, downstream_direct_remote_address: direct };
      return adapter.translate(line(record), settings).events[0]?.client?.ip;
    };
    // Envoy appended the load balancer's address, its physical peer (use_remote_address): the entry before it.
    expect(ipOf('6.6.6.6, 198.51.100.7, 10.0.0.1', '10.0.0.1:5000', '10.0.0.1:5000')).toBe('198.51.100.7');
    // Envoy did not append, and took its remote address from the rightmost entry itself: that entry.
    expect(ipOf('6.6.6.6, 198.51.100.7', '198.51.100.7:0', '10.0.0.1:5000')).toBe('198.51.100.7');
    // Without the physical peer logged, nothing is dropped: the rightmost entry.
    expect(ipOf('6.6.6.6, 198.51.100.7', '198.51.100.7:0')).toBe('198.51.100.7');
    // The default takes the remote address, and falls back to the same entry without one.
    const fallback = envoyAdapter.translate(line({ ...istioRecord(), x_forwarded_for: '6.6.6.6, 198.51.100.7', downstream_remote_address: undefined }), settings);
    expect(fallback.events[0]?.client?.ip).toBe('198.51.100.7');
  });
});

describe('envoyPolicySignals', () => {
  it("reads AWS's MISSING_AUTHENTICATION_TOKEN as an authn failure only on a resource the API has: on none it is a not found, no policy event", () => {
    const aws = { status: 403, errorType: 'MISSING_AUTHENTICATION_TOKEN', policyName: 'aws-apigateway' } as const;
    expect(envoyPolicySignals({ ...aws, routeName: '/orders/{id}' })).toEqual([{ kind: 'authn', name: 'aws-apigateway', outcome: 'fail', reason: 'MISSING_AUTHENTICATION_TOKEN' }]);
    // A path scanner's GET /wp-admin.php: no resource matched, not a credential failure (nor a derived authz one).
    expect(envoyPolicySignals(aws)).toEqual([]);
    // The other AWS categories are unchanged without a resource.
    expect(envoyPolicySignals({ status: 403, errorType: 'INVALID_API_KEY', policyName: 'aws-apigateway' })).toEqual([{ kind: 'authn', name: 'aws-apigateway', outcome: 'fail', reason: 'INVALID_API_KEY' }]);
  });

  it('reads comma-separated flags and prefers the proven signal over the status', () => {
    expect(envoyPolicySignals({ flags: 'UAEX,DC', status: 403 })).toEqual([{ kind: 'authz', name: 'ext-authz', outcome: 'fail', reason: 'UAEX' }]);
    expect(envoyPolicySignals({ flags: 'RL', status: 429 })).toEqual([{ kind: 'rate_limit', name: 'envoy-ratelimit', outcome: 'fail', reason: 'RL' }]);
    expect(envoyPolicySignals({ status: 429 })).toEqual([{ kind: 'rate_limit', name: 'http-429', outcome: 'fail', derived: 'status' }]);
    expect(envoyPolicySignals({ status: 404, details: 'route_not_found', flags: 'NR' })).toEqual([]);
  });

  it('gives no outcome for ext_authz\'s sign-in redirect (a 302 with UAEX: a browser\'s first visit, no credential tried)', () => {
    expect(envoyPolicySignals({ flags: 'UAEX', status: 302, details: 'ext_authz_denied' })).toEqual([]);
    expect(envoyPolicySignals({ flags: 'UAEX', status: 403, details: 'ext_authz_denied' })).toEqual([{ kind: 'authz', name: 'ext-authz', outcome: 'fail', reason: 'ext_authz_denied' }]);
  });

  it('gives no policy event for an outage, whatever its status: ext_authz failing (403 by default), the rate limit service failing, an injected fault', () => {
    expect(envoyPolicySignals({ status: 403, details: 'ext_authz_error' })).toEqual([]);
    // Envoy flags an ext_authz error UAEX too: the details tell the outage from a denial.
    expect(envoyPolicySignals({ status: 403, details: 'ext_authz_error', flags: 'UAEX' })).toEqual([]);
    expect(envoyPolicySignals({ status: 429, flags: 'RLSE' })).toEqual([]);
    expect(envoyPolicySignals({ status: 429, flags: 'FI' })).toEqual([]);
    expect(envoyPolicySignals({ status: 403, flags: 'UF,URX' })).toEqual([]);
    // A verdict beside an outage flag is still read, and the status alone still counts without one.
    expect(envoyPolicySignals({ status: 403, details: 'ext_authz_denied', flags: 'UAEX' })).toEqual([{ kind: 'authz', name: 'ext-authz', outcome: 'fail', reason: 'ext_authz_denied' }]);
    expect(envoyPolicySignals({ status: 403 })).toEqual([{ kind: 'authz', name: 'http-403', outcome: 'fail', derived: 'status' }]);
  });
});
