import { eventId, groupMap, sha256, type AdapterSettings } from '../../ingest/adapters';
import { wso2Adapter } from '../../ingest/adapters/wso2';
import { WSO2_PREFIX as PREFIX, wso2Fault as fault, wso2Line as line, wso2Response as response } from '../support/gateway-records';
import { expectContract, requestEventId, withoutRecordDigest } from '../support/adapter-events';

/**
 * Fixtures built from the fields WSO2's ELK reporter logs (`ELKCounterMetric` writes
 * `apimMetrics: <event>, properties :<json>`; `ELKMetricEventBuilder` lifts apiContext and
 * userName out of `properties` and swaps userAgentHeader for its browser family and platform).
 */

const settings: AdapterSettings = {
  service: 'apim-gw-eu',
  kind: 'gateway',
  environment: 'production',
  groups: groupMap({ apis: { PizzaShackAPI: 'food' }, services: { '/orders/2.0.0': 'orders' } }),
};

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

describe('wso2 adapter', () => {
  it('turns a bare apim:response line into one invocation with the route template, consumer and user', () => {
    const result = wso2Adapter.translate(bytes(line('apim:response', response())), settings);
    expect(result.rejected).toEqual([]);
    expect(result.skipped).toEqual([]);
    expect(result.events).toEqual([
      {
        id: requestEventId('wso2', 'd5c1ac41-ac9a-4dc4-8b7c-9c5c1a6d4a3b', 'inv') as string,
        schemaVersion: 1,
        family: 'invocation',
        time: '2026-11-27T10:00:00.881Z', // requestTimestamp plus responseLatency
        source: { service: 'apim-gw-eu', kind: 'gateway', environment: 'production' },
        correlation: { requestId: 'd5c1ac41-ac9a-4dc4-8b7c-9c5c1a6d4a3b' },
        actor: { userId: 'alice@carbon.super', consumerId: 'a0b1c2d3-0000-4000-8000-000000000001' },
        client: { ip: '203.0.113.7' },
        labels: {
          adapter: 'wso2',
          wso2_event: 'response',
          key_type: 'PRODUCTION',
          api_id: '6b7b6d3e-1d2a-4c1f-9d6c-2f0a1b2c3d4e',
          application_name: 'DefaultApplication',
          browser: 'Chrome',
          platform: 'Mac OS X',
          target_status: '200',
        },
        invocation: {
          resource: { api: 'PizzaShackAPI:1.0.0', method: 'GET', path: '/pizzashack/1.0.0/order/{orderId}' },
          route: '/pizzashack/1.0.0/order/{orderId}',
          status: 200,
          latencyMs: 69,
          upstreamService: 'backend.internal:9443',
          group: 'food',
        },
      },
    ]);
    expectContract(result.events);
  });

  it('reads the line out of a Filebeat envelope and names the instance from host.name', () => {
    const envelope = { '@timestamp': '2026-11-27T10:00:00.900Z', message: line('apim:response', response({ userAgentHeader: 'Mozilla/5.0 (X11)' })), host: { name: 'apim-gw-1' } };
    const result = wso2Adapter.translate(bytes(JSON.stringify(envelope)), settings);
    expect(result.events).toHaveLength(1);
    expect(result.events[0]?.source).toEqual({ service: 'apim-gw-eu', kind: 'gateway', instance: 'apim-gw-1', environment: 'production' });
    expect(result.events[0]?.client).toEqual({ ip: '203.0.113.7', userAgent: 'Mozilla/5.0 (X11)' });
    expectContract(result.events);
  });

  it('takes many lines per message: bare lines, NDJSON envelopes and a JSON array of Fluent Bit records', () => {
    const lines = [line('apim:response', response()), line('apim:faulty', fault())];
    const bare = wso2Adapter.translate(bytes(lines.join('\n')), settings);
    const ndjson = wso2Adapter.translate(bytes(lines.map((text) => JSON.stringify({ message: text })).join('\n')), settings);
    const array = wso2Adapter.translate(bytes(JSON.stringify(lines.map((text) => ({ log: text })))), settings);
    const filebeat = wso2Adapter.translate(bytes(lines.map((text) => JSON.stringify({ message: text, host: { name: 'apim-gw-1' } })).join('\n')), settings);
    for (const result of [bare, ndjson, array, filebeat]) {
      expect(result.rejected).toEqual([]);
      // A line with a correlation id keeps its ids whatever shipper carried it.
      expect(result.events.map((event) => event.id)).toEqual(bare.events.map((event) => event.id));
      expect(result.events.map((event) => withoutRecordDigest(event.id))).toEqual([
        'wso2:d5c1ac41-ac9a-4dc4-8b7c-9c5c1a6d4a3b:inv',
        'wso2:f00dfeed-0000-4000-8000-000000000002:inv',
        'wso2:f00dfeed-0000-4000-8000-000000000002:authn',
      ]);
    }
  });

  // The fault as the ELK reporter really logs it: no apiMethod, userIp or apiContext at the top
  // level (elkFaultEventSchema in GenericInputValidator.java), apiContext and userName only in
  // `properties`.
  it('turns a real-shape AUTH AUTHENTICATION_FAILURE fault into its invocation and a failed authn, the context from properties, the method marked unrecorded', () => {
    const result = wso2Adapter.translate(bytes(line('apim:faulty', fault())), settings);
    expect(result.rejected).toEqual([]);
    const common = {
      schemaVersion: 1,
      time: '2026-11-27T10:00:01.000Z',
      source: { service: 'apim-gw-eu', kind: 'gateway', environment: 'production' },
      correlation: { requestId: 'f00dfeed-0000-4000-8000-000000000002' },
      // WSO2's placeholders for "no user, no application" are left out, not kept as ids.
      actor: {},
      client: {},
      labels: {
        adapter: 'wso2',
        wso2_event: 'fault',
        key_type: 'PRODUCTION',
        api_id: '6b7b6d3e-1d2a-4c1f-9d6c-2f0a1b2c3d4e',
        application_name: 'anonymous',
        error_type: 'AUTH',
        error_sub_category: 'AUTHENTICATION_FAILURE',
        error_code: '900901',
        target_status: '0',
        method: 'unrecorded',
      },
    };
    const resource = { api: 'PizzaShackAPI:1.0.0', method: 'GET', path: '/pizzashack/1.0.0' };
    expect(result.events).toEqual([
      {
        ...common,
        id: requestEventId('wso2', 'f00dfeed-0000-4000-8000-000000000002', 'inv') as string,
        family: 'invocation',
        invocation: { resource, route: '/pizzashack/1.0.0', status: 401, latencyMs: 0, group: 'food' },
      },
      {
        ...common,
        id: requestEventId('wso2', 'f00dfeed-0000-4000-8000-000000000002', 'authn') as string,
        family: 'policy',
        policy: { kind: 'authn', name: 'AUTHENTICATION_FAILURE', outcome: 'fail', reason: '900901', group: 'food', resource },
      },
    ]);
    expectContract(result.events);
  });

  it('takes apiMethod, userIp and userName from properties, where a custom analytics data provider puts them', () => {
    const result = wso2Adapter.translate(bytes(line('apim:faulty', fault({ errorType: 'AUTH', errorMessage: 'AUTHORIZATION_FAILURE', errorCode: 900910, proxyResponseCode: 403 }, { apiMethod: 'POST', userIp: '198.51.100.9', userName: 'alice@carbon.super' }))), settings);
    expect(result.events.map((event) => event.family)).toEqual(['invocation', 'policy']);
    expect(result.events[1]).toMatchObject({
      actor: { userId: 'alice@carbon.super' },
      client: { ip: '198.51.100.9' },
      policy: { kind: 'authz', resource: { api: 'PizzaShackAPI:1.0.0', method: 'POST', path: '/pizzashack/1.0.0' } },
    });
    expect(result.events[1]?.labels?.method).toBeUndefined();
    expectContract(result.events);
  });

  it('prefers the top-level field to the one in properties', () => {
    const result = wso2Adapter.translate(bytes(line('apim:faulty', fault({ apiMethod: 'PUT', apiContext: '/pizzashack/2.0.0', userIp: '203.0.113.9' }, { apiMethod: 'POST', apiContext: '/other/1.0.0', userIp: '198.51.100.9' }))), settings);
    expect(result.events[1]).toMatchObject({ client: { ip: '203.0.113.9' }, policy: { resource: { method: 'PUT', path: '/pizzashack/2.0.0' } } });
  });

  it.each([
    ['AUTH', 'AUTHORIZATION_FAILURE', 900910, 403, 'authz'],
    ['AUTH', 'SUBSCRIPTION_VALIDATION_FAILURE', 900908, 403, 'authz'],
    ['AUTH', 'OTHER', 900900, 401, 'authn'],
    ['THROTTLED', 'API_LEVEL_LIMIT_EXCEEDED', 900800, 429, 'rate_limit'],
    ['THROTTLED', 'RESOURCE_LEVEL_LIMIT_EXCEEDED', 900802, 429, 'rate_limit'],
    ['THROTTLED', 'APPLICATION_LEVEL_LIMIT_EXCEEDED', 900803, 429, 'rate_limit'],
    ['THROTTLED', 'SUBSCRIPTION_LIMIT_EXCEEDED', 900804, 429, 'rate_limit'],
    ['THROTTLED', 'BURST_CONTROL_LIMIT_EXCEEDED', 900807, 429, 'rate_limit'],
    ['THROTTLED', 'CUSTOM_POLICY_LIMIT_EXCEEDED', 900806, 429, 'rate_limit'],
    ['THROTTLED', 'BLOCKED', 900805, 403, 'custom'],
    ['THROTTLED', 'QUERY_TOO_DEEP', 900820, 400, 'custom'],
  ] as const)('%s %s (%d, status %d) becomes a failed %s policy event beside its invocation', (errorType, subCategory, code, status, kind) => {
    const result = wso2Adapter.translate(
      bytes(line('apim:faulty', fault({ errorType, errorMessage: subCategory, errorCode: code, proxyResponseCode: status }))),
      settings,
    );
    expect(result.events.map((event) => withoutRecordDigest(event.id))).toEqual([`wso2:f00dfeed-0000-4000-8000-000000000002:inv`, `wso2:f00dfeed-0000-4000-8000-000000000002:${kind}`]);
    const policy = result.events[1];
    expect(policy?.family === 'policy' ? policy.policy : undefined).toMatchObject({ kind, name: subCategory, outcome: 'fail', reason: String(code) });
    expect(policy?.labels?.derived).toBeUndefined();
    expectContract(result.events);
  });

  it.each(['TARGET_CONNECTIVITY', 'OTHER'])('a %s fault is an invocation only', (errorType) => {
    const result = wso2Adapter.translate(
      bytes(line('apim:faulty', fault({ errorType, errorMessage: 'CONNECTION_TIMEOUT', errorCode: 101504, proxyResponseCode: 504 }))),
      settings,
    );
    expect(result.events.map((event) => [event.family, event.family === 'invocation' ? event.invocation.status : undefined])).toEqual([['invocation', 504]]);
    expectContract(result.events);
  });

  it('refuses an apim:response without apiMethod as adapter_unmapped, naming the field, and keeps the other lines', () => {
    const withoutMethod = response();
    delete withoutMethod.apiMethod;
    const result = wso2Adapter.translate(bytes([line('apim:response', withoutMethod), line('apim:faulty', fault())].join('\n')), settings);
    expect(result.rejected.map((reject) => [reject.reason, reject.record])).toEqual([['adapter_unmapped', 0]]);
    expect(result.rejected[0]?.message).toBe('record 0: apim:response has no apiMethod (neither at the top level nor in properties), and an invocation needs the request\'s method');
    expect(result.events.map((event) => withoutRecordDigest(event.id))).toEqual(['wso2:f00dfeed-0000-4000-8000-000000000002:inv', 'wso2:f00dfeed-0000-4000-8000-000000000002:authn']);
  });

  it('refuses a fault with no apiContext anywhere, naming both places', () => {
    const result = wso2Adapter.translate(bytes(line('apim:faulty', fault({ properties: { userName: 'anonymous' } }))), settings);
    expect(result.rejected).toEqual([{ reason: 'adapter_unmapped', record: 0, message: 'record 0: apim:faulty has no usable apiContext (top level or properties) or apiResourceTemplate to build the path from' }]);
  });

  it('keeps the policy outcome of a fault that carries no proxyResponseCode, and counts the lost invocation', () => {
    const noStatus = fault({ errorType: 'THROTTLED', errorMessage: 'API_LEVEL_LIMIT_EXCEEDED', errorCode: 900800 });
    delete noStatus.proxyResponseCode;
    const result = wso2Adapter.translate(bytes(line('apim:faulty', noStatus)), settings);
    expect(result.events.map((event) => withoutRecordDigest(event.id))).toEqual(['wso2:f00dfeed-0000-4000-8000-000000000002:rate_limit']);
    expect(result.skipped).toEqual([{ reason: 'status_missing', record: 0 }]);
    expectContract(result.events);
  });

  it('skips a method outside the contract and an event it does not know', () => {
    const result = wso2Adapter.translate(bytes([line('apim:response', response({ apiMethod: 'TRACE' })), line('apim:other', { a: 1 })].join('\n')), settings);
    expect(result.events).toEqual([]);
    expect(result.rejected).toEqual([]);
    expect(result.skipped).toEqual([
      { reason: 'method_unsupported', record: 0 },
      { reason: 'event_unsupported', record: 1 },
    ]);
  });

  it('drops the query of a resource template from path and route', () => {
    const result = wso2Adapter.translate(bytes(line('apim:response', response({ apiResourceTemplate: '/orders?limit={limit}' }))), settings);
    const event = result.events[0];
    expect(event?.family === 'invocation' ? [event.invocation.resource.path, event.invocation.route] : undefined).toEqual(['/pizzashack/1.0.0/orders', '/pizzashack/1.0.0/orders']);
    expectContract(result.events);
  });

  it('names a record without a correlationId by a hash of its own fields: the same line twice is one id, another line another', () => {
    const first = response({ correlationId: undefined });
    const again = wso2Adapter.translate(bytes(line('apim:response', first)), settings);
    const once = wso2Adapter.translate(bytes(line('apim:response', first)), settings);
    const other = wso2Adapter.translate(bytes(line('apim:response', response({ correlationId: undefined, userIp: '203.0.113.8' }))), settings);
    const expected = eventId(
      'wso2',
      undefined,
      JSON.stringify(['apim:response', '2026-11-27T10:00:00.812Z', '203.0.113.7', '6b7b6d3e-1d2a-4c1f-9d6c-2f0a1b2c3d4e', 'GET', '/pizzashack/1.0.0', '/order/{orderId}', 'a0b1c2d3-0000-4000-8000-000000000001', 200, undefined, undefined]),
      'inv',
    );
    expect(again.events[0]?.id).toBe(expected);
    expect(expected).toBe(`wso2:${sha256(`record:${JSON.stringify(['apim:response', '2026-11-27T10:00:00.812Z', '203.0.113.7', '6b7b6d3e-1d2a-4c1f-9d6c-2f0a1b2c3d4e', 'GET', '/pizzashack/1.0.0', '/order/{orderId}', 'a0b1c2d3-0000-4000-8000-000000000001', 200, null, null])}`).slice(0, 40)}:inv`);
    expect(once.events[0]?.id).toBe(expected);
    expect(other.events[0]?.id).not.toBe(expected);
    expect(again.events[0]?.correlation).toEqual({});
    expectContract(again.events);
  });

  it('dead-letters a record no group maps as adapter_unmapped, naming what it looked up', () => {
    const result = wso2Adapter.translate(bytes(line('apim:response', response({ apiName: 'Unknown', apiContext: '/unknown/1' }))), settings);
    expect(result.events).toEqual([]);
    expect(result.rejected).toEqual([
      {
        reason: 'adapter_unmapped',
        record: 0,
        message: 'record 0: no group for route "/unknown/1/order/{orderId}", service (apiContext) "/unknown/1", api (apiName) "Unknown", tags (none) and no default group: add one of them (or a default) to VIGIL_ADAPT_GROUPS',
      },
    ]);
  });

  it('maps by apiContext when the API name has no entry', () => {
    const result = wso2Adapter.translate(bytes(line('apim:response', response({ apiName: 'Orders', apiContext: '/orders/2.0.0' }))), settings);
    expect(result.events[0]?.family === 'invocation' ? result.events[0].invocation.group : undefined).toBe('orders');
  });

  it('refuses what is not an apim_metrics.log line, and a line whose properties are not JSON', () => {
    const result = wso2Adapter.translate(bytes(['INFO something else happened', `${PREFIX}apimMetrics: apim:response, properties :{not json}`].join('\n')), settings);
    expect(result.events).toEqual([]);
    expect(result.rejected.map((reject) => [reject.reason, reject.record])).toEqual([
      ['adapter_unparseable', 0],
      ['adapter_unparseable', 1],
    ]);
    expect(result.rejected[1]?.message).toBe('record 1: the properties of apim:response are not a JSON object');
  });

  it('leaves out a field the contract would refuse rather than lose the record', () => {
    const result = wso2Adapter.translate(bytes(line('apim:response', response({ userName: 'bad\u0000name', userIp: 'not-an-ip', correlationId: '' }))), settings);
    expect(result.events).toHaveLength(1);
    expect(result.events[0]?.actor).toEqual({ consumerId: 'a0b1c2d3-0000-4000-8000-000000000001' });
    expect(result.events[0]?.client).toEqual({});
    expectContract(result.events);
  });
});
