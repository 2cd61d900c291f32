import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ADAPTERS, adapterFor, contractPath, eventId, groupMap, isoTime, sha256, type AdapterResult, type AdapterSettings, type GatewayAdapter } from '../../ingest';
import { eventSchema, type VigilEventInput } from '../../schemas';
import { REFUSALS, kongRecord, type GatewayCall } from '../../scripts/gateway-records';
import { requestEventId, withoutRecordDigest } from '../support/adapter-events';

const settings: AdapterSettings = {
  service: 'edge-kong-eu',
  kind: 'gateway',
  environment: 'production',
  instance: 'kong-node-1',
  groups: groupMap({ routes: { 'orders-route': 'orders' }, services: { 'accounts-svc': 'accounts' }, tags: { payments: 'payments' } }),
};

const T = new Date('2026-11-27T10:00:00.812Z');
const call = (overrides: Partial<GatewayCall> = {}): GatewayCall => ({
  requestId: '7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d',
  time: T,
  clientIp: '203.0.113.7',
  method: 'GET',
  uri: '/orders/8812?expand=items',
  status: 200,
  latencyMs: 37,
  service: 'orders-svc',
  route: { name: 'orders-route', paths: ['/orders'] },
  ...overrides,
});

function registered(format: string): GatewayAdapter {
  const adapter = ADAPTERS[format];
  if (adapter === undefined) throw new Error(`the ${format} adapter is not registered`);
  return adapter;
}
const kong = registered('kong');

function translate(records: unknown, options: AdapterSettings = settings): AdapterResult {
  const result = kong.translate(Buffer.from(typeof records === 'string' ? records : JSON.stringify(records)), options);
  // Whatever the adapter builds must pass the contract as the pipeline checks it.
  for (const event of result.events) {
    const parsed = eventSchema.safeParse(event);
    if (!parsed.success) throw new Error(`event ${event.id} fails the contract: ${parsed.error.message}`);
  }
  return result;
}

/** The parts of a Kong record the tests damage. */
interface KongShape {
  request: { method?: string; uri?: string; url?: string; headers: Record<string, string | undefined>; tls: { client_verify: string } };
  response: { status: number };
  started_at: unknown;
  service: unknown;
}

const policies = (result: AdapterResult): VigilEventInput[] => result.events.filter((event) => event.family === 'policy');
const policyOf = (event: VigilEventInput | undefined): Record<string, unknown> | undefined => (event?.family === 'policy' ? (event.policy) : undefined);

describe('the kong adapter: records as shippers and clients leave them', () => {
  it('reads a batch holding a byte that is not UTF-8 (a client\'s Latin-1 header) instead of refusing every record of it', () => {
    const records = [kongRecord(call()), kongRecord(call({ requestId: 'aaaa0000bbbb1111cccc2222dddd3333' })), kongRecord(call({ requestId: 'eeee4444ffff5555aaaa6666bbbb7777' }))];
    const text = JSON.stringify(records).replace('"curl/8.5.0"', '"curl/8.5.0 LATIN1_HERE"');
    const bytes = Buffer.from(text);
    const at = bytes.indexOf('LATIN1_HERE');
    expect(at).toBeGreaterThan(0);
    bytes[at] = 0xe9; // é in Latin-1: not UTF-8
    const result = kong.translate(bytes, settings);
    expect(result.rejected).toEqual([]);
    expect(result.events.filter((event) => event.family === 'invocation')).toHaveLength(3);
    for (const event of result.events) expect(eventSchema.safeParse(event).success).toBe(true);
  });

  it('unwraps a record a file shipper wrapped (Vector and Filebeat: "message", Fluent Bit: "log")', () => {
    const bare = translate(kongRecord(call()));
    expect(bare.events.length).toBeGreaterThan(0);
    const vector = translate({ message: JSON.stringify(kongRecord(call())), file: '/var/log/kong/access.log', host: 'kong-node-1', timestamp: '2026-11-27T10:00:01Z' });
    expect(vector).toEqual(bare);
    const fluent = translate([{ log: JSON.stringify(kongRecord(call())), stream: 'stdout' }]);
    expect(fluent).toEqual(bare);
    // A text that is not a JSON object stays what it was: not a Kong record.
    expect(translate({ message: 'GET /orders 200' }).rejected).toEqual([expect.objectContaining({ reason: 'adapter_unparseable', record: 0 })]);
    // A Kong record with a custom `message` field of its own (custom_fields_by_lua) is the record.
    expect(translate({ ...kongRecord(call()), message: '{"note":"hi"}' }).events.map((event) => event.id)).toEqual(bare.events.map((event) => event.id));
  });

  it('reads started_at in seconds (a template that logs them) as seconds, not as a time in January 1970', () => {
    const seconds = { ...kongRecord(call()), started_at: T.getTime() / 1000 };
    // The time the gateway answered: started_at plus latencies.request (37 ms here).
    expect(translate(seconds).events[0]?.time).toBe(new Date(T.getTime() + 37).toISOString());
  });

  // A client holding its request open (a login body sent a byte at a time) made its events as old
  // as their start: past the allowed lateness, late to every stateful rule.
  it('dates the events when Kong answered, not when the request started', () => {
    const held = { ...kongRecord(call()), latencies: { request: 360_000, kong: 1, proxy: 5 } };
    expect(translate(held).events.map((event) => event.time)).toEqual(['2026-11-27T10:06:00.812Z']);
    // At the last date there is, the latency can't be added: the start stays (for the pipeline's
    // contract check to refuse), and the batch's other records are not lost to an exception.
    const last = kong.translate(Buffer.from(JSON.stringify([{ ...kongRecord(call()), started_at: '+275760-09-13T00:00:00.000Z' }, kongRecord(call())])), settings);
    expect(last.events.map((event) => event.time)).toEqual(['+275760-09-13T00:00:00.000Z', '2026-11-27T10:00:00.849Z']);
  });
});

describe('isoTime: an epoch number in any unit, told by its size', () => {
  it.each([
    [1764237600, '2025-11-27T10:00:00.000Z'],
    ['1764237600', '2025-11-27T10:00:00.000Z'],
    ['1764237600.812', '2025-11-27T10:00:00.812Z'],
    [1764237600812, '2025-11-27T10:00:00.812Z'],
    ['1764237600812', '2025-11-27T10:00:00.812Z'],
    ['1764237600812345', '2025-11-27T10:00:00.812Z'],
    ['1764237600812345678', '2025-11-27T10:00:00.812Z'],
    ['2025-11-27T10:00:00.812Z', '2025-11-27T10:00:00.812Z'],
  ])('%s is %s', (value, expected) => {
    expect(isoTime(value)).toBe(expected);
  });

  it('reads a date-time without a zone as UTC, whatever the host\'s zone; one with an offset as written', () => {
    // The zone is read when a process starts: a child process in New York's.
    const script = "import('./ingest/adapters/fields.ts').then((loaded) => { const { isoTime } = loaded.isoTime ? loaded : loaded.default; console.log(JSON.stringify([new Date('2024-06-01T10:00:00').toISOString(), ...['2024-06-01T10:00:00', '2024-05-01 12:00:00.123', '2024-06-01T10:00:00+02:00'].map(isoTime)])); })";
    const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: join(__dirname, '..', '..'), env: { ...process.env, TZ: 'America/New_York' }, encoding: 'utf8' });
    expect(child.stderr).toBe('');
    const [local, ...read] = JSON.parse(child.stdout) as string[];
    // The host's zone is in force in the child: Date alone reads local time.
    expect(local).toBe('2024-06-01T14:00:00.000Z');
    expect(read).toStrictEqual(['2024-06-01T10:00:00.000Z', '2024-05-01T12:00:00.123Z', '2024-06-01T08:00:00.000Z']);
  });

  it('answers undefined for what is no time', () => {
    for (const value of ['', '-', 'yesterday', Number.NaN, Number.POSITIVE_INFINITY, 1e300, {}]) expect(isoTime(value)).toBeUndefined();
  });
});

describe('the kong adapter', () => {
  it('is registered by its format name', () => {
    expect(adapterFor('kong')).toBe(kong);
    expect(adapterFor('apisix')?.format).toBe('apisix');
    expect(adapterFor('nope')).toBeUndefined();
  });

  it('turns an authenticated success into exactly one invocation and one authn pass', () => {
    const result = translate(kongRecord(call({ consumer: 'partner-acme' })));
    const envelope = {
      schemaVersion: 1,
      time: '2026-11-27T10:00:00.849Z', // started_at plus latencies.request
      source: { service: 'edge-kong-eu', kind: 'gateway', instance: 'kong-node-1', environment: 'production' },
      correlation: { requestId: '7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d' },
      actor: { consumerId: 'partner-acme' },
      client: { ip: '203.0.113.7', userAgent: 'curl/8.5.0' },
    };
    const resource = { api: 'orders-svc', method: 'GET', path: '/orders/8812' };
    expect(result).toEqual({
      events: [
        {
          ...envelope,
          id: requestEventId('kong', '7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d', 'inv') as string,
          family: 'invocation',
          labels: { workspace: 'default', response_source: 'upstream', adapter: 'kong' },
          invocation: { resource, route: '/orders', status: 200, latencyMs: 37, bytesIn: 138, bytesOut: 911, upstreamService: 'orders-svc.internal', group: 'orders' },
        },
        {
          ...envelope,
          id: requestEventId('kong', '7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d', 'authn') as string,
          family: 'policy',
          labels: { workspace: 'default', response_source: 'upstream', adapter: 'kong' },
          policy: { kind: 'authn', name: 'kong-auth', outcome: 'pass', reason: 'consumer_authenticated', group: 'orders', resource },
        },
      ],
      rejected: [],
      skipped: [],
      droppedDerived: [],
    });
  });

  it('gives an anonymous success its invocation only', () => {
    const result = translate(kongRecord(call()));
    expect(result.events.map((event) => withoutRecordDigest(event.id))).toEqual(['kong:7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d:inv']);
  });

  it('names no consumer for a request the route\'s anonymous consumer stood in for (X-Anonymous-Consumer: true)', () => {
    const record = kongRecord(call({ status: 404, consumer: 'anonymous', requestHeaders: { 'x-anonymous-consumer': 'true' } }));
    delete record.authenticated_entity;
    const result = translate(record);
    expect(result.events.map((event) => event.actor ?? {})).toEqual(result.events.map(() => ({})));
    expect(policies(result).map((event) => policyOf(event)?.kind)).not.toContain('authn');
    // The same consumer authenticated is named.
    const named = translate(kongRecord(call({ consumer: 'acme-erp' })));
    expect(named.events.every((event) => event.actor?.consumerId === 'acme-erp')).toBe(true);
  });

  it.each([
    ['key-auth', REFUSALS.kongKeyAuth, { kind: 'authn', name: 'kong-key-auth', outcome: 'fail', reason: 'invalid_or_missing_credentials', authContext: 'api_key' }],
    ['basic-auth', REFUSALS.kongBasicAuth, { kind: 'authn', name: 'kong-basic-auth', outcome: 'fail', reason: 'invalid_or_missing_credentials', authContext: 'basic' }],
    // A Bearer challenge names no plugin: jwt (kong/plugins/jwt/handler.lua) sends
    // `Bearer error="invalid_token"` for every failure but a missing token, and oauth2
    // (kong/plugins/oauth2/access.lua) sends `Bearer realm=...` with no error for a missing one.
    ['oauth2 invalid token', REFUSALS.kongOauth2, { kind: 'authn', name: 'kong-bearer-auth', outcome: 'fail', reason: 'invalid_token' }],
    ['jwt bad signature', { 'www-authenticate': 'Bearer error="invalid_token"' }, { kind: 'authn', name: 'kong-bearer-auth', outcome: 'fail', reason: 'invalid_token' }],
    ['jwt or oauth2 missing token', { 'www-authenticate': 'Bearer realm="kong"' }, { kind: 'authn', name: 'kong-bearer-auth', outcome: 'fail', reason: 'invalid_or_missing_credentials' }],
    ['hmac-auth', { 'www-authenticate': 'hmac realm="kong"' }, { kind: 'authn', name: 'kong-hmac-auth', outcome: 'fail', reason: 'invalid_or_missing_credentials' }],
  ])('proves a %s refusal from its 401 challenge, with no derived label', (_plugin, headers, expected) => {
    const result = translate(kongRecord(call({ status: 401, responseHeaders: headers })));
    const [policy] = policies(result);
    expect(withoutRecordDigest(policy?.id ?? '')).toBe('kong:7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d:authn');
    expect(policyOf(policy)).toEqual({ ...expected, group: 'orders', resource: { api: 'orders-svc', method: 'GET', path: '/orders/8812' } });
    expect(policy?.labels).toEqual({ workspace: 'default', response_source: 'kong', adapter: 'kong' });
    expect(policies(result)).toHaveLength(1);
  });

  it('labels a 401 without a challenge, or from the upstream, as derived from the status', () => {
    for (const record of [kongRecord(call({ status: 401 })), kongRecord(call({ status: 401, source: 'upstream', responseHeaders: REFUSALS.kongKeyAuth }))]) {
      const [policy] = policies(translate(record));
      expect(policyOf(policy)).toMatchObject({ kind: 'authn', name: 'http-401', outcome: 'fail' });
      expect(policy?.labels?.derived).toBe('status');
    }
  });

  it('gives a refused credential its events whatever the path: one past 2048 characters is cut, a control character percent-encoded', () => {
    const padded = translate(kongRecord(call({ status: 401, responseHeaders: REFUSALS.kongKeyAuth, uri: `/orders/${'A'.repeat(2_100)}?apikey=guess` })));
    expect(padded.rejected).toEqual([]);
    expect(padded.events.map((event) => event.family)).toEqual(['invocation', 'policy']);
    expect(policyOf(policies(padded)[0])).toMatchObject({ kind: 'authn', outcome: 'fail', resource: { path: `/orders/${'A'.repeat(2_040)}` } });
    const odd = translate(kongRecord(call({ status: 401, responseHeaders: REFUSALS.kongKeyAuth, uri: '/orders/\u0085x' })));
    expect(odd.rejected).toEqual([]);
    expect(policyOf(policies(odd)[0])).toMatchObject({ kind: 'authn', outcome: 'fail', resource: { path: '/orders/%C2%85x' } });
  });

  it('cuts a path between characters: never inside an escape it wrote, nor between the halves of a surrogate pair', () => {
    // 2044 characters, then an escape of 6 that would end past 2048: left out whole.
    expect(contractPath(`/${'A'.repeat(2043)}\u0085tail`)).toBe(`/${'A'.repeat(2043)}`);
    // An emoji (two UTF-16 units) straddling 2048: left out whole.
    const emoji = contractPath(`/${'A'.repeat(2046)}\u{1F600}tail`);
    expect(emoji).toBe(`/${'A'.repeat(2046)}`);
    expect(/[\uD800-\uDBFF]$/.test(emoji)).toBe(false);
    expect(contractPath('/plain/path')).toBe('/plain/path');
  });

  it('reads a record from before Kong 3.6 (no source) by latencies.proxy', () => {
    const record = kongRecord(call({ status: 401, responseHeaders: REFUSALS.kongKeyAuth }));
    delete record.source;
    expect(policyOf(policies(translate(record))[0])).toMatchObject({ name: 'kong-key-auth' });
    (record.latencies as Record<string, number>).proxy = 30;
    expect(policyOf(policies(translate(record))[0])).toMatchObject({ name: 'http-401' });
  });

  it('makes a 403 an authz failure when a consumer was identified, else a custom one, both derived', () => {
    const withConsumer = policies(translate(kongRecord(call({ status: 403, consumer: 'partner-acme' }))));
    expect(withConsumer.map((event) => [withoutRecordDigest(event.id), policyOf(event)?.kind, policyOf(event)?.name, policyOf(event)?.outcome, event.labels?.derived])).toEqual([
      ['kong:7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d:authn', 'authn', 'kong-auth', 'pass', undefined],
      ['kong:7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d:authz', 'authz', 'kong-acl', 'fail', 'status'],
    ]);
    const anonymous = policies(translate(kongRecord(call({ status: 403 }))));
    expect(anonymous.map((event) => [withoutRecordDigest(event.id), policyOf(event)?.kind, policyOf(event)?.name, event.labels?.derived])).toEqual([
      ['kong:7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d:custom', 'custom', 'kong-403', 'status'],
    ]);
  });

  it('proves a rate-limiting refusal from its headers, and labels a bare 429 as derived', () => {
    const limited = policies(translate(kongRecord(call({ status: 429, consumer: 'partner-acme', responseHeaders: REFUSALS.kongRateLimited }))));
    expect(limited.map((event) => [withoutRecordDigest(event.id), policyOf(event)?.kind, policyOf(event)?.name, policyOf(event)?.reason, event.labels?.derived])).toEqual([
      ['kong:7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d:authn', 'authn', 'kong-auth', 'consumer_authenticated', undefined],
      ['kong:7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d:rate_limit', 'rate_limit', 'kong-rate-limiting', 'limit_exceeded', undefined],
    ]);
    const bare = policies(translate(kongRecord(call({ status: 429 }))));
    expect(bare.map((event) => [policyOf(event)?.name, event.labels?.derived])).toEqual([['http-429', 'status']]);
    // A custom error_code: the exhausted quota proves it.
    const custom = policies(translate(kongRecord(call({ status: 418, responseHeaders: REFUSALS.kongRateLimited }))));
    expect(custom.map((event) => policyOf(event)?.name)).toEqual(['kong-rate-limiting']);
  });

  it('translates a batch array in order, skipping and counting methods outside the contract', () => {
    const batch = [
      kongRecord(call({ requestId: 'a1' + '0'.repeat(30) })),
      kongRecord(call({ requestId: 'b2' + '0'.repeat(30), method: 'PROPFIND' })),
      kongRecord(call({ requestId: 'c3' + '0'.repeat(30), method: 'post', status: 201 })),
    ];
    const result = translate(batch);
    expect(result.events.map((event) => withoutRecordDigest(event.id))).toEqual([`kong:a1${'0'.repeat(30)}:inv`, `kong:c3${'0'.repeat(30)}:inv`]);
    expect(result.events[1]?.family === 'invocation' && result.events[1].invocation.resource.method).toBe('POST');
    expect(result.skipped).toEqual([{ reason: 'method_unsupported', record: 1 }]);
    expect(result.rejected).toEqual([]);
  });

  it('gives an IPv4-mapped client address as IPv4, drops one that is no address, and keeps the events either way', () => {
    const mapped = kongRecord(call({ requestId: 'd4' + '0'.repeat(30) }));
    mapped.client_ip = '::ffff:203.0.113.9';
    const bogus = kongRecord(call({ requestId: 'e5' + '0'.repeat(30), status: 401 }));
    bogus.client_ip = '999.0.0.1';
    const result = translate([mapped, bogus]);
    const ips = result.events.map((event) => event.client?.ip);
    expect(ips.slice(0, 1)).toEqual(['203.0.113.9']);
    expect(result.events.filter((event) => event.id.startsWith('kong:e5')).map((event) => event.client?.ip)).toEqual([undefined, undefined]);
    expect(result.rejected).toEqual([]);
  });

  it('a record with an object where a text belongs (even one whose toString is not a function) loses only itself, not the batch', () => {
    const good = kongRecord(call({ requestId: undefined }));
    const hostile = { ...(kongRecord(call({ requestId: undefined }))), client_ip: { toString: 0 } };
    const result = kong.translate(Buffer.from(JSON.stringify([good, hostile])), settings);
    expect(result.events.length).toBeGreaterThan(0);
    expect(result.events.every((event) => eventSchema.safeParse(event).success)).toBe(true);
  });

  it('skips stream (TCP) records as not_http', () => {
    const result = translate({ session: { status: 200, received: 10, sent: 20 }, client_ip: '10.0.0.1', started_at: T.getTime() });
    expect(result).toEqual({ events: [], rejected: [], skipped: [{ reason: 'not_http', record: 0 }], droppedDerived: [] });
  });

  it('drops the query from the path and stores no secret the record carries', () => {
    const record = kongRecord(call({ uri: '/orders/8812?apikey=sk_live_query_secret&expand=items', requestHeaders: { 'x-api-key': 'sk_live_header_secret' } }));
    const result = translate(record);
    const text = JSON.stringify(result);
    expect(result.events[0]?.family === 'invocation' && result.events[0].invocation.resource.path).toBe('/orders/8812');
    for (const secret of ['sk_live_query_secret', 'sk_live_header_secret', 'sk_live_do_not_store_me', 'REDACTED', 'expand=items']) expect(text).not.toContain(secret);
  });

  it('derives the ids from a hash of the record when there is no request id, the same on every read', () => {
    const record = kongRecord(call({ requestId: null, status: 401, responseHeaders: REFUSALS.kongKeyAuth }));
    const first = translate(record).events.map((event) => event.id);
    const again = translate(JSON.parse(JSON.stringify(record)) as unknown).events.map((event) => event.id);
    const hash = sha256(`record:${[T.getTime(), '203.0.113.7', 'GET', '/orders/8812?expand=items', 401, 37, 138].join('|')}`).slice(0, 40);
    expect(first).toEqual([`kong:${hash}:inv`, `kong:${hash}:authn`]);
    expect(again).toEqual(first);
    // An empty request.id is a placeholder, not an id.
    const empty = kongRecord(call({ requestId: null }));
    (empty.request as Record<string, unknown>).id = '';
    expect(translate(empty).events[0]?.id).toMatch(/^kong:[0-9a-f]{40}:inv$/);
    // Another request in the same millisecond from the same client is another record.
    const other = translate(kongRecord(call({ requestId: null, uri: '/orders/8813' }))).events[0]?.id;
    expect(other).not.toBe(translate(kongRecord(call({ requestId: null }))).events[0]?.id);
  });

  it('keeps a long or unusual request id readable only when it is plain, hashing it otherwise', () => {
    expect(eventId('kong', 'abc def', 'facts', 'inv')).toBe(`kong:${sha256('request:abc def').slice(0, 40)}:${sha256('record:facts').slice(0, 12)}:inv`);
    const result = translate(kongRecord(call({ requestId: 'x'.repeat(120) })));
    expect(withoutRecordDigest(result.events[0]?.id ?? '')).toBe(`kong:${sha256(`request:${'x'.repeat(120)}`).slice(0, 40)}:inv`);
  });

  it('refuses a record no group maps, policy event or not, naming what it looked up; maps by tag and default', () => {
    const unmapped = kongRecord(call({ status: 401, responseHeaders: REFUSALS.kongKeyAuth, service: 'shop', route: { name: 'catalog', paths: ['/catalog'], tags: ['public'] } }));
    const refused = translate([kongRecord(call()), unmapped]);
    expect(refused.events.map((event) => withoutRecordDigest(event.id))).toEqual(['kong:7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d:inv']);
    expect(refused.rejected).toEqual([
      {
        reason: 'adapter_unmapped',
        record: 1,
        message: 'record 1: no group for route "catalog", service "shop", api (none), tags ["public"] and no default group: add one of them (or a default) to VIGIL_ADAPT_GROUPS',
      },
    ]);
    // Without a policy event too: an unmapped record is refused whole, never an invocation without a group.
    const plain = translate(kongRecord(call({ service: 'shop', route: { name: 'catalog' } })));
    expect(plain.events).toEqual([]);
    expect(plain.rejected).toEqual([
      { reason: 'adapter_unmapped', record: 0, message: 'record 0: no group for route "catalog", service "shop", api (none), tags (none) and no default group: add one of them (or a default) to VIGIL_ADAPT_GROUPS' },
    ]);
    const byTag = translate(kongRecord(call({ status: 401, service: 'shop', route: { name: 'catalog', tags: ['x', 'payments'] } })));
    expect(policyOf(policies(byTag)[0])?.group).toBe('payments');
    const byDefault = translate(unmapped, { ...settings, groups: groupMap({ default: 'edge' }) });
    expect(byDefault.events.map((event) => (event.family === 'invocation' ? event.invocation.group : policyOf(event)?.group))).toEqual(['edge', 'edge']);
  });

  it('refuses what is not a Kong record, naming the fault, and keeps the rest of the batch', () => {
    expect(translate('not json').rejected).toEqual([{ reason: 'adapter_unparseable', record: 0, message: expect.stringMatching(/^not a kong message: not valid JSON/) as unknown }]);
    expect(translate('42').rejected[0]?.message).toBe('not a kong message: expected a JSON object or an array of them, got number');
    // An empty batch was committed with no event, no dead letter and no count but messages.
    expect(translate('[]')).toMatchObject({ events: [], rejected: [{ reason: 'adapter_unparseable', record: 0, message: 'not a kong message: an empty JSON array: expected a JSON object or an array of them' }] });
    const mixed = translate([7, { hello: 'world' }, kongRecord(call())]);
    expect(mixed.rejected).toEqual([
      { reason: 'adapter_unparseable', record: 0, message: 'record 0: expected a JSON object, got number' },
      { reason: 'adapter_unparseable', record: 1, message: 'record 1: no "request" object: not a Kong log record' },
    ]);
    expect(mixed.events).toHaveLength(1);
    expect(translate(`${'['.repeat(100)}${']'.repeat(100)}`).rejected[0]?.message).toBe('not a kong message: the JSON nests deeper than 64 levels');
  });

  it.each([
    ['request.method', (record: KongShape) => delete record.request.method, 'record 0: request.method is missing'],
    ['a path', (record: KongShape) => ((record.request.uri = 'orders'), (record.request.url = '-')), 'record 0: request.uri "orders" is not a path starting with "/"'],
    ['a status', (record: KongShape) => (record.response.status = 0), 'record 0: response.status 0 is not an HTTP status'],
    ['a time', (record: KongShape) => (record.started_at = 'soon'), 'record 0: started_at "soon" is not a time in epoch milliseconds'],
    ['an API name', (record: KongShape) => ((record.service = null), delete record.request.headers.host), 'record 0: no service.name, service.id or Host header to name the API'],
  ])('refuses a record without %s as adapter_unmapped', (_what, damage, message) => {
    const record = kongRecord(call());
    damage(record as unknown as KongShape);
    expect(translate(record)).toEqual({ events: [], rejected: [{ reason: 'adapter_unmapped', record: 0, message }], skipped: [], droppedDerived: [] });
  });

  it('takes placeholders as absent: an unrouted request, a "-" client IP, a regex route path', () => {
    const record = kongRecord(call({ status: 404, route: { name: 'x', paths: ['~/orders/\\d+$'] } }));
    record.client_ip = '-';
    // Neither route "x" nor an unrouted request has a group of its own: the default takes them.
    const withDefault = { ...settings, groups: groupMap({ default: 'edge' }) };
    const [invocation] = translate(record, withDefault).events;
    expect(invocation?.client).toEqual({ userAgent: 'curl/8.5.0' });
    expect(invocation?.family === 'invocation' && invocation.invocation.route).toBe('/x');
    const unrouted = kongRecord(call({ status: 404 }));
    unrouted.route = null;
    unrouted.service = null;
    const [routeless] = translate(unrouted, withDefault).events;
    // A 404 no route matched is a scanner's probe as often as not: one route value for all of them, as the SDK records it.
    expect(routeless?.family === 'invocation' && [routeless.invocation.resource.api, routeless.invocation.route]).toEqual(['api.example.com', '/{unmatched}']);
    // Any other status before routing (a 401 of a global auth plugin) keeps the path: it is a real endpoint's.
    const denied = kongRecord(call({ status: 401 }));
    denied.route = null;
    denied.service = null;
    const [deniedCall] = translate(denied, withDefault).events.filter((event) => event.family === 'invocation');
    expect(deniedCall?.family === 'invocation' && deniedCall.invocation.route).toBe('/orders/8812');
  });

  it('reads the oauth2 user, the trace and an mTLS pass', () => {
    const record = kongRecord(
      call({
        consumer: 'mobile-app',
        requestHeaders: { 'x-authenticated-userid': 'user-42', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
      }),
    );
    (record as unknown as KongShape).request.tls.client_verify = 'SUCCESS';
    const [invocation, pass] = translate(record, { ...settings, kongUserHeader: true }).events;
    expect(invocation?.actor).toEqual({ userId: 'user-42', consumerId: 'mobile-app' });
    expect(invocation?.correlation).toEqual({ requestId: '7f3c9a61e2b84c1d9a0b5e6f7a8b9c0d', traceId: '4bf92f3577b34da6a3ce929d0e0e4736' });
    expect(policyOf(pass)?.authContext).toBe('mtls');
  });

  it('takes X-Authenticated-Userid only where the operator says oauth2 runs, and there only when a credential authenticated the request', () => {
    const forged = { 'x-authenticated-userid': 'admin' };
    // By default not at all: on a key-auth route the client chose it, and the record can't tell.
    const keyAuth = translate(kongRecord(call({ consumer: 'mallory', requestHeaders: forged }))).events[0];
    expect(keyAuth?.actor).toEqual({ consumerId: 'mallory' });
    const oauth2 = { ...settings, kongUserHeader: true };
    expect(translate(kongRecord(call({ consumer: 'mobile-app', requestHeaders: forged })), oauth2).events[0]?.actor).toEqual({ userId: 'admin', consumerId: 'mobile-app' });
    // Even then, an open route's or the anonymous consumer's header names nobody.
    expect(translate(kongRecord(call({ requestHeaders: forged })), oauth2).events[0]?.actor).toEqual({});
    const anonymous = translate(kongRecord(call({ consumer: 'anonymous', requestHeaders: { ...forged, 'x-anonymous-consumer': 'true' } })), oauth2).events[0];
    expect(anonymous?.actor).toEqual({});
    const consumerOnly = kongRecord(call({ consumer: 'mobile-app', requestHeaders: forged }));
    delete consumerOnly.authenticated_entity;
    expect(translate(consumerOnly, oauth2).events[0]?.actor).toEqual({ consumerId: 'mobile-app' });
  });

  it('gives no pass, and no consumer, to the anonymous consumer', () => {
    const result = translate(kongRecord(call({ consumer: 'anonymous', requestHeaders: { 'x-anonymous-consumer': 'true' } })));
    expect(policies(result)).toEqual([]);
    expect(result.events[0]?.actor).toEqual({});
  });

  it('leaves a user agent with a control character out rather than refusing the event', () => {
    const result = translate(kongRecord(call({ userAgent: 'evil\r\nX-Injected: 1' })));
    expect(result.events[0]?.client).toEqual({ ip: '203.0.113.7' });
  });
});
