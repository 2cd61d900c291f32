import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { groupMap, type AdapterSettings } from '../../ingest/adapters';
import { envoyAdapter } from '../../ingest/adapters/envoy';
import { expectContract, requestEventId, withoutRecordDigest } from '../support/adapter-events';

/**
 * The templates of docs/gateways/templates.md, read from the page itself, rendered with sample
 * values as each gateway would, and translated by the envoy adapter they target.
 */
const page = readFileSync(join(__dirname, '..', '..', 'docs', 'gateways', 'templates.md'), 'utf8');

function template(name: string): string {
  const match = new RegExp('```\\w+ vigil-template=' + name + '\\n([\\s\\S]*?)```').exec(page);
  if (!match?.[1]) throw new Error(`docs/gateways/templates.md has no vigil-template=${name} block`);
  return match[1];
}

const settings: AdapterSettings = {
  service: 'edge',
  kind: 'gateway',
  groups: groupMap({ routes: { '/orders/{id}': 'orders', 'checkout-v1': 'checkout' }, services: { orders_backend: 'orders' } }),
};

/** Replaces each variable the pattern finds with its sample value, JSON-escaped; an unknown one is an error. */
function render(text: string, pattern: RegExp, values: Record<string, string>): string {
  return text.replace(pattern, (_whole, name: string) => {
    if (!Object.hasOwn(values, name)) throw new Error(`no sample value for ${name}`);
    return JSON.stringify(values[name]).slice(1, -1);
  });
}

describe('docs/gateways/templates.md', () => {
  it('AWS API Gateway: THROTTLED is a rate_limit failure, the authorizer subject an authn pass, the resource path the route', () => {
    const line = render(template('aws').trim(), /\$context\.([A-Za-z.]+)/g, {
      requestTimeEpoch: '1772359200500',
      httpMethod: 'GET',
      path: '/orders/17',
      resourcePath: '/orders/{id}',
      status: '429',
      responseLatency: '3',
      responseLength: '52',
      'identity.sourceIp': '198.51.100.80',
      'identity.userAgent': 'aws-sdk-js/3',
      requestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
      domainName: 'api.example.com',
      'authorizer.claims.sub': 'user-553',
      'identity.apiKeyId': 'a1b2c3d4e5',
      'error.responseType': 'THROTTLED',
    });
    const result = envoyAdapter.translate(Buffer.from(line), settings);
    expect(result.rejected).toEqual([]);
    const common = { id: expect.any(String) as string, time: '2026-03-01T10:00:00.500Z', actor: { userId: 'user-553', consumerId: 'a1b2c3d4e5' }, client: { ip: '198.51.100.80', userAgent: 'aws-sdk-js/3' } };
    expect(result.events).toEqual([
      expect.objectContaining({ ...common, family: 'invocation', invocation: expect.objectContaining({ route: '/orders/{id}', status: 429, latencyMs: 3, bytesOut: 52, group: 'orders' }) as object }),
      expect.objectContaining({ ...common, family: 'policy', policy: expect.objectContaining({ kind: 'authn', name: 'jwt-authn', outcome: 'pass' }) as object }),
      expect.objectContaining({ ...common, family: 'policy', policy: expect.objectContaining({ kind: 'rate_limit', name: 'aws-apigateway', outcome: 'fail', reason: 'THROTTLED' }) as object }),
    ]);
    expect(result.events.map((event) => withoutRecordDigest(event.id))).toEqual([
      'envoy:c6af9ac6-7b61-11e6-9a41-93e8deadbeef:inv',
      'envoy:c6af9ac6-7b61-11e6-9a41-93e8deadbeef:authn',
      'envoy:c6af9ac6-7b61-11e6-9a41-93e8deadbeef:rate_limit',
    ]);
    expectContract(result.events);
  });

  it('NGINX: $limit_req_status REJECTED with the default 503 is a rate_limit failure; PASSED a pass; "-"-less empties are absent', () => {
    const format = /'([\s\S]*)'/.exec(template('nginx'))?.[1] ?? '';
    const sample = (limit: string, status: string, id: string): string =>
      render(format, /\$([a-z_0-9]+)/g, {
        time_iso8601: '2026-03-01T10:00:00+00:00',
        request_method: 'POST',
        request_uri: '/orders/17?coupon=x',
        status,
        request_length: '412',
        body_bytes_sent: '0',
        request_time: '0.004',
        remote_addr: '192.0.2.10',
        http_x_forwarded_for: '',
        http_user_agent: 'Mozilla/5.0 "quoted"',
        request_id: id,
        host: 'shop.example.com',
        proxy_host: 'orders_backend',
        limit_req_status: limit,
        hostname: 'nginx-1',
      });
    const result = envoyAdapter.translate(Buffer.from(`${sample('REJECTED', '503', 'f0e1d2c3b4a59687')}\n${sample('PASSED', '201', 'a0e1d2c3b4a59687')}\n`), settings);
    expect(result.rejected).toEqual([]);
    expect(result.events.map((event) => [withoutRecordDigest(event.id), event.family === 'policy' ? [event.policy.kind, event.policy.name, event.policy.outcome, event.policy.reason] : event.family === 'invocation' ? event.invocation.status : event.family])).toEqual([
      ['envoy:f0e1d2c3b4a59687:inv', 503],
      ['envoy:f0e1d2c3b4a59687:rate_limit', ['rate_limit', 'nginx-limit-req', 'fail', 'REJECTED']],
      ['envoy:a0e1d2c3b4a59687:inv', 201],
      ['envoy:a0e1d2c3b4a59687:rate_limit', ['rate_limit', 'nginx-limit-req', 'pass', 'PASSED']],
    ]);
    expect(result.events[0]).toMatchObject({
      time: '2026-03-01T10:00:00.000Z',
      source: { service: 'edge', kind: 'gateway', instance: 'nginx-1' },
      client: { ip: '192.0.2.10', userAgent: 'Mozilla/5.0 "quoted"' },
      invocation: { resource: { api: 'shop.example.com', method: 'POST', path: '/orders/17' }, latencyMs: 4, bytesIn: 412, upstreamService: 'orders_backend', group: 'orders' },
    });
    expectContract(result.events);
  });

  it('Apigee: fault.name InvalidApiKey is an authn failure named apigee; the proxy name is the route', () => {
    const message = /<Message contentType[^>]*>([\s\S]*?)<\/Message>/.exec(template('apigee'))?.[1] ?? '';
    const line = render(message, /\{(?:escapeJSON\()?([a-z.\-_]+)\)?\}/g, {
      'client.received.start.timestamp': '1772359200000',
      'request.verb': 'GET',
      'request.uri': '/v1/checkout/cart?id=4',
      'apiproxy.name': 'checkout-v1',
      'response.status.code': '401',
      'client.ip': '203.0.113.99',
      'request.header.user-agent': 'curl/8.5.0',
      messageid: 'rrt-0b8c1e-a.4-12345',
      'request.header.host': 'api.example.org',
      'developer.app.name': '',
      'fault.name': 'InvalidApiKey',
    });
    const result = envoyAdapter.translate(Buffer.from(line), settings);
    expect(result.rejected).toEqual([]);
    expect(result.events).toHaveLength(2);
    expect(result.events[0]).toMatchObject({ id: requestEventId('envoy', 'rrt-0b8c1e-a.4-12345', 'inv') as string, actor: {}, invocation: { route: '/checkout-v1', status: 401, latencyMs: 0, group: 'checkout' } });
    expect(result.events[1]).toMatchObject({ id: requestEventId('envoy', 'rrt-0b8c1e-a.4-12345', 'authn') as string, policy: { kind: 'authn', name: 'apigee', outcome: 'fail', reason: 'InvalidApiKey', group: 'checkout' } });
    expect(result.events[1]?.labels).toEqual({ adapter: 'envoy' });
    expectContract(result.events);
  });
});
